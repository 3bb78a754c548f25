"""Who is making a request: the kernel asks every plugin, and this one reads bearer tokens."""

from __future__ import annotations

from fastapi import Request

from webos import User, get_database, hookimpl

from .models import AuthUser, RevokedToken
from .tokens import bearer_token, read_token, signing_key

__all__ = ["webos_resolve_user"]


@hookimpl
async def webos_resolve_user(request: Request) -> User | None:
    """The account behind a valid, unrevoked ``Authorization: Bearer`` token, else None.

    The token's claims go along in `User.claims`; ``POST /auth/logout`` reads
    the ``jti`` and ``exp`` it revokes from there.
    """
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    database = get_database(request)
    claims = read_token(token, await signing_key(database))
    if claims is None or not str(claims["sub"]).isdigit():
        return None
    async with database.session() as session:
        if await session.get(RevokedToken, claims["jti"]) is not None:
            return None
        # Loading the account makes a token die with its account.
        account = await session.get(AuthUser, int(claims["sub"]))
    if account is None:
        return None
    return User(id=str(account.id), email=account.email, claims=claims)
