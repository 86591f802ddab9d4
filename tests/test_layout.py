"""Repository layout rules (``architecture.md`` §1): resource folders hold no Python and every YAML validates."""

from __future__ import annotations

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
    import ast

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
