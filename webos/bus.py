"""The event bus: ``await bus.emit(name, payload)`` and ``@bus.on(name)``.

``@bus.on`` only marks a function. Registration happens when a kernel loads
the plugin that holds it: the mark becomes a pluggy hookimpl of the event's
hookspec. ``emit`` validates the name and payload, wraps them in an
`Envelope`, hands the envelope to the transport, and returns an `EmitResult`
saying which listeners ran and which failed.

pluggy's own hook call stops at the first exception and does not await
coroutines, so the dispatcher enumerates the hookimpls itself: it starts every
listener in pluggy's call order (``tryfirst`` first, ``trylast`` last), runs
them concurrently, and isolates their errors.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from . import _context
from .events import validate_event_name
from .exceptions import NoKernelError

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["Bus", "EmitResult", "Envelope", "Listener", "ListenerResult", "bus"]

F = TypeVar("F", bound=Callable[..., Any])
LISTEN_MARK = "__webos_listen__"


@dataclass(frozen=True)
class ListenMark:
    """What ``@bus.on`` records on a function."""

    event: str
    tryfirst: bool = False
    trylast: bool = False


@dataclass(frozen=True, slots=True)
class Envelope:
    """An emitted event: what a listener receives as its ``event`` argument."""

    name: str
    payload: Mapping[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the envelope, as it would cross a process boundary."""
        return {
            "name": self.name,
            "id": self.id,
            "time": self.time.isoformat(),
            "source": self.source,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True, slots=True)
class Listener:
    """A registered listener of one event, ready to call."""

    plugin: str
    function: Callable[..., Any]
    wants_payload: bool = True
    wants_event: bool = False

    @property
    def name(self) -> str:
        return f"{self.plugin}:{self.function.__name__}"


@dataclass(frozen=True, slots=True)
class ListenerResult:
    """How one listener handled one event."""

    listener: str
    ok: bool
    duration: float
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class EmitResult:
    """What ``emit`` returns: the envelope and one result per listener, in start order."""

    envelope: Envelope
    results: Sequence[ListenerResult]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def ran(self) -> list[str]:
        return [result.listener for result in self.results]

    @property
    def failed(self) -> list[ListenerResult]:
        return [result for result in self.results if not result.ok]


async def run_listeners(envelope: Envelope, listeners: Sequence[Listener]) -> EmitResult:
    """Start every listener in order, run them concurrently, collect their results."""
    if not listeners:
        return EmitResult(envelope, ())
    tasks = [asyncio.ensure_future(_run_one(listener, envelope)) for listener in listeners]
    results = await asyncio.gather(*tasks)
    return EmitResult(envelope, results)


async def _run_one(listener: Listener, envelope: Envelope) -> ListenerResult:
    # Runs in its own task, so setting the plugin here does not leak to the emitter.
    _context.current_plugin.set(listener.plugin)
    started = time.perf_counter()
    try:
        # pluggy's rule: an impl gets only the arguments it names.
        kwargs: dict[str, Any] = {}
        if listener.wants_payload:
            kwargs["payload"] = envelope.payload
        if listener.wants_event:
            kwargs["event"] = envelope
        outcome = listener.function(**kwargs)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
        duration = time.perf_counter() - started
        logger.opt(exception=exc).error(
            "Listener {listener} (plugin {plugin}, function {function}) failed on event "
            "{event} [{event_id}]: {error!r}",
            listener=listener.name,
            plugin=listener.plugin,
            function=listener.function.__qualname__,
            event=envelope.name,
            event_id=envelope.id,
            error=exc,
        )
        return ListenerResult(listener.name, False, duration, f"{type(exc).__name__}: {exc}", exc)
    return ListenerResult(listener.name, True, time.perf_counter() - started)


class Bus:
    """The bus facade.

    The module-level `bus` dispatches through the kernel running the current
    request, listener or CLI command; ``kernel.bus`` is bound to one kernel.
    """

    def __init__(self, kernel: Kernel | None = None) -> None:
        self._kernel = kernel

    def __repr__(self) -> str:
        return "<Bus (current kernel)>" if self._kernel is None else f"<Bus of {self._kernel!r}>"

    @staticmethod
    def on(name: str, *, tryfirst: bool = False, trylast: bool = False) -> Callable[[F], F]:
        """Mark a function as a listener of the event ``name``.

        The function takes ``payload`` and, if it wants the envelope, ``event``.
        It is registered when a kernel loads the plugin that holds it.
        """
        validate_event_name(name)
        if tryfirst and trylast:
            raise ValueError(f"@bus.on({name!r}): tryfirst and trylast exclude each other")

        def mark(function: F) -> F:
            if not callable(function):
                raise TypeError(f"@bus.on({name!r}) decorates a function, not {function!r}")
            marks: list[ListenMark] = list(getattr(function, LISTEN_MARK, ()))
            marks.append(ListenMark(name, tryfirst, trylast))
            setattr(function, LISTEN_MARK, tuple(marks))
            return function

        return mark

    @property
    def kernel(self) -> Kernel:
        kernel = self._kernel or _context.current_kernel.get()
        if kernel is None:
            raise NoKernelError(
                "bus.emit() was called where no WebOS kernel is running. Call it from a "
                "request handler, a listener or a CLI command, or use `kernel.bus` / "
                "`async with kernel:` to pick a kernel explicitly."
            )
        return kernel

    async def emit(
        self, name: str, payload: Mapping[str, Any] | None = None, *, source: str | None = None
    ) -> EmitResult:
        """Emit ``name`` with ``payload`` and wait for every listener.

        Raises `UnknownEventError` for an undeclared name and `InvalidPayloadError`
        for a payload that is not a JSON mapping or fails the declared schema; a
        listener's error never reaches the caller: it is in the result.
        """
        return await self.kernel.emit(name, payload, source=source)


#: The bus of whichever kernel runs the current code.
bus = Bus()
