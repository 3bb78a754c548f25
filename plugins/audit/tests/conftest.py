"""Fixtures of the audit plugin's tests: the stand-in auth plugin."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from webos.testing import import_path


@pytest.fixture(scope="session")
def fake_auth() -> ModuleType:
    """fake_auth.py, the stand-in plugin beside these tests.

    Tests load it under the name ``auth``, replacing the installed plugin.
    """
    return import_path(Path(__file__).with_name("fake_auth.py"))
