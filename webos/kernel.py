"""The kernel: one plugin manager, the declared events, and the bus that runs them.

`webos.loading` fills it from discovered plugins; `webos.dispatch` runs the
listeners of each event. Nothing here imports FastAPI, uvicorn or the database:
``webos plugins`` and a broker worker stay cheap to start.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loguru import logger

from . import _context, tracing
from ._context import Scope
from .background import Background
from .bus import Bus, EmitResult, Envelope, Listener
from .discovery import Candidate, discover
from .dispatch import Route, dispatch, drive
from .events import (
    PLAIN_TYPES,
    EventSpec,
    check_json_mapping,
    matches,
    suggest,
    validate_event_name,
)
from .exceptions import EventDepthError, PluginError, UnknownEventError, WebOSError
from .loading import KERNEL_PLUGIN, Loader, PluginRecord
from .manager import WebOSPluginManager, required_params
from .settings import Settings
from .transport import InProcessTransport, Transport

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["KERNEL_PLUGIN", "Kernel", "PluginRecord"]


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
        self._transport: Transport = transport or _transport_for(self.settings)
        self._routes: dict[str, Route] = {}
        self.background = Background()
        self._timeout = self.settings.listener_timeout or None
        self._max_depth = self.settings.max_event_depth
        trace = self.settings.trace_events
        self._trace = None if not trace else ("*" if trace in ("1", "true", "yes") else trace)
        self._trace_plugins = self.settings.trace_plugins
        self._direct = (
            type(self._transport) is InProcessTransport and not trace and not self._trace_plugins
        )
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
        Loader(self.settings, self.pm, self.records, self.events).run(self._candidates())
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
        """The listeners of event ``name`` in start order.

        Higher ``priority`` first; ties keep pluggy's call order (``tryfirst``,
        then the others newest plugin first, then ``trylast``).
        """
        return self._route(name).listeners

    def _route(self, name: str) -> Route:
        cached = self._routes.get(name)
        if cached is not None:
            return cached
        spec = self.events[name]
        caller = getattr(self.pm.hook, spec.hook, None)
        impls = reversed(caller.get_hookimpls()) if caller is not None else ()
        found = []
        for impl in impls:
            names = required_params(impl.function)[0]
            found.append(
                Listener(
                    impl.plugin_name,
                    impl.function,
                    "payload" in names,
                    "event" in names,
                    priority=impl.opts.get("webos_priority", 0),
                    timeout=impl.opts.get("webos_timeout"),
                    pattern=impl.opts.get("webos_pattern"),
                    delivery=impl.opts.get("webos_delivery", "once"),
                )
            )
        found.sort(key=lambda listener: -listener.priority)  # stable: ties keep pluggy's order
        express = self._direct and spec.payload_type is None
        route = Route(found, self._timeout, express=express)
        self._routes[name] = route
        return route

    def _listeners_cache_clear(self) -> None:
        self._routes.clear()

    async def call_first(self, hook: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook whose impls may be async: first non-None result wins."""
        caller = getattr(self.pm.hook, hook, None)
        for impl in reversed(caller.get_hookimpls()) if caller is not None else ():
            arguments = {k: v for k, v in kwargs.items() if k in impl.argnames}
            started = time.perf_counter() if self._trace_plugins else 0.0
            result = impl.function(**arguments)
            if inspect.isawaitable(result):
                result = await result
            if self._trace_plugins:
                tracing.trace_hook_call(
                    impl.plugin_name,
                    impl.function.__qualname__,
                    hook,
                    ", ".join(f"{k}={type(v).__name__}" for k, v in arguments.items()),
                    time.perf_counter() - started,
                    "no result" if result is None else f"returned {type(result).__name__}",
                )
            if result is not None:
                return result
        return None

    # -- running -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def transport(self) -> Transport:
        """How events reach listeners: in-process, or a broker (``WEBOS_BUS_URL``)."""
        return self._transport

    async def start(self) -> None:
        """Load plugins if needed, start the transport, emit ``kernel:startup``."""
        self.load()
        if self._running:
            return
        await self._transport.start(self)
        self._running = True
        plugins = [r.name for r in self.loaded_plugins() if r.name != KERNEL_PLUGIN]
        failed = [r.name for r in self.records if r.status == "failed"]
        logger.info(
            "WebOS kernel started: {} plugin(s) loaded ({}){}",
            len(plugins),
            ", ".join(plugins) or "none",
            f"; FAILED: {', '.join(failed)} (see `webos plugins`)" if failed else "",
        )
        await self._lifecycle("kernel:startup", {"plugins": plugins})

    async def stop(self) -> None:
        """Wait for events published in the background, emit ``kernel:shutdown``, stop.

        Background work gets ``WEBOS_SHUTDOWN_GRACE`` seconds in all; what is still
        running then is cancelled and logged.
        """
        if not self._running:
            return
        deadline = time.monotonic() + self.settings.shutdown_grace
        try:
            await self.background.drain(self.settings.shutdown_grace)
            await self._lifecycle("kernel:shutdown", {})
            await self.background.drain(max(0.0, deadline - time.monotonic()))
        finally:
            self._running = False
            await self._transport.stop()

    async def _lifecycle(self, name: str, payload: dict[str, Any]) -> EmitResult:
        # This process's own start and stop: never through a broker to other processes.
        envelope = self._envelope(name, payload, KERNEL_PLUGIN)
        return await self.run(envelope, self.listeners(name))

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
        token = _context.enter(kernel=self)
        try:
            yield self
        finally:
            _context.current.reset(token)

    def emit(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> Awaitable[EmitResult]:
        """Validate and emit one event; await the result to wait for its listeners.

        See `webos.Bus.emit`. Validation errors raise when this is called.
        """
        route = self._routes.get(name)
        if (
            route is not None
            and route.fast
            and self._running
            and type(payload) is dict
            and type(scope := _context.current.get()) is Scope
        ):
            # The common case written out, as it runs for every emit: an event emitted
            # here, not by a listener, delivered here, untraced, to listeners not known
            # to suspend. The payload test is EventSpec.check_payload's first lines; an
            # express route's event has no schema, so the rest of it is the JSON check.
            for key, value in payload.items():
                if type(key) is not str or type(value) not in PLAIN_TYPES:
                    check_json_mapping(name, payload)
                    break
            # EmitResult's fields set in place: a constructor call would add a few percent.
            result = _new(EmitResult)
            result.kernel = self
            result.listeners = route.listeners
            result._name = name
            result._payload = payload
            result._source = source or scope.plugin
            result._correlation_id = scope.correlation_id
            result._timestamp = _now()
            return drive(result, result, route, route.runner, route.items)
        envelope = self._envelope(name, payload, source)
        if self._direct and route is not None:
            # In-process and untraced: what the transport and `run` would end up doing.
            return dispatch(self, envelope, route)
        return self._transport.send(envelope)

    def publish(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> Envelope:
        """Validate one event now, deliver it in the background; see `webos.Bus.publish`."""
        envelope = self._envelope(name, payload, source)
        # The caller's context, so that a listener's emits know their parent and kernel.
        context = contextvars.copy_context()
        self.background.spawn(self._transport.send(envelope), envelope, context)
        return envelope

    def _envelope(
        self, name: str, payload: Mapping[str, Any] | None, source: str | None
    ) -> Envelope:
        spec = self.events.get(name)
        if spec is None:
            validate_event_name(name)
            raise UnknownEventError(name, suggest(name, self.events))
        if payload is None:
            payload = {}
        spec.check_payload(payload)
        if not self._running:
            raise WebOSError(
                f"cannot emit {name!r}: the kernel is not running. Use `async with kernel:` "
                "or serve the app made by create_app(), which starts it."
            )
        frame = _context.current.get()
        if isinstance(frame, Scope):
            return Envelope(name, payload, source or frame.plugin, None, frame.correlation_id)
        # Emitted by a listener: part of the chain its event started.
        parent = frame.envelope
        depth = parent.depth + 1
        if depth > self._max_depth:
            raise EventDepthError(name, depth, self._max_depth)
        source = source or frame.plugin
        return Envelope(name, payload, source, parent.id, parent.correlation_id, depth)

    def run(self, envelope: Envelope, listeners: Sequence[Listener]) -> Awaitable[EmitResult]:
        """Run ``listeners`` for ``envelope`` here (what transports call)."""
        traced = self._trace is not None and matches(self._trace, envelope.name)
        timed = traced or self._trace_plugins
        route = self._routes.get(envelope.name)
        if timed or route is None or route.listeners is not listeners:
            # Timed for tracing, or a part of the listeners (a broker delivers to each).
            route = Route(listeners, self._timeout, timed=timed)
        if not timed:
            return dispatch(self, envelope, route)
        return self._traced(envelope, route, traced)

    async def _traced(self, envelope: Envelope, route: Route, traced: bool) -> EmitResult:
        result = await dispatch(self, envelope, route)
        if self._trace_plugins:
            tracing.trace_listeners(result)
        if traced:
            tracing.trace_event(result)
        return result

    # -- listings ------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every plugin failure, one line each (what ``webos check`` prints)."""
        return [f"{r.name} ({r.source}): {r.error}" for r in self.records if r.status == "failed"]


_new = object.__new__
_now = time.time


def _returning(obj: object) -> Callable[[], object]:
    return lambda: obj


def _transport_for(settings: Settings) -> Transport:
    if not settings.bus_url:
        return InProcessTransport()
    from .redis_streams import RedisTransport  # only when a broker is configured

    if not settings.bus_url.startswith(("redis://", "rediss://", "unix://")):
        raise WebOSError(
            f"WEBOS_BUS_URL={settings.bus_url!r}: only Redis is supported "
            "(redis://host:port/db, rediss:// or unix://); unset it for the in-process bus"
        )
    return RedisTransport(
        settings.bus_url,
        prefix=settings.bus_prefix,
        max_deliveries=settings.max_deliveries,
        maxlen=settings.bus_maxlen,
        visibility_timeout=settings.bus_visibility_timeout,
    )
