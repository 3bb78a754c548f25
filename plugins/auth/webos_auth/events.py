"""The events the auth plugin emits. None of them ever carries a password or a token."""

from __future__ import annotations

from typing import TypedDict

from webos import event


class UserRegistered(TypedDict):
    user_id: str
    email: str


class LoginSucceeded(TypedDict):
    user_id: str
    email: str


class LoginFailed(TypedDict):
    email: str
    reason: str


class LoggedOut(TypedDict):
    user_id: str
    email: str


@event("auth:user:registered")
def auth_user_registered(payload: UserRegistered) -> None:
    """Emitted by the auth plugin after `POST /auth/register` has stored a new account.

    - `user_id`: the new account's id, as `webos.User.id` will carry it.
    - `email`: the account's email, normalized (trimmed, lowercase).
    """


@event("auth:login:success")
def auth_login_success(payload: LoginSucceeded) -> None:
    """Emitted by the auth plugin when `POST /auth/login` accepts a password and issues a token.

    - `user_id`: the id of the account that logged in.
    - `email`: the account's email, normalized (trimmed, lowercase).
    """


@event("auth:login:failure")
def auth_login_failure(payload: LoginFailed) -> None:
    """Emitted by the auth plugin when `POST /auth/login` refuses the credentials.

    A wrong password and an unknown email give the same payload, so listeners
    (like callers) cannot learn whether an account exists.

    - `email`: the email that was tried, normalized (trimmed, lowercase).
    - `reason`: why the login failed; always `"invalid_credentials"` for now.
    """


@event("auth:logout")
def auth_logout(payload: LoggedOut) -> None:
    """Emitted by the auth plugin after `POST /auth/logout` has revoked the caller's token.

    - `user_id`: the id of the account that logged out.
    - `email`: the account's email.
    """
