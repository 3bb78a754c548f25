"""Shared by the auth plugin's tests: no auth setting leaks in from the environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBOS_AUTH_SECRET", raising=False)
    monkeypatch.delenv("WEBOS_AUTH_TOKEN_TTL", raising=False)
