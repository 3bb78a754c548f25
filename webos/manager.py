"""The plugin manager: what one plugin contains, and registering it with pluggy.

A plugin is a module, a package, or any object (an entry point may name one).
For a package the kernel also imports its ``events``, ``hooks`` and ``router``
submodules when they exist. `collect` gathers from all of them:

- event declarations (``@event``),
- listeners: ``@bus.on`` marks and pluggy ``@hookimpl`` functions,
- the FastAPI ``router``.

Everything found becomes one pluggy plugin (a `PluginNamespace`), so ``webos
plugins`` shows one row per plugin however many files it spans.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .bus import LISTEN_MARK, ListenMark
from .events import EventSpec, declared_in, hook_name, matches
from .markers import PROJECT, hookspec

__all__ = ["Collected", "ImplDef", "PluginNamespace", "WebOSPluginManager", "collect"]

SUBMODULES = ("events", "hooks", "router")
_IMPL_MARK = PROJECT + "_impl"


@dataclass(frozen=True)
class ImplDef:
    """One listener or hookimpl found in a plugin, before registration."""

    hook: str
    function: Callable[..., Any]
    opts: dict[str, Any]
    event: str | None = None  # set for @bus.on marks; pluggy impls map back through the hook

    @property
    def pattern(self) -> str | None:
        """The wildcard of a ``@bus.on("auth:*")`` listener, else None."""
        return self.event if self.event is not None and self.event.endswith("*") else None

    def expand(self, events: Iterable[EventSpec]) -> list[ImplDef]:
        """A wildcard listener as one impl per matching event; any other impl as itself."""
        pattern = self.pattern
        if pattern is None:
            return [self]
        opts = {**self.opts, "webos_pattern": pattern}
        return [
            ImplDef(spec.hook, self.function, opts, spec.name)
            for spec in events
            if matches(pattern, spec.name)
        ]

    @property
    def qualname(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))


@dataclass
class Collected:
    """Everything one plugin brings."""

    obj: object
    events: list[EventSpec] = field(default_factory=list)
    impls: list[ImplDef] = field(default_factory=list)
    router: Any = None


def collect(obj: object) -> Collected:
    """Import a plugin's submodules and gather its declarations, listeners and router."""
    namespaces: list[object] = [obj]
    if isinstance(obj, types.ModuleType) and hasattr(obj, "__path__"):
        for sub in SUBMODULES:
            qualified = f"{obj.__name__}.{sub}"
            if importlib.util.find_spec(qualified) is not None:
                namespaces.append(importlib.import_module(qualified))

    owner = obj.__name__ if isinstance(obj, types.ModuleType) else None
    found = Collected(obj)
    seen_events: set[int] = set()
    seen_impls: set[tuple[int, str]] = set()
    for namespace in namespaces:
        for spec in declared_in(namespace):
            if _owned(spec.function, owner) and id(spec.function) not in seen_events:
                seen_events.add(id(spec.function))
                found.events.append(spec)
        for impl in _impls_in(namespace):
            key = (id(impl.function), impl.hook)
            if _owned(impl.function, owner) and key not in seen_impls:
                seen_impls.add(key)
                found.impls.append(impl)
    found.router = _find_router(namespaces)
    return found


def _owned(function: Callable[..., Any], owner: str | None) -> bool:
    # A module that imports a listener or declaration from elsewhere does not own it.
    if owner is None:
        return True
    module = getattr(function, "__module__", None) or ""
    return module == owner or module.startswith(owner + ".")


def _impls_in(namespace: object) -> Iterable[ImplDef]:
    for attr in dir(namespace):
        if attr.startswith("__"):
            continue
        function = getattr(namespace, attr, None)
        if not callable(function) or isinstance(function, type):
            continue
        marks: tuple[ListenMark, ...] = getattr(function, LISTEN_MARK, ())
        for mark in marks:
            opts: dict[str, Any] = {"tryfirst": mark.tryfirst, "trylast": mark.trylast}
            # Kept in pluggy's HookImpl.opts, where the kernel reads them back.
            if mark.priority:
                opts["webos_priority"] = mark.priority
            if mark.timeout is not None:
                opts["webos_timeout"] = mark.timeout
            if mark.delivery != "once":
                opts["webos_delivery"] = mark.delivery
            if mark.is_pattern:
                # Registered once per matching event when the kernel knows them all.
                yield ImplDef("", function, opts, mark.event)
            else:
                yield ImplDef(hook_name(mark.event), function, opts, mark.event)
        pluggy_opts = getattr(function, _IMPL_MARK, None)
        if isinstance(pluggy_opts, dict) and not marks:
            opts = dict(pluggy_opts)
            specname = opts.pop("specname", None)
            yield ImplDef(specname if isinstance(specname, str) else attr, function, opts)


def _find_router(namespaces: list[object]) -> Any:
    for namespace in namespaces:
        candidate = getattr(namespace, "router", None)
        if isinstance(candidate, types.ModuleType):
            candidate = getattr(candidate, "router", None)
        if candidate is not None:
            from fastapi import APIRouter  # only reached when a plugin defines a router

            if not isinstance(candidate, APIRouter):
                raise TypeError(
                    f"`router` in {getattr(namespace, '__name__', namespace)} is a "
                    f"{type(candidate).__name__}, not a fastapi.APIRouter"
                )
            return candidate
    return None


def event_spec_namespace(owner: str, specs: Iterable[EventSpec]) -> type:
    """A class holding one pluggy hookspec per event, for ``pm.add_hookspecs``."""
    attrs: dict[str, Any] = {}
    for spec in specs:
        attrs[spec.hook] = _spec_function(spec)
    return type(f"{owner}_events", (), attrs)


def _spec_function(spec: EventSpec) -> Callable[..., None]:
    # Every event hook has the same signature: listeners name the arguments they want.
    def event_hook(payload: Any, event: Any) -> None:
        raise NotImplementedError  # pragma: no cover - a spec is never called

    event_hook.__name__ = spec.hook
    event_hook.__qualname__ = spec.hook
    event_hook.__doc__ = spec.doc
    return hookspec(event_hook)


class PluginNamespace:
    """What the kernel registers with pluggy for one plugin: its impls, flattened."""

    def __init__(self, name: str, impls: Iterable[ImplDef]) -> None:
        self.__name__ = name
        self._impl_opts: dict[str, dict[str, Any]] = {}
        for index, impl in enumerate(impls):
            attr = f"{getattr(impl.function, '__name__', 'impl')}__{index}"
            setattr(self, attr, impl.function)
            self._impl_opts[attr] = {**impl.opts, "specname": impl.hook}

    def __repr__(self) -> str:
        return f"<plugin {self.__name__}>"

    def impl_opts(self, attr: str) -> dict[str, Any] | None:
        opts = self._impl_opts.get(attr)
        return dict(opts) if opts is not None else None


class WebOSPluginManager(pluggy.PluginManager):
    """pluggy's manager, taught to read `PluginNamespace` and to report changes."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        super().__init__(PROJECT)
        self._on_change = on_change

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        if isinstance(plugin, PluginNamespace):
            return plugin.impl_opts(name)
        return super().parse_hookimpl_opts(plugin, name)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self._changed()

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        try:
            return super().unregister(plugin, name)
        finally:
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def required_params(function: Callable[..., Any]) -> tuple[list[str], list[str]]:
    """(all named parameters, the required ones) of a listener, ignoring *args/**kwargs."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return [], []
    named = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return [p.name for p in named], [p.name for p in named if p.default is p.empty]
