"""Running the listeners of one event: eagerly, concurrently, isolated, with timeouts.

Listeners are started in order, in the emitter's task, each called and awaited
straight from one loop, as a hand-written ``for f in listeners: await
f(payload)`` would. One that finishes without suspending (most do: they log,
count, or update memory) costs what it costs in that loop: no Task, no timer,
no context copy.

The loops (`_run_payload`, `_run_plain`, `_run_any`) are generator-based
coroutines, and `drive` runs one step of a loop by hand (stepping a generator
costs less than going through a coroutine's ``__await__``). When a listener
suspends, the step ends there: the listeners after it are handed to a new
task, which starts them the same way, while this task finishes the suspended
listener under its timeout. So every listener runs start to end in one task
(``asyncio.current_task()``, anyio cancel scopes and ``asyncio.timeout`` work
in listeners as anywhere else), a slow listener never delays the start of the
next, and an event whose listeners never suspend creates no task at all. It is
what Python 3.12's eager tasks give, without creating a task up front, and it
runs on 3.11.

The dispatcher remembers which listeners suspended the last time they ran; the
next time, those start in tasks of their own up front, all at once, as
``asyncio.gather`` would, instead of one hand-over after another.

Listeners started in the emitter's task share its context, as awaited
coroutines do: a context variable a listener sets there is seen by the emitter.
The `EmitResult` is that task's frame (see `webos._context`); other tasks get a
`TaskFrame`. `Kernel.emit` writes the common case out and calls `drive` itself.

Errors never leave a listener: each is logged (event, plugin, function,
traceback) and recorded in the `EmitResult`; a listener past its timeout is
cancelled and recorded as timed out.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, cast

from loguru import logger

from . import _context
from ._context import EXPIRED, HANDLED, Frame
from ._stepping import resume_after
from .bus import BOTH, EVENT, PAYLOAD, POSITIONAL, EmitResult, Envelope, Listener, ListenerResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .kernel import Kernel

__all__ = ["Route", "TaskFrame", "dispatch", "drive"]

_clock = time.perf_counter
_PROBE_EVERY = 32
_Coroutine = types.CoroutineType
#: A dispatch loop: a generator-based coroutine (`types.coroutine`), so that `drive`
#: can step it directly; awaiting through ``__await__`` costs more.
Runner = Callable[[EmitResult, Frame, Iterator[Any]], Generator[Any, Any, None]]


class Route:
    """The listeners of one event, in start order, and the loop that starts them.

    Most listeners are ``async def`` functions of ``(payload)``: a route of only
    those runs them through `_run_payload`, which calls and awaits each with
    nothing in between, as a hand-written loop would. ``(payload, event)`` ones
    make it `_run_plain`; any other kind (keyword arguments, plain functions),
    or a ``timed`` route (tracing), `_run_any`.

    ``eager`` is cleared when a listener is found to suspend: such listeners then
    start in tasks up front. ``timeout`` is the kernel's default listener timeout.
    ``express`` says that the kernel's emit path may take the route as it is (no
    payload schema, delivered in this process, untraced); ``fast``, that it may
    now: express and eager.
    """

    __slots__ = ("eager", "express", "fast", "items", "listeners", "runner", "timed", "timeout")

    def __init__(
        self,
        listeners: Sequence[Listener],
        timeout: float | None = None,
        *,
        express: bool = False,
        timed: bool = False,
    ) -> None:
        self.listeners = tuple(listeners)
        self.timeout = timeout
        self.express = express
        self.timed = timed
        self.runner, self.items = self.part(0, len(self.listeners))
        self.learned()

    def learned(self) -> None:
        """Update ``eager`` (and ``fast``) from what the listeners did last time."""
        self.eager = not any(one.suspends for one in self.listeners)
        self.fast = self.express and self.eager

    def __repr__(self) -> str:
        return f"<Route of {len(self.listeners)} listener(s)>"

    def part(self, start: int, stop: int) -> tuple[Runner, tuple[Any, ...]]:
        """The loop that runs ``listeners[start:stop]``, and what it iterates over."""
        part = self.listeners[start:stop]
        if self.timed:
            return _run_timed, part
        if not all(
            one.mode == POSITIONAL and inspect.iscoroutinefunction(one.function) for one in part
        ):
            return _run_any, part
        if not any(one.wants_event for one in part):
            return _run_payload, tuple(one.function for one in part)
        return _run_plain, tuple((one.function, one.wants_event) for one in part)


class TaskFrame(Frame):
    """The frame of a task the dispatcher started for ``listeners[...:end]``."""

    def __init__(self, result: EmitResult, end: int) -> None:
        self.result = result
        self.kernel = result.kernel
        self.listeners = result.listeners
        self.end = end

    @property
    def envelope(self) -> Envelope:
        return self.result.envelope


def dispatch(kernel: Kernel, envelope: Envelope, route: Route) -> Awaitable[EmitResult]:
    """Run ``route``'s listeners for ``envelope``; the awaitable ends when all have finished."""
    result = EmitResult.of(kernel, route.listeners, envelope)
    if not route.eager:
        return _fan_out(result, route)
    return drive(result, result, route, route.runner, route.items)


