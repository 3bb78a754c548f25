"""Tokens of the auth plugin: expiry, forgery, revocation by deletion, and the signing key."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, select
from webos_auth.models import AuthSecret, AuthUser
from webos_auth.tokens import store_secret, stored_secret

from webos import Database
from webos.testing import register_and_login


@pytest.fixture
def kernel(make_kernel: Any) -> Any:
    return make_kernel("auth")


@pytest.mark.anyio
async def test_expired_token_is_refused(
    kernel: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBOS_AUTH_TOKEN_TTL", "2")
    async with make_client(kernel) as client:
        headers = await register_and_login(client)
        assert (await client.get("/auth/me", headers=headers)).status_code == 200
        token = headers["Authorization"].removeprefix("Bearer ")
        expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
        assert expiry - time.time() <= 2
        await asyncio.sleep(max(0.0, expiry - time.time()) + 0.1)
        assert (await client.get("/auth/me", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer " + jwt.encode({"sub": "1", "email": "x@y.io"}, "k" * 32, algorithm="HS256"),
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
@pytest.mark.anyio
async def test_bad_tokens_are_refused(kernel: Any, make_client: Any, authorization: str) -> None:
    async with make_client(kernel) as client:
        await register_and_login(client)
        response = await client.get("/auth/me", headers={"Authorization": authorization})
    assert response.status_code == 401


@pytest.mark.anyio
async def test_token_of_a_deleted_account_is_refused(
    kernel: Any, make_client: Any, webos_settings: Any
) -> None:
    async with make_client(kernel) as client:
        headers = await register_and_login(client, "gone@example.com")
        database = Database(webos_settings.database_url)
        try:
            async with database.session() as session:
                await session.execute(delete(AuthUser).where(AuthUser.email == "gone@example.com"))
                await session.commit()
        finally:
            await database.dispose()
        assert (await client.get("/auth/me", headers=headers)).status_code == 401


@pytest.mark.anyio
async def test_configured_secret_signs_tokens(
    kernel: Any, make_client: Any, webos_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s" * 40
    monkeypatch.setenv("WEBOS_AUTH_SECRET", secret)
    async with make_client(kernel) as client:
        headers = await register_and_login(client, "cfg@example.com")
    token = headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, secret, algorithms=["HS256"])["email"] == "cfg@example.com"
    database = Database(webos_settings.database_url)
    try:
        async with database.session() as session:
            assert await session.scalar(select(AuthSecret)) is None
    finally:
        await database.dispose()


@pytest.mark.anyio
async def test_generated_secret_is_shared_by_apps_and_survives_restarts(
    make_kernel: Any, make_client: Any
) -> None:
    # Both kernels get the same SQLite file: two workers, then a restart.
    async with make_client(make_kernel("auth")) as one, make_client(make_kernel("auth")) as two:
        headers = await register_and_login(one, "shared@example.com")
        assert (await two.get("/auth/me", headers=headers)).json()["email"] == "shared@example.com"
    async with make_client(make_kernel("auth")) as restarted:
        assert (await restarted.get("/auth/me", headers=headers)).status_code == 200


@pytest.mark.anyio
async def test_racing_workers_store_one_secret(webos_settings: Any) -> None:
    workers = [Database(webos_settings.database_url) for _ in range(3)]
    try:
        await workers[0].create_all()
        keys = await asyncio.gather(
            *(stored_secret(db, f"candidate-{i}" * 4) for i, db in enumerate(workers))
        )
        assert len(set(keys)) == 1
        assert await stored_secret(workers[1], "late-candidate" * 4) == keys[0]
        # The loser of the race: its insert conflicts, and it adopts the stored key.
        assert await store_secret(workers[2], "loser-candidate" * 4) == keys[0]
    finally:
        for db in workers:
            await db.dispose()
