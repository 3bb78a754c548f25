"""The event bus: ``await bus.emit(name, payload)``, ``bus.publish(...)`` and ``@bus.on(name)``.

``@bus.on`` only marks a function. Registration happens when a kernel loads
the plugin that holds it: the mark becomes a pluggy hookimpl of the event's
hookspec (of every matching event's, for a wildcard). ``emit`` validates the
name and payload, wraps them in an `Envelope`, hands it to the transport, and
returns an `EmitResult` saying which listeners ran and which failed.
How listeners run is `webos.dispatch`'s business.
"""

from __future__ import annotations

import inspect
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import _context
from .events import validate_event_name, validate_event_pattern
from .exceptions import NoKernelError
from .transport import DELIVERIES

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["Bus", "EmitResult", "Envelope", "Listener", "ListenerResult", "bus"]

F = TypeVar("F", bound=Callable[..., Any])
LISTEN_MARK = "__webos_listen__"


@dataclass(frozen=True)
class ListenMark:
    """What ``@bus.on`` records on a function."""

    event: str  # an event name or a wildcard pattern ("auth:*", "*")
    tryfirst: bool = False
    trylast: bool = False
    priority: int = 0
    timeout: float | None = None
    delivery: str = "once"

    @property
    def is_pattern(self) -> bool:
        return self.event.endswith("*")


# Envelope ids: a random per-process prefix and a counter. Unique across processes
# and hosts, and far cheaper than uuid4 on the emit path.
_now = time.time
_id_counter = itertools.count(1)
_id_prefix = os.urandom(8).hex()


def _new_process_ids() -> None:
    global _id_counter, _id_prefix
    _id_counter, _id_prefix = itertools.count(1), os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_process_ids)


class Envelope:
    """An emitted event: what a listener receives as its ``event`` argument.

    ``parent_id`` is the id of the event whose listener emitted this one;
    ``correlation_id`` is shared by a whole chain, starting from the HTTP
    request (``X-Correlation-ID``) or the first event; ``depth`` counts the
    links from the start of the chain.
    """

    __slots__ = (
        "_correlation_id",
        "_id",
        "_seq",
        "depth",
        "name",
        "parent_id",
        "payload",
        "source",
        "timestamp",
    )

    def __init__(
        self,
        name: str,
        payload: Mapping[str, Any],
        source: str | None = None,
        parent_id: str | None = None,
        correlation_id: str | None = None,
        depth: int = 0,
        id: str | None = None,
        timestamp: float | None = None,
    ) -> None:
        # Positional in this order on the emit path: keyword calls cost twice as much.
        self.name = name
        self.payload = payload
        # The id is formatted when first read: most events never need it.
        self._id = id
        self._seq = 0 if id else next(_id_counter)
        self.timestamp = _now() if timestamp is None else timestamp
        self.source = source
        self.parent_id = parent_id
        self._correlation_id = correlation_id
        self.depth = depth

    @property
    def id(self) -> str:
        """Unique across processes and hosts; kept across redeliveries."""
        if self._id is None:
            self._id = f"{_id_prefix}-{self._seq:x}"
        return self._id

    @property
    def correlation_id(self) -> str:
        return self._correlation_id or self.id

    @property
    def time(self) -> datetime:
        """When the event was emitted (UTC)."""
        return datetime.fromtimestamp(self.timestamp, UTC)

    def __repr__(self) -> str:
        return f"<Envelope {self.name} {self.id} from {self.source}>"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the envelope, as it would cross a process boundary."""
        return {
            "name": self.name,
            "id": self.id,
            "time": self.time.isoformat(),
            "source": self.source,
            "parent_id": self.parent_id,
            "correlation_id": self.correlation_id,
            "depth": self.depth,
            "payload": dict(self.payload),
        }


# What a listener takes, pluggy's rule being that an impl gets only what it names.
# POSITIONAL: ``f(payload)`` or ``f(payload, event)`` in that order, called positionally
# (half the cost of keywords on the emit path); the others by keyword.
PAYLOAD, BOTH, EVENT, NEITHER, POSITIONAL = 1, 2, 3, 0, 4


@dataclass(slots=True, eq=False)
class Listener:
    """A registered listener of one event, ready to call.

    ``suspends`` is what the dispatcher learned the last time it ran: whether the
    listener suspended (awaited something that was not ready). Such a listener is
    started in a task of its own up front, along with the others, as
    ``asyncio.gather`` would; the others run eagerly, without a task.
    """

    plugin: str
    function: Callable[..., Any]
    wants_payload: bool = True
    wants_event: bool = False
    priority: int = 0
    timeout: float | None = None
    pattern: str | None = None  # the wildcard it was registered with, if any
    name: str = ""
    delivery: str = "once"  # see webos.transport
    suspends: bool = False
    runs: int = field(default=0, init=False)  # in a task of its own
    mode: int = field(default=0, init=False)  # which arguments it takes: PAYLOAD, BOTH, ...

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{self.plugin}:{self.function.__name__}"
        if self.wants_payload:
            self.mode = BOTH if self.wants_event else PAYLOAD
        else:
            self.mode = EVENT if self.wants_event else NEITHER
        if self.mode in (PAYLOAD, BOTH) and _leading_positional(self.function) == (
            ["payload", "event"] if self.mode == BOTH else ["payload"]
        ):
            self.mode = POSITIONAL


def _leading_positional(function: Callable[..., Any]) -> list[str]:
    """The names of the parameters a positional call fills, if that is all it has."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind not in positional for p in parameters):
        return []
    return [p.name for p in parameters]


