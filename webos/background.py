"""Events published in the background (``bus.publish``): tracked, and drained on stop."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable
from typing import Any

from loguru import logger

from .bus import Envelope

__all__ = ["Background"]


class Background:
    """The tasks a kernel runs without anyone awaiting them, drained when it stops."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], Envelope] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Awaitable[Any], envelope: Envelope, context: contextvars.Context) -> None:
        async def run() -> Any:
            return await work

        task = asyncio.get_running_loop().create_task(run(), context=context)
        self.track(task, envelope)

    def track(self, task: asyncio.Task[Any], envelope: Envelope) -> None:
        self._tasks[task] = envelope
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        envelope = self._tasks.pop(task, None)
        if task.cancelled() or envelope is None:
            return
        exc = task.exception()
        if exc is not None:  # listener errors are caught by dispatch; this is the kernel's
            logger.opt(exception=exc).error(
                "Background delivery of {} [{}] failed: {!r}", envelope.name, envelope.id, exc
            )

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for every task, then cancel and log the rest."""
        if not self._tasks:
            return
        waiting = list(self._tasks)
        logger.info("Waiting up to {} s for {} background event(s)", grace, len(waiting))
        _, still_running = await asyncio.wait(waiting, timeout=grace or None)
        for task in still_running:
            envelope = self._tasks.get(task)
            logger.warning(
                "Cancelled after the {} s shutdown grace: background delivery of {} [{}]",
                grace,
                envelope.name if envelope else "?",
                envelope.id if envelope else "?",
            )
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=1)