async def drive(
    result: EmitResult, frame: Frame, route: Route, runner: Runner, items: Sequence[Any]
) -> EmitResult:
    """Start the listeners of ``items`` in this task through ``runner``, one step by hand.

    ``items`` stand for the listeners up to ``frame.end`` (the last one if it is
    -1). If the step ends with a listener suspended, the rest go to a new task,
    and this one finishes the suspended listener.
    """
    rest = frame.rest = iter(items)
    token = _context.current.set(frame)
    try:
        run = runner(result, frame, rest)
        # One step; a ``for`` loop ends without raising StopIteration.
        for awaited in run:  # noqa: B007 - used after the loop
            break
        else:
            return result
        await _suspended(result, frame, route, run, awaited)
        return result
    finally:
        _context.current.reset(token)


# The loops. Each runs until ``rest`` is exhausted: handing the rest of the
# listeners to another task empties it. `Frame.index` tells which one is running.


@types.coroutine
def _run_payload(
    result: EmitResult, frame: Frame, rest: Iterator[Any]
) -> Generator[Any, Any, None]:
    """The common case: ``async def`` listeners of ``(payload)``."""
    payload = result._payload
    for function in rest:
        try:
            yield from function(payload)
        except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
            _fail(result, frame.index, exc, None)
        except asyncio.CancelledError:
            if not _expired(frame):
                raise
            _timed_out(result, frame.index, _clock() - frame.started)


@types.coroutine
def _run_plain(result: EmitResult, frame: Frame, rest: Iterator[Any]) -> Generator[Any, Any, None]:
    """``async def`` listeners of ``(payload)`` or ``(payload, event)``."""
    envelope = result.envelope
    payload = result._payload
    for function, passes_event in rest:
        try:
            if passes_event:
                yield from function(payload, envelope)
            else:
                yield from function(payload)
        except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
            _fail(result, frame.index, exc, None)
        except asyncio.CancelledError:
            if not _expired(frame):
                raise
            _timed_out(result, frame.index, _clock() - frame.started)


@types.coroutine
def _run_any(
    result: EmitResult, frame: Frame, rest: Iterator[Any], timed: bool = False
) -> Generator[Any, Any, None]:
    """Any listener: called with the arguments it names, awaited if it returns an awaitable.

    Timed (when tracing), it records each one's duration too.
    """
    envelope = result.envelope
    for listener in rest:
        started = _clock() if timed else 0.0
        try:
            outcome = _call(listener, envelope)
            if type(outcome) is _Coroutine or (
                outcome is not None and inspect.isawaitable(outcome)
            ):
                yield from outcome.__await__()
        except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
            _fail(result, frame.index, exc, _clock() - started if timed else None)
            continue
        except asyncio.CancelledError:
            if not _expired(frame):
                raise
            _timed_out(result, frame.index, _clock() - frame.started)
            continue
        if timed:
            _record_duration(result, frame.index, _clock() - started)


def _run_timed(result: EmitResult, frame: Frame, rest: Iterator[Any]) -> Generator[Any, Any, None]:
    return _run_any(result, frame, rest, timed=True)


