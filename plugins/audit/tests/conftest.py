"""Fixtures of the audit plugin's tests: the stand-in auth plugin and captured logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    pass


@pytest.fixture(scope="session")
def fake_auth() -> ModuleType:
    """fake_auth.py, imported by path.

    Test folders are not packages (every plugin has a ``tests`` folder, and pytest
    runs with ``--import-mode=importlib``), so the module cannot be imported by name.
    Tests load it under the name ``auth``, replacing the installed plugin.
    """
    name = "webos_audit_tests_fake_auth"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_auth.py"))
    if spec is None or spec.loader is None:
        raise ImportError("cannot load fake_auth.py")
    module = importlib.util.module_from_spec(spec)
    # Registered so that pydantic resolves the payload TypedDicts' annotations.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
