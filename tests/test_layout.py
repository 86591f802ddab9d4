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
