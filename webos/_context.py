"""Which kernel, plugin and event the current code runs under: one context variable.

The module-level ``bus`` has no kernel of its own. It looks up the kernel
running the current request, listener or CLI command here, so two kernels in
one process (as in tests) never see each other's listeners.

Outside listeners, a `Scope` says which kernel, which plugin's route and which
request (its correlation id). While listeners run, a `Frame` says which kernel
dispatched, which event they handle and which plugin's listener is running: an
event emitted from there gets that plugin as its source and that event as its
parent. Both live in `current`, so that the emit path reads one variable.
"""

from __future__ import annotations

import operator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Iterator, Sequence

    from .bus import Envelope, Listener
    from .kernel import Kernel

__all__ = [
    "EXPIRED",
    "HANDLED",
    "ROOT",
    "RUNNING",
    "Frame",
    "Scope",
    "current",
    "current_kernel",
    "enter",
]


#: A frame's timeout state: running, cancelled by its timer, cancellation handled.
RUNNING, EXPIRED, HANDLED = 0, 1, 2


class Frame:
    """What a task running listeners of one event holds: which event, which listener.

    The emitting task's frame is the `EmitResult` itself; a task the dispatcher
    starts for listeners after one that suspended gets a frame of its own.

    ``rest`` is the iterator the task's dispatch loop takes its listeners from,
    ``limit`` the index after the last of them: the one running is found from what
    is left, so the loop keeps no count. While a listener that suspended is
    finished under its timeout, ``task``, ``cancelling`` and ``started`` say
    which task its timer cancels, and since when.
    """

    # Class-level defaults: the emit path sets only what it must.
    _index = -1
    expired = RUNNING
    end = -1  # no end: up to the last listener
    kernel: Kernel
    listeners: Sequence[Listener]
    rest: Iterator[Any]
    task: asyncio.Task[Any]
    cancelling: int
    started: float

    if TYPE_CHECKING:

        @property
        def envelope(self) -> Envelope: ...

    @property
    def limit(self) -> int:
        """The index after the task's last listener (``end``, or all of them)."""
        return self.end if self.end >= 0 else len(self.listeners)

    @property
    def index(self) -> int:
        """The index in ``listeners`` of the listener running now."""
        if self._index >= 0:
            return self._index
        return self.limit - operator.length_hint(self.rest) - 1

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


class Scope:
    """Where code runs when no listener runs: which kernel, plugin route and request.

    Set by the web layer for each request (with its correlation id, from
    ``X-Correlation-ID``), while a plugin's route runs (the source of the events
    it emits), and by ``kernel.activate()``.
    """

    __slots__ = ("correlation_id", "kernel", "plugin")

    def __init__(
        self, kernel: Kernel | None, plugin: str | None = None, correlation_id: str | None = None
    ) -> None:
        self.kernel = kernel
        self.plugin = plugin
        self.correlation_id = correlation_id


#: Outside everything: no kernel, plugin or request.
ROOT = Scope(None)

#: The innermost of: a `Scope`, or the `Frame` of the listeners running now. One
#: variable, so that the emit path reads one.
current: ContextVar[Scope | Frame] = ContextVar("webos_scope", default=ROOT)


def current_kernel() -> Kernel | None:
    """The kernel of the request, listener or ``activate()`` block running now."""
    return current.get().kernel


def enter(kernel: Kernel | None = None, plugin: str | None = None) -> Token[Scope | Frame]:
    """Set a `Scope` like the current one, with ``kernel`` or ``plugin`` if given.

    Reset it with the token. In a listener, the scope keeps its kernel and its
    event's correlation id.
    """
    here = current.get()
    if isinstance(here, Scope):
        plugin, correlation_id = plugin or here.plugin, here.correlation_id
    else:
        correlation_id = here.envelope.correlation_id
    return current.set(Scope(kernel or here.kernel, plugin, correlation_id))
