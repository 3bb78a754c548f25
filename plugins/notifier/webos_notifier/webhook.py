"""Posting one JSON message to a webhook: a timeout per attempt, bounded retries.

Only failures that another attempt may cure are retried: connection errors,
timeouts, 429 and 5xx answers. Every failure ends in a log line; nothing is
raised, so the caller (a bus listener) always returns normally.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from loguru import logger

__all__ = ["post_json", "public_url"]

# Worth another attempt: the server may be reachable, or less busy, a moment later.
_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why one attempt did not deliver."""

    outcome: str
    status: int | None
    transient: bool


def public_url(url: str) -> str:
    """``url`` fit for a log: no query string or fragment, no user:password.

    Webhook providers often put the token in the query string.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def post_json(
    url: str, body: dict[str, Any], *, timeout: float, attempts: int, backoff: float
) -> bool:
    """POST ``body`` to ``url`` until it is accepted (2xx) or ``attempts`` run out.

    Waits ``backoff`` seconds before the second attempt, doubling each time.
    Returns whether the message was delivered; failures are logged.
    """
    shown = public_url(url)
    # A client per message: announcements are rare, and a shared client would need
    # closing at shutdown and could not be shared between kernels on other loops.
    async with httpx.AsyncClient(timeout=timeout) as client:
        attempt = 0
        while True:
            attempt += 1
            failure = await _attempt(client, url, body)
            if failure is None:
                logger.debug("Notifier: delivered to {url}", url=shown)
                return True
            if not failure.transient or attempt >= attempts:
                logger.error(
                    "Notifier: could not deliver to webhook {url}: {outcome} "
                    "(status {status}, {attempt} attempt(s)); message dropped: {body}",
                    url=shown,
                    outcome=failure.outcome,
                    status=failure.status,
                    attempt=attempt,
                    body=body,
                )
                return False
            delay = backoff * 2 ** (attempt - 1)
            logger.warning(
                "Notifier: webhook {url} attempt {attempt}/{attempts} failed: {outcome} "
                "(status {status}); retrying in {delay:.2f} s",
                url=shown,
                attempt=attempt,
                attempts=attempts,
                outcome=failure.outcome,
                status=failure.status,
                delay=delay,
            )
            await asyncio.sleep(delay)


async def _attempt(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> _Failure | None:
    """One POST; ``None`` when the webhook accepted the message."""
    try:
        response = await client.post(url, json=body)
    except _TRANSIENT_ERRORS as exc:
        return _Failure(_describe(exc), None, transient=True)
    # The rest (an unsupported scheme, a malformed URL, ...) fails the same way every time.
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Failure(_describe(exc), None, transient=False)
    if response.is_success:
        return None
    status = response.status_code
    transient = status == 429 or status >= 500
    return _Failure(f"HTTP {status} {response.reason_phrase}".rstrip(), status, transient)


def _describe(exc: Exception) -> str:
    # Some httpx errors (a read timeout, for one) have an empty message.
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
