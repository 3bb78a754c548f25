"""One audit line per authentication event, declared by the auth plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger

from webos import Envelope, bus

__all__ = ["logged_in", "logged_out", "login_failed", "user_registered"]


def _audit(sentence: str, event: Envelope) -> None:
    # The sentence is exactly what the docs promise; where it came from goes after it:
    # the event, its source, the chain it belongs to (the HTTP request's correlation
    # id) and, when a listener emitted it, the event that caused it.
    cause = f", parent {event.parent_id}" if event.parent_id else ""
    line = (
        f"{sentence} [event {event.id} from {event.source or 'unknown'}, "
        f"correlation {event.correlation_id}{cause}]"
    )
    extra = {
        "event_id": event.id,
        "event_source": event.source,
        "event_time": event.time.isoformat(),
        "correlation_id": event.correlation_id,
        "parent_id": event.parent_id,
    }
    # depth=1: the record names the listener, not this helper. No format arguments,
    # so braces in an email address stay literal.
    logger.bind(**extra).opt(depth=1).info(line)


@bus.on("auth:user:registered")
async def user_registered(payload: Mapping[str, Any], event: Envelope) -> None:
    _audit(f"AUDIT: User {payload['email']} registered.", event)


@bus.on("auth:login:success")
async def logged_in(payload: Mapping[str, Any], event: Envelope) -> None:
    _audit(f"AUDIT: User {payload['email']} has entered the system.", event)


@bus.on("auth:login:failure")
async def login_failed(payload: Mapping[str, Any], event: Envelope) -> None:
    _audit(f"AUDIT: Failed login for {payload['email']} ({payload['reason']}).", event)


@bus.on("auth:logout")
async def logged_out(payload: Mapping[str, Any], event: Envelope) -> None:
    _audit(f"AUDIT: User {payload['email']} logged out.", event)
