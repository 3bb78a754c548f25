"""Protecting a route is one line: ``user: CurrentUser`` (or ``Depends(require_user)``).

Who is logged in is decided by the ``webos_resolve_user`` hook: the first
plugin that returns a `User` for the request wins (the auth plugin does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

__all__ = ["CurrentUser", "User", "optional_user", "require_user"]


@dataclass(frozen=True)
class User:
    """The user making a request."""

    id: str
    email: str
    claims: dict[str, Any] = field(default_factory=dict)


async def optional_user(request: Request) -> User | None:
    """FastAPI dependency: the logged-in `User`, or ``None``."""
    cached = getattr(request.state, "webos_user", _UNSET)
    if cached is not _UNSET:
        return cached if isinstance(cached, User) else None
    kernel = request.app.state.kernel
    user = await kernel.call_first("webos_resolve_user", request=request)
    if user is not None and not isinstance(user, User):
        raise TypeError(f"webos_resolve_user returned {user!r}; return a webos.User or None")
    request.state.webos_user = user
    return user


async def require_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """FastAPI dependency: the logged-in `User`; 401 when nobody is logged in."""
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated: log in and send the credentials this app expects "
            "(with the auth plugin: POST /auth/login, then 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


_UNSET = object()

#: ``async def route(user: CurrentUser)``: the route answers 401 to anonymous callers.
CurrentUser = Annotated[User, Depends(require_user)]