@dataclass(frozen=True, slots=True)
class ListenerResult:
    """How one listener handled one event. ``duration`` is in seconds when measured."""

    listener: str
    ok: bool
    duration: float | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    timed_out: bool = False


class EmitResult(_context.Frame):
    """What ``emit`` returns: the event, and how each listener did, in start order.

    It is made before the listeners start and filled in as they finish; while
    they run it is also the frame of the emitting task (see `webos._context`).
    Its `envelope` is made when first asked for, by a listener that takes
    ``event``, by an event a listener emits, or by you: most events never need
    one, and the emit path is shorter without it.
    """

    # Class-level defaults: the emit path sets only what it must.
    _envelope: Envelope | None = None
    _failures: dict[int, ListenerResult] | None = None
    _durations: dict[int, float] | None = None
    # A new event's fields, until its envelope is made. Set by `of`, and by
    # `Kernel.emit` directly for an event it emits (a constructor call costs).
    _name: str
    _payload: Mapping[str, Any]
    _source: str | None = None
    _correlation_id: str | None = None
    _timestamp: float

    @classmethod
    def of(cls, kernel: Kernel, listeners: Sequence[Listener], envelope: Envelope) -> EmitResult:
        """The result of delivering an envelope that already exists."""
        result = object.__new__(cls)
        result.kernel = kernel
        result.listeners = listeners
        result._envelope = envelope
        result._name = envelope.name
        result._payload = envelope.payload
        return result

    @property
    def envelope(self) -> Envelope:
        envelope = self._envelope
        if envelope is None:
            envelope = self._envelope = Envelope(
                self._name,
                self._payload,
                self._source,
                None,
                self._correlation_id,
                0,
                None,
                self._timestamp,
            )
        return envelope

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"{len(self.failed)} failed"
        return f"<EmitResult {self._name}: {len(self.listeners)} listener(s), {state}>"

    @property
    def ok(self) -> bool:
        return not self._failures

    @property
    def ran(self) -> list[str]:
        return [listener.name for listener in self.listeners]

    @property
    def results(self) -> list[ListenerResult]:
        failures = self._failures or {}
        durations = self._durations or {}
        return [
            failures.get(i) or ListenerResult(listener.name, True, durations.get(i))
            for i, listener in enumerate(self.listeners)
        ]

    @property
    def failed(self) -> list[ListenerResult]:
        failures = self._failures or {}
        return [failures[i] for i in sorted(failures)]

    @property
    def timed_out(self) -> list[ListenerResult]:
        return [result for result in self.failed if result.timed_out]


