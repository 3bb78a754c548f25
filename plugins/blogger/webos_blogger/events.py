"""The events the blogger plugin emits."""

from __future__ import annotations

from typing import TypedDict

from webos import event


class PostPublished(TypedDict):
    title: str
    slug: str
    author: str


@event("blogger:post:published")
def blogger_post_published(payload: PostPublished) -> None:
    """Emitted by the blogger plugin after `POST /blog/posts` has stored a post.

    The post is committed before the event goes out, so a listener can already
    read it at `GET /blog/posts/{slug}`.

    - `title`: the post's title.
    - `slug`: the post's unique URL name, as in `/blog/posts/{slug}`.
    - `author`: the email of the user who published it.
    """
