"""The CLI's surface is a contract: every command and every option it lists in ``--help`` stays, or a
deprecation alias remains (issue 18). ``tests/golden/cli_options.json`` is the recorded surface; a new option
or command is fine (refresh with ``SARDATA_UPDATE_GOLDEN=1``), a vanished one fails and is named."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from conftest import REPO

from sardata.cli import app

GOLDEN = REPO / "tests" / "golden" / "cli_options.json"


def surface() -> dict[str, list[str]]:
    """Command path -> sorted option strings (``--out``, ``-O``, …) and argument names of every command."""
    root = typer.main.get_command(app)
    out: dict[str, list[str]] = {}

    def walk(cmd: Any, path: str) -> None:
        names = []
        for p in cmd.params:
            is_option = getattr(p, "param_type_name", "") == "option"
            names += [*p.opts, *p.secondary_opts] if is_option else [f"<{p.name}>"]
        out[path] = sorted(names)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return out


def test_every_recorded_command_and_option_remains() -> None:
    now = surface()
    if os.environ.get("SARDATA_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    lost = [f"{cmd or 'sardata'}: {opt}" for cmd, opts in want.items() for opt in opts if opt not in now.get(cmd, [])]
    lost += [f"command {cmd!r} is gone" for cmd in want if cmd not in now]
    assert not lost, "CLI surface shrank (keep a deprecation alias): " + "; ".join(lost)
