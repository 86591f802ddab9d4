"""Security rules (``data-contract.md``): ``--where`` runs no code, names from data stay inside their root, and
decompression bombs are refused before allocation (issue #15, part 3)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os  # noqa: F401 - in scope for the pandas demonstration
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES

from sardata.errors import ConfigError, ManifestSchemaError, SardataError
from sardata.ingest import ingest
from sardata.manifest.where import filter_frame, parse_where, where_mask
from sardata.shards.build import BuildConfig, build_shards

ACD = FIXTURES / "sar-acd"


def attacks(marker: Path) -> list[str]:
    """Expressions that pandas' python engine would execute (each would create ``marker``)."""
    cmd = f"touch {marker}"
    return [
        f"@os.system('{cmd}') == 0",
        f"__import__('os').system('{cmd}') == 0",
        f"split == __import__('os').system('{cmd}')",
        "split.__class__.__mro__[1].__subclasses__() == 0",
        f"(lambda: __import__('os').system('{cmd}'))() == 0",
        f"split == open('{marker}', 'w')",
        "split[0] == 't'",
        "split.str.len() > 0",
        "split == 'train' & label == 1",
        "label + 1 == 2",
        "split = 'train'",
        "split == 'train';import os",
        f"split in [__import__('os').system('{cmd}')]",
    ]


# ----------------------------------------------------------------------------------------------- --where
@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split": ["train", "test", "train", "val"],
            "cls": [1, 2, 3, None],
            "label_name": ["A220", "A330", "t72", "t72"],
            "mode": ["VS", "TAS", "VS", "STT"],
            "snr_db": [-5.5, 0.0, 10.0, 3.0],
            "flag": [True, False, True, False],
        }
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("split == 'train'", [True, False, True, False]),
        ('split == "train"', [True, False, True, False]),
        ("'train' == split", [True, False, True, False]),
        ("cls in [1, 2]", [True, True, False, False]),
        ("cls not in [1, 2]", [False, False, True, True]),
        ("label_name != 'A220'", [False, True, True, True]),
        ("label_name == 't72'", [False, False, True, True]),
        ("mode == 'VS'", [True, False, True, False]),
        ("snr_db >= -5.5 and snr_db < 3", [True, True, False, False]),
        ("0 < snr_db", [False, False, True, True]),
        ("not (split == 'train' or mode == 'STT')", [False, True, False, False]),
        ("split == 'train' and not cls == 3", [True, False, False, False]),
        ("cls == None", [False, False, False, True]),
        ("cls != None", [True, True, True, False]),
        ("cls > 1", [False, True, True, False]),  # a missing value compares false
        ("flag", [True, False, True, False]),
        ("flag == True or split in ['val']", [True, False, True, True]),
        ("`label_name` == 'A330'", [False, True, False, False]),
        ("split in []", [False, False, False, False]),
    ],
)
def test_where_language_matches_the_documented_semantics(frame: pd.DataFrame, expr: str, expected: list) -> None:
    assert where_mask(frame, expr).tolist() == expected


def test_where_errors_name_the_position_or_the_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"unknown column 'nope' at position 0; available columns: split, cls"):
        where_mask(frame, "nope == 1")
    with pytest.raises(ConfigError, match="position 6"):
        parse_where("split @ 'x'")
    with pytest.raises(ConfigError, match="position 13"):
        parse_where("split == 'a' )")
    with pytest.raises(ConfigError, match="not boolean"):
        where_mask(frame, "split")
    with pytest.raises(ConfigError):
        where_mask(frame, "split < 3")  # str vs int: a clear error, not a pandas traceback
    for bad in ("", "   ", "split ==", "(split == 'a'", "split in 'a'", "split not == 'a'", "x" * 5000):
        with pytest.raises(ConfigError):
            parse_where(bad)


