"""Fixtures of the notifier's tests: the stand-in blogger and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from webos.testing import import_path


@pytest.fixture(autouse=True)
def notifier_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``WEBOS_NOTIFIER_*`` setting from the developer's shell or .env; tiny backoff."""
    for name in list(os.environ):
        if name.startswith("WEBOS_NOTIFIER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # away from any .env file in the checkout
    monkeypatch.setenv("WEBOS_NOTIFIER_BACKOFF", "0.01")
    # The test server is local; a proxy configured on the machine must not intercept it.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture(scope="session")
def fake_blogger() -> ModuleType:
    """fake_blogger.py, the stand-in plugin beside these tests.

    Tests load it under the name ``blogger``, replacing the installed plugin.
    """
    return import_path(Path(__file__).with_name("fake_blogger.py"))
