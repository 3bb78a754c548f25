"""pluggy's markers for the ``webos`` project.

``@hookimpl`` is the pluggy way to listen: ``def auth_login_success(payload)``
in a plugin module implements the hook of ``auth:login:success``.
``@hookspec`` declares a plain (non-event) hook, as the kernel does for
``webos_resolve_user``.
"""

from __future__ import annotations

import pluggy

PROJECT = "webos"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
