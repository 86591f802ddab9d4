"""Corrupted inputs end in one clean sardata error, never a traceback (issue #15, "Clean errors").

Three generators: (a) corrupted manifests (missing / truncated / 0-row tables, card fields of the wrong JSON
type, deep nesting, bad offsets, unknown shard names) run through every command that reads a manifest; (b)
random ``.npy`` header mutations through the decoder; (c) random Phoenix headers through the MSTAR parser.
Each case must succeed or raise a :class:`SardataError` (CLI: exit 1, one line naming the file).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES, build_acd_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sardata.atomic import sha256_file
from sardata.cli import app
from sardata.errors import RejectFile, SardataError, ShardIntegrityError
from sardata.manifest.io import read_table, write_table
from sardata.shards.codecs import decode_npy, encode_npy
from sardata.sources.mstar import parse_phoenix, write_phoenix

pytestmark = pytest.mark.timeout(300)

ACD = FIXTURES / "sar-acd" / "SAR-ACD"
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny ingest (SAR-ACD fixture) and a dataset of 3-sample shards, built once for the module."""
    return build_acd_dataset(tmp_path_factory.mktemp("clean"))


# ----------------------------------------------------------------------------------------------- mutations
def _card(root: Path) -> dict[str, Any]:
    return json.loads((root / "dataset.json").read_text())


def _put_card(root: Path, card: Any) -> None:
    (root / "dataset.json").write_text(json.dumps(card))


def _rehash(root: Path, name: str) -> None:
    """Record a rewritten table's sha256 and rows in the card, so readers get past the checksum check."""
    card = _card(root)
    path = root / f"{name}.parquet"
    card["tables"][name] = {"rows": pq.read_metadata(path).num_rows, "sha256": sha256_file(path)}
    _put_card(root, card)


def _set_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    if isinstance(obj, dict):
        obj[path[0]] = _set_path(obj.get(path[0]), path[1:], value)
    return obj


def card_field(path: tuple[str, ...], value: Any) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        _put_card(root, _set_path(_card(root), path, value))

    return mutate


def card_text(text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / "dataset.json").write_text(text)

    return mutate


def drop_table(name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / f"{name}.parquet").unlink()

    return mutate


def truncate_table(name: str, keep: float) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / f"{name}.parquet"
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return mutate


def rows(name: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]], rehash: bool = True):
    """Rewrite table ``name`` with ``edit`` applied to its rows (same schema)."""

    def mutate(root: Path) -> None:
        path = root / f"{name}.parquet"
        table = read_table(path, name)
        new = pa.Table.from_pylist(edit(table.to_pylist()), schema=table.schema)
        write_table(new, path, name)
        if rehash:
            _rehash(root, name)

    return mutate


