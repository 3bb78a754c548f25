"""``webos new plugin NAME``: a complete, installable plugin distribution from a template.

The template is the folder ``templates/plugin`` next to this module. Every file
in it ends in ``.tmpl`` (so that no tool mistakes it for the kernel's own code);
a path segment ``__pkg__`` becomes the package name and a leading ``dot-`` a
``.``; in the text, ``{{name}}`` is the distribution name and ``{{pkg}}`` the
package name, which is also the plugin's name and its events' first segment.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import sys
import unicodedata
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .discovery import BUILTIN_PLUGINS, ENTRY_POINT_GROUP
from .loading import KERNEL_PLUGIN

__all__ = ["PluginNames", "new_plugin", "plugin_names"]

TEMPLATE = Path(__file__).parent / "templates" / "plugin"

# Lowercase words of letters and digits joined by single '-' or '_', starting with a letter:
# a distribution name, and (with '-' as '_') a package name and an event name's segment.
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
# Package names a plugin cannot take, and why.
_RESERVED = {
    "webos": "is WebOS's own package",
    "tests": "would clash with the `tests` folder of every project",
}


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin goes by."""

    #: The distribution, as pip and PyPI know it (``acme-notes``): the folder's name too.
    distribution: str
    #: The package (``acme_notes``), which is also the plugin's name and its events' prefix.
    package: str


def plugin_names(name: str) -> PluginNames:
    """Check that ``name`` can name a plugin; raise `ValueError` saying what to use instead."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid plugin name: use lowercase letters and digits, "
            "words joined by single '-' or '_', starting with a letter" + _suggestion(name)
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        raise ValueError(
            f"{name!r} is a Python keyword, so `import {package}` cannot work: "
            f"pick another name, such as '{name}-plugin'"
        )
    if package in sys.stdlib_module_names:
        raise ValueError(
            f"the package {package!r} would shadow the standard library's module "
            f"{package!r}: pick another name, such as '{name}-plugin'"
        )
    if package in _RESERVED:
        raise ValueError(
            f"the package {package!r} {_RESERVED[package]}: pick another name, "
            f"such as '{name}-plugin'"
        )
    if package == KERNEL_PLUGIN or package in BUILTIN_PLUGINS:
        raise ValueError(
            f"{package!r} is the name of a plugin built into WebOS: pick another name, "
            f"such as '{name}-plugin'"
        )
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name=package):
        owner = ep.dist.metadata["Name"] if ep.dist is not None else "an installed distribution"
        raise ValueError(
            f"a plugin named {package!r} is already installed (from {owner}); two plugins "
            "cannot share a name: pick another one"
        )
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin is not None:  # a namespace package holds nothing
        raise ValueError(
            f"a module named {package!r} is already importable ({spec.origin}); the plugin's "
            f"package would clash with it: pick another name, such as '{name}-plugin'"
        )
    return PluginNames(name, package)


def _suggestion(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    guess = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    guess = re.sub(r"^[0-9-]+", "", guess)
    return f" (such as {guess!r})" if guess and _NAME.fullmatch(guess) else " (such as 'my-plugin')"


def new_plugin(name: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the plugin distribution ``name`` into the new folder ``parent / name``.

    Returns the folder and the files written in it (relative paths). Raises
    `ValueError` for a name that cannot be used and `FileExistsError` when the
    folder exists: nothing is ever overwritten. The files appear all at once.
    """
    names = plugin_names(name)
    root = parent / name
    if root.exists() or root.is_symlink():
        raise FileExistsError(
            f"{root} already exists, and `webos new plugin` never overwrites anything: "
            "remove it, or choose another name or --dir"
        )
    parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: an interrupted run leaves no half-made plugin behind.
    staging = parent / f".{name}-{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()  # not tempfile.mkdtemp: its folder is private (0700), this one is shared
    try:
        written = _render(names, staging)
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root, written


def _render(names: PluginNames, into: Path) -> list[Path]:
    values = {"{{name}}": names.distribution, "{{pkg}}": names.package}
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        parts = [
            "." + part.removeprefix("dot-") if part.startswith("dot-") else part
            for part in source.relative_to(TEMPLATE).with_suffix("").parts
        ]
        relative = Path(*(part.replace("__pkg__", names.package) for part in parts))
        text = source.read_text(encoding="utf-8")
        for token, value in values.items():
            text = text.replace(token, value)
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(relative)
    return sorted(written)
