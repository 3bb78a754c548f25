"""Loading plugins into a kernel, in phases, so that one plugin's fault stays its own.

1. import each candidate (an import error fails that plugin only);
2. add every plugin's event declarations (a conflict fails the later plugin);
3. check every listener against the declared events (a listener for an
   undeclared event, or with parameters its event does not pass, fails its
   plugin); repeat until no plugin fails, since a failed plugin's events go too;
4. register the survivors with pluggy (wildcard listeners once per matching
   event) and run pluggy's ``check_pending``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy
from loguru import logger

from . import hookspecs
from .discovery import Candidate
from .events import EventSpec, suggest
from .exceptions import DeclarationError
from .manager import (
    Collected,
    ImplDef,
    PluginNamespace,
    WebOSPluginManager,
    collect,
    event_spec_namespace,
    required_params,
)
from .settings import Settings

__all__ = ["KERNEL_PLUGIN", "Loader", "PluginRecord"]

KERNEL_PLUGIN = "kernel"
Status = Literal["loaded", "failed", "disabled"]


@dataclass
class PluginRecord:
    """What ``webos plugins`` shows for one plugin."""

    name: str
    source: str
    version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    declares: list[str] = field(default_factory=list)
    listens: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    collected: Collected | None = field(default=None, repr=False)

    def fail(self, error: str) -> None:
        self.status = "failed"
        self.error = error

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "listens": self.listens,
            "declares": self.declares,
            "routes": self.routes,
        }


class Loader:
    """Fills a kernel's records, events and plugin manager from plugin candidates."""

    def __init__(
        self,
        settings: Settings,
        pm: WebOSPluginManager,
        records: list[PluginRecord],
        events: dict[str, EventSpec],
    ) -> None:
        self.settings = settings
        self.pm = pm
        self.records = records
        self.events = events

    def run(self, candidates: Iterable[Candidate]) -> None:
        """Load ``candidates`` after the kernel's own record, in order."""
        kernel_record = PluginRecord(KERNEL_PLUGIN, "builtin", _own_version())
        kernel_record.collected = collect(hookspecs)
        self.records.append(kernel_record)

        by_name: dict[str, PluginRecord] = {KERNEL_PLUGIN: kernel_record}
        for candidate in candidates:
            record = PluginRecord(candidate.name, candidate.source, candidate.version)
            self.records.append(record)
            if candidate.name in by_name:
                first = by_name[candidate.name]
                record.fail(
                    f"duplicate plugin name {candidate.name!r}: already provided by "
                    f"{first.source}; this one from {candidate.source} is ignored"
                )
                logger.error("Plugin {}: {}", candidate.name, record.error)
                continue
            by_name[candidate.name] = record
            reason = self.settings.blocks(candidate.name)
            if reason is not None:
                record.status, record.error = "disabled", reason
                self.pm.set_blocked(candidate.name)
                continue
            self._import(candidate, record)

        self._declare_events()
        self._check_listeners()
        self._register()

    def _import(self, candidate: Candidate, record: PluginRecord) -> None:
        try:
            obj = candidate.load()
            record.collected = collect(obj)
            if record.version is None:
                record.version = getattr(obj, "__version__", None)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the kernel
            record.fail(f"import failed: {type(exc).__name__}: {exc}")
            logger.opt(exception=exc).error(
                "Plugin {} from {} failed to load and is skipped "
                "(disable it with WEBOS_DISABLE_PLUGINS={}): {}",
                candidate.name,
                candidate.source,
                candidate.name,
                record.error,
            )

    def _live(self) -> list[tuple[PluginRecord, Collected]]:
        return [
            (r, r.collected)
            for r in self.records
            if r.status == "loaded" and r.collected is not None
        ]

    def _declare_events(self) -> None:
        hooks: dict[str, str] = {}
        for record, collected in self._live():
            mine: dict[str, str] = {}
            try:
                for spec in collected.events:
                    owner = self.events.get(spec.name)
                    if owner is not None or spec.name in mine.values():
                        by = owner.declared_by if owner is not None else record.name
                        raise DeclarationError(
                            f"event {spec.name!r} is already declared by plugin "
                            f"{by!r}; an event is declared once"
                        )
                    other = hooks.get(spec.hook) or mine.get(spec.hook)
                    if other is not None:
                        raise DeclarationError(
                            f"events {other!r} and {spec.name!r} both map to the hook "
                            f"{spec.hook!r}; rename one of them"
                        )
                    mine[spec.hook] = spec.name
                    spec.payload_schema_check()
            except DeclarationError as exc:
                self._reject(record, str(exc))
                continue
            for spec in collected.events:
                self.events[spec.name] = spec.with_owner(record.name)
            hooks.update(mine)
            record.declares = [spec.name for spec in collected.events]

    def _check_listeners(self) -> None:
        # A rejected plugin takes its events with it, which may strand other listeners.
        while True:
            specs = self._hook_specs()
            rejected = False
            for record, collected in self._live():
                problems = [p for impl in collected.impls if (p := self._problem(impl, specs))]
                if problems:
                    self._reject(record, "; ".join(problems))
                    rejected = True
            if not rejected:
                return

    def _hook_specs(self) -> dict[str, tuple[str | None, list[str]]]:
        """Hook name -> (event name or None, parameter names) for every declared hook."""
        specs: dict[str, tuple[str | None, list[str]]] = {}
        for spec in self.events.values():
            specs[spec.hook] = (spec.name, ["payload", "event"])
        for _, collected in self._live():
            for name, function in _plain_hookspecs(collected.obj):
                specs[name] = (None, required_params(function)[0])
        return specs

    def _problem(
        self, impl: ImplDef, specs: Mapping[str, tuple[str | None, list[str]]]
    ) -> str | None:
        where = f"listener {impl.qualname}"
        if impl.pattern is not None:
            # A wildcard matching nothing (yet) is fine: it listens to what is declared.
            specs = {"": (impl.pattern, ["payload", "event"])}
        if impl.hook not in specs:
            wanted = impl.event or impl.hook
            names = list(self.events) if impl.event else list(specs)
            close = suggest(wanted, names)
            if close is None and impl.event is None:
                close = suggest(wanted.replace("_", ":"), list(self.events))
            hint = f"; did you mean {close!r}?" if close else "; run `webos events` to list them"
            kind = "event" if impl.event else "hook"
            absent = [r.name for r in self.records if r.status != "loaded"]
            if absent:
                # The declaring plugin may be one that is switched off or broken.
                hint += f" (not loaded, so declaring nothing: {', '.join(absent)})"
            return f"{where} listens to {kind} {wanted!r}, which no loaded plugin declares{hint}"
        event_name, params = specs[impl.hook]
        label = f"event {event_name!r}" if event_name else f"hook {impl.hook!r}"
        if event_name and (impl.opts.get("wrapper") or impl.opts.get("hookwrapper")):
            return f"{where} is a wrapper; wrappers are not supported on {label}"
        _, required = required_params(impl.function)
        unknown = [name for name in required if name not in params]
        if unknown:
            return (
                f"{where} of {label} takes {', '.join(map(repr, unknown))}, but its "
                f"listeners receive only {' and '.join(map(repr, params))}"
            )
        return None

    def _reject(self, record: PluginRecord, error: str) -> None:
        record.fail(error)
        logger.error(
            "Plugin {} rejected: {} (disable it with WEBOS_DISABLE_PLUGINS={})",
            record.name,
            error,
            record.name,
        )
        for name in record.declares:
            self.events.pop(name, None)
        record.declares = []

    def _register(self) -> None:
        live = self._live()
        for record, collected in live:
            if record.declares:
                specs = [self.events[name] for name in record.declares]
                self.pm.add_hookspecs(event_spec_namespace(record.name, specs))
            for _, function in _plain_hookspecs(collected.obj):
                self.pm.add_hookspecs(_single(function))
        for record, collected in live:
            impls = [one for impl in collected.impls for one in impl.expand(self.events.values())]
            try:
                self.pm.register(PluginNamespace(record.name, impls), name=record.name)
            except (pluggy.PluginValidationError, ValueError) as exc:
                self.pm.unregister(name=record.name)
                self._reject(record, str(exc))
                continue
            record.listens = sorted({self._event_of(impl) for impl in collected.impls})
            router = collected.router
            if router is not None:
                record.routes = _routes(router)
        self.pm.check_pending()

    def _event_of(self, impl: ImplDef) -> str:
        if impl.event:
            return impl.event
        for spec in self.events.values():
            if spec.hook == impl.hook:
                return spec.name
        return impl.hook


def _plain_hookspecs(obj: object) -> list[tuple[str, Any]]:
    """Non-event hookspecs (``@hookspec``) a plugin module declares, e.g. the kernel's."""
    found = []
    for attr in dir(obj):
        function = getattr(obj, attr, None)
        if callable(function) and isinstance(getattr(function, "webos_spec", None), dict):
            found.append((attr, function))
    return found


def _single(function: Any) -> type:
    return type(f"{function.__name__}_spec", (), {function.__name__: function})


def _routes(router: Any) -> list[str]:
    routes = []
    for route in getattr(router, "routes", ()):
        methods = sorted(getattr(route, "methods", None) or ())
        path = getattr(route, "path", "")
        routes.append(f"{','.join(methods)} {path}".strip())
    return routes


def _own_version() -> str:
    from . import __version__

    return __version__
