# ruff: noqa: F811 - the server fixtures of test_remote.py are imported and requested by name
"""GeoTIFF scenes that are not on local disk (issue #20 point 5, remote half): read through GDAL's ``/vsicurl/`` and
``/vsis3/`` in windows, against the real nginx and SeaweedFS servers of ``test_remote.py``; the listing of URL
inputs (:func:`sardata.discovery.remote_inputs`) and the allow-list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_remote import (  # noqa: F401 - fixtures requested by name
    BUCKET,
    Nginx,
    S3Server,
    dataset,
    nginx,
    s3_env,
    seaweed,
)

from sardata.discovery import remote_inputs
from sardata.errors import RejectFile
from sardata.sources import FileUnit
from sardata.sources.geotiff import GeoTIFF, gdal_path
from sardata.stream.transport import Filesystems

pytestmark = [pytest.mark.remote, pytest.mark.timeout(180)]


def write_scene(path: Path, side: int, seed: int = 0) -> None:
    """A tiled, georeferenced float32 scene (UTM 33N, 10 m pixels) with random pixels."""
    import rasterio
    from rasterio.transform import from_origin

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random((1, side, side), dtype=np.float32)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 1, "dtype": "float32", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "crs": "EPSG:32633",
               "transform": from_origin(500000, 4600000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


def samples(location: str, rel: str, size: int, **options: object) -> list:
    source = GeoTIFF("unused", GeoTIFF.parse_options({"tile": 256, "stride": 256, **options}))
    return list(source.read(FileUnit(rel, location, size)))


def same_samples(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.key_token == y.key_token
        and x.columns == y.columns
        and x.meta == y.meta
        and all(np.array_equal(x.arrays[k], y.arrays[k]) for k in x.arrays)
        for x, y in zip(a, b, strict=True)
    )


def sent(nginx: Nginx, path: str) -> list[tuple[str, int, int]]:
    """(method, status, body bytes) of every request for ``path`` in nginx's access log (combined format)."""
    out = []
    for line in nginx.access_log.read_text().splitlines():
        request, _, rest = line.partition('"')[2].partition('"')
        if request.split(" ")[1:2] == [path]:
            status, nbytes = rest.split()[:2]
            out.append((request.split()[0], int(status), int(nbytes)))
    return out


def test_vsicurl_scene_equals_the_local_read(nginx: Nginx) -> None:
    local = nginx.www / "scenes" / "a.tif"
    write_scene(local, 600)  # 3 x 3 tiles with the shifted edge
    want = samples(str(local), "scenes/a.tif", local.stat().st_size)
    assert len(want) == 9
    for location in (f"{nginx.base}/scenes/a.tif", f"/vsicurl/{nginx.base}/scenes/a.tif"):
        assert same_samples(samples(location, "scenes/a.tif", local.stat().st_size), want), location
    requests = sent(nginx, "/scenes/a.tif")
    assert requests and {m for m, _, _ in requests} <= {"HEAD", "GET"}
    assert all(status in (200, 206) for m, status, _ in requests if m == "GET")
    assert all(status == 206 for m, status, _ in requests if m == "GET")  # ranges only, never the whole file


def test_first_tiles_fetch_a_fraction_of_the_scene(nginx: Nginx) -> None:
    """Windowed over the network: two tiles of a 16 MB scene move well under a tenth of it."""
    local = nginx.www / "scenes" / "big.tif"
    write_scene(local, 2048, seed=1)
    source = GeoTIFF("unused", GeoTIFF.parse_options({"tile": 256}))
    tiles = source.read(FileUnit("scenes/big.tif", f"{nginx.base}/scenes/big.tif", local.stat().st_size))
    first = [next(tiles), next(tiles)]
    tiles.close()
    assert [t.key_token for t in first] == ["r000000-c000000", "r000000-c000256"]
    moved = sum(n for _, _, n in sent(nginx, "/scenes/big.tif"))
    assert 0 < moved < local.stat().st_size / 10, moved


def test_vsis3_scene_with_sardata_s3_settings(nginx: Nginx, s3_env: S3Server, tmp_path: Path) -> None:
    """s3:// and /vsis3/ with the endpoint from SARDATA_S3_ENDPOINT_URL and botocore-style keys in the env."""
    local = tmp_path / "b.tif"
    write_scene(local, 512, seed=2)
    s3_env.fs.pipe(f"{BUCKET}/scenes/b.tif", local.read_bytes())
    want = samples(str(local), "scenes/b.tif", local.stat().st_size)
    for location in (f"s3://{BUCKET}/scenes/b.tif", f"/vsis3/{BUCKET}/scenes/b.tif"):
        assert same_samples(samples(location, "scenes/b.tif", local.stat().st_size), want), location


def test_refused_and_missing_scenes_are_rejected(nginx: Nginx) -> None:
    before = nginx.access_log.read_text()
    for bad in ("pipe://cat /etc/passwd", "/vsicurl/file:///etc/passwd", "/vsizip//tmp/a.zip/x.tif",
                "/vsicurl?url=http://127.0.0.1/x.tif", "ftp://h/x.tif", "memory://b/x.tif", "gs://b/x.tif",
                f"{nginx.base}/x.tif; id", f"{nginx.base}/x.tif::file:///etc/passwd"):  # fmt: skip
        with pytest.raises(RejectFile) as info:
            samples(bad, "x.tif", 1000)
        assert info.value.reason == "refused_location", bad
    assert nginx.access_log.read_text() == before  # nothing was requested
    with pytest.raises(RejectFile) as info:
        samples(f"{nginx.base}/scenes/missing.tif", "scenes/missing.tif", 1000)
    assert info.value.reason == "unreachable" and "404" in info.value.detail
    (nginx.www / "scenes").mkdir(exist_ok=True)
    (nginx.www / "scenes" / "not.tif").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))
    with pytest.raises(RejectFile):
        samples(f"{nginx.base}/scenes/not.tif", "scenes/not.tif", 1008)
    assert gdal_path("/data/scenes/a.tif") is None and gdal_path("rel/a:b.tif") is None


def test_remote_inputs_list_urls_with_sizes_and_problems(nginx: Nginx, s3_env: S3Server, tmp_path: Path) -> None:
    write_scene(nginx.www / "scenes" / "c.tif", 256, seed=3)
    s3_env.fs.pipe(f"{BUCKET}/scenes/d.tif", b"x" * 1234)
    http = f"{nginx.base}/scenes/c.tif"
    listing = tmp_path / "scenes.urls"
    listing.write_text(
        f"# scenes\n{http}\n\ns3://{BUCKET}/scenes/d.tif\n/vsicurl/{http}\n{nginx.base}/scenes/missing.tif\n"
        "pipe:curl x\nhttp://h/a/../b.tif\n"
    )
    size_of = Filesystems().size
    found = remote_inputs(listing, size_of)
    rows = [(f.rel, f.size, f.problem[0] if f.problem else None) for f in found]
    assert rows == [
        ("scenes/c.tif", (nginx.www / "scenes" / "c.tif").stat().st_size, None),
        (f"{BUCKET}/scenes/d.tif", 1234, None),
        ("scenes/c.tif", 0, "duplicate"),
        ("scenes/missing.tif", 0, "unreachable"),
        ("pipe:curl x", 0, "refused_location"),
        ("a/../b.tif", 0, "refused_location"),
    ]
    assert found[0].path == http and found[1].path == f"s3://{BUCKET}/scenes/d.tif"
    assert [f.rel for f in remote_inputs(http, size_of)] == ["scenes/c.tif"]
    assert remote_inputs(tmp_path, size_of) is None and remote_inputs(str(listing) + ".txt", size_of) is None
