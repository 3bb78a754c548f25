"""The web layer: ``create_app()`` builds the FastAPI app around a kernel.

The app owns the database and the kernel's life: at start it creates missing
tables and starts the kernel (``kernel:startup``); at a clean stop it emits
``kernel:shutdown`` and closes the database. Every loaded plugin's router is
mounted as the plugin defines it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, _context
from .database import Database
from .kernel import Kernel
from .log import configure_logging
from .settings import Settings

__all__ = ["create_app", "serve_app"]


def create_app(kernel: Kernel | None = None, *, settings: Settings | None = None) -> FastAPI:
    """A FastAPI app running ``kernel`` (a new one from ``settings`` if not given)."""
    kernel = kernel if kernel is not None else Kernel(settings)
    kernel.load()
    database = Database(kernel.settings.database_url)
    kernel.database = database

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.create_all()
        with kernel.activate():
            await kernel.start()
        try:
            yield
        finally:
            with kernel.activate():
                await kernel.stop()
            await database.dispose()

    app = FastAPI(title="WebOS", version=__version__, lifespan=lifespan)
    app.state.kernel = kernel
    app.state.database = database
    app.add_middleware(_KernelContext, kernel=kernel)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for name, router in kernel.routers():
        app.include_router(router, dependencies=[Depends(_as_plugin(name))])
    return app


def serve_app() -> FastAPI:
    """The app ``webos serve`` runs: settings from the environment, logs on stdout."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings=settings)


# FastAPI's 422 body echoes each invalid input; never a password or a token.
_SENSITIVE = ("password", "secret", "token")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    for error in errors:
        if any(word in str(part).lower() for part in error.get("loc", ()) for word in _SENSITIVE):
            error.pop("input", None)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _as_plugin(name: str) -> Callable[[], Awaitable[None]]:
    # Events emitted while a plugin's route runs carry that plugin as their source.
    async def as_plugin() -> None:
        _context.enter(plugin=name)

    return as_plugin


class _KernelContext:
    """ASGI middleware: the module-level ``bus`` dispatches through this app's kernel,
    and events emitted while serving a request carry its correlation id.

    The id comes from the request's ``X-Correlation-ID`` (or ``X-Request-ID``)
    header, or is made up; the response carries it back in ``X-Correlation-ID``.
    """

    def __init__(self, app: ASGIApp, kernel: Kernel) -> None:
        self.app = app
        self.kernel = kernel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            token = _context.current.set(_context.Scope(self.kernel))
            try:
                return await self.app(scope, receive, send)
            finally:
                _context.current.reset(token)
        correlation = _correlation_id(scope)
        token = _context.current.set(_context.Scope(self.kernel, None, correlation))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != _HEADER]
                message["headers"] = [*headers, (_HEADER, correlation.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _context.current.reset(token)


_HEADER = b"x-correlation-id"
_ACCEPTED = (_HEADER, b"x-request-id")


def _correlation_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name in _ACCEPTED:
            text: str = value.decode("latin-1").strip()
            # Only something safe to log and echo; anything else gets a fresh id.
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return uuid.uuid4().hex
