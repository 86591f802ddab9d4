"""``sardata sim``: simulators that write ingestable datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Simulators writing datasets in real on-disk layouts.", no_args_is_help=True)


@app.command("sar")
def sim_sar(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output directory.")],
    per_class: Annotated[int, typer.Option(min=1, help="Chips per class and split.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    size: Annotated[int, typer.Option(min=32, help="Chip height in pixels.")] = 64,
) -> None:
    """Synthetic speckled target chips as MSTAR raw Phoenix files and an MSTAR-10 JPEG folder."""
    from sardata.sim.sar_targets import write_demo_dataset

    counts = write_demo_dataset(out, per_class=per_class, seed=seed, size=size)
    typer.echo(
        f"wrote {counts['raw']} Phoenix chips under {out / 'raw'} and {counts['jpeg']} JPEGs under {out / 'jpeg'}"
    )


CONFUSABLE_HELP = (
    "Downstream: all 7 emitters in one band with overlapping PRIs (default; radar.md §2.5). --separate-bands gives "
    "a set the RF-only rule solves (degenerate; for experiments)."
)


@app.command("pdw")
def sim_pdw(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output directory.")],
    types: Annotated[int, typer.Option("--types", min=1, help="Emitter types in the pretraining pool.")] = 300,
    per_type_mode: Annotated[int, typer.Option(min=1, help="Pool trains per type and mode.")] = 8,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Write the 7-emitter cross-mode set instead of the pool.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Global seed (every train regenerates from seed, type, mode, index).")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes (one file each).")] = 2,
    confusable: Annotated[bool, typer.Option("--confusable/--separate-bands", help=CONFUSABLE_HELP)] = True,
    test_per_class: Annotated[
        bool, typer.Option("--test-per-class", help="Downstream: 200 test trains per class instead of per mode.")
    ] = False,
    permute_seed: Annotated[
        int | None, typer.Option(help="Downstream: seeded class→count permutation (default identity).")
    ] = None,
    types_per_file: Annotated[int, typer.Option(min=1, help="Pool: types per HDF5 file.")] = 10,
    stop: Annotated[
        str,
        typer.Option(
            help="Where a train ends: 'intercept' (one whole illumination, radar.md §2.4.6) or "
            "'detections' (the earlier rule: --n-pulses detections)."
        ),
    ] = "intercept",
    max_pulses: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--stop intercept: cap on surviving detections per train [default: the "
            "library's sardata.sim.pdw.intercept.MAX_PULSES].",
        ),
    ] = None,
    n_pulses: Annotated[
        int, typer.Option(min=1, help="--stop detections: emitter detections per train (512 + 64).")
    ] = 576,
    compress: Annotated[bool, typer.Option("--compress", help="gzip the pulse tables (smaller, ~25% slower).")] = False,
) -> None:
    """Simulated multifunction-radar PDW trains (radar.md §2) as HDF5, ready for `sardata ingest pdwsim`."""
    from sardata.cli._options import progress_bar
    from sardata.sim.pdw import write_dataset

    kind = "downstream" if downstream else "pool"
    update, bar = progress_bar(f"sim pdw {kind}", unit="train")
    try:
        r = write_dataset(out, kind=kind, global_seed=seed, n_types=types, per_type_mode=per_type_mode,
                          types_per_file=types_per_file, confusable=confusable, test_per_class=test_per_class,
                          permute_seed=permute_seed, n_pulses=n_pulses, stop=stop,
                          **({"max_pulses": max_pulses} if max_pulses else {}), compression="gzip" if compress else None,
                          workers=workers, progress=update)  # fmt: skip
    finally:
        bar.close()
    typer.echo(
        f"wrote {r['samples']} trains in {r['files']} files under {r['root']}; ingest: sardata ingest pdwsim {r['root']}"
    )


@app.command("radchar")
def sim_radchar(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output .h5 file (RadChar layout).")],
    frames: Annotated[int, typer.Option(min=1, help="Number of frames.")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Synthetic RadChar-format HDF5 (5 signal types, radar.md §1.6) — marked synthetic, for pipelines and studies
    when the real RadChar files are not at hand."""
    from sardata.sim.radchar_fixture import frames as draw_frames
    from sardata.sim.radchar_fixture import write_radchar

    out.parent.mkdir(parents=True, exist_ok=True)
    write_radchar(out, draw_frames(frames, seed))
    typer.echo(f"wrote {frames} synthetic RadChar frames to {out}; ingest: sardata ingest radchar {out.parent}")
