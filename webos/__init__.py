"""WebOS: a FastAPI web kernel whose plugins talk through an async event bus.

The bus and plugin core import cheaply; the web layer (`create_app`, the
database, route protection) is imported on first use, so ``webos plugins``
never loads the web server.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

from .bus import Bus, EmitResult, Envelope, ListenerResult, bus
from .events import EventSpec, event
from .exceptions import (
    DeclarationError,
    EventDepthError,
    EventNameError,
    InvalidPayloadError,
    NoKernelError,
    PluginError,
    UnknownEventError,
    WebOSError,
)
from .kernel import Kernel, PluginRecord
from .markers import hookimpl, hookspec
from .settings import Settings

if _TYPE_CHECKING:
    from .app import create_app
    from .database import Database, Model, UTCDateTime, db_session, get_database
    from .security import CurrentUser, User, optional_user, require_user

__all__ = [
    "Bus",
    "CurrentUser",
    "Database",
    "DeclarationError",
    "EmitResult",
    "Envelope",
    "EventDepthError",
    "EventNameError",
    "EventSpec",
    "InvalidPayloadError",
    "Kernel",
    "ListenerResult",
    "Model",
    "NoKernelError",
    "PluginError",
    "PluginRecord",
    "Settings",
    "UTCDateTime",
    "UnknownEventError",
    "User",
    "WebOSError",
    "__version__",
    "bus",
    "create_app",
    "db_session",
    "event",
    "get_database",
    "hookimpl",
    "hookspec",
    "optional_user",
    "require_user",
]

# The web layer, imported on first use (PEP 562).
_LAZY = {
    "create_app": "app",
    "Database": "database",
    "Model": "database",
    "db_session": "database",
    "get_database": "database",
    "UTCDateTime": "database",
    "CurrentUser": "security",
    "User": "security",
    "optional_user": "security",
    "require_user": "security",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'webos' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
