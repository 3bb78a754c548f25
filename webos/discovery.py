"""Where plugins come from, in this order (the order is part of the contract):

1. ``builtin``: the kernel's built-in plugins (`BUILTIN_PLUGINS`).
2. ``entrypoint:<distribution>``: installed distributions' entry points in the
   group ``webos.plugins``, sorted by distribution and entry-point name.
3. ``modules-dir:<path>``: packages (``name/__init__.py``) and modules
   (``name.py``) in the modules directory, sorted by name.

Discovery only lists candidates; nothing is imported until the kernel loads one.
When two sources offer the same plugin name, the later one is rejected.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "Candidate", "discover"]

ENTRY_POINT_GROUP = "webos.plugins"

#: Plugins that ship inside the kernel package; disable them like any other.
BUILTIN_PLUGINS: dict[str, str] = {"health": "webos.builtins.health"}


@dataclass(frozen=True)
class Candidate:
    """A plugin that could be loaded: its name, where it comes from, how to import it."""

    name: str
    source: str
    version: str | None
    load: Callable[[], object]


def discover(modules_dir: Path | None, *, entry_points: bool = True) -> Iterator[Candidate]:
    """Every plugin candidate, in the documented order."""
    yield from builtin_candidates()
    if entry_points:
        yield from entry_point_candidates()
    if modules_dir is not None:
        yield from modules_dir_candidates(modules_dir)


def builtin_candidates() -> Iterator[Candidate]:
    from . import __version__

    for name, module in BUILTIN_PLUGINS.items():
        yield Candidate(name, "builtin", __version__, _importer(module))


def entry_point_candidates() -> Iterator[Candidate]:
    found = []
    # One scan of the installed distributions; each entry point loads on its own later.
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        version = dist.version if dist is not None else None
        found.append(
            (
                dist_name.lower(),
                ep.name,
                Candidate(ep.name, f"entrypoint:{dist_name}", version, ep.load),
            )
        )
    for _, _, candidate in sorted(found, key=lambda row: (row[0], row[1])):
        yield candidate


def modules_dir_candidates(directory: Path) -> Iterator[Candidate]:
    directory = directory.resolve()
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_dir() and (path / "__init__.py").is_file():
            name = path.name
        elif path.is_file() and path.suffix == ".py":
            name = path.stem
        else:
            continue
        if not name.isidentifier():
            continue
        yield Candidate(
            name, f"modules-dir:{directory}", None, _file_importer(directory, path, name)
        )


def _importer(module: str) -> Callable[[], object]:
    return lambda: importlib.import_module(module)


def _file_importer(directory: Path, path: Path, name: str) -> Callable[[], object]:
    # Each modules directory gets its own parent package, so a local plugin never
    # shadows an installed package of the same name, and two directories never clash.
    parent = "webos_modules_" + hashlib.sha256(str(directory).encode()).hexdigest()[:10]

    def load() -> object:
        qualified = f"{parent}.{name}"
        if qualified in sys.modules:
            return sys.modules[qualified]
        if parent not in sys.modules:
            package = importlib.util.module_from_spec(
                importlib.machinery.ModuleSpec(parent, None, is_package=True)
            )
            package.__path__ = [str(directory)]
            sys.modules[parent] = package
        location = path / "__init__.py" if path.is_dir() else path
        spec = importlib.util.spec_from_file_location(
            qualified,
            location,
            submodule_search_locations=[str(path)] if path.is_dir() else None,
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(qualified, None)
            raise
        return module

    return load
