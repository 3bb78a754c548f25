"""The WebOS bus on Redis Streams against FastStream's Redis Streams subscriber.

Both on the same Redis server, one after the other, each with a consumer in its own
process and the emitter in this one:

- ``webos``: a ``python -m webos worker`` process with a modules-dir plugin whose
  ``@bus.on("bench:ping")`` listener (delivery ``"once"``: a consumer group, acknowledged)
  records when each event arrives; here, a ``Kernel`` with ``bus_url`` set and one inline
  plugin declaring ``@event("bench:ping")`` emits with ``await kernel.bus.emit(...)``;
- ``faststream``: a process with a ``RedisBroker`` and
  ``@broker.subscriber(stream=StreamSub(..., group=..., consumer=...))`` (a consumer group,
  acknowledged), the same recording; here, ``await broker.publish(..., stream=...)``.

Each runs a warm-up, then N events in concurrent batches (``asyncio.gather`` of 100
emits) for throughput (from the first emit to the last event handled by the consumer),
then events one at a time with a short pause for latency (from just before the emit to
the listener running in the other process, ``time.time()`` on both sides). Consumers write
what they received (``n``, sent, received) to a file when a phase is complete. Every run
uses its own key prefix on Redis and deletes its keys at the end.

    python bench/bench_redis.py [--json bench/results.json] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import _report  # bench/_report.py, beside this script
import redis
from faststream.redis import RedisBroker
from loguru import logger

import webos
from webos import Kernel, Settings, event

EVENT = "bench:ping"
BATCH = 100
WARMUP = 500
IMPLS = ("webos", "faststream")
READY_TIMEOUT = 30.0
PHASE_TIMEOUT = 60.0

Emit = Callable[[int], Awaitable[Any]]

# -- the consumer processes --------------------------------------------------------------

# Shared by both consumers: keeps (n, sent, received) in memory and writes them all to
# BENCH_OUT (atomically) when the count reaches one of BENCH_MARKS, the ends of phases.
RECORDER = """\
import json
import os
import time

_OUT = os.environ["BENCH_OUT"]
_MARKS = {int(mark) for mark in os.environ["BENCH_MARKS"].split(",")}
_SEEN = []


def record(payload, received):
    _SEEN.append((payload["n"], payload["sent"], received))
    if len(_SEEN) in _MARKS:
        with open(_OUT + ".tmp", "w") as out:
            json.dump(_SEEN, out)
        os.replace(_OUT + ".tmp", _OUT)
"""

WEBOS_CONSUMER = f'''\
"""The benchmark's consumer: records when each bench:ping arrives."""

from webos import bus, event

{RECORDER}

@event("{EVENT}")
def bench_ping(payload) -> None:
    """Emitted by bench/bench_redis.py."""


@bus.on("{EVENT}")
async def on_ping(payload):
    record(payload, time.time())
'''

FASTSTREAM_CONSUMER = f'''\
"""The benchmark's consumer: records when each message arrives."""

import asyncio
import signal

from faststream.redis import RedisBroker, StreamSub


{RECORDER}

# No logger: FastStream's default logs two INFO lines per message, webos none.
broker = RedisBroker(os.environ["BENCH_REDIS_URL"], logger=None)


@broker.subscriber(
    stream=StreamSub(
        os.environ["BENCH_STREAM"], group="bench", consumer=f"bench-{{os.getpid()}}"
    )
)
async def on_ping(payload: dict) -> None:
    record(payload, time.time())


async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with broker:
        await broker.start()
        print("bench consumer ready", flush=True)
        await stop.wait()


