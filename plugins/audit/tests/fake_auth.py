"""A stand-in for the auth plugin: it only declares the events the audit plugin hears."""

from __future__ import annotations

from typing import TypedDict

from webos import event


class UserEvent(TypedDict):
    user_id: str
    email: str


class LoginFailed(TypedDict):
    email: str
    reason: str


@event("auth:user:registered")
def auth_user_registered(payload: UserEvent) -> None:
    """Emitted after a new account is stored."""


@event("auth:login:success")
def auth_login_success(payload: UserEvent) -> None:
    """Emitted after a user logs in."""


@event("auth:login:failure")
def auth_login_failure(payload: LoginFailed) -> None:
    """Emitted when a login is refused; `reason` says why."""


@event("auth:logout")
def auth_logout(payload: UserEvent) -> None:
    """Emitted after a user logs out."""
