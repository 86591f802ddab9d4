"""Shared ``Annotated`` option aliases for the command modules."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

OutDir = Annotated[Path, typer.Option("--out", "-O", help="Output directory.")]
# -o is --option (KEY=VALUE) everywhere; `train pretrain/finetune` once took -o for --out: kept, hidden, warning
LegacyOut = Annotated[
    Path | None, typer.Option("-o", hidden=True, help="Deprecated alias of --out (-o means --option in sardata).")
]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")]
SourceOpts = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Source option KEY=VALUE (repeatable); see `sardata sources list`."),
]


def out_or_legacy(out: Path | None, legacy: Path | None) -> Path:
    """``--out`` / ``-O``, or the deprecated ``-o`` of the train commands (with a warning on stderr)."""
    if legacy is not None:
        typer.secho("warning: -o for --out is deprecated (-o means --option KEY=VALUE in sardata); use -O or --out",
                    err=True, fg="yellow")  # fmt: skip
        if out is not None and out != legacy:
            raise typer.BadParameter(f"--out {out} and -o {legacy} disagree; give -O/--out only")
        return legacy
    if out is None:
        raise typer.BadParameter("missing: an output directory is required", param_hint="'--out' / '-O'")
    return out


def parse_kv(items: list[str] | None) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings; a malformed one is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def progress_bar(desc: str, unit: str = "file"):
    """A tqdm-backed ``progress(done, total)`` callback and the bar (close it when done)."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True, disable=None)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh() if done == total else bar.update(0)

    return update, bar


def step_progress(desc: str, unit: str = "step", stream: TextIO | None = None,
                  lines: int = 20) -> Callable[[int, int, dict[str, Any]], None]:  # fmt: skip
    """The trainers' ``progress(done, total, info)`` callback.

    On a terminal: a tqdm bar, created at the first report with ``initial=done`` (so a resumed run's or a
    fine-tune's first report does not read as thousands of steps per second). Elsewhere (a pipe, a log file, CI):
    no carriage-return redraws, but one plain line every ``total / lines`` steps and at the end, with the rate
    over the steps since the previous line.
    """
    out = stream or sys.stderr
    state: dict[str, Any] = {}

    def fmt(info: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())

    def on_tty(done: int, total: int, info: dict[str, Any]) -> None:
        from tqdm import tqdm

        bar = state.get("bar")
        if bar is None:
            state["bar"] = tqdm(total=total, desc=desc, unit=unit, initial=done, file=out, dynamic_ncols=True)
            return
        bar.update(done - bar.n)
        bar.set_postfix_str(fmt(info), refresh=False)
        if done >= total:
            bar.close()

    def as_lines(done: int, total: int, info: dict[str, Any]) -> None:
        now = time.monotonic()
        last = state.setdefault("last", (done, now))
        every = max(1, total // lines)
        if done < total and done // every == last[0] // every:
            return
        rate = (done - last[0]) / (now - last[1]) if now > last[1] else float("nan")
        out.write(f"{desc}: {done}/{total} {unit}s ({100 * done / max(total, 1):.0f} %), {rate:.3g} {unit}/s"
                  f"{', ' + fmt(info) if info else ''}\n")  # fmt: skip
        out.flush()
        state["last"] = (done, now)

    return on_tty if out.isatty() else as_lines