@types.coroutine
def _suspended(
    result: EmitResult, frame: Frame, route: Route, run: Generator[Any, Any, None], awaited: Any
) -> Generator[Any, Any, None]:
    """The listener at ``frame.index`` suspended: hand the rest over, then finish it here."""
    index = frame.stop()  # the loop in `run` now ends with this listener
    listener = result.listeners[index]
    listener.suspends = True
    route.learned()  # next time, it starts in a task of its own up front
    loop = asyncio.get_running_loop()
    others = []
    end = frame.limit
    if index + 1 < end:
        others.append(loop.create_task(_continue(result, route, index + 1, end)))
    timeout = listener.timeout if listener.timeout is not None else route.timeout
    handle = None
    if timeout:
        _arm(frame)
        handle = loop.call_later(timeout, _expire, frame)
    try:
        yield from resume_after(run, awaited)
    except BaseException:
        for task in others:  # the emit was cancelled: see `_join`
            task.cancel()
        raise
    finally:
        if handle is not None:
            handle.cancel()
    if frame.expired == EXPIRED:
        # Its timer fired but it swallowed the cancellation and returned: still late.
        frame.task.uncancel()
        _timed_out(result, index, _clock() - frame.started)
    yield from _join(others)


async def _continue(result: EmitResult, route: Route, start: int, end: int) -> None:
    """Run ``route.listeners[start:end]`` in the task made for them."""
    # It runs in a copy of the emitter's context: give it a frame of its own.
    runner, items = route.part(start, end)
    await drive(result, TaskFrame(result, end), route, runner, items)


def _arm(frame: Frame) -> None:
    task = cast("asyncio.Task[Any]", asyncio.current_task())  # drive runs in a task
    frame.task = task
    frame.cancelling = task.cancelling()
    frame.started = _clock()


def _expire(frame: Frame) -> None:
    frame.expired = EXPIRED
    frame.task.cancel()


def _expired(frame: Frame) -> bool:
    """Whether the cancellation being handled is the listener's own timeout's."""
    if frame.expired != EXPIRED:
        return False
    frame.expired = HANDLED
    # Cancelled from outside as well (the emit itself): that one goes on.
    return frame.task.uncancel() <= frame.cancelling


async def _fan_out(result: EmitResult, route: Route) -> EmitResult:
    """Start every listener in a task, all at once and in order, as ``asyncio.gather`` would.

    Each listener known to suspend gets a task of its own; each run of the others
    shares one task, where they run eagerly. Listeners under the default timeout
    share one timer.
    """
    listeners = route.listeners
    shared = _Deadline(route.timeout) if route.timeout else None
    tasks = []
    index, end = 0, len(listeners)
    loop = asyncio.get_running_loop()
    while index < end:
        listener = listeners[index]
        if listener.suspends:
            if listener.timeout is None:
                deadline = shared
            else:
                deadline = _Deadline(listener.timeout) if listener.timeout else None
            task = loop.create_task(_own_task(index, result, deadline, route.timed))
            if deadline is not None:
                deadline.watch(task, index)
            tasks.append(task)
            index += 1
            continue
        stop = index + 1
        while stop < end and not listeners[stop].suspends:
            stop += 1
        tasks.append(loop.create_task(_continue(result, route, index, stop)))
        index = stop
    try:
        await _join(tasks)
    finally:
        if shared is not None:
            shared.close()
    route.learned()
    return result


class _Deadline:
    """One timer for the listener tasks of one dispatch that share a timeout."""

    __slots__ = ("expired", "handle", "tasks")

    def __init__(self, timeout: float) -> None:
        self.tasks: dict[asyncio.Task[None], int] = {}
        self.expired: set[int] = set()
        self.handle = asyncio.get_running_loop().call_later(timeout, self._fire)

    def watch(self, task: asyncio.Task[None], index: int) -> None:
        self.tasks[task] = index

    def _fire(self) -> None:
        for task, index in self.tasks.items():
            if not task.done():
                self.expired.add(index)
                task.cancel()

    def close(self) -> None:
        self.handle.cancel()


