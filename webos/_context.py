"""Context variables: which kernel, plugin and event the current code runs under.

The module-level ``bus`` has no kernel of its own. It looks up the kernel
running the current request, listener or CLI command here, so two kernels in
one process (as in tests) never see each other's listeners.

While listeners run, one `Frame` says which kernel dispatched, which envelope
they handle and which plugin's listener is running: an event emitted from
there gets that plugin as its source and that envelope as its parent.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

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
    """One task's share of a dispatch: the kernel, the event, which listener runs.

    The dispatcher moves ``index`` along as it starts each listener. While a
    listener that suspended is finished under its timeout, ``task``,
    ``cancelling`` and ``started`` say which task its timer cancels, and when.
    """

    __slots__ = ("cancelling", "envelope", "expired", "index", "kernel", "listeners", "started", "task")

    def __init__(self, kernel: Kernel, envelope: Envelope, listeners: Sequence[Listener]) -> None:
        self.kernel = kernel
        self.envelope = envelope
        self.listeners = listeners
        self.index = 0
        self.expired = RUNNING
        self.task: asyncio.Task[Any]
        self.cancelling: int
        self.started: float

    @property
    def plugin(self) -> str:
        """The plugin of the listener running now."""
        return self.listeners[self.index].plugin


#: Set by the web layer for each request and by ``kernel.activate()``.
current_kernel: ContextVar[Kernel | None] = ContextVar("webos_kernel", default=None)
#: Set while a plugin's route runs: the source of the events it emits.
current_plugin: ContextVar[str | None] = ContextVar("webos_plugin", default=None)
#: The correlation id of the HTTP request being served (``X-Correlation-ID``).
current_correlation: ContextVar[str | None] = ContextVar("webos_correlation", default=None)
#: Set while listeners run.
current_frame: ContextVar[Frame | None] = ContextVar("webos_frame", default=None)