def set_col(col: str, value: Any, row: int = 0) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def edit(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[row][col] = value
        return rs

    return edit


def set_member(key: str, value: int) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def edit(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[0]["members"][0][key] = value
        return rs

    return edit


DEEP = "[" * 200_000 + "]" * 200_000
VARIANTS: dict[str, Callable[[Path], None]] = {
    **{f"missing-{t}": drop_table(t) for t in ("samples", "shards", "sources")},
    **{f"truncated-{t}": truncate_table(t, 0.5) for t in ("samples", "shards")},
    "empty-file-samples": truncate_table("samples", 0.0),
    "card-not-json": card_text("{not json"),
    "card-empty": card_text(""),
    "card-binary": card_text("\x00\x01\x02"),
    "card-list": card_text("[1, 2]"),
    "card-deep-list": card_text(DEEP),
    "card-deep-object": card_text('{"config": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001),
    "card-deep-config": card_field(("config",), json.loads("[" * 500 + "]" * 500)),
    "card-nan": card_text('{"schema_version": NaN}'),
    "card-huge-int": card_text('{"schema_version": 1' + "0" * 5000 + "}"),
    "card-missing-schema-version": card_field(("schema_version",), None),
    "card-schema-version-int": card_field(("schema_version",), 1),
    "card-schema-version-list": card_field(("schema_version",), ["1.0.0"]),
    "card-sardata-version-dict": card_field(("sardata_version",), {"a": 1}),
    "card-config-sha-int": card_field(("config_sha256",), 12),
    "card-tables-list": card_field(("tables",), ["samples"]),
    "card-tables-str": card_field(("tables",), "samples"),
    "card-tables-null": card_field(("tables",), None),
    "card-table-info-str": card_field(("tables", "samples"), "abc"),
    "card-table-no-sha": card_field(("tables", "samples"), {"rows": 12}),
    "card-table-sha-int": card_field(("tables", "samples", "sha256"), 5),
    "card-table-rows-str": card_field(("tables", "samples", "rows"), "12"),
    "card-table-unknown": card_field(("tables", "../../etc/passwd"), {"rows": 1, "sha256": "0" * 64}),
    "card-table-odd-name": card_field(("tables", "bogus"), {"rows": 1, "sha256": "0" * 64}),
    "card-splits-list": card_field(("splits",), [1, 2]),
    "card-split-str": card_field(("splits", "train"), "x"),
    "card-split-bytes-str": card_field(("splits", "train", "bytes"), "many"),
    "card-sources-dict": card_field(("sources",), {"id": 1}),
    "card-sources-items-int": card_field(("sources",), [1, 2]),
    "card-class-maps-list": card_field(("class_maps",), [1]),
    "card-class-map-int": card_field(("class_maps", "sar-acd"), 3),
    "card-config-list": card_field(("config",), [1]),
    "card-base-url-int": card_field(("base_url",), 7),
    "card-base-url-pipe": card_field(("base_url",), "pipe:cat"),
    "card-kind-list": card_field(("kind",), ["dataset"]),
    "card-views-int": card_field(("views",), 3),
    "card-counts-list": card_field(("counts",), [1]),
    "card-counts-files-str": card_field(("counts", "files"), "x"),
    "zero-row-samples": rows("samples", lambda rs: []),
    "zero-row-shards": rows("shards", lambda rs: []),
    "zero-row-sources": rows("sources", lambda rs: []),
    "zero-row-samples-unhashed": rows("samples", lambda rs: [], rehash=False),
    "negative-member-offset": rows("samples", set_member("offset", -5)),
    "huge-member-offset": rows("samples", set_member("offset", 2**62)),
    "negative-member-size": rows("samples", set_member("size", -1)),
    "huge-member-size": rows("samples", set_member("size", 2**40)),
    "negative-sample-offset": rows("samples", set_col("sample_offset", -1)),
    "huge-sample-bytes": rows("samples", set_col("sample_bytes", 2**50)),
    "negative-shard-pos": rows("samples", set_col("shard_pos", -3)),
    "unknown-shard-name": rows("samples", set_col("shard", "train-999999")),
    "null-shard-name": rows("samples", set_col("shard", None)),
    "null-members": rows("samples", set_col("members", None)),
    "empty-members": rows("samples", set_col("members", [])),
    "null-sha": rows("samples", set_col("sample_sha256", None)),
    "shard-path-escape": rows("shards", set_col("path", "../../../etc/passwd")),
    "shard-path-absolute": rows("shards", set_col("path", "/etc/passwd")),
    "shard-path-missing": rows("shards", set_col("path", "shards/nope.tar")),
    "shard-bytes-negative": rows("shards", set_col("bytes", -1)),
    "shard-duplicate": rows("shards", lambda rs: rs + rs[:1]),
    "samples-duplicate-key": rows("samples", lambda rs: rs + rs[:1]),
}


# ----------------------------------------------------------------------------------------------- commands
def _cli(*args: str) -> Callable[[Path, Path, Path], Any]:
    def run(ds: Path, ing: Path, out: Path) -> Any:
        argv = [a.format(ds=ds, ing=ing, out=out) for a in args]
        return RUNNER.invoke(app, argv)

    return run


def _loader(ds: Path, ing: Path, out: Path) -> Any:
    from sardata.stream.dataset import ShardDataset

    data = ShardDataset(ds, split=None)
    for i in range(len(data)):
        data[i]
    return None


COMMANDS: dict[str, Callable[[Path, Path, Path], Any]] = {
    "show": _cli("manifest", "show", "{ds}"),
    "validate": _cli("manifest", "validate", "{ds}"),
    "verify": _cli("manifest", "verify", "{ds}", "--samples"),
    "diff": _cli("manifest", "diff", "{ds}", "{ds}"),
    "export": _cli("manifest", "export", "{ds}", "--format", "croissant"),
    "merge": _cli("manifest", "merge", "{ds}", "{ds}", "--out", "{out}/merged"),
    "relocate": _cli("manifest", "relocate", "{ds}", "--base", "."),
    "build-shards": _cli("build-shards", "{ing}", "--out", "{out}/built", "--max-count", "3"),
    "loader": _loader,
}


def _outcome(fn: Callable[[Path, Path, Path], Any], ds: Path, ing: Path, out: Path) -> str | None:
    """None when the command succeeded or failed cleanly; a description of the traceback otherwise."""
    try:
        result = fn(ds, ing, out)
    except SardataError as exc:
        return _check_message(str(exc))
    except Exception as exc:  # noqa: BLE001 - that is what the test hunts for
        return f"{type(exc).__name__}: {exc}"[:300]
    if result is None:
        return None
    exc = result.exception
    if exc is None or (isinstance(exc, SystemExit) and result.exit_code in (0, 1)):
        return None
    if isinstance(exc, SardataError):
        return _check_message(str(exc))
    return f"{type(exc).__name__}: {exc}"[:300]


def _check_message(msg: str) -> str | None:
    if "\n" in msg.strip() or len(msg) > 2000:
        return f"not one line: {msg[:200]!r}"
    if not any(s in msg for s in ("/", ".json", ".parquet", ".tar")):
        return f"names no file: {msg[:200]!r}"
    return None


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_corrupted_manifest_gives_clean_errors(work: Path, tmp_path: Path, variant: str) -> None:
    ds = _copy(work / "ds", tmp_path / "ds")
    ing = _copy(work / "ingest", tmp_path / "ingest")
    applies = {}
    for root in (ds, ing):
        try:
            VARIANTS[variant](root)
            applies[root] = True
        except (KeyError, TypeError, IndexError, OSError, pa.ArrowException, SardataError):
            applies[root] = False  # a mutation that does not apply to this kind of manifest (shards of an ingest)
    failures = {}
    for name, fn in COMMANDS.items():
        if name == "build-shards" and not applies[ing]:
            continue  # build-shards reads the ingest directory only: an intact one proves nothing
        out = tmp_path / f"out-{name}"
        out.mkdir()
        problem = _outcome(fn, ds, ing, out)
        if problem is not None:
            failures[name] = problem
    assert not failures, failures


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
CARD_PATHS = [("tables",), ("tables", "samples"), ("tables", "shards", "sha256"), ("tables", "samples", "rows"),
              ("splits",), ("splits", "train"), ("splits", "train", "bytes"), ("sources",), ("class_maps",),
              ("config",), ("config_sha256",), ("schema_version",), ("sardata_version",), ("base_url",),
              ("kind",), ("views",), ("counts",), ("counts", "files")]  # fmt: skip


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(CARD_PATHS), value=JSON)
def test_random_card_values_give_clean_errors(work: Path, tmp_path: Path, path: tuple[str, ...], value: Any) -> None:
    case = tmp_path / f"case-{abs(hash((path, repr(value))))}"
    if case.exists():
        shutil.rmtree(case)
    ds = _copy(work / "ds", case / "ds")
    card_field(path, value)(ds)
    for name in ("show", "validate", "verify", "export", "loader"):
        out = case / f"out-{name}"
        out.mkdir()
        problem = _outcome(COMMANDS[name], ds, work / "ingest", out)
        assert problem is None, (name, path, value, problem)


# ----------------------------------------------------------------------------------------------- .npy headers
NPY = encode_npy(np.arange(12, dtype=np.float32).reshape(3, 4))
HEADER_LEN = 10 + int.from_bytes(NPY[8:10], "little")


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, HEADER_LEN - 1), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, len(NPY)),
)
def test_mutated_npy_headers_raise_shard_integrity_error_only(edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(NPY)
    for pos, byte in edits:
        data[pos] = byte
    if cut is not None:
        data = data[:cut]
    try:
        decode_npy(bytes(data), "shards/train-000000.tar:k")
    except ShardIntegrityError:
        pass


HEADER_TEXT = st.text(st.characters(codec="latin-1"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(descr=HEADER_TEXT, fortran=HEADER_TEXT, shape=HEADER_TEXT, tail=HEADER_TEXT)
def test_random_npy_header_dicts_raise_shard_integrity_error_only(descr: str, fortran: str, shape: str,
                                                                   tail: str) -> None:  # fmt: skip
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, {tail}}}"
    body = text.encode("latin-1")
    body += b" " * ((-(len(body) + 11)) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + b"\x00" * 48
    try:
        decode_npy(data, "shards/train-000000.tar:k")
    except ShardIntegrityError:
        pass


# ----------------------------------------------------------------------------------------------- Phoenix headers
def _phoenix(tmp: Path) -> bytes:
    rng = np.random.default_rng(0)
    path = tmp / "chip.000"
    write_phoenix(path, rng.random((4, 4), np.float32), rng.random((4, 4), np.float32),
                  {"TargetType": "bmp2_tank", "DesiredDepression": 17, "TargetAz": 10.5})  # fmt: skip
    return path.read_bytes()


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _phoenix(tmp_path_factory.mktemp("phoenix"))


VALUES = st.sampled_from(["", "x", "-1", "0", "1e9", "nan", "inf", "²", "\xb9", " 7 ", "1_0", "+3", "9" * 30, "\x00"])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(
        [
            "PhoenixHeaderLength",
            "PhoenixSigSize",
            "native_header_length",
            "NumberOfRows",
            "NumberOfColumns",
            "Chip_MD5_CheckSum",
            "DesiredDepression",
            "TargetAz",
        ]
    ),
    value=VALUES | st.text(st.characters(codec="latin-1", exclude_characters="\n"), max_size=10),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
)
def test_fuzzed_phoenix_headers_reject_with_a_reason(phoenix: bytes, field: str, value: str,
                                                     flips: list[tuple[int, int]]) -> None:  # fmt: skip
    text = phoenix.decode("latin-1")
    start = text.find(f"\n{field}=")
    if start >= 0:
        end = text.index("\n", start + 1)
        text = text[: start + 1] + f"{field}= {value}" + text[end:]
    data = bytearray(text.encode("latin-1"))
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    try:
        chip = parse_phoenix(bytes(data))
    except RejectFile as exc:
        assert exc.reason != "error" and exc.reason.replace("_", "").isalpha(), exc.reason
        return
    assert chip.magnitude.shape == chip.phase.shape


def test_cli_prints_one_line_and_exits_1(work: Path, tmp_path: Path, sardata_cmd: list[str]) -> None:
    import subprocess

    ds = _copy(work / "ds", tmp_path / "ds")
    card_text(DEEP)(ds)
    proc = subprocess.run([*sardata_cmd, "manifest", "show", str(ds)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "dataset.json" in proc.stderr and "Traceback" not in proc.stderr
