"""Context variables: which kernel, plugin and event the current code runs under.

The module-level ``bus`` has no kernel of its own. It looks up the kernel
running the current request, listener or CLI command here, so two kernels in
one process (as in tests) never see each other's listeners.

While listeners run, a `Frame` says which kernel dispatched, which event they
handle and which plugin's listener is running: an event emitted from there
gets that plugin as its source and that event as its parent.
"""

from __future__ import annotations

import operator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterator, Sequence

    from .bus import Envelope, Listener
    from .kernel import Kernel

__all__ = [
    "EXPIRED",
    "HANDLED",
    "RUNNING",
    "Frame",
    "current_correlation", "current_frame", "current_kernel", "current_plugin",
]


#: A frame's timeout state: running, cancelled by its timer, cancellation handled.
RUNNING, EXPIRED, HANDLED = 0, 1, 2


class Frame:
    """What a task running listeners of one event holds: which event, which listener.

    The emitting task's frame is the `EmitResult` itself; a task the dispatcher
    starts for listeners after one that suspended gets a frame of its own.

    ``rest`` is the iterator the task's dispatch loop takes its listeners from,
    ``end`` the index after the last of them: the one running is found from what
    is left, so the loop keeps no count. While a listener that suspended is
    finished under its timeout, ``task``, ``cancelling`` and ``started`` say
    which task its timer cancels, and since when.
    """

    # Class-level defaults: the emit path sets only what it must.
    _index = -1
    expired = RUNNING
    kernel: Kernel
    listeners: Sequence[Listener]
    rest: Iterator[Any]
    end: int
    task: asyncio.Task[Any]
    cancelling: int
    started: float

    if TYPE_CHECKING:

        @property
        def envelope(self) -> Envelope: ...

    @property
    def index(self) -> int:
        """The index in ``listeners`` of the listener running now."""
        if self._index >= 0:
            return self._index
        return self.end - operator.length_hint(self.rest) - 1

    @property
    def plugin(self) -> str:
        """The plugin of the listener running now."""
        return self.listeners[self.index].plugin

    def stop(self) -> int:
        """End the task's loop with the listener running now, and return its index."""
        self._index = self.index
        for _ in self.rest:
            pass
        return self._index


#: Set by the web layer for each request and by ``kernel.activate()``.
current_kernel: ContextVar[Kernel | None] = ContextVar("webos_kernel", default=None)
#: Set while a plugin's route runs: the source of the events it emits.
current_plugin: ContextVar[str | None] = ContextVar("webos_plugin", default=None)
#: The correlation id of the HTTP request being served (``X-Correlation-ID``).
current_correlation: ContextVar[str | None] = ContextVar("webos_correlation", default=None)
#: Set while listeners run.
current_frame: ContextVar[Frame | None] = ContextVar("webos_frame", default=None)
