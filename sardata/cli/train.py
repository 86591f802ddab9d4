"""``sardata train``: trainers arrive with the SAR-JEPA and radar issues (#7, #8)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Streaming trainers (SAR-JEPA, RadarPos) - not in this version yet.")