def test_where_attacks_raise_and_execute_nothing(frame: pd.DataFrame, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for expr in attacks(marker):
        with pytest.raises(ConfigError):
            filter_frame(frame, expr)
        assert not marker.exists(), expr
    # the attack is real: pandas' python engine (what this module replaced) runs it
    ran = tmp_path / "ran"
    with contextlib.suppress(KeyError):  # pandas fails only after the command has run
        frame.query(f"@os.system('touch {ran}') == 0", engine="python")
    assert ran.exists()


@pytest.fixture(scope="module")
def acd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """SAR-ACD fixture ingested and built: (ingest dir, dataset dir)."""
    work = tmp_path_factory.mktemp("security")
    ingest("sar-acd", ACD, work / "ingest")
    build_shards([work / "ingest"], work / "ds", BuildConfig(max_shard_samples=4))
    return work / "ingest", work / "ds"


def test_build_shards_dataset_and_pipeline_where_execute_nothing(acd: tuple[Path, Path], tmp_path: Path) -> None:
    from sardata.cli import app
    from sardata.cli.run import run_pipeline
    from sardata.stream.dataset import ShardDataset

    ingest_dir, ds = acd
    marker = tmp_path / "pwned"
    for i, expr in enumerate(attacks(marker)):
        with pytest.raises(ConfigError):
            build_shards([ingest_dir], tmp_path / f"out{i}", BuildConfig(where=expr))
        with pytest.raises(ConfigError):
            ShardDataset(ds, split=None, where=expr)
        assert not marker.exists(), expr
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(
        "kind: pipeline\nname: evil\ndescription: x\nsteps:\n"
        f"  - name: build\n    args: [build-shards, '{ingest_dir}', --out, '{tmp_path / 'p'}', --where, "
        f"\"@os.system('touch {marker}') == 0\"]\n"
    )
    with pytest.raises(SardataError):
        run_pipeline(recipe, app)
    assert not marker.exists()
    # valid filters keep working end to end
    build_shards([ingest_dir], tmp_path / "ok", BuildConfig(where="label_name != 'A220'"))
    assert len(ShardDataset(ds, split=None, where="label_name in ['A220', 'A330']")) == 4


# ----------------------------------------------------------------------------------------------- names from data
def _tamper_shards(ds: Path, path: str) -> None:
    """Point the first shard row at ``path`` and re-sign the card (an attacker controls both files)."""
    table = pq.read_table(ds / "shards.parquet")
    rows = table.to_pylist()
    rows[0]["path"] = path
    pq.write_table(table.from_pylist(rows, schema=table.schema), ds / "shards.parquet")
    card = json.loads((ds / "dataset.json").read_text())
    card["tables"]["shards"]["sha256"] = hashlib.sha256((ds / "shards.parquet").read_bytes()).hexdigest()
    (ds / "dataset.json").write_text(json.dumps(card))


@pytest.mark.parametrize("escape", ["../../secret.json", "/etc/passwd", "file:///etc/passwd", "shards/../../x"])
def test_shard_paths_leaving_the_root_are_refused_everywhere(
    acd: tuple[Path, Path], tmp_path: Path, escape: str
) -> None:
    from sardata.dataset.export import croissant
    from sardata.dataset.verify import verify
    from sardata.stream.dataset import ShardDataset

    ds = tmp_path / "ds"
    shutil.copytree(acd[1], ds)
    _tamper_shards(ds, escape)
    with pytest.raises(SardataError, match="shard path|dataset root"):
        verify(ds, samples=True)
    with pytest.raises(SardataError, match="shard path|dataset root"):
        croissant(ds)
    with pytest.raises(SardataError, match="shard path|dataset root"):
        data = ShardDataset(ds, split=None)
        for i in range(len(data)):
            data[i]


def test_table_names_leaving_the_root_are_refused_locally(acd: tuple[Path, Path], tmp_path: Path) -> None:
    from sardata.dataset.verify import verify

    ds = tmp_path / "ds"
    shutil.copytree(acd[1], ds)
    card = json.loads((ds / "dataset.json").read_text())
    card["tables"]["../../etc/x"] = {"sha256": "0" * 64}
    (ds / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(ManifestSchemaError, match="table name|unknown table"):
        verify(ds)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A python http.server on 127.0.0.1 serving ``tmp_path / 'www'`` (thread, stopped after the test)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_card_cannot_write_or_read_outside_the_cache(
    acd: tuple[Path, Path], http_root: tuple[Path, str], tmp_path: Path
) -> None:
    from sardata.stream.locate import locate
    from sardata.stream.remote import ShardCache

    www, url = http_root
    shutil.copytree(acd[1], www / "ds")
    cache = ShardCache(tmp_path / "cache")
    assert locate(f"{url}/ds", cache=cache)[0].is_dir()  # the honest card works
    payload = b"server-chosen bytes"
    (www / "evil.parquet").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    for i, name in enumerate(["../../../evil", "/tmp/evil", "a/../../../../evil", "..", ""]):
        evil = www / f"bad{i}"
        evil.mkdir()
        card = json.loads((www / "ds" / "dataset.json").read_text())
        card["tables"][name] = {"sha256": sha}
        (evil / "dataset.json").write_text(json.dumps(card))
        with pytest.raises(ManifestSchemaError, match="table name"):
            locate(f"{url}/bad{i}", cache=ShardCache(tmp_path / "cache"))
    written = {p.name for p in tmp_path.rglob("evil*")} | {p.name for p in Path("/tmp").glob("evil.parquet")}
    assert written == {"evil.parquet"} and (www / "evil.parquet").exists()  # only the served original
    assert not any(p.read_bytes() == payload for p in tmp_path.rglob("*.parquet") if not p.is_relative_to(www))
    # a served card may not point the reader at local files either
    for i, base in enumerate(["/etc", "file:///etc"]):
        d = www / f"local{i}"
        shutil.copytree(www / "ds", d)
        card = json.loads((d / "dataset.json").read_text())
        card["base_url"] = base
        (d / "dataset.json").write_text(json.dumps(card))
        with pytest.raises(ManifestSchemaError, match="local location"):
            locate(f"{url}/local{i}", cache=cache)


def test_remote_shard_paths_are_relative_only(
    acd: tuple[Path, Path], http_root: tuple[Path, str], tmp_path: Path
) -> None:
    from sardata.dataset.verify import verify
    from sardata.stream.dataset import ShardDataset
    from sardata.stream.remote import ShardCache

    www, url = http_root
    shutil.copytree(acd[1], www / "ds")
    _tamper_shards(www / "ds", "../../secret.json")
    with pytest.raises(SardataError, match="shard path|dataset root"):
        data = ShardDataset(f"{url}/ds", split=None, cache=ShardCache(tmp_path / "cache"))
        for i in range(len(data)):
            data[i]
    with pytest.raises(SardataError, match="shard path|dataset root"):
        verify(f"{url}/ds", samples=True)


# ----------------------------------------------------------------------------------------------- decompression bombs
BOMB_BUDGET = 64 * 2**20  # the test budget; the default is 2**28 (sardata.config)
SIDE = 20000  # 20000² float32 = 1.6 GB declared, a few KB on disk (sparse tiles)

_MEASURE = r"""
import json, resource, sys
from pathlib import Path
import pyarrow.parquet as pq
from sardata.ingest import ingest
import h5py, rasterio  # noqa: F401 - loaded before the baseline, like a real run
source, root, out, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ingest(source, root, out, options=opts)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rows = pq.read_table(Path(out) / "sources.parquet").to_pylist()
print(json.dumps({"base": base, "peak": peak, "rows": [(r["status"], r["reason"]) for r in rows]}))
"""


def _write_sparse_tiff(path: Path, side: int = SIDE) -> None:
    import numpy as np
    import rasterio

    profile = {"driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "sparse_ok": True}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.ones((1, 256, 256), np.float32), window=((0, 256), (0, 256)))


def _measure(source: str, root: Path, out: Path, opts: dict[str, str]) -> dict:
    import subprocess
    import sys

    env = os.environ | {"SARDATA_MAX_SAMPLE_BYTES": str(BOMB_BUDGET)}
    res = subprocess.run([sys.executable, "-c", _MEASURE, source, str(root), str(out), json.dumps(opts)],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_sparse_geotiff_bomb_is_rejected_before_allocation(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    _write_sparse_tiff(root / "bomb.tif")
    assert (root / "bomb.tif").stat().st_size < 200_000
    got = _measure("geotiff", root, tmp_path / "out", {"mode": "chips"})
    assert got["rows"] == [["rejected", "too_large"]]
    print(f"geotiff bomb: baseline {got['base'] / 2**20:.0f} MiB, peak {got['peak'] / 2**20:.0f} MiB")
    assert got["peak"] - got["base"] <= 2 * BOMB_BUDGET


def test_budget_helper_and_small_inputs_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sardata.config import DEFAULT_SAMPLE_BUDGET_BYTES, sample_budget_bytes
    from sardata.errors import RejectFile
    from sardata.sources._base import check_budget

    assert sample_budget_bytes() == DEFAULT_SAMPLE_BUDGET_BYTES == 2**28
    assert check_budget((1, 8192, 8192), 4, "x") == 2**28
    with pytest.raises(RejectFile) as exc:
        check_budget((60000, 60000), 4, "scene")
    assert exc.value.reason == "too_large"
    monkeypatch.setenv("SARDATA_MAX_SAMPLE_BYTES", "nope")
    with pytest.raises(ConfigError):
        sample_budget_bytes()


def test_hdf5_bomb_with_a_huge_declared_chunked_dataset_is_rejected(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    from sardata.sim.pdw import H5_FORMAT, H5_FORMAT_VERSION, PDW_DTYPE

    root = tmp_path / "in"
    root.mkdir()
    with h5py.File(root / "bomb.h5", "w") as f:
        f.attrs["format"], f.attrs["format_version"] = H5_FORMAT, H5_FORMAT_VERSION
        f.create_dataset("pulses", data=np.zeros(1, PDW_DTYPE))
        f.create_dataset("offsets", shape=(2**31,), dtype="int64", chunks=(4096,), fillvalue=0)  # 16 GiB declared
        f.create_dataset("index", shape=(2**31,), dtype="int64", chunks=(4096,))
        f.create_dataset("meta", data=np.array([b"{}"]))
    assert (root / "bomb.h5").stat().st_size < 200_000
    got = _measure("pdwsim", root, tmp_path / "out", {})
    assert got["rows"] == [["rejected", "too_large"]]
    print(f"hdf5 bomb: baseline {got['base'] / 2**20:.0f} MiB, peak {got['peak'] / 2**20:.0f} MiB")
    assert got["peak"] - got["base"] <= 2 * BOMB_BUDGET


def test_opensarship_zip_with_a_sparse_tiff_bomb_is_rejected(tmp_path: Path) -> None:
    from sardata.sources.opensarship import _read_tiff

    _write_sparse_tiff(tmp_path / "b.tif")
    from sardata.errors import RejectFile

    with pytest.raises(RejectFile) as exc:
        _read_tiff((tmp_path / "b.tif").read_bytes(), "Patch/x_vv.tif")
    assert exc.value.reason == "too_large"
