"""Repository layout rules (``architecture.md`` §1): resource folders hold no Python and every YAML validates."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

from sardata.recipes import PipelineRecipe, SourceCard, load_yaml

RESOURCE_DIRS = ("models", "pipelines", "manifests")


@pytest.mark.parametrize("folder", RESOURCE_DIRS)
def test_resource_folder_has_readme_and_no_python(folder: str) -> None:
    root = REPO / folder
    assert (root / "README.md").is_file()
    python = [p for p in root.rglob("*") if p.suffix in (".py", ".pyc") or p.name == "__init__.py"]
    assert python == []


YAMLS = sorted(p for d in RESOURCE_DIRS for p in (REPO / d).rglob("*.y*ml"))


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_validates(path: Path) -> None:
    obj = load_yaml(path)
    if path.parts[-2] == "sources":
        assert isinstance(obj, SourceCard) and obj.id == path.stem
    if "pipelines" in path.parts:  # a command pipeline or a trainer recipe
        assert isinstance(obj, PipelineRecipe) or obj.kind in ("pretrain", "finetune", "crossmode")


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    from sardata.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: pipeline\nname: x\nstepz: []\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown keys \['stepz'\].*missing keys \['description'\]"):
        load_yaml(bad)


def test_source_cards_exist_for_every_registered_source() -> None:
    from sardata.sources import list_sources

    for cls in list_sources():
        assert (REPO / "manifests" / "sources" / f"{cls.id}.yaml").is_file(), cls.id


def _cross_package_private_imports() -> list[str]:
    """``from sardata.x import _name`` (or from a private module ``sardata.pkg._mod``) in a module of another
    package: a private name used outside its package."""
    root = REPO / "sardata"
    bad = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sardata")):
                continue
            parts = node.module.split(".")
            target = REPO.joinpath(*parts)
            package = target if (target / "__init__.py").is_file() else target.parent
            if package == path.parent:
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in parts[1:])
            for alias in node.names:
                if private_module or (alias.name.startswith("_") and not alias.name.startswith("__")):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {node.module}.{alias.name}")
    return bad


def test_no_private_name_is_imported_across_packages() -> None:
    assert _cross_package_private_imports() == []


def test_readme_source_table_covers_the_registry() -> None:
    from sardata.sources import list_sources

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Sources") :]
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert {cls.id for cls in list_sources()} <= rows


def test_models_list_names_every_registered_model() -> None:
    from typer.testing import CliRunner

    from sardata.cli import app
    from sardata.models import list_models

    out = CliRunner().invoke(app, ["models", "list", "--tiny"]).output
    assert all(name in out for name in list_models())
    assert "test_radarpos" not in CliRunner().invoke(app, ["models", "list"]).output


def _functions_and_modules() -> tuple[list[str], list[str]]:
    """Modules over 400 lines and functions over 60 (def line to last line, docstring included) in sardata/."""
    big_modules, long_functions = [], []
    for path in sorted((REPO / "sardata").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        if text.count("\n") > 400:
            big_modules.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                long_functions.append(f"{rel}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    return big_modules, long_functions


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    big_modules, long_functions = _functions_and_modules()
    assert big_modules == [] and long_functions == []


def _package_imports() -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> files, over every import of ``sardata.*`` (lazy ones too)."""
    edges: dict[tuple[str, str], set[str]] = {}
    for path in sorted((REPO / "sardata").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        src = parts[1] if len(parts) > 2 else parts[-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                bits = name.split(".")
                if bits[0] == "sardata" and len(bits) > 1 and bits[1] != src:
                    edges.setdefault((src, bits[1]), set()).add(str(path.relative_to(REPO)))
    return edges


def test_no_two_packages_import_each_other() -> None:
    """Data flows one way (CONTRIBUTING.md): a package pair importing each other is a circle in the house."""
    edges = _package_imports()
    mutual = sorted(f"{a} <-> {b}: {sorted(edges[a, b])} / {sorted(edges[b, a])}" for a, b in edges if (b, a) in edges)
    assert mutual == []
