"""The notifier's settings, read from ``WEBOS_NOTIFIER_*`` environment variables.

They are read on every event rather than once at import, so a changed
environment (or a test's ``monkeypatch``) takes effect without a restart.
"""

from __future__ import annotations

from pydantic import Field, HttpUrl, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["NotifierSettings"]


class NotifierSettings(BaseSettings):
    """Where and how persistently to deliver announcements."""

    # Same sources as the kernel's own settings: the environment, then a .env file.
    model_config = SettingsConfigDict(env_prefix="WEBOS_NOTIFIER_", env_file=".env", extra="ignore")

    #: The webhook to post to; unset (or empty) only logs what would be sent.
    webhook_url: HttpUrl | None = None
    #: Seconds to wait for the webhook on each attempt.
    timeout: float = Field(default=5.0, gt=0)
    #: Attempts in total, the first included (so 1 means no retry).
    retries: int = Field(default=3, ge=1)
    #: Seconds before the second attempt; doubled before each later one.
    backoff: float = Field(default=0.5, ge=0)

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `WEBOS_NOTIFIER_WEBHOOK_URL=` in a .env file or a shell means "off", not a bad URL.
        return None if value == "" else value
