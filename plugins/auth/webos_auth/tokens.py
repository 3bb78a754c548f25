"""Access tokens: HS256 JWTs signed with a key every worker of a database shares.

The key is ``WEBOS_AUTH_SECRET`` when set. Otherwise the first worker to need
one generates it and stores it in ``auth_secret``, so tokens survive restarts
and any worker accepts a token another one issued.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import jwt
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from webos import Database

from .models import SECRET_ROW, AuthSecret
from .settings import AuthSettings

__all__ = ["auth_settings", "bearer_token", "issue_token", "read_token", "signing_key"]

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "email", "jti", "iat", "exp"]


@dataclass
class _Keyring:
    settings: AuthSettings
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    secret: str | None = None


# One keyring per app (each app owns one Database): settings are read when the
# app first needs them, and two apps in one process (as in tests) stay apart.
_keyrings: WeakKeyDictionary[Database, _Keyring] = WeakKeyDictionary()


def auth_settings(database: Database) -> AuthSettings:
    """The ``WEBOS_AUTH_*`` settings of the app that owns ``database``."""
    return _keyring(database).settings


def _keyring(database: Database) -> _Keyring:
    ring = _keyrings.get(database)
    if ring is None:
        try:
            settings = AuthSettings()
        except ValidationError as exc:
            raise RuntimeError(
                f"Invalid WEBOS_AUTH_* setting for the auth plugin: {exc}. Set "
                "WEBOS_AUTH_SECRET to 32 or more characters (or unset it to have one "
                "generated) and WEBOS_AUTH_TOKEN_TTL to a positive number of seconds."
            ) from None
        ring = _keyrings[database] = _Keyring(settings)
    return ring


async def signing_key(database: Database) -> str:
    """The key that signs and verifies tokens for ``database``'s app."""
    ring = _keyring(database)
    if ring.settings.secret is not None:
        return ring.settings.secret.get_secret_value()
    if ring.secret is None:
        # The lock keeps concurrent first requests of this process to one database
        # round trip; other processes are settled by the primary key in stored_secret.
        async with ring.lock:
            if ring.secret is None:
                ring.secret = await stored_secret(database, secrets.token_urlsafe(48))
    return ring.secret


async def stored_secret(database: Database, candidate: str) -> str:
    """The key stored in ``auth_secret``, storing ``candidate`` first if there is none."""
    async with database.session() as session:
        row = await session.get(AuthSecret, SECRET_ROW)
    return row.value if row is not None else await store_secret(database, candidate)


async def store_secret(database: Database, candidate: str) -> str:
    """Store ``candidate`` as the key; if another worker stored one first, return theirs."""
    async with database.session() as session:
        session.add(AuthSecret(id=SECRET_ROW, value=candidate))
        try:
            await session.commit()
        except IntegrityError:
            # The fixed primary key makes the slower of two racing workers fail here.
            await session.rollback()
        else:
            return candidate
        row = await session.get(AuthSecret, SECRET_ROW, populate_existing=True)
    if row is None:
        raise RuntimeError("auth_secret has no row right after a conflicting insert")
    return row.value


def issue_token(user_id: str, email: str, key: str, ttl: int) -> str:
    """A signed token for the account, valid for ``ttl`` seconds."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "email": email,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read_token(token: str, key: str) -> dict[str, Any] | None:
    """The claims of a well-signed, unexpired token carrying every claim we issue; else None."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": _REQUIRED_CLAIMS}
        )
    except jwt.InvalidTokenError:
        return None
    return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
