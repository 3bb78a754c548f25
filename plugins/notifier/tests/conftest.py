"""Fixtures of the notifier's tests: the stand-in blogger, captured logs, a clean environment."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    pass


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
    """fake_blogger.py, imported by path.

    Test folders are not packages (every plugin has a ``tests`` folder, and pytest
    runs with ``--import-mode=importlib``), so the module cannot be imported by name.
    Tests load it under the name ``blogger``, replacing the installed plugin.
    """
    name = "webos_notifier_tests_fake_blogger"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_blogger.py"))
    if spec is None or spec.loader is None:
        raise ImportError("cannot load fake_blogger.py")
    module = importlib.util.module_from_spec(spec)
    # Registered so that pydantic resolves the payload TypedDict's annotations.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
