"""The kernel: loads plugins into a fresh pluggy manager and runs the bus.

Loading happens in phases so that one plugin's fault never reaches another:

1. discover candidates and import each (an import error fails that plugin only);
2. add every plugin's event declarations (a conflict fails the later plugin);
3. check every listener against the declared events (a listener for an
   undeclared event, or with parameters its event does not pass, fails its
   plugin); repeat until no plugin fails, since a failed plugin's events go too;
4. register the survivors with pluggy and run ``check_pending``.

Nothing here imports FastAPI, uvicorn or the database: ``webos plugins`` and a
broker worker stay cheap to start.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import pluggy
from loguru import logger

from . import _context, hookspecs
from .bus import Bus, EmitResult, Envelope, Listener, run_listeners
from .discovery import Candidate, discover
from .events import EventSpec, suggest, validate_event_name
from .exceptions import DeclarationError, PluginError, UnknownEventError, WebOSError
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
from .transport import InProcessTransport, Transport

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["KERNEL_PLUGIN", "Kernel", "PluginRecord"]

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


class Kernel:
    """One WebOS host: a plugin manager, the declared events, and a bus.

    ``plugins`` adds plugin objects (modules or any object) by name, after the
    discovered ones, replacing any discovered plugin of the same name.
    ``discover=False`` loads only those (and the kernel's own events);
    ``entry_points=False`` skips installed distributions.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        plugins: Mapping[str, object] | None = None,
        discover: bool = True,
        entry_points: bool = True,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.pm = WebOSPluginManager(on_change=self._listeners_cache_clear)
        self.bus = Bus(self)
        self.records: list[PluginRecord] = []
        self.events: dict[str, EventSpec] = {}
        self.database: Any = None  # set by the web layer (webos.app.create_app)
        self._extra = dict(plugins or {})
        self._discover = discover
        self._entry_points = entry_points
        self._transport: Transport = transport or InProcessTransport()
        self._listeners: dict[str, tuple[Listener, ...]] = {}
        self._loaded = False
        self._running = False

    def __repr__(self) -> str:
        state = "running" if self._running else ("loaded" if self._loaded else "new")
        return f"<Kernel {state}, {len(self.loaded_plugins())} plugins>"

    # -- loading -------------------------------------------------------------

    def load(self) -> Kernel:
        """Discover, import, validate and register every plugin (once)."""
        if self._loaded:
            return self
        self._loaded = True
        kernel_record = PluginRecord(KERNEL_PLUGIN, "builtin", _own_version())
        kernel_record.collected = collect(hookspecs)
        self.records.append(kernel_record)

        by_name: dict[str, PluginRecord] = {KERNEL_PLUGIN: kernel_record}
        for candidate in self._candidates():
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

        failures = [(r.name, r.error or "") for r in self.records if r.status == "failed"]
        if failures and self.settings.strict_plugins:
            raise PluginError(failures)
        return self

    def _candidates(self) -> Iterable[Candidate]:
        if self._discover:
            # An inline plugin replaces a discovered one of the same name (tests use fakes).
            for candidate in discover(self.settings.modules_dir, entry_points=self._entry_points):
                if candidate.name not in self._extra:
                    yield candidate
        for name, obj in self._extra.items():
            yield Candidate(name, "inline", None, _returning(obj))

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
            impls = collected.impls
            try:
                self.pm.register(PluginNamespace(record.name, impls), name=record.name)
            except (pluggy.PluginValidationError, ValueError) as exc:
                self.pm.unregister(name=record.name)
                self._reject(record, str(exc))
                continue
            record.listens = sorted({self._event_of(impl) for impl in impls})
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

    # -- what is loaded ------------------------------------------------------

    def loaded_plugins(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status == "loaded"]

    def plugin(self, name: str) -> PluginRecord | None:
        return next((r for r in self.records if r.name == name and r.status == "loaded"), None)

    def routers(self) -> list[tuple[str, Any]]:
        """(plugin name, APIRouter) for every loaded plugin that has one, in load order."""
        return [
            (r.name, r.collected.router)
            for r in self.loaded_plugins()
            if r.collected is not None and r.collected.router is not None
        ]

    def listeners(self, name: str) -> tuple[Listener, ...]:
        """The listeners of event ``name`` in start order (pluggy's call order)."""
        cached = self._listeners.get(name)
        if cached is not None:
            return cached
        spec = self.events[name]
        caller = getattr(self.pm.hook, spec.hook, None)
        impls = reversed(caller.get_hookimpls()) if caller is not None else ()
        found = []
        for impl in impls:
            names = required_params(impl.function)[0]
            found.append(
                Listener(impl.plugin_name, impl.function, "payload" in names, "event" in names)
            )
        self._listeners[name] = tuple(found)
        return self._listeners[name]

    def _listeners_cache_clear(self) -> None:
        self._listeners.clear()

    def hook_impls(self, hook: str) -> list[Any]:
        """The functions implementing a plain hook, in pluggy's call order."""
        caller = getattr(self.pm.hook, hook, None)
        if caller is None:
            return []
        return [impl.function for impl in reversed(caller.get_hookimpls())]

    async def call_first(self, hook: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook whose impls may be async: first non-None result wins."""
        for function in self.hook_impls(hook):
            names = required_params(function)[0]
            result = function(**{k: v for k, v in kwargs.items() if k in names})
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        return None

    # -- running -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Load plugins if needed, start the transport, emit ``kernel:startup``."""
        self.load()
        if self._running:
            return
        await self._transport.start(self._deliver)
        self._running = True
        plugins = [r.name for r in self.loaded_plugins() if r.name != KERNEL_PLUGIN]
        failed = [r.name for r in self.records if r.status == "failed"]
        logger.info(
            "WebOS kernel started: {} plugin(s) loaded ({}){}",
            len(plugins),
            ", ".join(plugins) or "none",
            f"; FAILED: {', '.join(failed)} (see `webos plugins`)" if failed else "",
        )
        await self.emit("kernel:startup", {"plugins": plugins}, source=KERNEL_PLUGIN)

    async def stop(self) -> None:
        """Emit ``kernel:shutdown`` and stop the transport."""
        if not self._running:
            return
        try:
            await self.emit("kernel:shutdown", {}, source=KERNEL_PLUGIN)
        finally:
            self._running = False
            await self._transport.stop()

    async def __aenter__(self) -> Kernel:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextmanager
    def activate(self) -> Iterator[Kernel]:
        """Make this the kernel that the module-level ``bus`` dispatches through."""
        token = _context.current_kernel.set(self)
        try:
            yield self
        finally:
            _context.current_kernel.reset(token)

    async def emit(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> EmitResult:
        """Validate and emit one event; see `webos.Bus.emit`."""
        spec = self.events.get(name)
        if spec is None:
            validate_event_name(name)
            raise UnknownEventError(name, suggest(name, self.events))
        payload = {} if payload is None else payload
        spec.check_payload(payload)
        if not self._running:
            raise WebOSError(
                f"cannot emit {name!r}: the kernel is not running. Use `async with kernel:` "
                "or serve the app made by create_app(), which starts it."
            )
        envelope = Envelope(name, dict(payload), source=source or _context.current_plugin.get())
        with self.activate():
            return await self._transport.send(envelope)

    async def _deliver(self, envelope: Envelope) -> EmitResult:
        return await run_listeners(envelope, self.listeners(envelope.name))

    # -- listings ------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every plugin failure, one line each (what ``webos check`` prints)."""
        return [f"{r.name} ({r.source}): {r.error}" for r in self.records if r.status == "failed"]


def _returning(obj: object) -> Callable[[], object]:
    return lambda: obj


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
