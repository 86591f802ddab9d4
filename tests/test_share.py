"""Sharing datasets: relocation (local and a real nginx on loopback), merge conflict rules, Croissant / Hugging Face
exports and direct SQL over the manifests (DuckDB).

The HTTP server helpers are the ones of ``test_remote.py`` (Debian nginx, temp config, 127.0.0.1 only); the HTTP
tests skip when nginx is not installed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import FIXTURES, build_acd_dataset
from test_remote import BUCKET, running_seaweed
from typer.testing import CliRunner

from sardata.bench.nginx import loopback_nginx
from sardata.cli import app
from sardata.dataset.export import CROISSANT_CONTEXT, croissant, hf_dataset_info
from sardata.dataset.inspect import validate_dir
from sardata.dataset.merge import merge
from sardata.dataset.relocate import relocate
from sardata.dataset.verify import verify
from sardata.errors import ConfigError
from sardata.manifest.io import read_card, read_table
from sardata.shards.build import BuildConfig, build_shards
from sardata.stream.dataset import ShardDataset, ShardIterable
from sardata.stream.remote import ShardCache

pytestmark = pytest.mark.timeout(180)

ACD = FIXTURES / "sar-acd" / "SAR-ACD"
TABLES = ("samples.parquet", "shards.parquet", "sources.parquet")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingest of the SAR-ACD fixture (12 chips, 6 classes) and a dataset of 3-sample shards built from it."""
    return build_acd_dataset(tmp_path_factory.mktemp("share"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default caches (loaders given a remote base without a cache) go to the test's directory, not ~/.cache."""
    monkeypatch.setenv("SARDATA_CACHE", str(tmp_path / "default-cache"))


def keys_and_images(root: Path | str, **kwargs: object) -> list[tuple[str, bytes]]:
    ds = ShardDataset(root, split=None, **kwargs)
    return [(s["__key__"], s["img.npy"].tobytes()) for s in (ds[i] for i in range(len(ds)))]


def copy_manifests(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in (*TABLES, "dataset.json"):
        shutil.copy(src / name, dst / name)
    return dst


# ----------------------------------------------------------------------------------------------- relocation
@pytest.fixture(scope="module")
def nginx(work: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """nginx serving ``www/``: (base URL, www directory)."""
    d = tmp_path_factory.mktemp("nginx")
    www = d / "www"
    www.mkdir()
    with loopback_nginx(www, d, access_log=True) as base:
        if base is None:
            pytest.skip("nginx not installed (bash .ci/install-servers.sh installs Debian's nginx)")
        yield base, www


def test_relocate_rewrites_only_the_card(work: Path, tmp_path: Path) -> None:
    """Shards moved to another folder: only ``base_url`` changes; tables, hashes and the loader state stay."""
    ds = copy_manifests(work / "ds", tmp_path / "ds")
    shutil.copytree(work / "ds" / "shards", tmp_path / "store" / "v1" / "shards")
    before = {n: (ds / n).read_bytes() for n in TABLES}
    state = ShardIterable(work / "ds", 4, split=None).state_dict(1)
    result = CliRunner().invoke(app, ["manifest", "relocate", str(ds), "--base", "../store/v1"])
    assert result.exit_code == 0, result.output
    assert read_card(ds)["base_url"] == "../store/v1"
    assert {n: (ds / n).read_bytes() for n in TABLES} == before
    assert len(validate_dir(ds)) == 3 and verify(ds, samples=True).ok
    assert keys_and_images(ds) == keys_and_images(work / "ds")
    it = ShardIterable(ds, 4, split=None)
    it.load_state_dict(state)  # same manifest hash: a run resumes across the move
    # back to "next to the card": the shards are not there, and verify says so
    relocate(ds, ".")
    assert "base_url" not in read_card(ds)
    report = verify(ds)
    assert not report.ok and all("missing" in p for p in report.problems)


def test_relocate_refuses_bad_bases_and_ingest_manifests(work: Path, tmp_path: Path) -> None:
    ds = copy_manifests(work / "ds", tmp_path / "ds")
    for bad in ("pipe:cat x", "ftp://host/x", "s3:///nobucket"):
        with pytest.raises(ConfigError):
            relocate(ds, bad)
    with pytest.raises(ConfigError, match="only built datasets"):
        relocate(work / "ingest", "s3://bucket/prefix")
    result = CliRunner().invoke(app, ["manifest", "relocate", str(ds), "--base", "gs://b/p"])
    assert result.exit_code == 1 and "not allowed" in str(result.exception)
    # a hand-edited card naming a command is refused when loaded, never run
    card = json.loads((ds / "dataset.json").read_text())
    (ds / "dataset.json").write_text(json.dumps({**card, "base_url": "pipe:curl -s http://x/"}))
    with pytest.raises(ConfigError, match="not allowed"):
        ShardDataset(ds)
    with pytest.raises(ConfigError, match="not allowed"):
        verify(ds)


@pytest.mark.remote
def test_http_copy_verifies_and_streams(work: Path, nginx: tuple[str, Path], tmp_path: Path) -> None:
    """The folder copied as is onto an HTTP server: verifiable and loadable by its URL; and a local manifest-only
    copy relocated to that URL verifies and streams the same samples."""
    base, www = nginx
    shutil.copytree(work / "ds", www / "copy")
    url = f"{base}/copy"
    report = verify(url, samples=True)
    assert report.ok and report.shards_ok == len(read_table(work / "ds" / "shards.parquet", "shards"))
    cache = ShardCache(tmp_path / "cache")
    assert keys_and_images(url, cache=cache) == keys_and_images(work / "ds")
    local = list(ShardIterable(work / "ds", 4, split=None, seed=5))
    served = list(ShardIterable(url, 4, split=None, seed=5, cache=cache))
    assert [b["__key__"] for b in served] == [b["__key__"] for b in local]

    ds = copy_manifests(work / "ds", tmp_path / "ds")
    relocate(ds, url + "/")
    assert read_card(ds)["base_url"] == url
    result = CliRunner().invoke(app, ["manifest", "verify", str(ds)])
    assert result.exit_code == 0 and "ok (" in result.output, result.output
    assert keys_and_images(ds, cache=ShardCache(tmp_path / "c2")) == keys_and_images(work / "ds")

    # a damaged served shard is reported with its name, not silently cached
    shard = sorted((www / "copy" / "shards").iterdir())[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    report = verify(ds)
    assert not report.ok and any(shard.name in p and "sha256" in p for p in report.problems)


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """SeaweedFS S3 on loopback: (endpoint, s3fs client)."""
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server.endpoint, server.fs


@pytest.mark.remote
def test_s3_copy_verifies_and_streams(
    work: Path, seaweed: tuple[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder uploaded unchanged to S3 loads and verifies by its s3:// URL."""
    endpoint, fs = seaweed
    for k, v in {"SARDATA_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "sardata",
                 "AWS_SECRET_ACCESS_KEY": "sardata-test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    for path in (p for p in (work / "ds").rglob("*") if p.is_file()):
        fs.pipe(f"{BUCKET}/copy/{path.relative_to(work / 'ds').as_posix()}", path.read_bytes())
    url = f"s3://{BUCKET}/copy"
    assert verify(url, samples=True).ok
    assert keys_and_images(url, cache=ShardCache(tmp_path / "cache")) == keys_and_images(work / "ds")


# ----------------------------------------------------------------------------------------------- merge
def build(work: Path, name: str, where: str, **cfg: object) -> Path:
    out = work / name
    if not (out / "dataset.json").exists():
        build_shards([work / "ingest"], out, BuildConfig(where=where, max_shard_samples=3, **cfg))
    return out


def test_merge_same_key_same_content_keeps_one_row(work: Path, tmp_path: Path) -> None:
    a = build(work, "a", "label_name in ['A220', 'A330', 'ARJ21']")
    b = build(work, "b", "label_name in ['ARJ21', 'Boeing737', 'Boeing787']")
    result = CliRunner().invoke(app, ["manifest", "merge", str(a), str(b), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    c = tmp_path / "c"
    samples = read_table(c / "samples.parquet", "samples").to_pandas()
    expected = {r.key for r in ShardDataset(a, split=None).index.rows} | {
        r.key for r in ShardDataset(b, split=None).index.rows
    }
    assert set(samples["key"]) == expected and samples["key"].is_unique and len(samples) == 10
    assert "2 duplicate rows dropped" in result.output and "1 rewritten" in result.output
    assert verify(c, samples=True).ok and len(validate_dir(c)) == 3
    got = dict(keys_and_images(c))
    for src in (a, b):
        for key, img in keys_and_images(src):
            assert got[key] == img
    # a stock reader streaming every shard sees each key exactly once (duplicates were rewritten out)
    import webdataset as wds

    shards = sorted(str(p) for p in (c / "shards").glob("*.tar"))
    seen = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False)]
    assert sorted(seen) == sorted(expected)
    # merging the same inputs again is reproducible
    merge([a, b], tmp_path / "c2")
    for name in (*TABLES, *(f"shards/{p.name}" for p in (c / "shards").iterdir())):
        assert (c / name).read_bytes() == (tmp_path / "c2" / name).read_bytes(), name


def test_merge_same_key_different_content_names_both_sources(work: Path, tmp_path: Path) -> None:
    a = build(work, "a", "label_name in ['A220', 'A330', 'ARJ21']")
    resized = build(work, "resized", "label_name in ['ARJ21']", size_policy="resize", size=24)
    with pytest.raises(ConfigError, match="different content") as err:
        merge([a, resized], tmp_path / "c")
    assert str(a) in str(err.value) and str(resized) in str(err.value) and "arj21" in str(err.value)
    assert not (tmp_path / "c" / "dataset.json").exists()
    result = CliRunner().invoke(app, ["manifest", "merge", str(a), str(resized), "--out", str(tmp_path / "d")])
    assert result.exit_code == 1 and "different content" in str(result.exception)
    with pytest.raises(ConfigError, match="not a built dataset"):
        merge([a, work / "ingest"], tmp_path / "e")


# ----------------------------------------------------------------------------------------------- exports
def _keys(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            if k != "@context":
                yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


#: schema.org properties the export uses (resolved through "@vocab": "https://schema.org/").
SCHEMA_ORG = {"name", "description", "distribution", "contentUrl", "contentSize", "encodingFormat", "sha256",
              "version", "license", "datePublished", "containedIn"}  # fmt: skip


def test_croissant_export_matches_its_context_and_the_files(work: Path, tmp_path: Path) -> None:
    ds = work / "ds"
    result = CliRunner().invoke(
        app, ["manifest", "export", str(ds), "--format", "croissant", "--out", str(tmp_path / "c.json")]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc == croissant(ds)
    ctx = doc["@context"]
    # the Croissant 1.0 context: namespaces and the terms the document relies on
    assert ctx["@vocab"] == "https://schema.org/" and ctx["sc"] == "https://schema.org/"
    assert ctx["cr"] == "http://mlcommons.org/croissant/" and ctx["dct"] == "http://purl.org/dc/terms/"
    assert ctx["dataType"] == {"@id": "cr:dataType", "@type": "@vocab"} and ctx["conformsTo"] == "dct:conformsTo"
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0" and doc["@type"] == "sc:Dataset"
    # every property is a JSON-LD keyword, a context term or a schema.org term
    undefined = {k for k in _keys(doc) if not k.startswith("@") and k not in ctx and k not in SCHEMA_ORG}
    assert undefined == set()
    # every compact IRI (types, data types) uses a prefix the context defines
    for node in _nodes(doc):
        for value in (node.get("@type"), node.get("dataType")):
            if value is not None:
                assert value.split(":")[0] in ctx, value
    # one FileObject per table and per shard, with the real sha256 and size
    files = {f["@id"]: f for f in doc["distribution"] if f["@type"] == "cr:FileObject"}
    assert {f["@type"] for f in doc["distribution"]} == {"cr:FileObject", "cr:FileSet"}
    shards = read_table(ds / "shards.parquet", "shards").to_pylist()
    for s in shards:
        f = files[s["path"]]
        assert f["sha256"] == hashlib.sha256((ds / s["path"]).read_bytes()).hexdigest() == s["sha256"]
        assert f["contentSize"] == f"{s['bytes']} B" and f["encodingFormat"] == "application/x-tar"
    for name in TABLES:
        assert files[name]["sha256"] == hashlib.sha256((ds / name).read_bytes()).hexdigest()
    # record sets: one field per Parquet column, each extracting an existing column of an existing file; the
    # tar member record sets read file properties of a FileSet contained in every shard
    samples = next(r for r in doc["recordSet"] if r["@id"] == "samples")
    assert [f["name"] for f in samples["field"]] == pq.read_schema(ds / "samples.parquet").names
    file_sets = {f["@id"]: f for f in doc["distribution"] if f["@type"] == "cr:FileSet"}
    assert set(file_sets) == {"img-members"}
    assert [c["@id"] for c in file_sets["img-members"]["containedIn"]] == [s["path"] for s in shards]
    for rs in doc["recordSet"]:
        for field in rs["field"]:
            src = field["source"]
            if "fileSet" in src:
                assert src["fileSet"]["@id"] in file_sets and src["extract"]["fileProperty"] in ("filename", "content")
                continue
            assert src["fileObject"]["@id"] in files
            assert src["extract"]["column"] in pq.read_schema(ds / src["fileObject"]["@id"]).names
    by_name = {f["name"]: f for f in samples["field"]}
    assert by_name["label"]["dataType"] == "sc:Integer" and by_name["key"]["dataType"] == "sc:Text"
    assert by_name["members"]["repeated"] is True and {s["name"] for s in by_name["members"]["subField"]} == {
        "field", "offset", "size"}  # fmt: skip
    assert set(CROISSANT_CONTEXT) <= set(ctx)


def _nodes(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for k, v in node.items():
            if k != "@context":
                yield from _nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _nodes(v)


def test_hf_export_is_a_dataset_card(work: Path) -> None:
    """The YAML header of the README card (loading it with datasets: tests/test_export_hf.py)."""
    ds = work / "ds"
    result = CliRunner().invoke(app, ["manifest", "export", str(ds), "--format", "hf"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("---\n")
    _, header_text, body = result.output.split("---\n", 2)
    header = yaml.safe_load(header_text)
    assert header == json.loads(json.dumps(hf_dataset_info(ds)))
    assert body.lstrip().startswith(f"# {ds.name}") and "## Sources" in body
    info = header["dataset_info"]
    feats = {f["name"]: f for f in info["features"]}
    # features are the tar members (what datasets' webdataset builder yields), not the index columns
    assert list(feats) == ["__key__", "__url__", "cls", "img.npy", "meta.json"]
    names = read_card(ds)["class_maps"]["sar-acd"]
    assert feats["cls"]["dtype"]["class_label"]["names"] == {str(i): n for i, n in enumerate(names)}
    assert feats["img.npy"]["list"] == {"list": {"list": "uint8"}}  # native chip sizes vary: nested lists
    assert feats["__key__"]["dtype"] == "string" and feats["meta.json"]["dtype"] == "json"
    card = read_card(ds)
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {
        k: v["samples"] for k, v in card["splits"].items()
    }
    assert info["dataset_size"] == sum(p.stat().st_size for p in (ds / "shards").iterdir())
    assert header["configs"][0]["data_files"] == [{"split": s, "path": f"shards/{s}-*.tar"} for s in card["splits"]]
    result = CliRunner().invoke(app, ["manifest", "export", str(ds), "--format", "csv"])
    assert result.exit_code == 1


# ----------------------------------------------------------------------------------------------- queries
def test_manifests_are_queryable_with_duckdb(work: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = work / "ds" / "samples.parquet"
    rows = duckdb.sql(
        f"SELECT label_name, split, count(*) AS n FROM read_parquet('{path}') GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    expected = read_table(path, "samples").to_pandas().groupby(["label_name", "split"]).size()
    assert rows == [(c, s, int(n)) for (c, s), n in expected.items()]
    assert sum(n for *_, n in rows) == 12
    # the member offsets are plain columns too: total payload bytes per shard
    per_shard = duckdb.sql(
        f"SELECT shard, sum(sample_bytes) FROM read_parquet('{path}') GROUP BY shard ORDER BY shard"
    ).fetchall()
    shards = {s["shard"]: s["bytes"] for s in read_table(work / "ds" / "shards.parquet", "shards").to_pylist()}
    assert [s for s, _ in per_shard] == sorted(shards) and all(b < shards[s] for s, b in per_shard)
    assert np.all(np.array([b for _, b in per_shard]) > 0)
