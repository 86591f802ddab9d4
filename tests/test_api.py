"""The top-level API (issue 18): the names a user needs import from ``sardata``, lazily, so ``import sardata``
stays light and the package imports no submodule."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sardata

NAMES = ("ingest", "build_shards", "BuildConfig", "ShardDataset", "ShardIterable", "ShardCache", "create_model",
         "list_models")  # fmt: skip


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_sardata_is_light() -> None:
    loaded = _python(
        "import sys, sardata; print(sorted(m for m in ('torch', 'pyarrow', 'pandas') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_public_names_are_the_library_objects() -> None:
    from sardata.ingest import ingest
    from sardata.models import create_model, list_models
    from sardata.shards.build import BuildConfig, build_shards
    from sardata.stream.dataset import ShardDataset, ShardIterable
    from sardata.stream.remote import ShardCache

    want = (ingest, build_shards, BuildConfig, ShardDataset, ShardIterable, ShardCache, create_model, list_models)
    assert tuple(getattr(sardata, n) for n in NAMES) == want
    assert set(NAMES) <= set(sardata.__all__) and set(NAMES) <= set(dir(sardata))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sardata.nothing  # noqa: B018


def test_ingest_is_the_function_whatever_was_imported_before() -> None:
    """Loading the subpackage ``sardata.ingest`` first must not make ``from sardata import ingest`` a module."""
    code = (
        "import sardata.ingest\nfrom sardata.ingest import load_ingest\nfrom sardata import ingest\n"
        "print(callable(ingest), type(ingest).__name__, load_ingest.__name__)"
    )
    assert _python(code) == "True function load_ingest"
