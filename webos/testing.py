"""pytest fixtures for testing WebOS and its plugins (registered through ``pytest11``).

- ``webos_settings``: `Settings` pointing at a SQLite file and a modules folder in ``tmp_path``.
- ``make_kernel``: builds an isolated kernel with exactly the plugins a test names.
- ``make_client``: an ``httpx.AsyncClient`` bound to a kernel's app, with the app started.
- ``log``: every loguru record logged during the test.
- ``register_and_login``: a fresh user through the auth plugin's routes; returns auth headers.

Async tests run on anyio's pytest plugin (``@pytest.mark.anyio``); WebOS runs on
asyncio, so define ``anyio_backend`` to return ``"asyncio"`` in your conftest.py.
Importing this module stays light: the web layer is imported inside the fixtures.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .kernel import Kernel
from .settings import Settings

if TYPE_CHECKING:
    import httpx
    from loguru import Message, Record

__all__ = [
    "log",
    "make_client",
    "make_kernel",
    "register_and_login",
    "require_service",
    "webos_settings",
]

MakeKernel = Callable[..., Kernel]
MakeClient = Callable[[Kernel], AbstractAsyncContextManager["httpx.AsyncClient"]]


@pytest.fixture
def webos_settings(tmp_path: Path) -> Settings:
    """Settings isolated in ``tmp_path``: a fresh SQLite file, an empty modules folder."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'webos.db'}",
        modules_dir=tmp_path / "modules",
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only option
    )


@pytest.fixture
def make_kernel(webos_settings: Settings) -> MakeKernel:
    """``make_kernel("auth", "blogger", plugins={"mine": module}, **settings)``.

    Loads exactly the named plugins (installed ones found by entry-point name,
    built-ins by name) plus the inline ``plugins``, which replace an installed
    plugin of the same name (a fake ``blogger``, say). Raises if a named plugin
    is missing or any plugin fails, unless ``allow_failures=True``.
    """

    def build(
        *names: str,
        plugins: Mapping[str, object] | None = None,
        allow_failures: bool = False,
        **overrides: Any,
    ) -> Kernel:
        inline = dict(plugins or {})
        fields = {"load_plugins": ",".join([*names, *inline]), **overrides}
        settings = webos_settings.model_copy(update=fields)
        kernel = Kernel(settings, plugins=inline).load()
        missing = [name for name in names if not any(r.name == name for r in kernel.records)]
        if missing:
            raise LookupError(
                f"make_kernel: no plugin named {', '.join(map(repr, missing))} was found; "
                "is its distribution installed (pip install -e ./path/to/plugin)?"
            )
        failed = [f"{r.name}: {r.error}" for r in kernel.records if r.status == "failed"]
        if failed and not allow_failures:
            raise AssertionError(
                "make_kernel: plugins failed to load (pass allow_failures=True to test that):\n"
                + "\n".join(failed)
            )
        return kernel

    return build


@pytest.fixture
def log() -> Iterator[list[Record]]:
    """Every loguru record (DEBUG and up) logged during the test: ``record["message"]``..."""
    from loguru import logger

    records: list[Record] = []

    def sink(message: Message) -> None:
        records.append(message.record)

    handler = logger.add(sink, level="DEBUG", format="{message}")
    try:
        yield records
    finally:
        logger.remove(handler)


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """``async with make_client(kernel) as client``: the app started, requests over ASGI."""

    @asynccontextmanager
    async def client_for(kernel: Kernel) -> AsyncIterator[httpx.AsyncClient]:
        import httpx

        from .app import create_app

        app = create_app(kernel)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://webos.test"
            ) as client:
                yield client

    yield client_for


async def register_and_login(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = "correct horse battery",  # noqa: S107 - a test fixture's password
) -> dict[str, str]:
    """Register a fresh user and log in; returns the ``Authorization`` header to send."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    registered = await client.post("/auth/register", json={"email": email, "password": password})
    if registered.status_code != 201:
        raise AssertionError(f"register failed: {registered.status_code} {registered.text}")
    login = await client.post("/auth/login", json={"email": email, "password": password})
    if login.status_code != 200:
        raise AssertionError(f"login failed: {login.status_code} {login.text}")
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def require_service(name: str, host: str, port: int) -> None:
    """Skip the test when a server is absent; fail instead under ``WEBOS_REQUIRE_SERVICES=1``.

    CI sets that variable, so a missing server there is a failure, never a silent skip.
    """
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("WEBOS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and WEBOS_REQUIRE_SERVICES=1 (set by .ci/run) demands it")
    pytest.skip(reason)
