"""Context variables: which kernel and plugin the current code runs under.

The module-level ``bus`` has no kernel of its own. It looks up the kernel
running the current request, listener or CLI command here, so two kernels in
one process (as in tests) never see each other's listeners.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kernel import Kernel

current_kernel: ContextVar[Kernel | None] = ContextVar("webos_kernel", default=None)
current_plugin: ContextVar[str | None] = ContextVar("webos_plugin", default=None)