async def _own_task(
    index: int, result: EmitResult, deadline: _Deadline | None, timed: bool
) -> None:
    """Run one listener in the task made for it."""
    listener = result.listeners[index]
    envelope = result.envelope
    # The task runs in a copy of the emitter's context: give it a frame of its own.
    frame = TaskFrame(result, index + 1)
    frame._index = index
    _context.current.set(frame)
    started = _clock()
    try:
        outcome = _call(listener, envelope)
        if type(outcome) is _Coroutine:
            listener.runs += 1
            if listener.runs % _PROBE_EVERY:
                await outcome
            else:
                # Now and then, check whether it still suspends: if it has stopped,
                # it goes back to running eagerly, without a task.
                for awaited in outcome.__await__():
                    await resume_after(outcome, awaited)
                    break
                else:
                    listener.suspends = False
        elif outcome is not None and inspect.isawaitable(outcome):
            await outcome
        else:
            listener.suspends = False
    except asyncio.CancelledError:
        if deadline is None or index not in deadline.expired:
            raise
        _timed_out(result, index, _clock() - started)
        return
    except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
        _fail(result, index, exc, _clock() - started)
        return
    if deadline is not None and index in deadline.expired:
        _timed_out(result, index, _clock() - started)  # it swallowed the cancellation
    elif timed:
        _record_duration(result, index, _clock() - started)


def _call(listener: Listener, envelope: Envelope) -> Any:
    """Call a listener with the arguments it names (pluggy's rule)."""
    mode = listener.mode
    if mode == POSITIONAL:
        if listener.wants_event:
            return listener.function(envelope.payload, envelope)
        return listener.function(envelope.payload)
    if mode == PAYLOAD:
        return listener.function(payload=envelope.payload)
    if mode == BOTH:
        return listener.function(payload=envelope.payload, event=envelope)
    if mode == EVENT:
        return listener.function(event=envelope)
    return listener.function()


async def _join(tasks: list[asyncio.Task[Any]]) -> None:
    """Wait for ``tasks``; if the emitter is cancelled meanwhile, cancel them."""
    if not tasks:
        return
    waiter = asyncio.get_running_loop().create_future()
    remaining = len(tasks)

    def finished(task: asyncio.Task[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and not waiter.done():
            waiter.set_result(None)

    for task in tasks:
        task.add_done_callback(finished)
    try:
        await waiter
    except asyncio.CancelledError:
        # The emit itself was cancelled: so are its listeners, as with asyncio.gather
        # (the one running in the emitter's own task already is). Fire and forget is
        # what bus.publish is for.
        for task in tasks:
            task.cancel()
        raise


def _record_duration(result: EmitResult, index: int, duration: float) -> None:
    if result._durations is None:
        result._durations = {}
    result._durations[index] = duration


def _fail(result: EmitResult, index: int, exc: BaseException, duration: float | None) -> None:
    listener = result.listeners[index]
    envelope = result.envelope
    logger.opt(exception=exc).error(
        "Listener {listener} (plugin {plugin}, function {function}) failed on event "
        "{event} [{event_id}]: {error!r}",
        listener=listener.name,
        plugin=listener.plugin,
        function=getattr(listener.function, "__qualname__", listener.name),
        event=envelope.name,
        event_id=envelope.id,
        error=exc,
    )
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if result._failures is None:
        result._failures = {}
    result._failures[index] = ListenerResult(listener.name, False, duration, error, exc)


def _timed_out(result: EmitResult, index: int, duration: float) -> None:
    listener = result.listeners[index]
    envelope = result.envelope
    logger.error(
        "Listener {listener} (plugin {plugin}) timed out after {duration:.3f} s on event "
        "{event} [{event_id}] and was cancelled; raise its timeout with "
        "@bus.on(..., timeout=...) or WEBOS_LISTENER_TIMEOUT",
        listener=listener.name,
        plugin=listener.plugin,
        duration=duration,
        event=envelope.name,
        event_id=envelope.id,
    )
    error = f"timed out after {duration:.3f} s"
    if result._failures is None:
        result._failures = {}
    result._failures[index] = ListenerResult(
        listener.name, False, duration, error, TimeoutError(error), timed_out=True
    )
