"""The auth and blogger flow on PostgreSQL (127.0.0.1:5432, trust auth), in a throwaway database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from webos import bus
from webos.testing import register_and_login, require_service

pytestmark = [pytest.mark.services, pytest.mark.anyio]

HOST, PORT = "127.0.0.1", 5432


class Spy:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    @bus.on("auth:login:failure")
    @bus.on("blogger:post:published")
    def record(self, payload: dict[str, Any], event: Any) -> None:
        self.seen.append((event.name, dict(payload)))


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    require_service("PostgreSQL", HOST, PORT)
    import asyncpg

    name = f"webos_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=HOST, port=PORT, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@{HOST}:{PORT}/{name}"
    finally:
        admin = await asyncpg.connect(host=HOST, port=PORT, user="postgres", database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_auth_and_blogger_on_postgres(
    make_kernel: Any, make_client: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBOS_AUTH_SECRET", raising=False)
    spy = Spy()
    kernel = make_kernel("auth", "blogger", plugins={"spy": spy}, database_url=postgres_url)
    async with make_client(kernel) as client:
        headers = await register_and_login(client, "pg@example.com")
        duplicate = {"email": "PG@example.com", "password": "whatever123"}
        assert (await client.post("/auth/register", json=duplicate)).status_code == 409
        wrong = {"email": "pg@example.com", "password": "wrong password"}
        assert (await client.post("/auth/login", json=wrong)).status_code == 401

        for _ in range(2):
            published = await client.post(
                "/blog/posts", json={"title": "On Postgres", "body": "b"}, headers=headers
            )
            assert published.status_code == 201
        taken = {"title": "t", "body": "b", "slug": "on-postgres"}
        assert (await client.post("/blog/posts", json=taken, headers=headers)).status_code == 409
        posts = (await client.get("/blog/posts")).json()
        assert [post["slug"] for post in posts] == ["on-postgres-2", "on-postgres"]
        assert datetime.fromisoformat(posts[0]["published_at"]).utcoffset() == timedelta(0)

    # A second app on the same database (a restart) accepts the token: the key is stored.
    async with make_client(make_kernel("auth", "blogger", database_url=postgres_url)) as again:
        assert (await again.get("/auth/me", headers=headers)).json()["email"] == "pg@example.com"
        assert (await again.post("/auth/logout", headers=headers)).status_code == 204
        assert (await again.get("/auth/me", headers=headers)).status_code == 401

    assert spy.seen == [
        ("auth:login:failure", {"email": "pg@example.com", "reason": "invalid_credentials"}),
        (
            "blogger:post:published",
            {"title": "On Postgres", "slug": "on-postgres", "author": "pg@example.com"},
        ),
        (
            "blogger:post:published",
            {"title": "On Postgres", "slug": "on-postgres-2", "author": "pg@example.com"},
        ),
    ]