class Bus:
    """The bus facade.

    The module-level `bus` dispatches through the kernel running the current
    request, listener or CLI command; ``kernel.bus`` is bound to one kernel.
    """

    def __init__(self, kernel: Kernel | None = None) -> None:
        self._kernel = kernel
        if kernel is not None:
            # A bound bus is its kernel's: one call less on every emit.
            self.emit = kernel.emit  # type: ignore[method-assign]  # same signature
            self.publish = kernel.publish  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return "<Bus (current kernel)>" if self._kernel is None else f"<Bus of {self._kernel!r}>"

    @staticmethod
    def on(
        name: str,
        *,
        tryfirst: bool = False,
        trylast: bool = False,
        priority: int = 0,
        timeout: float | None = None,
        delivery: str = "once",
    ) -> Callable[[F], F]:
        """Mark a function as a listener of the event ``name``.

        ``name`` may be a wildcard: ``"auth:*"`` (every event under ``auth``) or
        ``"*"`` (every event). The function takes ``payload`` and, if it wants
        the envelope, ``event``. Listeners start in order of ``priority``
        (higher first), then pluggy's order (``tryfirst``, the others newest
        plugin first, ``trylast``). ``timeout`` (seconds) overrides
        ``WEBOS_LISTENER_TIMEOUT`` for this listener; ``0`` means none.
        ``delivery`` matters once the bus runs on a broker (``WEBOS_BUS_URL``):
        ``"once"`` across all processes (the default), ``"broadcast"`` in every
        process, or ``"local"``: only in the process that emitted the event.
        """
        if name.endswith("*"):
            validate_event_pattern(name)
        else:
            validate_event_name(name)
        if tryfirst and trylast:
            raise ValueError(f"@bus.on({name!r}): tryfirst and trylast exclude each other")
        if delivery not in DELIVERIES:
            raise ValueError(
                f"@bus.on({name!r}): delivery must be one of {', '.join(DELIVERIES)}, "
                f"not {delivery!r}"
            )
        if timeout is not None and timeout < 0:
            raise ValueError(f"@bus.on({name!r}): timeout must be >= 0 seconds, got {timeout}")

        def mark(function: F) -> F:
            if not callable(function):
                raise TypeError(f"@bus.on({name!r}) decorates a function, not {function!r}")
            marks: list[ListenMark] = list(getattr(function, LISTEN_MARK, ()))
            marks.append(ListenMark(name, tryfirst, trylast, priority, timeout, delivery))
            setattr(function, LISTEN_MARK, tuple(marks))
            return function

        return mark

    @property
    def kernel(self) -> Kernel:
        if self._kernel is not None:
            return self._kernel
        kernel = _context.current_kernel()
        if kernel is None:
            raise NoKernelError(
                "bus.emit() was called where no WebOS kernel is running. Call it from a "
                "request handler, a listener or a CLI command, or use `kernel.bus` / "
                "`async with kernel:` to pick a kernel explicitly."
            )
        return kernel

    def emit(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> Awaitable[EmitResult]:
        """Emit ``name`` with ``payload`` and wait for every listener.

        Raises `UnknownEventError` for an undeclared name, `InvalidPayloadError`
        for a payload that is not a JSON mapping or fails the declared schema, and
        `EventDepthError` past ``WEBOS_MAX_EVENT_DEPTH`` nested emits. A listener's
        error never reaches the caller: it is in the result.

        (A plain function returning the awaitable, so that the emit path has no
        coroutine frame of its own; bad input raises as soon as it is called.)
        """
        return (self._kernel or self.kernel).emit(name, payload, source=source)

    def publish(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> Envelope:
        """Emit without waiting: validate now, run the listeners in the background.

        Raises the same errors as `emit`, before returning. The kernel keeps track
        of the listeners still running and waits for them (up to
        ``WEBOS_SHUTDOWN_GRACE`` seconds) when it stops.
        """
        return self.kernel.publish(name, payload, source=source)


#: The bus of whichever kernel runs the current code.
bus = Bus()
