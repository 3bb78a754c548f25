"""The notifier's listener: a published post becomes a webhook message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger
from pydantic import ValidationError

from webos import bus

from .settings import NotifierSettings
from .webhook import post_json

__all__ = ["announcement", "notify_post"]


def announcement(post: Mapping[str, Any]) -> str:
    """The chat line for a post: title, author and where to read it."""
    return f"New post: {post['title']} by {post['author']} (/blog/posts/{post['slug']})"


@bus.on("blogger:post:published")
async def notify_post(payload: Mapping[str, Any]) -> None:
    """Post the announcement to the configured webhook; log, never raise, on failure."""
    text = announcement(payload)
    try:
        settings = NotifierSettings()
    except ValidationError as exc:
        # Field and reason only: pydantic's full text repeats the input, which may hold a token.
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        logger.error(
            "Notifier: invalid WEBOS_NOTIFIER_* settings ({problems}); message dropped: {text}",
            problems=problems,
            text=text,
        )
        return
    if settings.webhook_url is None:
        logger.info(
            "Notifier: WEBOS_NOTIFIER_WEBHOOK_URL is not set; would have sent: {text}", text=text
        )
        return
    await post_json(
        str(settings.webhook_url),
        {"text": text},
        timeout=settings.timeout,
        attempts=settings.retries,
        backoff=settings.backoff,
    )
