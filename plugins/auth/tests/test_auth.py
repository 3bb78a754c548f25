"""The auth routes and their events, on a real SQLite file, with every auth event captured."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from webos_auth.models import AuthUser

from webos import Database, Kernel
from webos.testing import CaptureEvents, EventCapture, MakeKernel, register_and_login

PASSWORD = "correct horse battery"
GENERIC_401 = {"detail": "Invalid email or password"}


def seen(capture: EventCapture) -> list[tuple[str, dict[str, Any]]]:
    return list(zip(capture.names, capture.payloads, strict=True))


def of(capture: EventCapture, name: str) -> list[dict[str, Any]]:
    return [payload for seen, payload in seen(capture) if seen == name]


@pytest.fixture
def spy(capture_events: CaptureEvents) -> EventCapture:
    """Every auth event; made before the kernel, so make_kernel loads it."""
    return capture_events("auth:*")


@pytest.fixture
def kernel(make_kernel: MakeKernel, spy: EventCapture) -> Kernel:
    return make_kernel("auth")


async def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.anyio
async def test_register_login_me_logout_round_trip(
    kernel: Any, make_client: Any, spy: EventCapture
) -> None:
    async with make_client(kernel) as client:
        registered = await client.post(
            "/auth/register", json={"email": "  Ada@Example.COM ", "password": PASSWORD}
        )
        assert registered.status_code == 201
        account = registered.json()
        assert account == {"id": account["id"], "email": "ada@example.com"}

        logged_in = await login(client, "ADA@example.com")
        assert logged_in.status_code == 200
        body = logged_in.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == account["id"] and claims["email"] == "ada@example.com"
        assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0
        assert claims["exp"] - claims["iat"] == 3600
        headers = bearer(body["access_token"])

        assert (await client.get("/auth/me", headers=headers)).json() == account
        logged_out = await client.post("/auth/logout", headers=headers)
        assert logged_out.status_code == 204 and logged_out.content == b""

        assert (await client.get("/auth/me", headers=headers)).status_code == 401
        assert (await client.post("/auth/logout", headers=headers)).status_code == 401
        # Logging out revokes one token, not the account.
        again = (await login(client, "ada@example.com")).json()["access_token"]
        assert (await client.get("/auth/me", headers=bearer(again))).status_code == 200

    user = {"user_id": account["id"], "email": "ada@example.com"}
    assert seen(spy) == [
        ("auth:user:registered", user),
        ("auth:login:success", user),
        ("auth:logout", user),
        ("auth:login:success", user),
    ]
    assert PASSWORD not in json.dumps(seen(spy))
    assert body["access_token"] not in json.dumps(seen(spy))


@pytest.mark.anyio
async def test_wrong_password_and_unknown_email_look_the_same(
    kernel: Any, make_client: Any, spy: EventCapture
) -> None:
    async with make_client(kernel) as client:
        await register_and_login(client, "known@example.com", PASSWORD)
        wrong = await login(client, "known@example.com", "not the password")
        unknown = await login(client, "nobody@example.com", "not the password")

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == GENERIC_401
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong.headers.keys() == unknown.headers.keys()
    assert of(spy, "auth:login:failure") == [
        {"email": "known@example.com", "reason": "invalid_credentials"},
        {"email": "nobody@example.com", "reason": "invalid_credentials"},
    ]
    assert len(of(spy, "auth:login:success")) == 1
    assert "not the password" not in json.dumps(seen(spy))


@pytest.mark.anyio
async def test_duplicate_email_is_409(kernel: Any, make_client: Any, spy: EventCapture) -> None:
    async with make_client(kernel) as client:
        first = await client.post("/auth/register", json={"email": "a@b.io", "password": PASSWORD})
        again = await client.post(
            "/auth/register", json={"email": " A@B.io", "password": "another password"}
        )
    assert first.status_code == 201
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    assert len(of(spy, "auth:user:registered")) == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email", "not an email address"),
        ({"email": "a b@example.com", "password": PASSWORD}, "email", "not an email address"),
        ({"email": "ok@example.com", "password": "short"}, "password", "at least 8 characters"),
        ({"email": "ok@example.com"}, "password", "Field required"),
        ({"password": PASSWORD}, "email", "Field required"),
    ],
)
@pytest.mark.anyio
async def test_bad_registration_is_422(
    kernel: Any, make_client: Any, spy: EventCapture, body: dict[str, str], field: str, message: str
) -> None:
    async with make_client(kernel) as client:
        response = await client.post("/auth/register", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert message in error["msg"]
    assert seen(spy) == []


@pytest.mark.anyio
async def test_weak_hash_is_upgraded_at_login(
    kernel: Any, make_client: Any, webos_settings: Any
) -> None:
    hasher = PasswordHasher()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    database = Database(webos_settings.database_url)
    try:
        async with make_client(kernel) as client:
            await register_and_login(client, "old@example.com")
            async with database.session() as session:
                await session.execute(update(AuthUser).values(password_hash=weak))
                await session.commit()
            assert (await login(client, "old@example.com")).status_code == 200
        async with database.session() as session:
            upgraded = await session.scalar(select(AuthUser.password_hash))
    finally:
        await database.dispose()
    assert upgraded is not None and upgraded != weak
    assert not hasher.check_needs_rehash(upgraded)
    assert hasher.verify(upgraded, PASSWORD)
