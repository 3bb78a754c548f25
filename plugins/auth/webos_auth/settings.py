"""``WEBOS_AUTH_*`` settings, read from the environment (and ``.env``, like the kernel's)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AuthSettings"]


class AuthSettings(BaseSettings):
    """Every setting of the auth plugin."""

    model_config = SettingsConfigDict(
        env_prefix="WEBOS_AUTH_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    #: Key that signs tokens. Unset: one is generated and stored in the database.
    #: HS256 wants at least 32 bytes of key (RFC 7518 3.2); PyJWT warns below that.
    secret: SecretStr | None = Field(default=None, min_length=32)
    #: Seconds a token stays valid after login.
    token_ttl: int = Field(default=3600, gt=0)
