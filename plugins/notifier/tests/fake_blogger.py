"""A stand-in for the blogger plugin: it only declares the event the notifier hears.

The notifier never imports the blogger, so its tests do not need it either.
"""

from __future__ import annotations

from typing import TypedDict

from webos import event


class PostPublished(TypedDict):
    title: str
    slug: str
    author: str


@event("blogger:post:published")
def blogger_post_published(payload: PostPublished) -> None:
    """Emitted by the blogger after a post is stored and visible.

    - `title`: the post's title.
    - `slug`: the post's URL slug, as in ``/blog/posts/<slug>``.
    - `author`: who wrote it.
    """
