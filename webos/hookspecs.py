"""The kernel's own hooks and events. They are always declared; no setting removes them."""

from __future__ import annotations

from typing import Any, TypedDict

from .events import event
from .markers import hookspec


class KernelStarted(TypedDict):
    plugins: list[str]


class KernelStopping(TypedDict):
    pass


@event("kernel:startup")
def kernel_startup(payload: KernelStarted) -> None:
    """Emitted by the kernel once every plugin has loaded and the app is ready to serve.

    Each process emits its own, to its own listeners only: it never crosses a broker.

    - `plugins`: the names of the plugins that loaded, in load order.
    """


@event("kernel:shutdown")
def kernel_shutdown(payload: KernelStopping) -> None:
    """Emitted by the kernel on a clean stop, before the database closes.

    Each process emits its own, to its own listeners only: it never crosses a broker.

    The payload is empty.
    """


@hookspec(firstresult=True)
def webos_resolve_user(request: Any) -> Any:
    """Return the `webos.User` making ``request``, or ``None`` if it is anonymous.

    The first plugin to return a user wins (the auth plugin implements it).
    May be ``async``. `webos.require_user` answers 401 when every
    implementation returns ``None``.
    """
