#!/usr/bin/env python3
"""Write the tiny SICD fixture into ``SICD/`` with sarpy's own SICD writer (real NITF 2.1 + SICD XML DES).

``scene_vv.nitf``: 48 × 64 (rows × cols) ``RE32F_IM32F``, X-band spotlight, V:V, a projectable ``PLANE`` grid in
the ground plane (rows point away from the radar, columns along track) over a scene centre point at 36° N
115° W, ``Radiometric`` scale-factor polynomials (σ⁰ / β⁰ / γ⁰ / RCS) that vary over the image; a seeded complex
speckle image with a bright point target. ``chip_hh.ntf``: 20 × 24 ``RE16I_IM16I``, H:H, no ``Radiometric``
block (a chip you can only read as amplitude). Both are written with fixed creation dates, so the bytes are
deterministic. ``python data.py`` rewrites them and prints their sha256.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCENE = {"name": "scene_vv.nitf", "rows": 48, "cols": 64, "pixel": "RE32F_IM32F", "pol": "V:V", "seed": 11}
CHIP = {"name": "chip_hh.ntf", "rows": 20, "cols": 24, "pixel": "RE16I_IM16I", "pol": "H:H", "seed": 12}
ROW_SS, COL_SS = 0.5, 0.4  # sample spacing (m) of the scene
ROW_RES, COL_RES = 0.6, 0.5  # impulse response width (m)
#: Radiometric scale-factor polynomials of the scene: value = |x|² · Σ c[i, j] · xrow^i · ycol^j, with xrow and
#: ycol metres from the scene centre point (SICD Vol. 1: (row − SCPPixel.Row) · Row.SS, likewise for columns)
SIGMA0_COEFS = [[2.0, 0.01], [0.02, 0.0]]
BETA0_COEFS = [[1.5, 0.0], [0.01, 0.0]]
GAMMA0_COEFS = [[2.5, 0.0], [0.0, 0.005]]
RCS_COEFS = [[4.0]]
SCP_LLH = [36.0, -115.0, 600.0]
COLLECT_START = "2024-01-02T03:04:05.000000"


def image(spec: dict) -> np.ndarray:
    """The complex64 pixels of one fixture file (what sarpy reads back)."""
    rng = np.random.default_rng(spec["seed"])
    shape = (spec["rows"], spec["cols"])
    data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)) * 0.5
    data[spec["rows"] // 3, spec["cols"] // 4] = 40 + 30j  # a bright point target
    if spec["pixel"] == "RE16I_IM16I":
        data = np.round(data * 200)
    return data.astype(np.complex64)


def _enu(llh: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lat, lon = np.deg2rad(llh[0]), np.deg2rad(llh[1])
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    up = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return east, north, up


def sicd_meta(spec: dict):  # noqa: ANN201 - sarpy's SICDType
    """Plausible SICD metadata for one fixture file (sarpy derives SCPCOA angles from the geometry)."""
    from sarpy.geometry.geocoords import geodetic_to_ecf
    from sarpy.io.complex.sicd_elements import (
        SICD,
        CollectionInfo,
        GeoData,
        Grid,
        ImageCreation,
        ImageData,
        ImageFormation,
        Position,
        RadarCollection,
        Radiometric,
        Timeline,
    )  # fmt: skip
    from sarpy.io.complex.sicd_elements.blocks import Poly1DType, Poly2DType, XYZPolyType, XYZType

    rows, cols = spec["rows"], spec["cols"]
    scp = geodetic_to_ecf(SCP_LLH)
    east, north, up = _enu(SCP_LLH)
    arp0 = scp - 400e3 * east + 500e3 * up  # radar west of the scene, looking east, flying north
    vel = 7500.0 * north
    tx, rcv = spec["pol"].split(":")
    radiometric = None
    if spec is SCENE:
        radiometric = Radiometric.RadiometricType(
            SigmaZeroSFPoly=Poly2DType(Coefs=SIGMA0_COEFS), BetaZeroSFPoly=Poly2DType(Coefs=BETA0_COEFS),
            GammaZeroSFPoly=Poly2DType(Coefs=GAMMA0_COEFS), RCSSFPoly=Poly2DType(Coefs=RCS_COEFS),
        )  # fmt: skip
    row_ss, col_ss = (ROW_SS, COL_SS) if spec is SCENE else (1.0, 1.0)
    row_res, col_res = (ROW_RES, COL_RES) if spec is SCENE else (1.2, 1.2)
    meta = SICD.SICDType(
        CollectionInfo=CollectionInfo.CollectionInfoType(
            CollectorName="SARDATA-SIM-1",
            CoreName=f"FIXTURE_{spec['seed']:03d}",
            CollectType="MONOSTATIC",
            RadarMode=CollectionInfo.RadarModeType(ModeType="SPOTLIGHT"),
            Classification="UNCLASSIFIED",
        ),  # fmt: skip
        ImageCreation=ImageCreation.ImageCreationType(
            Application="sardata tests/data/sicd/data.py",
            DateTime=np.datetime64("2024-01-02T04:00:00"),
            Site="fixture",
            Profile="none",
        ),  # fmt: skip
        ImageData=ImageData.ImageDataType(
            PixelType=spec["pixel"],
            NumRows=rows,
            NumCols=cols,
            FirstRow=0,
            FirstCol=0,
            FullImage=(rows, cols),
            SCPPixel=(rows // 2, cols // 2),
        ),  # fmt: skip
        GeoData=GeoData.GeoDataType(EarthModel="WGS_84", SCP=GeoData.SCPType(LLH=SCP_LLH)),
        Grid=Grid.GridType(
            ImagePlane="GROUND",
            Type="PLANE",
            TimeCOAPoly=Poly2DType(Coefs=[[1.5]]),
            Row=Grid.DirParamType(
                UVectECF=XYZType.from_array(east),
                SS=row_ss,
                ImpRespWid=row_res,
                Sgn=-1,
                ImpRespBW=0.886 / row_res,
                KCtr=0.0,
                DeltaK1=-0.5 / row_ss,
                DeltaK2=0.5 / row_ss,
            ),
            Col=Grid.DirParamType(
                UVectECF=XYZType.from_array(north),
                SS=col_ss,
                ImpRespWid=col_res,
                Sgn=-1,
                ImpRespBW=0.886 / col_res,
                KCtr=0.0,
                DeltaK1=-0.5 / col_ss,
                DeltaK2=0.5 / col_ss,
            ),
        ),  # fmt: skip
        Timeline=Timeline.TimelineType(CollectStart=np.datetime64(COLLECT_START), CollectDuration=3.0),
        Position=Position.PositionType(
            ARPPoly=XYZPolyType(
                X=Poly1DType(Coefs=[arp0[0] - 1.5 * vel[0], vel[0]]),
                Y=Poly1DType(Coefs=[arp0[1] - 1.5 * vel[1], vel[1]]),
                Z=Poly1DType(Coefs=[arp0[2] - 1.5 * vel[2], vel[2]]),
            )
        ),
        RadarCollection=RadarCollection.RadarCollectionType(
            TxFrequency=(9.45e9, 10.05e9),
            TxPolarization=tx,
            RcvChannels=[RadarCollection.ChanParametersType(TxRcvPolarization=spec["pol"], index=1)],
        ),  # fmt: skip
        ImageFormation=ImageFormation.ImageFormationType(
            RcvChanProc=ImageFormation.RcvChanProcType(NumChanProc=1, ChanIndices=[1]),
            TxRcvPolarizationProc=f"{tx}:{rcv}",
            TStartProc=0.0,
            TEndProc=3.0,
            TxFrequencyProc=ImageFormation.TxFrequencyProcType(MinProc=9.45e9, MaxProc=10.05e9),
            ImageFormAlgo="OTHER",
            STBeamComp="NO",
            ImageBeamComp="NO",
            AzAutofocus="NO",
            RgAutofocus="NO",
        ),  # fmt: skip
        Radiometric=radiometric,
    )
    meta.derive()
    meta.define_geo_image_corners()
    return meta


def write(path: Path, spec: dict) -> None:
    from sarpy.io.complex.sicd import SICDWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "sarpy's SICD implementation is deprecated"
        with SICDWriter(str(path), sicd_meta(spec), check_existence=False) as writer:
            writer.write_chip(image(spec), start_indices=(0, 0))


def generate(root: Path) -> list[Path]:
    logger = logging.getLogger("sarpy")
    level = logger.level
    logger.setLevel(logging.ERROR)  # sarpy's validity notes on an "OTHER" image formation are not our concern
    try:
        root.mkdir(parents=True, exist_ok=True)
        for spec in (SCENE, CHIP):
            write(root / spec["name"], spec)
    finally:
        logger.setLevel(level)
    return sorted(p for p in root.rglob("*") if p.is_file())


def main() -> None:
    shutil.rmtree(HERE / "SICD", ignore_errors=True)
    for path in generate(HERE / "SICD"):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(HERE))


if __name__ == "__main__":
    main()
