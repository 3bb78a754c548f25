"""The database service against a real SQLite file."""

import sqlite3

import pytest
import webos_auth.models  # noqa: F401 - a plugin's tables, on Model.metadata
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.exc import OperationalError

from webos.database import Database, Model

pytestmark = pytest.mark.anyio


async def test_create_all_survives_another_process_creating_the_tables_first(tmp_path):
    # What `webos serve --workers 2` does on a new database: both workers check which
    # tables are missing, then both create them. Here the other one wins the race at
    # the worst moment: after this one's check, before its first CREATE.
    path = tmp_path / "race.db"
    other = create_engine(f"sqlite:///{path}")
    raced = []

    def other_worker_creates_them(metadata, connection, tables, **kw):
        if not raced:
            raced.append(sorted(table.name for table in tables))
            metadata.create_all(other, tables=tables)

    database = Database(f"sqlite:///{path}")
    event.listen(Model.metadata, "before_create", other_worker_creates_them)
    try:
        await database.create_all()
    finally:
        event.remove(Model.metadata, "before_create", other_worker_creates_them)
        await database.dispose()
    assert "auth_users" in raced[0]  # the race happened
    assert set(Model.metadata.tables) <= set(inspect(other).get_table_names())
    other.dispose()


async def test_create_all_raises_what_keeps_failing(tmp_path):
    path = tmp_path / "webos.db"
    sqlite3.connect(path).close()  # an empty database, opened read-only below
    database = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(OperationalError, match="readonly database"):
            await database.create_all()
    finally:
        await database.dispose()
