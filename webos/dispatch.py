"""Running the listeners of one event: eagerly, concurrently, isolated, with timeouts.

Listeners are started in order, each run right away up to its first
suspension, in the emitter's task. One that finishes without suspending (most
do: they log, count, or update memory) costs a function call: no Task, no
timer, no context copy.

When a listener suspends, the listeners after it are handed to a new task,
which starts them the same way, while this task waits for the suspended
listener and finishes it. So every listener runs start to end in one task
(``asyncio.current_task()``, anyio cancel scopes and ``asyncio.timeout`` work
in listeners as anywhere else), a slow listener never delays the start of the
next, and an event whose listeners never suspend creates no task at all. It
is what Python 3.12's eager tasks give, without creating a task up front, and
it runs on 3.11.

The dispatcher remembers which listeners suspended the last time they ran; the
next time, those start in tasks of their own up front, all at once, as
``asyncio.gather`` would, instead of one hand-over after another.

Listeners started in the emitter's task share its context, as awaited
coroutines do: a context variable a listener sets there is seen by the emitter.

Errors never leave a listener: each is logged (event, plugin, function,
traceback) and recorded in the `EmitResult`; a listener past its timeout is
cancelled and recorded as timed out.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from loguru import logger

from . import _context
from .bus import BOTH, EVENT, PAYLOAD, POSITIONAL, EmitResult, Envelope, Listener, ListenerResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .kernel import Kernel

__all__ = ["dispatch"]

_clock = time.perf_counter
_PROBE_EVERY = 32
_Coroutine = types.CoroutineType


def dispatch(
    kernel: Kernel,
    envelope: Envelope,
    listeners: Sequence[Listener],
    default_timeout: float | None,
    timed: bool = False,
) -> Awaitable[EmitResult]:
    """Run ``listeners`` for ``envelope``; the awaitable ends when every one has finished."""
    result = EmitResult(envelope, listeners)
    frame = _context.Frame(kernel, envelope, None)
    return _run_from(0, len(listeners), result, frame, default_timeout, timed, top=True)


async def _run_from(
    start: int,
    end: int,
    result: EmitResult,
    frame: _context.Frame,
    default_timeout: float | None,
    timed: bool,
    *,
    top: bool,
) -> EmitResult:
    """Start ``result.listeners[start:end]`` in this task, eagerly, until one suspends.

    In the emitter's task (``top``) the frame is set for the duration; a task of
    its own runs in a copy of the emitter's context and gets a frame of its own.
    """
    if top:
        token = _context.current_frame.set(frame)
    else:
        frame = _context.Frame(frame.kernel, frame.envelope, None)
        _context.current_frame.set(frame)
    try:
        envelope = result.envelope
        payload = envelope.payload
        listeners = result.listeners
        span = listeners if start == 0 and end == len(listeners) else listeners[start:end]
        for index, listener in enumerate(span, start):
            if listener.suspends:
                await _fan_out(index, end, result, frame, default_timeout, timed)
                break
            frame.plugin = listener.plugin
            started = _clock() if timed else 0.0
            # `_call`, the common case written out: this runs for every listener.
            try:
                if listener.mode == POSITIONAL:
                    outcome = (
                        listener.function(payload)
                        if not listener.wants_event
                        else listener.function(payload, envelope)
                    )
                else:
                    outcome = _call(listener, envelope)
                if type(outcome) is _Coroutine:
                    # Drive the first step; a ``for`` loop ends without raising StopIteration.
                    for awaited in outcome.__await__():  # noqa: B007 - used after the loop
                        break
                    else:
                        if timed:
                            _record_duration(result, index, _clock() - started)
                        continue
                    rest: Awaitable[Any] | None = _resume_after(outcome, awaited)
                elif outcome is not None and inspect.isawaitable(outcome):
                    rest = outcome
                else:
                    rest = None
            except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
                _fail(result, index, exc, _clock() - started if timed else None)
                continue
            if rest is None:
                if timed:
                    _record_duration(result, index, _clock() - started)
                continue
            # It suspended: the listeners after it go on in another task; it ends here.
            listener.suspends = True
            if not timed:
                started = _clock()
            others = []
            if index + 1 < end:
                run = _run_from(index + 1, end, result, frame, default_timeout, timed, top=False)
                others.append(_spawn(run))
            try:
                await _finish(result, index, started, rest, default_timeout)
            except asyncio.CancelledError:
                for task in others:  # the emit was cancelled: see `_join`
                    task.cancel()
                raise
            await _join(others, result)
            break
    finally:
        if top:
            _context.current_frame.reset(token)
    return result


async def _fan_out(
    start: int,
    end: int,
    result: EmitResult,
    frame: _context.Frame,
    default_timeout: float | None,
    timed: bool,
) -> None:
    """Start the rest in tasks, all at once and in order, as ``asyncio.gather`` would.

    Each listener known to suspend gets a task of its own; each run of the others
    shares one task, where they run eagerly. Listeners under the default timeout
    share one timer.
    """
    listeners = result.listeners
    kernel = frame.kernel
    shared = _Deadline(default_timeout) if default_timeout else None
    tasks = []
    index = start
    while index < end:
        listener = listeners[index]
        if listener.suspends:
            if listener.timeout is None:
                deadline = shared
            else:
                deadline = _Deadline(listener.timeout) if listener.timeout else None
            task = _spawn(_own_task(index, result, kernel, deadline, timed))
            if deadline is not None:
                deadline.watch(task, index)
            tasks.append(task)
            index += 1
            continue
        stop = index + 1
        while stop < end and not listeners[stop].suspends:
            stop += 1
        run = _run_from(index, stop, result, frame, default_timeout, timed, top=False)
        tasks.append(_spawn(run))
        index = stop
    try:
        await _join(tasks, result)
    finally:
        if shared is not None:
            shared.close()


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
    index: int, result: EmitResult, kernel: Kernel, deadline: _Deadline | None, timed: bool
) -> None:
    """Run one listener in the task made for it."""
    listener = result.listeners[index]
    envelope = result.envelope
    # The task runs in a copy of the emitter's context: give it a frame of its own.
    _context.current_frame.set(_context.Frame(kernel, envelope, listener.plugin))
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
                    await _resume_after(outcome, awaited)
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
    if timed:
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


def _spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    # create_task runs it in a copy of the current context; it sets its own frame.
    return asyncio.get_running_loop().create_task(coroutine)


async def _join(tasks: list[asyncio.Task[Any]], result: EmitResult) -> None:
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


async def _finish(
    result: EmitResult,
    index: int,
    started: float,
    work: Awaitable[Any],
    default_timeout: float | None,
) -> None:
    """Wait for a listener that suspended in this task, under its timeout; record the end."""
    listener = result.listeners[index]
    timeout = listener.timeout if listener.timeout is not None else default_timeout
    try:
        if not timeout:
            await work
        else:
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    await work
            except TimeoutError:
                # The deadline's own cancellation, or the listener raising TimeoutError.
                if not deadline.expired():
                    raise
                _timed_out(result, index, _clock() - started)
                return
    except Exception as exc:  # noqa: BLE001 - isolating listener errors is the point
        _fail(result, index, exc, _clock() - started)
        return
    _record_duration(result, index, _clock() - started)


@types.coroutine
def _resume_after(
    coroutine: types.CoroutineType[Any, Any, Any], awaited: Any
) -> Generator[Any, Any, Any]:
    """Finish a coroutine that suspended on ``awaited`` in a first step run by hand.

    ``await coroutine`` refuses one that is suspended ("coroutine is being awaited
    already"). So hand the task what the coroutine yielded (an asyncio future it
    waits for, or None: one turn of the loop), then delegate to its iterator.
    """
    steps = coroutine.__await__()
    try:
        yield awaited
    except BaseException as exc:  # noqa: BLE001 - e.g. a cancellation: the coroutine decides
        return (yield from _relay(steps, exc))
    return (yield from steps)


def _relay(steps: Generator[Any, Any, Any], exc: BaseException) -> Generator[Any, Any, Any]:
    # Throw ``exc`` in, then pass every later step through by hand (rare: cancellations).
    try:
        value = steps.throw(exc)
    except StopIteration as done:
        return done.value
    while True:
        try:
            sent = yield value
        except BaseException as error:  # noqa: BLE001 - handed to the coroutine
            try:
                value = steps.throw(error)
            except StopIteration as done:
                return done.value
        else:
            try:
                value = steps.send(sent)
            except StopIteration as done:
                return done.value


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
