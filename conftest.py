"""Shared by the kernel's tests (tests/) and the first-party plugins' tests (plugins/*/tests).

The fixtures themselves (make_kernel, make_client, ...) come from webos.testing,
the pytest plugin that ships with webos.
"""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # WebOS runs on asyncio; anyio would also try trio where it is installed.
    return "asyncio"
