"""The transport seam: how an emitted event reaches its listeners.

Everything above this seam (validation, envelopes, the emit result) is the same
whichever transport runs. `InProcessTransport` hands the envelope straight to the
local dispatcher; a broker-backed transport would publish it and let the
dispatcher of whichever process consumes it run the listeners.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .bus import EmitResult, Envelope

#: Runs the local listeners of one event and reports how each went.
Deliver = Callable[["Envelope"], Awaitable["EmitResult"]]

__all__ = ["Deliver", "InProcessTransport", "Transport"]


class Transport(Protocol):
    """What the bus needs from a transport."""

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering; ``deliver`` runs this process's listeners for one envelope."""

    def send(self, envelope: Envelope) -> Awaitable[EmitResult]:
        """Hand one validated envelope over for delivery; await it for the outcome."""

    async def stop(self) -> None:
        """Stop delivering and release resources."""


class InProcessTransport:
    """Delivers every event in the emitting process, awaiting all listeners."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def send(self, envelope: Envelope) -> Awaitable[EmitResult]:
        if self._deliver is None:
            raise RuntimeError("InProcessTransport.send() called before start()")
        return self._deliver(envelope)

    async def stop(self) -> None:
        self._deliver = None
