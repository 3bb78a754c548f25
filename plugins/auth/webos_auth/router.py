"""The ``/auth`` routes: register, log in, who am I, log out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from webos import CurrentUser, bus, db_session, get_database

from .models import AuthUser, RevokedToken
from .passwords import hash_password, needs_rehash, verify_password
from .tokens import auth_settings, issue_token, signing_key

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])

Session = Annotated[AsyncSession, Depends(db_session)]

MIN_PASSWORD = 8
# argon2 takes any length; the cap only stops multi-megabyte bodies from reaching it.
MAX_PASSWORD = 1024
#: Said for a wrong password and an unknown email alike, so neither is revealed.
INVALID_CREDENTIALS = "Invalid email or password"
FAILURE_REASON = "invalid_credentials"

# Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is
# for a confirmation email to prove, not a regular expression.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL_SHAPE.fullmatch(email):
        raise ValueError(f"{value!r} is not an email address; expected one like name@example.com")
    return email


Email = Annotated[str, AfterValidator(normalize_email)]


class Credentials(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class Registration(Credentials):
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class Account(BaseModel):
    id: str
    email: str


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token scheme, not a secret
    expires_in: int


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: Registration, session: Session) -> Account:
    """Create an account. 409 if the email is taken."""
    taken = HTTPException(
        status.HTTP_409_CONFLICT,
        f"An account with the email {body.email!r} already exists; log in at POST /auth/login",
    )
    # Checked first so a duplicate does not pay for a hash; the unique index
    # still settles two registrations racing for one email.
    if await session.scalar(select(AuthUser.id).where(AuthUser.email == body.email)) is not None:
        raise taken
    account = AuthUser(email=body.email, password_hash=await hash_password(body.password))
    session.add(account)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise taken from None
    await bus.emit("auth:user:registered", {"user_id": str(account.id), "email": account.email})
    return Account(id=str(account.id), email=account.email)


@router.post("/login")
async def login(body: Credentials, request: Request, session: Session) -> AccessToken:
    """Exchange an email and password for a bearer token."""
    account = await session.scalar(select(AuthUser).where(AuthUser.email == body.email))
    matched = await verify_password(
        account.password_hash if account is not None else None, body.password
    )
    if account is None or not matched:
        await bus.emit("auth:login:failure", {"email": body.email, "reason": FAILURE_REASON})
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            INVALID_CREDENTIALS,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if needs_rehash(account.password_hash):
        account.password_hash = await hash_password(body.password)
        await session.commit()
    database = get_database(request)
    ttl = auth_settings(database).token_ttl
    token = issue_token(str(account.id), account.email, await signing_key(database), ttl)
    await bus.emit("auth:login:success", {"user_id": str(account.id), "email": account.email})
    return AccessToken(access_token=token, expires_in=ttl)


@router.get("/me")
async def me(user: CurrentUser) -> Account:
    """The account the bearer token belongs to."""
    return Account(id=user.id, email=user.email)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, session: Session) -> None:
    """Revoke the bearer token used for this request."""
    jti, exp = user.claims.get("jti"), user.claims.get("exp")
    if not isinstance(jti, str) or not isinstance(exp, int):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "This request was not authenticated with a token from POST /auth/login; "
            "there is no token to revoke",
        )
    now = datetime.now(UTC)
    # Housekeeping: a revoked token past its expiry is refused anyway.
    await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    session.add(RevokedToken(jti=jti, expires_at=datetime.fromtimestamp(exp, UTC)))
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent logout with the same token revoked it and announced it.
        await session.rollback()
        return
    await bus.emit("auth:logout", {"user_id": user.id, "email": user.email})
