"""The bus across processes and hosts, on Redis Streams (``WEBOS_BUS_URL=redis://...``).

Layout (``{p}`` is ``WEBOS_BUS_PREFIX``, ``webos`` by default):

- one stream per event, ``{p}:events:<event name>``; each entry is one envelope,
  flat fields: ``id``, ``name``, ``time`` (ISO 8601), ``source``, ``parent_id``,
  ``correlation_id``, ``depth``, ``payload`` (JSON), and ``target`` on a replay;
- one consumer group per ``"once"`` listener, named ``plugin:function``, on every
  stream it listens to; one consumer per process in each group. Groups fan out,
  consumers inside a group compete;
- ``{p}:dlq``, the dead letters: the entry's fields plus ``dlq_group``,
  ``dlq_stream``, ``dlq_entry``, ``dlq_deliveries``, ``dlq_error``, ``dlq_time``.

Delivery is at least once: an entry is acknowledged after its listener returns.
A failed or abandoned entry (its process died) stays pending; after
``WEBOS_BUS_VISIBILITY_TIMEOUT`` seconds a live consumer claims it and runs it
again. After ``WEBOS_MAX_DELIVERIES`` deliveries it goes to the DLQ with the
last error. ``"broadcast"`` listeners read every stream from where they start,
with no group and no acknowledgement (at most once per process); ``"local"``
listeners run in the emitting process and never see the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from .bus import EmitResult, Envelope, Listener
from .exceptions import WebOSError

if TYPE_CHECKING:
    from .transport import Host

__all__ = ["DeadLetters", "RedisTransport", "decode", "encode"]

_BLOCK_MS = 1000  # kept well under the socket timeout (redis-py #2807)
_SOCKET_TIMEOUT = 10.0
_BATCH = 100


class BrokerError(WebOSError):
    """The broker could not take an event (Redis unreachable, say)."""


def encode(envelope: Envelope, target: str | None = None) -> dict[str, str]:
    """An envelope as stream entry fields: plain strings, readable from any client."""
    fields = {
        "id": envelope.id,
        "name": envelope.name,
        "time": envelope.time.isoformat(),
        "source": envelope.source or "",
        "parent_id": envelope.parent_id or "",
        "correlation_id": envelope.correlation_id,
        "depth": str(envelope.depth),
        "payload": json.dumps(dict(envelope.payload), separators=(",", ":")),
    }
    if target:
        fields["target"] = target
    return fields


def decode(fields: Mapping[bytes | str, bytes | str]) -> Envelope:
    """The envelope in a stream entry; ``ValueError`` saying what is wrong with a bad one."""
    text = {_text(k): _text(v) for k, v in fields.items()}
    missing = [key for key in ("id", "name", "time", "payload") if not text.get(key)]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    try:
        payload = json.loads(text["payload"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    try:
        timestamp = datetime.fromisoformat(text["time"]).timestamp()
        depth = int(text.get("depth") or 0)
    except ValueError as exc:
        raise ValueError(f"bad time or depth: {exc}") from None
    return Envelope(
        text["name"],
        payload,
        text.get("source") or None,
        text.get("parent_id") or None,
        text.get("correlation_id") or None,
        depth,
        id=text["id"],
        timestamp=timestamp,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str) -> Any:
    """An asyncio Redis client (typed Any: redis-py's reply types are unions of everything)."""
    from redis.asyncio import BlockingConnectionPool, Redis

    # A blocking pool waits for a free connection instead of failing (redis-py #2517).
    pool = BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=_SOCKET_TIMEOUT, socket_timeout=_SOCKET_TIMEOUT
    )
    return Redis(connection_pool=pool)