asyncio.run(main())
'''


class Consumer:
    """A consumer process, its log file and the file it writes its records to."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], work: Path, ready: str):
        self.name = name
        self.out = work / f"{name}.json"
        self.log = work / f"{name}.log"
        self.ready = ready
        self._read: int | None = None  # mtime of the records file when last read
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT
            )

    def _died(self) -> RuntimeError:
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        return RuntimeError(f"{self.name} consumer exited ({self.process.returncode}):\n{tail}")

    async def started(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while self.ready not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise self._died()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} consumer not ready after {READY_TIMEOUT} s")
            await asyncio.sleep(0.05)

    async def records(self, count: int) -> list[tuple[int, float, float]]:
        """What the consumer received, once it has received ``count`` events."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        while True:
            # Read only when the file changed: parsing it while the consumer works would
            # take a core from it.
            changed = self.out.stat().st_mtime_ns if self.out.exists() else None
            if changed is not None and changed != self._read:
                self._read = changed
                records = json.loads(self.out.read_text())
                if len(records) >= count:
                    return [tuple(row) for row in records]
            if self.process.poll() is not None:
                raise self._died()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {count} events not received in {PHASE_TIMEOUT} s")
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def consumer_env(url: str, out: Path, marks: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBOS_", "BENCH_"))}
    env.update(BENCH_REDIS_URL=url, BENCH_OUT=str(out), BENCH_MARKS=",".join(map(str, marks)))
    return env


# -- the two sides: a consumer process, and ``emit(n)`` here ------------------------------


@asynccontextmanager
async def webos_side(
    url: str, prefix: str, work: Path, marks: list[int]
) -> AsyncIterator[tuple[Consumer, Emit]]:
    modules = work / "modules"
    modules.mkdir()
    (modules / "bench_consumer.py").write_text(WEBOS_CONSUMER)
    env = consumer_env(url, work / "webos.json", marks)
    env.update(
        WEBOS_BUS_URL=url,
        WEBOS_BUS_PREFIX=prefix,
        WEBOS_MODULES_DIR=str(modules),
        WEBOS_LOAD_PLUGINS="bench_consumer",
        WEBOS_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'worker.db'}",
    )
    args = [sys.executable, "-m", "webos", "worker"]
    consumer = Consumer("webos", args, env, work, "WebOS kernel started")
    try:
        await consumer.started()
        emitter = types.ModuleType("webos_bench_emitter")

        @event(EVENT)
        def bench_ping(payload: Any) -> None:
            """Emitted by the benchmark."""

        bench_ping.__module__ = emitter.__name__
        emitter.bench_ping = bench_ping  # type: ignore[attr-defined]
        empty = work / "empty"
        empty.mkdir()
        settings = Settings(
            modules_dir=empty,
            load_plugins=None,
            disable_plugins="",
            strict_plugins=True,
            bus_url=url,
            bus_prefix=prefix,
            _env_file=None,  # type: ignore[call-arg]
        )
        async with Kernel(settings, plugins={"bench": emitter}, discover=False) as kernel:
            emit = kernel.bus.emit

            def send(n: int) -> Awaitable[Any]:
                return emit(EVENT, {"sent": time.time(), "n": n})

            yield consumer, send
    finally:
        consumer.stop()


@asynccontextmanager
async def faststream_side(
    url: str, prefix: str, work: Path, marks: list[int]
) -> AsyncIterator[tuple[Consumer, Emit]]:
    stream = f"{prefix}:{EVENT}"
    script = work / "faststream_consumer.py"
    script.write_text(FASTSTREAM_CONSUMER)
    env = consumer_env(url, work / "faststream.json", marks)
    env["BENCH_STREAM"] = stream
    consumer = Consumer("faststream", [sys.executable, str(script)], env, work, "consumer ready")
    try:
        await consumer.started()
        async with RedisBroker(url, logger=None) as broker:
            publish = broker.publish

            def send(n: int) -> Awaitable[Any]:
                return publish({"sent": time.time(), "n": n}, stream=stream)

            yield consumer, send
    finally:
        consumer.stop()


SIDES = {"webos": webos_side, "faststream": faststream_side}

# -- measuring ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def emit_batches(send: Emit, numbers: range) -> None:
    for start in range(numbers.start, numbers.stop, BATCH):
        await asyncio.gather(*(send(n) for n in range(start, min(start + BATCH, numbers.stop))))


async def measure_all(
    url: str, prefix: str, events: int, rounds: int, latency_events: int, pause: float
) -> dict[str, Any]:
    """Both sides up at once. Throughput rounds alternate between them (one side emits
    at a time), the latency events are interleaved (webos, faststream, webos, ...): a slow
    spell of the machine hits both rather than one."""
    # n: warm-up from -WARMUP, round r from r * events, latency from rounds * events.
    latency_from = rounds * events
    marks = [WARMUP + r * events for r in range(rounds + 1)]
    marks.append(marks[-1] + latency_events)
    spans: dict[str, list[tuple[float, float]]] = {impl: [] for impl in IMPLS}
    records: dict[str, list[tuple[int, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        async with AsyncExitStack() as stack:
            sides: dict[str, tuple[Consumer, Emit]] = {}
            for impl in IMPLS:
                work = Path(tmp) / impl
                work.mkdir()
                side = SIDES[impl](url, f"{prefix}:{impl}", work, marks)
                sides[impl] = await stack.enter_async_context(side)
            for consumer, send in sides.values():
                await emit_batches(send, range(-WARMUP, 0))
                await consumer.records(marks[0])
            for r in range(rounds):
                for impl, (consumer, send) in sides.items():
                    first_emit = time.time()
                    await emit_batches(send, range(r * events, (r + 1) * events))
                    spans[impl].append((first_emit, time.time()))
                    await consumer.records(marks[r + 1])
            for n in range(latency_from, latency_from + latency_events):
                for _, send in sides.values():
                    await send(n)
                    await asyncio.sleep(pause)
            for impl, (consumer, _) in sides.items():
                records[impl] = await consumer.records(marks[-1])

    results = {}
    expected = set(range(-WARMUP, latency_from + latency_events))
    for impl in IMPLS:
        got = [row[0] for row in records[impl]]
        if len(got) != len(expected) or set(got) != expected:
            raise AssertionError(f"{impl}: got {len(got)} events, not each of {len(expected)}")
        last = [0.0] * rounds
        for n, _, received in records[impl]:
            if 0 <= n < latency_from:
                last[n // events] = max(last[n // events], received)
        seconds = [last[r] - spans[impl][r][0] for r in range(rounds)]
        emit_seconds = [end - start for start, end in spans[impl]]
        latencies = sorted(
            (received - sent) * 1e3 for n, sent, received in records[impl] if n >= latency_from
        )
        results[impl] = {
            "throughput": events / min(seconds),
            "rounds_events_per_s": [events / s for s in seconds],
            "emitter_events_per_s": [events / s for s in emit_seconds],
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "mean_ms": statistics.fmean(latencies),
            "max_ms": latencies[-1],
        }
        print(
            f"  {impl:10} rounds "
            + " ".join(f"{rate:.0f}" for rate in results[impl]["rounds_events_per_s"])
            + " events/s (emitter alone "
            + " ".join(f"{rate:.0f}" for rate in results[impl]["emitter_events_per_s"])
            + f"); p50 {results[impl]['p50_ms']:.2f} ms, p99 {results[impl]['p99_ms']:.2f} ms",
            file=sys.stderr,
        )
    return results


def cleanup(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    webos_row, faststream_row = results["webos"], results["faststream"]
    checks = [
        (
            "throughput: webos >= faststream (events/s)",
            webos_row["throughput"],
            ">=",
            faststream_row["throughput"],
        ),
        (
            "latency p99: webos <= faststream (ms)",
            webos_row["p99_ms"],
            "<=",
            faststream_row["p99_ms"],
        ),
    ]
    return _report.check(checks)


# -- reporting ---------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    env = results["environment"]
    out = [
        f"Python {env['python']} on {env['platform']}, {env['cpus']} CPUs; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"Consumer in its own process, emitter in this one, Redis at {results['redis_url']}",
        f"throughput: first emit to last event handled, best of {results['rounds']} rounds "
        f"of {results['events']} events in gathers of {results['batch']}",
        f"latency: emit to listener, {results['latency_events']} events one at a time, "
        f"{results['latency_pause_ms']:g} ms apart",
        "",
    ]
    rows = [["implementation", "throughput events/s", "p50 ms", "p99 ms"]]
    for impl in IMPLS:
        row = results["results"][impl]
        rows.append(
            [impl, f"{row['throughput']:.0f}", f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}"]
        )
    out.append(_report.table(rows))
    out += ["", "Targets"]
    for check in results["targets"]:
        mark = "MET   " if check["met"] else "MISSED"
        out.append(
            f"  [{mark}] {check['name']}: {check['value']:.2f} {check['op']} {check['limit']:.2f}"
        )
    return "\n".join(out)


def versions(url: str) -> dict[str, str]:
    found = {"webos": webos.__version__}
    for name in ("faststream", "redis"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "?"
    client = redis.Redis.from_url(url)
    try:
        found["redis-server"] = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--events", type=int, default=20_000, help="events for throughput")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (best kept)")
    parser.add_argument("--latency-events", type=int, default=2_000)
    parser.add_argument("--pause", type=float, default=2.0, help="ms between latency events")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    logger.remove()  # the kernel's start-up INFO line would interleave with the table
    logger.add(sys.stderr, level="WARNING")
    started = time.perf_counter()
    prefix = f"webos-bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": versions(args.redis_url),
        },
        "redis_url": args.redis_url,
        "events": args.events,
        "rounds": args.rounds,
        "batch": BATCH,
        "warmup": WARMUP,
        "latency_events": args.latency_events,
        "latency_pause_ms": args.pause,
    }
    try:
        results["results"] = asyncio.run(
            measure_all(
                args.redis_url,
                prefix,
                args.events,
                args.rounds,
                args.latency_events,
                args.pause / 1e3,
            )
        )
    finally:
        cleanup(args.redis_url, prefix)
    results["targets"] = targets(results["results"])
    results["total_seconds"] = time.perf_counter() - started
    print(report(results))
    print(f"\n(total {results['total_seconds']:.1f} s; JSON in {args.json})")
    _report.merge_json(args.json, "redis", results)
    return 1 if args.strict and not all(check["met"] for check in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
