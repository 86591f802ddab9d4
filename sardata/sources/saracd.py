"""SAR-ACD aircraft chips, ``images/<Class>/<NNN>.jpg`` (``sources.md`` §7).

Class from the parent folder; no official split (samples go to ``pool``; ``build-shards`` splits them).
``-o classes=5class`` selects the SAR-JEPA 5-class setting (drops ``A320321``); files of unselected classes are
``skipped`` rows, and label ids are positions in the selected list.
"""

from __future__ import annotations

from dataclasses import dataclass

from sardata.errors import ConfigError, RejectFile, SkipFile
from sardata.sources._base import FileUnit, Sample, Source
from sardata.sources._image import decode_image

CLASSES = ("A220", "A320321", "A330", "ARJ21", "Boeing737", "Boeing787")
PRESETS = {"all": CLASSES, "5class": ("A220", "A330", "ARJ21", "Boeing737", "Boeing787")}


@dataclass(frozen=True)
class SARACDOptions:
    #: preset name (``all``, ``5class``) or an explicit comma list of class names
    classes: tuple[str, ...] = ("all",)

    def __post_init__(self) -> None:
        resolve_classes(self.classes)


def resolve_classes(spec: tuple[str, ...]) -> tuple[str, ...]:
    if len(spec) == 1 and spec[0] in PRESETS:
        return PRESETS[spec[0]]
    lookup = {c.lower(): c for c in CLASSES}
    bad = [c for c in spec if c.lower() not in lookup]
    if bad:
        raise ConfigError(f"sar-acd: unknown classes {bad}; choose from {list(CLASSES)} or a preset {list(PRESETS)}")
    chosen = {lookup[c.lower()] for c in spec}
    return tuple(c for c in CLASSES if c in chosen)


class SARACD(Source):
    id = "sar-acd"
    version = "1.0.0"
    description = "SAR-ACD civil aircraft chips (Gaofen-3, 1 m, HH), images/<class>/*.jpg"
    classes = CLASSES
    Options = SARACDOptions

    def class_names(self) -> list[str]:
        return list(resolve_classes(self.options.classes))

    def read(self, unit: FileUnit) -> list[Sample]:
        folder = unit.parts[-2] if len(unit.parts) >= 2 else ""
        lookup = {c.lower(): c for c in CLASSES}
        label = lookup.get(folder.lower())
        if label is None:
            raise RejectFile(
                "unknown_class",
                f"folder {folder or '(root)'!r} is not a SAR-ACD class; expected one of {list(CLASSES)}",
            )
        if label not in self.class_names():
            raise SkipFile("class_not_selected", f"{label} is not in the selected classes {self.class_names()}")
        img, meta = decode_image(unit.data(), expect=("jpeg", "png"))
        return [
            Sample(
                arrays={"img": img},
                split="pool",
                label_name=label,
                columns={"radiometry": "display8", "scale": "uint8", "sensor": "GF-3", "band": "C", "pol": "HH"},
                meta=meta,
            )
        ]
