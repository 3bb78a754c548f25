"""Context variables: which kernel, plugin and event the current code runs under.

The module-level ``bus`` has no kernel of its own. It looks up the kernel
running the current request, listener or CLI command here, so two kernels in
one process (as in tests) never see each other's listeners.

While listeners run, one `Frame` says which kernel dispatched, which envelope
they handle and which plugin's listener is running: an event emitted from
there gets that plugin as its source and that envelope as its parent.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bus import Envelope
    from .kernel import Kernel

__all__ = ["Frame", "current_correlation", "current_frame", "current_kernel", "current_plugin"]


class Frame:
    """The dispatch listeners run in.

    The dispatcher moves ``plugin`` along as it starts each listener; a listener
    that suspended goes on in a task of its own, remembered here with its plugin.
    """

    __slots__ = ("_tasks", "envelope", "kernel", "plugin")

    def __init__(self, kernel: Kernel, envelope: Envelope, plugin: str | None) -> None:
        self.kernel = kernel
        self.envelope = envelope
        self.plugin = plugin
        self._tasks: dict[asyncio.Task[Any], str] | None = None

    def follow(self, task: asyncio.Task[Any], plugin: str) -> None:
        if self._tasks is None:
            self._tasks = {}
        self._tasks[task] = plugin
        task.add_done_callback(self._tasks.pop)

    def running_plugin(self) -> str | None:
        """The plugin whose listener is running now."""
        if self._tasks:
            plugin = self._tasks.get(asyncio.current_task())  # type: ignore[arg-type]
            if plugin is not None:
                return plugin
        return self.plugin


#: Set by the web layer for each request and by ``kernel.activate()``.
current_kernel: ContextVar[Kernel | None] = ContextVar("webos_kernel", default=None)
#: Set while a plugin's route runs: the source of the events it emits.
current_plugin: ContextVar[str | None] = ContextVar("webos_plugin", default=None)
#: The correlation id of the HTTP request being served (``X-Correlation-ID``).
current_correlation: ContextVar[str | None] = ContextVar("webos_correlation", default=None)
#: Set while listeners run.
current_frame: ContextVar[Frame | None] = ContextVar("webos_frame", default=None)
