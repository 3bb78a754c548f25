"""The database service: one SQLAlchemy async engine per app, shared by every plugin.

Plugins declare tables on `Model` (prefix table names with the plugin's name)
and get a session per request with ``Depends(db_session)``. ``WEBOS_DATABASE_URL``
takes any SQLAlchemy async URL; the default is a SQLite file, ``./webos.db``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from starlette.requests import Request

from . import _context
from .exceptions import WebOSError

__all__ = ["Database", "Model", "UTCDateTime", "db_session", "get_database"]

# Plain driver names people type, and the async driver WebOS installs for each.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


_CREATE_ATTEMPTS = 4


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    SQLite keeps no offset and hands back naive datetimes; PostgreSQL keeps it.
    Normalizing here makes ordering, comparisons and JSON output the same on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Model(DeclarativeBase):
    """Base class of every plugin's tables; the app creates missing tables at start."""


class Database:
    """An async engine and its session factory."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        parsed = make_url(url)
        if parsed.drivername in _ASYNC_DRIVERS:
            parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.url = parsed
        self.engine: AsyncEngine = create_async_engine(parsed, **engine_options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"<Database {self.url.render_as_string(hide_password=True)}>"

    async def create_all(self) -> None:
        """Create the tables of every imported `Model` subclass that does not exist yet.

        Processes that start together (``webos serve --workers N``, replicas) race:
        one may create a table between another's check and its ``CREATE``, which then
        fails ("already exists"). So a failed pass is tried again; the next finds the
        table made. An error that persists (a wrong URL, no permission) is raised.
        """
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(Model.metadata.create_all)
                return
            except DBAPIError:
                if attempt == _CREATE_ATTEMPTS:
                    raise
                await asyncio.sleep(0.05 * attempt)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def dispose(self) -> None:
        await self.engine.dispose()


def get_database(request: Request | None = None) -> Database:
    """The database of the app serving ``request``, or of the kernel running now."""
    kernel = request.app.state.kernel if request is not None else _context.current_kernel()
    database = getattr(kernel, "database", None)
    if not isinstance(database, Database):
        raise WebOSError(
            "no database here: get_database() works inside the app made by create_app() "
            "(in a request or a listener it runs)"
        )
    return database


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: ``session: AsyncSession = Depends(db_session)``."""
    async with get_database(request).session() as session:
        yield session
