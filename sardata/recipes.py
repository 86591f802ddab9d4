"""Load and validate the YAML under ``models/``, ``pipelines/`` and ``manifests/`` into frozen dataclasses, and run
pipeline recipes.

Every YAML file carries ``kind:``; :data:`KINDS` maps it to the dataclass that validates it, through
:func:`sardata.config.from_mapping`. Unknown or missing keys are a :class:`~sardata.errors.ConfigError` naming the
file. Nothing at run time needs these files: they are documentation and runnable configuration
(``architecture.md`` §1).

A ``kind: pipeline`` recipe is data: each step is a mapping whose ``step:`` picks a dataclass of :data:`STEPS`
(its fields are the step's keys) whose ``run`` calls a library function, so running a recipe needs no CLI.
Command-line steps (``args:``) still run through ``sardata run``, with a DeprecationWarning.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sardata.config import apply_overrides, from_mapping
from sardata.errors import ConfigError


@dataclass(frozen=True)
class SourceCard:
    """``manifests/sources/<id>.yaml``: what a source is, where it comes from, what ingest should find."""

    kind: str
    id: str
    name: str
    licence: str
    citation: str
    homepage: str
    sensor: str
    band: str
    resolution_m: float | None
    polarisations: list[str]
    layout: str
    classes: list[str]
    expected: dict[str, Any]
    splits: str
    notes: str = ""
    synthetic: bool = False  # data described/written for this card is simulated (fixture generators, simulators)

    def __post_init__(self) -> None:
        from sardata.sources import get_source

        cls = get_source(self.id)
        if list(cls.classes) != list(self.classes):
            raise ConfigError(
                f"source card {self.id}: classes {self.classes} differ from the adapter's {list(cls.classes)}"
            )


@dataclass(frozen=True)
class PipelineRecipe:
    """``pipelines/<name>.yaml``: an ordered list of steps, run by :func:`run_pipeline` (``sardata run``).

    ``steps`` holds mappings in the file and :class:`PipelineStep` objects once loaded: each is parsed (and its
    parameters validated) here, so a bad step fails when the recipe is read, not halfway through a run."""

    kind: str
    name: str
    description: str
    steps: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError(f"pipeline {self.name}: no steps")
        parsed = [s if isinstance(s, PipelineStep) else parse_step(s, f"step {i}") for i, s in enumerate(self.steps, 1)]
        object.__setattr__(self, "steps", parsed)


@dataclass(frozen=True)
class ModelPreset:
    """``models/<name>.yaml``: a registry name, the constructor overrides it documents, and a short model card."""

    kind: str
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)


#: ``kind:`` → dataclass (or "module:Class", imported on use so reading a card never imports torch)
KINDS: dict[str, type | str] = {
    "source-card": SourceCard,
    "pipeline": PipelineRecipe,
    "model-preset": ModelPreset,
    "pretrain": "sardata.train.pretrain:PretrainConfig",
    "finetune": "sardata.train.finetune:FinetuneConfig",
    "crossmode": "sardata.train.crossmode:CrossModeConfig",
}


def _kind_class(kind: str) -> type:
    target = KINDS[kind]
    if isinstance(target, str):
        import importlib

        module, name = target.split(":")
        target = getattr(importlib.import_module(module), name)
    return target


def load_yaml(path: str | os.PathLike[str], overrides: list[str] | Mapping[str, Any] | None = None) -> Any:
    """Parse a resource YAML into its dataclass (chosen by ``kind``), after applying overrides: ``key=value``
    strings (values parsed as YAML; ``a.b=v`` sets key ``b`` of mapping ``a``) or a mapping of such keys to
    values (a pipeline step's ``overrides:``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML ({exc})") from exc
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise ConfigError(f"{path}: top-level `kind:` must be one of {sorted(KINDS)}")
    apply_overrides(data, overrides)
    cls = _kind_class(data["kind"])
    try:
        return from_mapping(cls, data, where=cls.__name__)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


# ----------------------------------------------------------------------------------------------- pipeline steps
Progress = Callable[..., None]


@dataclass(frozen=True)
class SimSarStep:
    """``sim-sar``: synthetic target chips as MSTAR raw Phoenix files + an MSTAR-10 JPEG folder
    (:func:`sardata.sim.sar_targets.write_demo_dataset`)."""

    out: str
    per_class: int = 24
    seed: int = 0
    size: int = 64
    nonsquare: bool = True
    calls: ClassVar[str] = "sardata.sim.sar_targets:write_demo_dataset"

    def run(self, progress: Progress | None = None) -> dict[str, int]:
        from sardata.sim.sar_targets import write_demo_dataset

        return write_demo_dataset(**dataclasses.asdict(self))


@dataclass(frozen=True)
class SimPdwStep:
    """``sim-pdw``: simulated multifunction-radar PDW trains as HDF5, ``kind: pool | downstream``
    (:func:`sardata.sim.pdw.write_dataset`)."""

    out: str
    kind: str = "pool"
    global_seed: int = 0
    n_types: int = 300
    per_type_mode: int = 8
    types_per_file: int = 10
    confusable: bool = True
    test_per_class: bool = False
    permute_seed: int | None = None
    n_pulses: int = 576
    compression: str | None = None
    workers: int = 2
    calls: ClassVar[str] = "sardata.sim.pdw:write_dataset"

    def run(self, progress: Progress | None = None) -> dict[str, Any]:
        from sardata.sim.pdw import write_dataset

        params = dataclasses.asdict(self)
        return write_dataset(params.pop("out"), **params, progress=progress)


@dataclass(frozen=True)
class SimRadcharStep:
    """``sim-radchar``: synthetic RadChar-format frames in one HDF5 file ``out``
    (:func:`sardata.sim.radchar_fixture.frames` + ``write_radchar``)."""

    out: str
    frames: int = 4000
    seed: int = 0

    def run(self, progress: Progress | None = None) -> Path:
        from sardata.sim.radchar_fixture import frames, write_radchar

        out = Path(self.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_radchar(out, frames(self.frames, self.seed))
        return out


@dataclass(frozen=True)
class IngestStep:
    """``ingest``: a source in its original layout → sample store + manifest (:func:`sardata.ingest.ingest`);
    ``options`` are the source's options (``sardata sources list``), checked when the recipe is read."""

    source: str
    root: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    max_errors: int | None = None
    overwrite: bool = False
    engine: str = "local"
    retry_rejected: bool = False
    calls: ClassVar[str] = "sardata.ingest:ingest"

    def __post_init__(self) -> None:
        from sardata.sources import get_source

        get_source(self.source).parse_options(self.options)

    def run(self, progress: Progress | None = None) -> Any:
        from sardata.ingest import ingest

        params = dataclasses.asdict(self)
        return ingest(params.pop("source"), params.pop("root"), params.pop("out"), **params, progress=progress)


@dataclass(frozen=True)
class BuildShardsStep:
    """``build-shards``: ingest outputs → WebDataset shards + Parquet index
    (:func:`sardata.shards.build.build_shards`); ``config`` holds :class:`~sardata.shards.build.BuildConfig`
    fields (``shots: 10,20,40``, ``seeds: 0-4``), converted as ``sardata build-shards`` converts its options."""

    ingest_dirs: list[str]
    out: str
    config: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    overwrite: bool = False
    engine: str = "local"
    calls: ClassVar[str] = "sardata.shards.build:build_shards"

    def __post_init__(self) -> None:
        self.build_config()

    def build_config(self) -> Any:
        """The step's ``config`` as a ``BuildConfig`` (the same conversion as ``sardata build-shards``)."""
        from sardata.shards.build import BuildConfig

        return from_mapping(BuildConfig, self.config, where="build-shards config")

    def run(self, progress: Progress | None = None) -> Any:
        from sardata.shards.build import build_shards

        return build_shards(self.ingest_dirs, self.out, self.build_config(), workers=self.workers,
                            overwrite=self.overwrite, progress=progress, engine=self.engine)  # fmt: skip


@dataclass(frozen=True)
class VerifyStep:
    """``verify``: every table and shard sha256 of a built dataset (:func:`sardata.dataset.verify.verify`);
    a failed check stops the pipeline."""

    root: str
    samples: bool = False
    base_url: str | None = None
    calls: ClassVar[str] = "sardata.dataset.verify:verify"

    def run(self, progress: Progress | None = None) -> Any:
        from sardata.dataset.verify import verify
        from sardata.errors import ShardIntegrityError

        report = verify(self.root, samples=self.samples, base_url=self.base_url)
        if not report.ok:
            raise ShardIntegrityError(
                f"{self.root}: {len(report.problems)} problems: " + "; ".join(report.problems[:5])
            )
        return report


@dataclass(frozen=True)
class ShowStep:
    """``show``: the card summary and split × class table of a dataset
    (:func:`sardata.dataset.inspect.summary_table`)."""

    root: str

    def run(self, progress: Progress | None = None) -> str:
        from sardata.dataset.inspect import summary_table

        return summary_table(self.root)


@dataclass(frozen=True)
class TrainStep:
    """``train``: a trainer recipe with ``overrides`` (``{epochs: 30, model_overrides.pe: index}``)
    into ``out``; the recipe's kind picks :func:`~sardata.train.pretrain.pretrain` (``resume``),
    :func:`~sardata.train.finetune.run_fewshot` or :func:`~sardata.train.crossmode.run_crossmode` (``checkpoint``)."""

    recipe: str
    out: str
    overrides: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # a pretraining checkpoint for a fine-tune (the recipe's `checkpoint:`)
    resume: bool = True  # pretraining: continue from OUT/checkpoints/last.pt when it exists

    def run(self, progress: Progress | None = None) -> Any:
        cfg = load_yaml(self.recipe, {**self.overrides, **({"checkpoint": self.checkpoint} if self.checkpoint else {})})
        if cfg.kind == "pretrain":
            from sardata.train.pretrain import pretrain

            return pretrain(cfg, self.out, resume=self.resume, progress=progress)
        if cfg.kind == "crossmode":
            from sardata.train.crossmode import run_crossmode

            return run_crossmode(cfg, self.out, progress=progress)
        from sardata.train.finetune import run_fewshot

        return run_fewshot(cfg, self.out, progress=progress)


#: ``step:`` → the dataclass holding its keys; its ``run`` calls the library.
STEPS: dict[str, type] = {
    "sim-sar": SimSarStep,
    "sim-pdw": SimPdwStep,
    "sim-radchar": SimRadcharStep,
    "ingest": IngestStep,
    "build-shards": BuildShardsStep,
    "verify": VerifyStep,
    "show": ShowStep,
    "train": TrainStep,
}


@dataclass(frozen=True)
class ArgvStep:
    """Deprecated step form: ``{name: ..., args: [sardata command-line arguments]}``; runs only through the CLI."""

    name: str
    args: list[str]


@dataclass(frozen=True)
class PipelineStep:
    """One loaded step: its ``name``, its ``step`` kind (a key of :data:`STEPS`, or ``argv``) and its validated
    parameters (a step dataclass, or the :class:`ArgvStep`)."""

    name: str
    step: str
    params: Any

    def run(self, progress: Progress | None = None, cli: Callable[..., Any] | None = None) -> Any:
        """Run the step; an ``argv`` step needs ``cli`` (``sardata.cli.app``, passed in by ``sardata run``)."""
        if self.step != "argv":
            return self.params.run(progress)
        if cli is None:
            raise ConfigError(f"step {self.name!r} is a command line (`args:`); write it as a `step:` mapping")
        warnings.warn(f"pipeline step {self.name!r}: `args:` steps are deprecated; write a `step:` mapping "
                      f"(one of {sorted(STEPS)})", DeprecationWarning, stacklevel=2)  # fmt: skip
        try:
            cli([str(a) for a in self.params.args], standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise ConfigError(f"step {self.name!r} exited with {exc.code}") from exc
        return None


def parse_step(raw: Any, where: str) -> PipelineStep:
    """One step mapping of a recipe → :class:`PipelineStep`, its keys checked against the step's dataclass."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with `step:`, got {raw!r}")
    if "args" in raw and "step" not in raw:
        argv = from_mapping(ArgvStep, raw, where=where)
        return PipelineStep(argv.name, "argv", argv)
    params = dict(raw)
    kind, name = params.pop("step", None), params.pop("name", None)
    if kind not in STEPS:
        raise ConfigError(f"{where}: `step:` must be one of {sorted(STEPS)}, got {kind!r}")
    where = f"{where} ({name or kind})"
    try:
        return PipelineStep(str(name or kind), kind, from_mapping(STEPS[kind], params, where=where))
    except ConfigError as exc:  # a step's own check (source options, BuildConfig) does not know `where`
        raise ConfigError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from exc


def run_pipeline(recipe: str | os.PathLike[str] | PipelineRecipe, *, cli: Callable[..., Any] | None = None,
                 progress: Callable[[str], Progress | None] | None = None,
                 echo: Callable[[str], None] | None = None) -> list[str]:  # fmt: skip
    """Run every step of a pipeline recipe in order; return the step names run.

    ``progress(step_name)`` may return a callback for the step's progress; ``echo`` receives a line per step
    (and the text a ``show`` step returns). ``cli`` is needed only by deprecated ``args:`` steps."""
    if not isinstance(recipe, PipelineRecipe):
        path, recipe = recipe, load_yaml(recipe)
        if not isinstance(recipe, PipelineRecipe):
            raise ConfigError(f"{path}: kind {recipe.kind!r} is not a pipeline")
    done = []
    for step in recipe.steps:
        result = step.run(progress(step.name) if progress else None, cli=cli)
        if echo:
            echo(f"step {step.name}: done" + (f"\n{result}" if isinstance(result, str) else ""))
        done.append(step.name)
    return done
