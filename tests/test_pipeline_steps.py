"""Pipelines as data (issue 18): steps map to library functions through ``sardata.recipes.STEPS``, are checked
when the recipe is read, and need no CLI; command-line (``args:``) steps still run through ``sardata run``."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from sardata.errors import ConfigError
from sardata.recipes import STEPS, PipelineRecipe, load_yaml, run_pipeline

PIPELINES = sorted(p for p in (REPO / "pipelines").glob("*.yaml") if "kind: pipeline" in p.read_text())


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_pipeline_recipe_is_data(path: Path) -> None:
    recipe = load_yaml(path)
    assert isinstance(recipe, PipelineRecipe)
    assert all(step.step in STEPS for step in recipe.steps), "convert `args:` steps to `step:` mappings"


@pytest.mark.parametrize("kind", sorted(k for k, cls in STEPS.items() if hasattr(cls, "calls")))
def test_step_defaults_are_the_library_defaults(kind: str) -> None:
    """A step's fields are its function's arguments: same names, same defaults (no drift between the two)."""
    cls = STEPS[kind]
    module, name = cls.calls.split(":")
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING and f.name in params:
            assert params[f.name].default == f.default, f"{kind}.{f.name}"


def _write(path: Path, steps: str) -> Path:
    path.write_text(f"kind: pipeline\nname: t\ndescription: x\nsteps:\n{steps}")
    return path


def test_bad_steps_fail_when_the_recipe_is_read(tmp_path: Path) -> None:
    cases = {
        "  - {step: ingest, source: mstar, root: r, out: o, wokers: 2}\n": r"bad0\.yaml: step 1 \(ingest\) has no key 'wokers'",
        "  - {step: ingest, source: msar, root: r, out: o, options: {classes: x}}\n": r"step 1 \(ingest\): source 'msar' has no option 'classes'",
        "  - {name: b, step: build-shards, ingest_dirs: [i], out: o, config: {shots: 5, seedz: 1}}\n": r"step 1 \(b\): build-shards config has no key 'seedz'",
        "  - {step: build-shards, ingest_dirs: [i], out: o, config: {seeds: a-b}}\n": r"seeds: expected integers",
        "  - {step: transmogrify, out: o}\n": r"`step:` must be one of \[",
    }  # fmt: skip
    for i, (steps, match) in enumerate(cases.items()):
        with pytest.raises(ConfigError, match=match):
            load_yaml(_write(tmp_path / f"bad{i}.yaml", steps))


def test_argv_steps_still_run_through_the_cli_with_a_warning(tmp_path: Path) -> None:
    from sardata.cli import app
    from sardata.cli.run import run_pipeline as run_with_cli

    recipe = _write(
        tmp_path / "old.yaml", f"  - name: sim\n    args: [sim, sar, --out, '{tmp_path / 'd'}', --per-class, 1]\n"
    )
    with pytest.raises(ConfigError, match="is a command line"):
        run_pipeline(recipe)  # no CLI at hand: said so, nothing run
    with pytest.warns(DeprecationWarning, match="`args:` steps are deprecated"):
        assert run_with_cli(recipe, app) == ["sim"]
    assert len(list((tmp_path / "d" / "jpeg").rglob("*.jpeg"))) == 8


def test_sardata_run_prints_each_step(tmp_path: Path) -> None:
    recipe = _write(
        tmp_path / "r.yaml",
        f"  - {{step: sim-sar, out: '{tmp_path / 'd'}', per_class: 1}}\n"
        f"  - {{name: ingest-jpeg, step: ingest, source: mstar, root: '{tmp_path / 'd' / 'jpeg'}', out: '{tmp_path / 'i'}'}}\n"
        f"  - {{step: show, root: '{tmp_path / 'i'}'}}\n",
    )  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "sardata.cli", "run", str(recipe)], capture_output=True, text=True,
                         env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "step sim-sar: done" in out.stdout and "step ingest-jpeg: done" in out.stdout
    assert "step show: done" in out.stdout and "t72" in out.stdout
