"""The transport seam: how an emitted event reaches its listeners.

Everything above this seam (validation, envelopes, the emit result) is the same
whichever transport runs. A transport is started with the kernel as its `Host`:
it asks the host which listeners an event has and has the host run some of them
for an envelope. `InProcessTransport` runs them all in the emitting process; a
broker-backed transport (`webos.redis_streams`) publishes the envelope and runs each
listener in whichever process consumes it.

A listener says how it wants events delivered (``@bus.on(..., delivery=...)``):

- ``"once"`` (the default): once across every process sharing the broker;
- ``"broadcast"``: in every process (cache invalidation, say);
- ``"local"``: only in the process that emitted it, never through the broker.

In one process the three are the same thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .bus import EmitResult, Envelope, Listener

__all__ = ["DELIVERIES", "Host", "InProcessTransport", "Transport"]

DELIVERIES = ("once", "broadcast", "local")


class Host(Protocol):
    """What a transport may ask of the kernel."""

    @property
    def events(self) -> Mapping[str, Any]:
        """The declared events, by name."""

    def listeners(self, name: str) -> Sequence[Listener]:
        """Every listener of event ``name``, in start order."""

    def run(self, envelope: Envelope, listeners: Sequence[Listener]) -> Awaitable[EmitResult]:
        """Run ``listeners`` for ``envelope`` in this process; the result says how each went."""


class Transport(Protocol):
    """What the bus needs from a transport."""

    async def start(self, host: Host) -> None:
        """Begin delivering events to ``host``'s listeners."""

    def send(self, envelope: Envelope) -> Awaitable[EmitResult]:
        """Hand one validated envelope over for delivery; await it for the outcome."""

    async def stop(self) -> None:
        """Stop delivering and release resources."""


class InProcessTransport:
    """Delivers every event in the emitting process, awaiting all listeners."""

    def __init__(self) -> None:
        self._host: Host | None = None

    async def start(self, host: Host) -> None:
        self._host = host

    def send(self, envelope: Envelope) -> Awaitable[EmitResult]:
        host = self._host
        if host is None:
            raise RuntimeError("InProcessTransport.send() called before start()")
        return host.run(envelope, host.listeners(envelope.name))

    async def stop(self) -> None:
        self._host = None
