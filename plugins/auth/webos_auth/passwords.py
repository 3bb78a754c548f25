"""argon2id password hashing, off the event loop.

Hashing deliberately costs tens of milliseconds of CPU, so it runs in a worker
thread rather than stalling every other request.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "needs_rehash", "verify_password"]

_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; ``None`` (no such account) never matches.

    Without an account the password is still checked, against a dummy hash, so an
    unknown email takes as long as a wrong password and timing does not tell them apart.
    """
    matched = await asyncio.to_thread(_verify, stored_hash, password)
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(stored_hash)


def _verify(stored_hash: str | None, password: str) -> bool:
    # The dummy is made on every path, so only the very first login pays for it,
    # whichever kind that login is.
    dummy = _dummy_hash()
    try:
        return _hasher.verify(stored_hash or dummy, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))
