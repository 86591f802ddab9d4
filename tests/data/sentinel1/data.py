#!/usr/bin/env python3
"""Write two tiny Sentinel-1 SAFE products in ESA's layout into ``Sentinel1/``.

* ``S1A_IW_GRDH_1SDV_….SAFE``: VV and VH ``measurement/*.tiff`` (uint16 DN, 40 lines × 56 pixels, GCPs in
  EPSG:4326, the first 4 columns zero as after border-noise removal), per polarisation ``annotation/*.xml``
  (adsHeader, productInformation, imageInformation, geolocationGrid) and
  ``annotation/calibration/calibration-*.xml`` (a 3-line × 5-pixel LUT grid, σ⁰/β⁰/γ⁰/dn), a ``noise-*.xml``
  for VV only (noise is optional), ``manifest.safe``, a preview and a support schema.
* ``S1A_IW_SLC__1SSV_….SAFE``: swath IW2 VV, complex int16 (CInt16) 3 bursts × 12 lines × 48 pixels, invalid
  samples (zeros) at each burst's first line and the first 2 columns, ``swathTiming`` with the bursts.

Tables are explicit numbers (not formulas) so tests hand-compute calibrated values from them. Seeded and
deterministic; ``python data.py`` rewrites the tree and prints sha256 of every file.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GRD = "S1A_IW_GRDH_1SDV_20240102T050607_20240102T050632_051234_063ABC_1A2B.SAFE"
SLC = "S1A_IW_SLC__1SSV_20240103T060708_20240103T060735_051249_063B11_C3D4.SAFE"
GRD_STEM = "s1a-iw-grd-{pol}-20240102t050607-20240102t050632-051234-063abc-{num}"
SLC_STEM = "s1a-iw2-slc-vv-20240103t060708-20240103t060735-051249-063b11-002"
GRD_SHAPE, SLC_SHAPE = (40, 56), (36, 48)
LINES_PER_BURST = 12
#: calibration LUT grids: lines × pixels and one table per LUT (rows = lines); β⁰ is constant as in real products
GRD_LUT = {
    "lines": [0, 20, 40],
    "pixels": [0, 16, 32, 48, 55],
    "sigmaNought": [[600.0, 640.0, 660.0, 700.0, 720.0], [620.0, 650.0, 680.0, 690.0, 735.0],
                    [640.0, 655.0, 700.0, 710.0, 760.0]],
    "betaNought": [[474.0] * 5] * 3,
    "gamma": [[560.0, 590.0, 600.0, 630.0, 650.0], [570.0, 600.0, 615.0, 640.0, 655.0],
              [585.0, 610.0, 625.0, 650.0, 670.0]],
    "dn": [[474.0] * 5] * 3,
}  # fmt: skip
SLC_LUT = {
    "lines": [0, 12, 24, 35],
    "pixels": [0, 24, 47],
    "sigmaNought": [[300.0, 320.0, 350.0], [305.0, 330.0, 352.0], [310.0, 335.0, 360.0], [312.0, 338.0, 365.0]],
    "betaNought": [[237.0] * 3] * 4,
    "gamma": [[280.0, 300.0, 330.0], [282.0, 305.0, 331.0], [285.0, 309.0, 334.0], [290.0, 311.0, 340.0]],
    "dn": [[237.0] * 3] * 4,
}  # fmt: skip
#: geolocation grid: lines × pixels with latitude, longitude and incidence angle tables
GRD_GEO = {
    "lines": [0, 20, 39],
    "pixels": [0, 28, 55],
    "latitude": [[45.10, 45.12, 45.14], [45.05, 45.07, 45.09], [45.00, 45.02, 45.04]],
    "longitude": [[7.00, 7.30, 7.60], [6.99, 7.29, 7.59], [6.98, 7.28, 7.58]],
    "incidenceAngle": [[30.5, 37.0, 45.5], [30.5, 37.1, 45.6], [30.6, 37.1, 45.6]],
}
SLC_GEO = {
    "lines": [0, 12, 24, 35],
    "pixels": [0, 47],
    "latitude": [[44.00, 44.03], [43.98, 44.01], [43.96, 43.99], [43.94, 43.97]],
    "longitude": [[8.00, 8.40], [7.99, 8.39], [7.98, 8.38], [7.97, 8.37]],
    "incidenceAngle": [[36.0, 41.0], [36.0, 41.0], [36.1, 41.1], [36.1, 41.1]],
}


def grd_dn(pol: str) -> np.ndarray:
    rng = np.random.default_rng({"vv": 21, "vh": 22}[pol])
    dn = np.round(rng.rayleigh(120.0 if pol == "vv" else 40.0, GRD_SHAPE)).astype(np.uint16)
    dn[:, :4] = 0  # border noise removal leaves zeros
    return dn


def slc_iq() -> np.ndarray:
    rng = np.random.default_rng(23)
    iq = np.round(rng.normal(0, 60, SLC_SHAPE)) + 1j * np.round(rng.normal(0, 60, SLC_SHAPE))
    iq[::LINES_PER_BURST, :] = 0  # each burst's first line is invalid
    iq[:, :2] = 0
    return iq.astype(np.complex64)


def ads_header(pol: str, product: str, swath: str, start: str, stop: str, number: str) -> str:
    return (f"<adsHeader><missionId>S1A</missionId><productType>{product}</productType><polarisation>{pol}"
            f"</polarisation><mode>IW</mode><swath>{swath}</swath><startTime>{start}</startTime><stopTime>{stop}"
            f"</stopTime><absoluteOrbitNumber>51234</absoluteOrbitNumber><missionDataTakeId>408252"
            f"</missionDataTakeId><imageNumber>{number}</imageNumber></adsHeader>")  # fmt: skip


def _vec(values: list[float]) -> str:
    return f'count="{len(values)}">' + " ".join(f"{v:.6e}" if isinstance(v, float) else str(v) for v in values)


def calibration_xml(header: str, lut: dict) -> str:
    """``calibration-*.xml``: one ``calibrationVector`` per LUT line (tests call it with broken grids)."""
    vectors = "".join(
        f"<calibrationVector><azimuthTime>2024-01-02T05:06:{7 + i:02d}.000000</azimuthTime><line>{line}</line>"
        f"<pixel {_vec(lut['pixels'])}</pixel>"
        + "".join(f"<{name} {_vec(lut[name][i])}</{name}>" for name in ("sigmaNought", "betaNought", "gamma", "dn"))
        + "</calibrationVector>"
        for i, line in enumerate(lut["lines"])
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<calibration>{header}<calibrationInformation>'
            f"<absoluteCalibrationConstant>1.000000e+00</absoluteCalibrationConstant></calibrationInformation>"
            f'<calibrationVectorList count="{len(lut["lines"])}">{vectors}</calibrationVectorList></calibration>\n')  # fmt: skip


def noise_xml(header: str, lut: dict) -> str:
    vectors = "".join(f"<noiseRangeVector><line>{line}</line><pixel {_vec(lut['pixels'])}</pixel><noiseRangeLut "
                      f"{_vec([1.0] * len(lut['pixels']))}</noiseRangeLut></noiseRangeVector>" for line in lut["lines"])  # fmt: skip
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<noise>{header}<noiseRangeVectorList count="{len(lut["lines"])}">'
            f"{vectors}</noiseRangeVectorList></noise>\n")  # fmt: skip


def annotation_xml(header: str, shape: tuple[int, int], geo: dict, spacing: tuple[float, float], mid: float,
                   projection: str, bursts: int = 0) -> str:  # fmt: skip
    points = "".join(
        f"<geolocationGridPoint><azimuthTime>2024-01-02T05:06:07.000000</azimuthTime><slantRangeTime>5.3e-03"
        f"</slantRangeTime><line>{line}</line><pixel>{pixel}</pixel><latitude>{geo['latitude'][i][j]}</latitude>"
        f"<longitude>{geo['longitude'][i][j]}</longitude><height>1.2e+02</height><incidenceAngle>"
        f"{geo['incidenceAngle'][i][j]}</incidenceAngle><elevationAngle>3.0e+01</elevationAngle></geolocationGridPoint>"
        for i, line in enumerate(geo["lines"])
        for j, pixel in enumerate(geo["pixels"])
    )  # fmt: skip
    burst_list = "".join(
        f"<burst><azimuthTime>2024-01-03T06:07:{8 + 3 * b:02d}.000000</azimuthTime><byteOffset>{b}</byteOffset></burst>"
        for b in range(bursts)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<product>{header}<generalAnnotation><productInformation>'
        f"<pass>Ascending</pass><timelinessCategory>Fast-24h</timelinessCategory><platformHeading>-1.234e+01"
        f"</platformHeading><projection>{projection}</projection><rangeSamplingRate>6.4345241e+07"
        f"</rangeSamplingRate><radarFrequency>5.405000454334350e+09</radarFrequency></productInformation>"
        f"</generalAnnotation><imageAnnotation><imageInformation><rangePixelSpacing>{spacing[1]}"
        f"</rangePixelSpacing><azimuthPixelSpacing>{spacing[0]}</azimuthPixelSpacing><numberOfSamples>{shape[1]}"
        f"</numberOfSamples><numberOfLines>{shape[0]}</numberOfLines><incidenceAngleMidSwath>{mid}"
        f"</incidenceAngleMidSwath></imageInformation></imageAnnotation><swathTiming><linesPerBurst>"
        f"{LINES_PER_BURST if bursts else 0}</linesPerBurst><samplesPerBurst>{shape[1] if bursts else 0}"
        f'</samplesPerBurst><burstList count="{bursts}">{burst_list}</burstList></swathTiming><geolocationGrid>'
        f'<geolocationGridPointList count="{len(geo["lines"]) * len(geo["pixels"])}">{points}'
        f"</geolocationGridPointList></geolocationGrid></product>\n"
    )


def write_tiff(path: Path, data: np.ndarray, dtype: str, geo: dict) -> None:
    import rasterio
    from rasterio.control import GroundControlPoint

    gcps = [GroundControlPoint(row=line, col=pixel, x=geo["longitude"][i][j], y=geo["latitude"][i][j], z=120.0)
            for i, line in enumerate(geo["lines"]) for j, pixel in enumerate(geo["pixels"])]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                       dtype=dtype, gcps=gcps, crs="EPSG:4326") as ds:  # fmt: skip
        ds.write(data[None])


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def _grd(root: Path) -> None:
    safe = root / GRD
    start, stop = "2024-01-02T05:06:07.000000", "2024-01-02T05:06:32.000000"
    for pol, num in (("vv", "001"), ("vh", "002")):
        stem = GRD_STEM.format(pol=pol, num=num)
        header = ads_header(pol.upper(), "GRD", "IW", start, stop, num)
        write_tiff(safe / "measurement" / f"{stem}.tiff", grd_dn(pol), "uint16", GRD_GEO)
        _put(safe / "annotation" / f"{stem}.xml",
             annotation_xml(header, GRD_SHAPE, GRD_GEO, (10.0, 10.0), 39.1, "Ground Range"))  # fmt: skip
        _put(safe / "annotation" / "calibration" / f"calibration-{stem}.xml", calibration_xml(header, GRD_LUT))
        if pol == "vv":
            _put(safe / "annotation" / "calibration" / f"noise-{stem}.xml", noise_xml(header, GRD_LUT))
    _put(safe / "manifest.safe",
         '<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" version="esa/'
         'safe/sentinel-1.0/sentinel-1/sar/level-1/standard"><metadataSection/><dataObjectSection/></xfdu:XFDU>\n')  # fmt: skip
    _put(safe / "preview" / "map-overlay.kml", "<kml><Document/></kml>\n")
    _put(safe / "support" / "s1-level-1-calibration.xsd", "<xsd:schema/>\n")


def _slc(root: Path) -> None:
    safe = root / SLC
    header = ads_header("VV", "SLC", "IW2", "2024-01-03T06:07:08.000000", "2024-01-03T06:07:35.000000", "002")
    write_tiff(safe / "measurement" / f"{SLC_STEM}.tiff", slc_iq(), "complex_int16", SLC_GEO)
    _put(safe / "annotation" / f"{SLC_STEM}.xml",
         annotation_xml(header, SLC_SHAPE, SLC_GEO, (13.9, 2.33), 38.6, "Slant Range", bursts=3))  # fmt: skip
    _put(safe / "annotation" / "calibration" / f"calibration-{SLC_STEM}.xml", calibration_xml(header, SLC_LUT))


def generate(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    _grd(root)
    _slc(root)
    return sorted(p for p in root.rglob("*") if p.is_file())


def main() -> None:
    shutil.rmtree(HERE / "Sentinel1", ignore_errors=True)
    for path in generate(HERE / "Sentinel1"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
