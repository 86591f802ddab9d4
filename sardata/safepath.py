"""One rule for every name that comes from data: a card, a table, a recipe, a remote ``dataset.json``.

Names read from a manifest are relative POSIX paths inside the dataset (or cache) root: no absolute path, no
drive, no ``..`` segment, no backslash, no NUL, no empty segment. The same check serves local and remote
reads, so a server-chosen or edited name can never make sardata read or write outside its root
(``data-contract.md``, security rules).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sardata.errors import ManifestSchemaError

__all__ = ["check_relpath", "resolve_inside"]


def check_relpath(name: object, what: str = "name", where: str = "") -> str:
    """Return ``name`` if it is a safe relative path, else raise :class:`ManifestSchemaError`.

    ``what`` says which field held it (``"shard path"``, ``"table name"``) and ``where`` which file, so the
    message names both and the fix."""
    src = f"{where}: " if where else ""
    fix = "names in manifests must be relative paths inside the dataset root; fix or rebuild the manifest"
    if not isinstance(name, str) or not name:
        raise ManifestSchemaError(f"{src}{what} {name!r} is not a non-empty string; {fix}")
    if "\x00" in name or "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ManifestSchemaError(f"{src}{what} {name!r} is absolute or has a forbidden character; {fix}")
    parts = PurePosixPath(name).parts
    if any(p in ("..", "") for p in name.split("/")) or not parts:
        raise ManifestSchemaError(f"{src}{what} {name!r} leaves the dataset root or has an empty segment; {fix}")
    return name


def resolve_inside(root: str | os.PathLike[str], name: object, what: str = "name", where: str = "") -> Path:
    """``root / name`` after :func:`check_relpath`, also refusing a symlinked parent that points outside."""
    rel = check_relpath(name, what, where)
    base = Path(root)
    path = base / rel
    real_root, real = os.path.realpath(base), os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        src = f"{where}: " if where else ""
        raise ManifestSchemaError(f"{src}{what} {rel!r} resolves outside {base} (symlink?); remove the link")
    return path