class RedisTransport:
    """Publishes envelopes to Redis Streams and consumes them for this process's listeners."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "webos",
        max_deliveries: int = 5,
        maxlen: int = 100_000,
        visibility_timeout: float = 60.0,
        consumer: str | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_deliveries = max_deliveries
        self.maxlen = maxlen
        self.visibility_timeout = visibility_timeout
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.dlq = DeadLetters(self)
        self._redis: Any = None
        self._host: Host | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # group name -> (its listener, the streams it reads)
        self._groups: dict[str, tuple[Listener, list[str]]] = {}

    def stream(self, name: str) -> str:
        return f"{self.prefix}:events:{name}"

    @property
    def redis(self) -> Any:
        if self._redis is None:
            self._redis = connect(self.url)
        return self._redis

    async def start(self, host: Host) -> None:
        self._host = host
        broadcast: dict[str, list[Listener]] = {}
        for name in host.events:
            if name.startswith("kernel:"):
                continue  # each process's own start and stop: never through the broker
            for listener in host.listeners(name):
                if listener.delivery == "once":
                    _, streams = self._groups.setdefault(listener.name, (listener, []))
                    streams.append(self.stream(name))
                elif listener.delivery == "broadcast":
                    broadcast.setdefault(self.stream(name), []).append(listener)
        for group, (_, streams) in self._groups.items():
            for stream in streams:
                await self._create_group(stream, group)
        loop = asyncio.get_running_loop()
        for group, (listener, streams) in self._groups.items():
            self._tasks.append(loop.create_task(self._consume(group, listener, streams)))
        if self._groups:
            self._tasks.append(loop.create_task(self._reclaim()))
        if broadcast:
            # Where each stream ends now: events emitted from here on reach this process.
            positions = {stream: await self._last_entry(stream) for stream in broadcast}
            self._tasks.append(loop.create_task(self._broadcast(broadcast, positions)))
        logger.info(
            "Bus on Redis Streams ({}, prefix {!r}): consumer {}, {} group(s), "
            "{} broadcast stream(s)",
            self.url.split("@")[-1],
            self.prefix,
            self.consumer,
            len(self._groups),
            len(broadcast),
        )

    async def _create_group(self, stream: str, group: str, start: str = "$") -> None:
        """Make ``group`` on ``stream``; at "$" a new listener starts with events from now on."""
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(stream, group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # another process created it first: fine
                raise

    def send(self, envelope: Envelope) -> Awaitable[EmitResult]:
        return self._send(envelope)

    async def _send(self, envelope: Envelope) -> EmitResult:
        from redis.exceptions import RedisError

        host = self._host
        if host is None:
            raise RuntimeError("RedisTransport.send() called before start()")
        # Always published: listeners in other processes are not known here.
        try:
            await self.redis.xadd(
                self.stream(envelope.name), encode(envelope), maxlen=self.maxlen, approximate=True
            )
        except RedisError as exc:
            raise BrokerError(
                f"could not publish {envelope.name!r} to Redis at "
                f"{self.url.split('@')[-1]}: {exc}. Nothing was sent; try again once "
                "Redis is reachable."
            ) from exc
        local = [one for one in host.listeners(envelope.name) if one.delivery == "local"]
        return await host.run(envelope, local)

    async def stop(self) -> None:
        self._stopping = True
        # redis-py can turn a cancellation that lands mid-connect into a ConnectionError
        # (and so swallow it): the loops also watch ``_stopping``, and we cancel again.
        pending = set(self._tasks)
        for _ in range(5):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=2)
        for task in pending:
            logger.warning("Redis consumer task {} did not stop", task.get_name())
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)
            self._redis = None
        self._host = None

    # -- consuming ---------------------------------------------------------------------

    async def _consume(self, group: str, listener: Listener, streams: list[str]) -> None:
        """Read new entries for one group and run its listener on each."""
        from redis.exceptions import ResponseError

        failures = 0
        while not self._stopping:
            try:
                reply = await self.redis.xreadgroup(
                    group,
                    self.consumer,
                    dict.fromkeys(streams, ">"),
                    count=_BATCH,
                    block=_BLOCK_MS,
                )
                for stream, entries in reply or ():
                    name = _text(stream)
                    handled = await asyncio.gather(
                        *(
                            self._handle(group, listener, name, _text(entry), fields, 1)
                            for entry, fields in entries
                        )
                    )
                    await self._ack(name, group, [e for e in handled if e is not None])
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a consumer outlives any one failure
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # The stream went away (deleted, or a restarted Redis that keeps
                    # nothing): make the group again from the start of what it holds now.
                    with contextlib.suppress(Exception):
                        for stream in streams:
                            await self._create_group(stream, group, "0")
                    continue
                # Entries not acknowledged stay pending: claimed again, nothing lost.
                failures += 1
                await self._pause(f"consuming for {group}", exc, failures)

    async def _pause(self, doing: str, exc: BaseException, failures: int) -> None:
        delay = min(5.0, 0.1 * 2**failures)
        logger.warning("Error while {}: {!r}; retrying in {:.1f} s", doing, exc, delay)
        await asyncio.sleep(delay)

    async def _handle(
        self,
        group: str,
        listener: Listener,
        stream: str,
        entry: str,
        fields: Mapping[bytes | str, bytes | str] | None,
        deliveries: int,
    ) -> str | None:
        """Run one entry; the entry id when it is to be acknowledged, else None."""
        if fields is None:  # trimmed away while it was pending
            await self.dlq.add(
                group, stream, entry, {}, deliveries, "entry trimmed before it was handled"
            )
            return None
        try:
            envelope = decode(fields)
        except ValueError as exc:
            await self.dlq.add(group, stream, entry, fields, deliveries, f"bad message: {exc}")
            return None
        target = _text(fields.get(b"target") or fields.get("target") or "")
        if target and target != group:  # a replay meant for another listener
            return entry
        if self._host is None:
            return None
        result = await self._host.run(envelope, (listener,))
        if result.ok:
            return entry
        error = result.failed[0].error or "failed"
        if deliveries >= self.max_deliveries:
            await self.dlq.add(group, stream, entry, fields, deliveries, error)
        # Otherwise it stays pending: claimed and delivered again after the visibility timeout.
        return None

    async def _ack(self, stream: str, group: str, entries: list[str]) -> None:
        # Acknowledged only after the listener returned; one round trip per batch.
        if entries:
            await self.redis.xack(stream, group, *entries)

    async def _reclaim(self) -> None:
        """Claim what other consumers (or this one) left pending too long, and run it again."""

        idle_ms = int(self.visibility_timeout * 1000)
        failures = 0
        while not self._stopping:
            await asyncio.sleep(max(0.05, self.visibility_timeout / 2))
            try:
                for group, (listener, streams) in self._groups.items():
                    for stream in streams:
                        await self._reclaim_one(group, listener, stream, idle_ms)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the claimer outlives any one failure
                failures += 1
                await self._pause("claiming pending entries", exc, failures)

    async def _reclaim_one(self, group: str, listener: Listener, stream: str, idle_ms: int) -> None:
        cursor = "0-0"
        while True:
            # Not justid: that reply drops the cursor and the deleted ids (redis-py).
            reply = await self.redis.xautoclaim(
                stream, group, self.consumer, idle_ms, start_id=cursor, count=_BATCH
            )
            cursor = _text(reply[0])
            entries = reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            for entry in deleted:
                await self.dlq.add(
                    group, stream, _text(entry), {}, 0, "entry trimmed before it was handled"
                )
            for entry, fields in entries:
                entry_id = _text(entry)
                deliveries = await self._deliveries(stream, group, entry_id)
                if deliveries > self.max_deliveries:
                    await self.dlq.add(
                        group, stream, entry_id, fields or {}, deliveries - 1, "too many deliveries"
                    )
                    continue
                acked = await self._handle(group, listener, stream, entry_id, fields, deliveries)
                await self._ack(stream, group, [acked] if acked else [])
            if cursor in ("0-0", "0"):
                return

    async def _deliveries(self, stream: str, group: str, entry: str) -> int:
        pending = await self.redis.xpending_range(stream, group, min=entry, max=entry, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _last_entry(self, stream: str) -> str:
        last = await self.redis.xrevrange(stream, count=1)
        return _text(last[0][0]) if last else "0-0"

    async def _broadcast(
        self, streams: Mapping[str, Sequence[Listener]], positions: dict[str, str]
    ) -> None:
        """Every process runs broadcast listeners on every new entry (at most once, no ack)."""
        from redis.exceptions import RedisError

        failures = 0
        while not self._stopping:
            try:
                reply = await self.redis.xread(positions, count=_BATCH, block=_BLOCK_MS)
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                await self._pause("reading broadcast events", exc, failures)
                continue
            for stream, entries in reply or ():
                name = _text(stream)
                for entry, fields in entries:
                    positions[name] = _text(entry)
                    try:
                        envelope = decode(fields)
                    except ValueError as exc:
                        logger.error(
                            "Broadcast entry {} in {} skipped: {}", _text(entry), name, exc
                        )
                        continue
                    if self._host is not None:
                        await self._host.run(envelope, streams[name])


class DeadLetters:
    """The dead-letter stream: what ``webos dlq`` lists, replays and purges."""

    def __init__(self, transport: RedisTransport) -> None:
        self.transport = transport
        self.key = f"{transport.prefix}:dlq"

    async def add(
        self,
        group: str,
        stream: str,
        entry: str,
        fields: Mapping[bytes | str, bytes | str],
        deliveries: int,
        error: str,
    ) -> None:
        redis = self.transport.redis
        record = {_text(k): _text(v) for k, v in fields.items()}
        record.update(
            dlq_group=group,
            dlq_stream=stream,
            dlq_entry=entry,
            dlq_deliveries=str(deliveries),
            dlq_error=error[:2000],
            dlq_time=datetime.now(UTC).isoformat(),
        )
        # Recorded first, acknowledged second: a crash in between repeats, never loses.
        await redis.xadd(self.key, record)
        await redis.xack(stream, group, entry)
        logger.error(
            "Dead letter: {} entry {} for {} after {} deliveries: {}",
            stream,
            entry,
            group,
            deliveries,
            error,
        )

    async def entries(self) -> list[dict[str, str]]:
        rows = await self.transport.redis.xrange(self.key)
        return [{"dlq_id": _text(i), **{_text(k): _text(v) for k, v in f.items()}} for i, f in rows]

    async def replay(self, ids: Sequence[str] | None = None) -> list[str]:
        """Send dead letters back to the listener that failed them; ``None``: all of them."""
        replayed = []
        for row in await self.entries():
            if ids is not None and row["dlq_id"] not in ids:
                continue
            fields = {k: v for k, v in row.items() if not k.startswith("dlq_") and k != "target"}
            fields["target"] = row["dlq_group"]
            redis = self.transport.redis
            await redis.xadd(
                row["dlq_stream"], fields, maxlen=self.transport.maxlen, approximate=True
            )
            await redis.xdel(self.key, row["dlq_id"])
            replayed.append(row["dlq_id"])
        return replayed

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        redis = self.transport.redis
        if ids is None:
            count = int(await redis.xlen(self.key))
            await redis.delete(self.key)
            return count
        return int(await redis.xdel(self.key, *ids)) if ids else 0
