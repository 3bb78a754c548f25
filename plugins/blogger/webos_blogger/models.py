"""The blogger plugin's table."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webos import Model, UTCDateTime

__all__ = ["Post"]


def _now() -> datetime:
    return datetime.now(UTC)


class Post(Model):
    """A published post. ``author_id`` is `webos.User.id`, whichever plugin issued it."""

    __tablename__ = "blogger_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    body: Mapped[str] = mapped_column(Text)
    author_email: Mapped[str] = mapped_column(String(254))
    author_id: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
