"""One mapping → dataclass converter (issue 18): ``sardata.config.from_mapping`` serves source options, recipes,
pipeline steps and the ``build-shards`` options, with one set of conversions and one style of error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from sardata.config import from_mapping
from sardata.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Example:
    size: int
    ratio: float = 0.0
    flag: bool = False
    label: str | None = "x"
    names: tuple[str, ...] = ()
    ints: tuple[int, ...] = ()
    values: list[float] = field(default_factory=list)
    radii: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    inner: Inner | None = None
    inners: list[Inner] = field(default_factory=list)


def test_strings_convert_by_annotation() -> None:
    got = from_mapping(
        Example,
        {"size": "3", "ratio": "0.5", "flag": "yes", "label": "none", "names": "a, b,,c", "ints": "0-2,5:7",
         "values": "1,2", "radii": ""},
        where="test",
    )  # fmt: skip
    assert got == Example(3, 0.5, True, None, ("a", "b", "c"), (0, 1, 2, 5, 7), [1.0, 2.0], None)


def test_yaml_values_keep_their_type_and_fill_sequences() -> None:
    got = from_mapping(Example, {"size": 3, "ratio": 3, "names": ["a"], "ints": 5, "values": [1, 2.5]}, where="t")
    assert got.ratio == 3 and isinstance(got.ratio, int)  # a YAML int stays an int: recipe hashes do not move
    assert got.names == ("a",) and got.ints == (5,) and got.values == [1, 2.5]
    assert from_mapping(Example, {"size": 1, "label": 0}, where="t").label == "0"  # `channel: 0` reads as "0"


def test_nested_dataclasses() -> None:
    got = from_mapping(
        Example, {"size": 1, "inner": {"name": "a", "weight": "2"}, "inners": [{"name": "b"}]}, where="t"
    )
    assert got.inner == Inner("a", 2.0) and got.inners == [Inner("b")]
    with pytest.raises(ConfigError, match=r"t key inners\[0\]: unknown keys \['nme'\], missing keys \['name'\]"):
        from_mapping(Example, {"size": 1, "inners": [{"nme": "b"}]}, where="t")


def test_errors_name_the_key_and_the_context() -> None:
    with pytest.raises(ConfigError, match=r"^recipe\.yaml has no key 'sise'; valid keys: \['extra'"):
        from_mapping(Example, {"size": 1, "sise": 2}, where="recipe.yaml")
    with pytest.raises(ConfigError, match=r"^t: unknown keys \['sise'\], missing keys \['size'\]"):
        from_mapping(Example, {"sise": 2}, where="t")
    with pytest.raises(ConfigError, match="source 'x' has no option 'y'; valid options"):
        from_mapping(Example, {"size": 1, "y": 2}, where="source 'x'", noun="option")
    with pytest.raises(ConfigError, match="t key size: expected int, got 'big'"):
        from_mapping(Example, {"size": "big"}, where="t")
    with pytest.raises(ConfigError, match="t key flag: expected true/false"):
        from_mapping(Example, {"size": 1, "flag": "maybe"}, where="t")
    with pytest.raises(ConfigError, match=r"t key ints: expected integers like 10,20,40 or 0-9, got 'a-b'"):
        from_mapping(Example, {"size": 1, "ints": "a-b"}, where="t")
    with pytest.raises(ConfigError, match="expected a mapping"):
        from_mapping(Example, ["size"], where="t")  # type: ignore[arg-type]


def test_build_shards_command_and_recipe_step_build_the_same_config() -> None:
    """The CLI's options and a recipe's `config:` go through the same converter to equal BuildConfigs."""
    import typer

    from sardata.cli import app
    from sardata.cli.shards import build_config
    from sardata.recipes import parse_step
    from sardata.shards.build import BuildConfig

    cmd = typer.main.get_command(app).commands["build-shards"]
    argv = ["in", "--out", "o", "--targets", "gr", "--shots", "10,20", "--seeds", "0-2", "--long-tail", "5:3:1",
            "--max-count", "64", "--shard-size", "1000000", "--channel", "0", "--gr-radii", "1,3,4,5"]  # fmt: skip
    from_cli = build_config(cmd.make_context("build-shards", argv).params)
    step = parse_step({"step": "build-shards", "ingest_dirs": ["in"], "out": "o",
                       "config": {"targets": ["gr"], "shots": [10, 20], "seeds": "0-2", "long_tail": [5, 3, 1],
                                  "max_shard_samples": 64, "max_shard_bytes": 1000000, "channel": 0,
                                  "gr_radii": [1, 3, 4, 5]}}, "t")  # fmt: skip
    want = BuildConfig(targets=("gr",), shots=(10, 20), seeds=(0, 1, 2), long_tail=(5, 3, 1), max_shard_samples=64,
                       max_shard_bytes=1000000, channel="0", gr_radii=(1, 3, 4, 5))  # fmt: skip
    assert from_cli == step.params.build_config() == want
    # --shots without --seeds means seed 0; no option at all is the dataclass default
    assert build_config(cmd.make_context("build-shards", ["in", "--out", "o", "--shots", "5"]).params).seeds == (0,)
    assert build_config(cmd.make_context("build-shards", ["in", "--out", "o"]).params) == BuildConfig()
