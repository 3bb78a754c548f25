"""Shared by the kernel's tests (tests/) and the first-party plugins' tests (plugins/*/tests)."""

import os
import socket

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # WebOS runs on asyncio; anyio would also try trio where it is installed.
    return "asyncio"


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under WEBOS_REQUIRE_SERVICES=1 as in CI, fail) when a server is absent."""
    if service_available(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("WEBOS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and WEBOS_REQUIRE_SERVICES=1 demands it")
    pytest.skip(reason)
