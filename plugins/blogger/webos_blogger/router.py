"""The ``/blog`` routes: publish a post, list posts, read one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from webos import CurrentUser, User, bus, db_session

from .models import Post
from .slugs import MAX_SLUG, SLUG_SHAPE, free_slug, slugify

__all__ = ["router"]

router = APIRouter(prefix="/blog", tags=["blog"])

Session = Annotated[AsyncSession, Depends(db_session)]

# Two authors publishing the same title at once can both pick the same free
# slug; the unique index refuses one, which then picks again.
_SLUG_ATTEMPTS = 5


class NewPost(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)
    slug: str | None = Field(default=None, max_length=MAX_SLUG)

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, title: str) -> str:
        title = title.strip()
        if not title:
            raise ValueError("the title is blank; give the post a title")
        return title

    @field_validator("slug")
    @classmethod
    def _slug_shape(cls, slug: str | None) -> str | None:
        if slug is not None and not SLUG_SHAPE.fullmatch(slug):
            raise ValueError(
                f"{slug!r} is not a slug: use lowercase letters, digits and single "
                "hyphens, like 'my-first-post', or leave it out to have one made from the title"
            )
        return slug


class PostOut(BaseModel):
    id: int
    title: str
    slug: str
    body: str
    author: str
    author_id: str
    published_at: datetime

    @classmethod
    def of(cls, post: Post) -> PostOut:
        return cls(
            id=post.id,
            title=post.title,
            slug=post.slug,
            body=post.body,
            author=post.author_email,
            author_id=post.author_id,
            published_at=post.published_at,
        )


@router.post("/posts", status_code=status.HTTP_201_CREATED)
async def publish(body: NewPost, user: CurrentUser, session: Session) -> PostOut:
    """Publish a post as the logged-in user. 409 if an explicit slug is taken."""
    for _ in range(_SLUG_ATTEMPTS):
        slug = body.slug or await _free_slug(session, slugify(body.title))
        post = _new_post(body, slug, user)
        session.add(post)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            if body.slug is not None:
                raise HTTPException(
                    status.HTTP_409_CONFLICT,
                    f"A post with the slug {slug!r} already exists; choose another slug "
                    "or leave it out to have a free one made from the title",
                ) from None
            continue
        # Only now is the post visible to others, so only now may listeners hear of it.
        await bus.emit(
            "blogger:post:published",
            {"title": post.title, "slug": post.slug, "author": post.author_email},
        )
        return PostOut.of(post)
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        "Could not find a free slug for this title while other posts were being "
        "published; retry, or pass an explicit slug",
    )


@router.get("/posts")
async def list_posts(
    session: Session,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PostOut]:
    """Posts, newest first."""
    query = (
        select(Post).order_by(Post.published_at.desc(), Post.id.desc()).limit(limit).offset(offset)
    )
    return [PostOut.of(post) for post in await session.scalars(query)]


@router.get("/posts/{slug}")
async def read_post(slug: str, session: Session) -> PostOut:
    """One post by its slug."""
    post = await session.scalar(select(Post).where(Post.slug == slug))
    if post is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No post with the slug {slug!r}")
    return PostOut.of(post)


def _new_post(body: NewPost, slug: str, user: User) -> Post:
    return Post(
        title=body.title, slug=slug, body=body.body, author_email=user.email, author_id=user.id
    )


async def _free_slug(session: AsyncSession, base: str) -> str:
    # A slug of [a-z0-9-] holds no LIKE wildcards, so it needs no escaping.
    taken = await session.scalars(
        select(Post.slug).where(or_(Post.slug == base, Post.slug.like(f"{base}-%")))
    )
    return free_slug(base, taken)
