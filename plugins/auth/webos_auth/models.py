"""The auth plugin's tables: accounts, revoked tokens and the generated signing key."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webos import Model, UTCDateTime

__all__ = ["SECRET_ROW", "AuthSecret", "AuthUser", "RevokedToken"]

#: The one row of ``auth_secret``; a fixed key is what lets racing workers collide.
SECRET_ROW = 1


def _now() -> datetime:
    return datetime.now(UTC)


class AuthUser(Model):
    """An account. ``email`` is stored normalized, so the unique index is case-insensitive."""

    __tablename__ = "auth_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class RevokedToken(Model):
    """A logged-out token, kept until it would have expired anyway."""

    __tablename__ = "auth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuthSecret(Model):
    """The generated signing key, shared by every worker on this database."""

    __tablename__ = "auth_secret"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
