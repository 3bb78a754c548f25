"""Settings, read from ``WEBOS_*`` environment variables (and a ``.env`` file if present)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Settings(BaseSettings):
    """Every ``WEBOS_*`` setting of the kernel. Plugins read their own."""

    model_config = SettingsConfigDict(env_prefix="WEBOS_", env_file=".env", extra="ignore")

    #: Any SQLAlchemy async URL; SQLite in the working directory by default.
    database_url: str = "sqlite+aiosqlite:///./webos.db"
    #: Folder of local plugins (packages or modules).
    modules_dir: Path = Path("./modules")
    #: Any plugin failure is fatal instead of being logged and skipped.
    strict_plugins: bool = False
    #: Comma-separated plugin names never to load (built-ins included).
    disable_plugins: str = ""
    #: Comma-separated plugin names to load, and only those; unset loads all, empty loads none.
    load_plugins: str | None = None
    #: Seconds a listener may run before it is cancelled (per listener: @bus.on(timeout=)); 0: none.
    listener_timeout: float = Field(default=30.0, ge=0)
    #: Seconds a stopping kernel waits for events published in the background.
    shutdown_grace: float = Field(default=10.0, ge=0)
    #: How many events deep a chain of listeners emitting events may go.
    max_event_depth: int = Field(default=16, ge=1)
    #: Log every emitted event matching this name or pattern ("1" or "*": all), with timings.
    trace_events: str | None = None
    #: Log every hook call: plugin, function, the arguments' shape, the time it took.
    trace_plugins: bool = False
    #: The broker the bus runs on (``redis://host:6379/0``); unset: in-process.
    bus_url: str | None = None
    #: Prefix of every Redis key the bus uses.
    bus_prefix: str = "webos"
    #: Deliveries of one event to one listener before it goes to the dead-letter stream.
    max_deliveries: int = Field(default=5, ge=1)
    #: Approximate length each event's stream is trimmed to.
    bus_maxlen: int = Field(default=100_000, ge=100)
    #: Seconds an unacknowledged event waits before another consumer may claim it; keep it
    #: above WEBOS_LISTENER_TIMEOUT, or a slow listener's event is run twice at once.
    bus_visibility_timeout: float = Field(default=60.0, gt=0)
    #: Log level of the loguru sink ``webos serve`` installs.
    log_level: str = "INFO"

    @property
    def disabled(self) -> set[str]:
        return set(_names(self.disable_plugins))

    @property
    def allowed(self) -> set[str] | None:
        return None if self.load_plugins is None else set(_names(self.load_plugins))

    def blocks(self, name: str) -> str | None:
        """Why the plugin ``name`` is not to be loaded, or ``None`` if it is."""
        if name in self.disabled:
            return "disabled by WEBOS_DISABLE_PLUGINS"
        allowed = self.allowed
        if allowed is not None and name not in allowed:
            return "not listed in WEBOS_LOAD_PLUGINS"
        return None
