"""Finishing a coroutine whose first step was run by hand.

The dispatcher runs a listener loop's first step itself, to see whether it
suspends (`webos.dispatch`). ``await`` refuses a coroutine that is already
suspended ("coroutine is being awaited already"); `resume_after` is what awaits
it instead, from where it stopped.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any, cast

__all__ = ["resume_after"]

_Generator = types.GeneratorType


@types.coroutine
def resume_after(
    coroutine: Coroutine[Any, Any, Any] | Generator[Any, Any, Any], awaited: Any
) -> Generator[Any, Any, Any]:
    """Finish a coroutine that suspended on ``awaited`` in a first step run by hand.

    ``await coroutine`` refuses one that is suspended ("coroutine is being awaited
    already"). So hand the task what the coroutine yielded (an asyncio future it
    waits for, or None: one turn of the loop), then delegate to its iterator. (A
    generator-based coroutine is its own iterator.)
    """
    if type(coroutine) is _Generator:
        steps = cast("Generator[Any, Any, Any]", coroutine)
    else:
        steps = cast("Coroutine[Any, Any, Any]", coroutine).__await__()
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
