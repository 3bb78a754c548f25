"""The trace switches: what ``WEBOS_TRACE_EVENTS`` and ``WEBOS_TRACE_PLUGINS`` log.

- ``WEBOS_TRACE_EVENTS=1`` (or a name or pattern such as ``auth:*``): one line per
  emitted event, with its ids and each listener's time and outcome.
- ``WEBOS_TRACE_PLUGINS=1``: one line per hook call (each listener of an event,
  each implementation of a plain hook): the plugin, the function, the shape of
  the arguments (names and types, never values) and the time it took.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger

from .bus import EmitResult
from .events import hook_name

__all__ = ["shape", "trace_event", "trace_hook_call", "trace_listeners"]


def shape(value: Any, depth: int = 0) -> str:
    """The shape of a value for a log line: ``{title: str, tags: list[str]}``, no contents."""
    if isinstance(value, Mapping):
        if depth >= 2:
            return "{...}"
        return "{" + ", ".join(f"{k}: {shape(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        inner = sorted({shape(item, depth + 1) for item in value[:20]})
        return f"{type(value).__name__}[{' | '.join(inner)}]" if inner else type(value).__name__
    return type(value).__name__


def trace_event(result: EmitResult) -> None:
    envelope = result.envelope
    parts = []
    for item in result.results:
        took = f"{item.duration * 1000:.2f} ms" if item.duration is not None else "?"
        state = "ok" if item.ok else ("TIMEOUT" if item.timed_out else f"FAILED {item.error}")
        parts.append(f"{item.listener} {took} {state}")
    logger.info(
        "TRACE {} [{}] source={} parent={} correlation={} depth={} -> {}",
        envelope.name,
        envelope.id,
        envelope.source,
        envelope.parent_id,
        envelope.correlation_id,
        envelope.depth,
        "; ".join(parts) or "no listeners",
    )


def trace_listeners(result: EmitResult) -> None:
    envelope = result.envelope
    payload_shape = shape(envelope.payload)
    for listener, item in zip(result.listeners, result.results, strict=True):
        args = []
        if listener.wants_payload:
            args.append(f"payload={payload_shape}")
        if listener.wants_event:
            args.append("event=Envelope")
        trace_hook_call(
            listener.plugin,
            getattr(listener.function, "__qualname__", listener.name),
            hook_name(envelope.name),
            ", ".join(args),
            item.duration,
            "ok" if item.ok else ("timed out" if item.timed_out else f"failed: {item.error}"),
        )


def trace_hook_call(
    plugin: str, function: str, hook: str, args: str, duration: float | None, outcome: str
) -> None:
    took = f"{duration * 1000:.3f} ms" if duration is not None else "?"
    logger.info(
        "PLUGIN TRACE {} {}({}) for hook {}: {} in {}", plugin, function, args, hook, outcome, took
    )
