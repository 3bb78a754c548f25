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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bus import Envelope
    from .kernel import Kernel

__all__ = ["Frame", "current_correlation", "current_frame", "current_kernel", "current_plugin"]


class Frame:
    """The dispatch listeners run in: the kernel, the event, the running listener's plugin.

    The dispatcher moves ``plugin`` along as it starts each listener in a task; a
    task of its own (for a listener that suspends) gets a frame of its own.
    """

    __slots__ = ("envelope", "kernel", "plugin")

    def __init__(self, kernel: Kernel, envelope: Envelope, plugin: str | None) -> None:
        self.kernel = kernel
        self.envelope = envelope
        self.plugin = plugin


#: Set by the web layer for each request and by ``kernel.activate()``.
current_kernel: ContextVar[Kernel | None] = ContextVar("webos_kernel", default=None)
#: Set while a plugin's route runs: the source of the events it emits.
current_plugin: ContextVar[str | None] = ContextVar("webos_plugin", default=None)
#: The correlation id of the HTTP request being served (``X-Correlation-ID``).
current_correlation: ContextVar[str | None] = ContextVar("webos_correlation", default=None)
#: Set while listeners run.
current_frame: ContextVar[Frame | None] = ContextVar("webos_frame", default=None)
