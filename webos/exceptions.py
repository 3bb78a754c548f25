"""Every error WebOS raises on purpose.

    WebOSError
    ├── EventNameError        a malformed event name (at declaration or ``@bus.on`` time)
    ├── DeclarationError      an event declared twice, or two names mapping to one hook
    ├── UnknownEventError     emitting or listening to a name nobody declared
    ├── InvalidPayloadError   a payload that is not a JSON mapping or fails its schema
    ├── EventDepthError       listeners emitting events from listeners, past the depth limit
    ├── NoKernelError         ``bus.emit`` called where no kernel is running
    └── PluginError           a plugin that could not be loaded (fatal in strict mode)

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DeclarationError",
    "EventDepthError",
    "EventNameError",
    "InvalidPayloadError",
    "NoKernelError",
    "PluginError",
    "UnknownEventError",
    "WebOSError",
]


class WebOSError(Exception):
    """Base class of every error WebOS raises on purpose."""


class EventNameError(WebOSError, ValueError):
    """An event name does not follow ``segment:segment[:segment...]``."""


class DeclarationError(WebOSError):
    """An event declaration conflicts with another one."""


class UnknownEventError(WebOSError, LookupError):
    """An event name that no loaded plugin declares."""

    def __init__(self, name: str, suggestion: str | None = None) -> None:
        self.name = name
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"Unknown event {name!r}: no loaded plugin declares it.{hint} "
            "Run `webos events` to list the declared events."
        )


class InvalidPayloadError(WebOSError, ValueError):
    """A payload that cannot be emitted for an event."""

    def __init__(self, event: str, message: str, field: str | None = None) -> None:
        self.event = event
        self.field = field
        where = f" (field {field!r})" if field else ""
        super().__init__(f"Invalid payload for event {event!r}{where}: {message}")


class EventDepthError(WebOSError, RecursionError):
    """An event emitted from a chain of listeners deeper than ``WEBOS_MAX_EVENT_DEPTH``."""

    def __init__(self, name: str, depth: int, limit: int) -> None:
        self.name = name
        self.depth = depth
        self.limit = limit
        super().__init__(
            f"Event {name!r} would be {depth} levels deep in a chain of listeners emitting "
            f"events, past the limit of {limit}: a listener probably emits the event that "
            "triggered it (directly or through others) without a stop condition. Break the "
            "cycle, or raise WEBOS_MAX_EVENT_DEPTH if the chain is meant to be this long."
        )


class NoKernelError(WebOSError, RuntimeError):
    """The module-level ``bus`` was used where no kernel is running."""


class PluginError(WebOSError):
    """One or more plugins failed to load (raised in strict mode)."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = list(failures)
        lines = "\n".join(f"  - {name}: {error}" for name, error in self.failures)
        super().__init__(
            f"{len(self.failures)} plugin(s) failed to load:\n{lines}\n"
            "Fix them, disable them with WEBOS_DISABLE_PLUGINS=name, "
            "or run without strict mode (unset WEBOS_STRICT_PLUGINS)."
        )
