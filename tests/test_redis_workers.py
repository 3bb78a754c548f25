"""Several real worker processes sharing the bus on the real Redis at 127.0.0.1:6379.

Each worker is a ``webos worker`` process with the same local plugin; what each
listener handles is appended, one line per event, to a file the test reads. Workers
are stopped with SIGKILL where the test says so.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter

import pytest

from webos.testing import require_service

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

REDIS_URL = "redis://127.0.0.1:6379/0"

PLUGIN = '''
import asyncio
import os

from webos import bus, event

LOG = os.environ["TEST_LOG"]


def record(*words):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (" ".join(map(str, words)) + "\\n").encode())
    finally:
        os.close(fd)


@event("work:item:added")
def work_item_added(payload: dict) -> None:
    """An item of work."""


@bus.on("work:item:added")
async def count(payload, event):
    record("count", os.getpid(), event.id)


@bus.on("work:item:added")
async def index(payload, event):
    if payload.get("slow"):
        record("start", os.getpid(), event.id)
        await asyncio.sleep(payload["slow"])
    record("index", os.getpid(), event.id)
'''


@pytest.fixture
def cluster(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"webos-test-{uuid.uuid4().hex[:8]}"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "work.py").write_text(textwrap.dedent(PLUGIN))
    log = tmp_path / "handled.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBOS_")}
    env.update(
        WEBOS_BUS_URL=REDIS_URL,
        WEBOS_BUS_PREFIX=prefix,
        WEBOS_MODULES_DIR=str(modules),
        WEBOS_LOAD_PLUGINS="work",
        WEBOS_BUS_VISIBILITY_TIMEOUT="1",
        WEBOS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        TEST_LOG=str(log),
    )

    class Cluster:
        def __init__(self):
            self.workers: list[subprocess.Popen] = []

        def spawn(self) -> subprocess.Popen:
            # What a deployment runs next to `webos serve`: `webos worker`.
            worker = subprocess.Popen(
                [sys.executable, "-m", "webos", "worker"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert worker.stdout is not None
            for line in worker.stdout:
                if "WebOS kernel started" in line:
                    break
            else:
                raise AssertionError("webos worker exited before starting")
            self.workers.append(worker)
            return worker

        def lines(self) -> list[list[str]]:
            if not log.exists():
                return []
            return [line.split() for line in log.read_text().splitlines() if line]

        def wait_for(self, check, timeout=60.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if check(self.lines()):
                    return
                time.sleep(0.1)
            raise AssertionError(f"timed out; log has {len(self.lines())} lines")

    running = Cluster()
    running.env = env
    yield running
    for worker in running.workers:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def emitter(cluster):
    """A kernel in the test process that declares the event and listens to nothing."""
    from webos import Kernel, Settings, event

    class Declares:
        @staticmethod
        @event("work:item:added")
        def work_item_added(payload: dict) -> None:
            """An item of work."""

    settings = Settings(
        _env_file=None,
        bus_url=REDIS_URL,
        bus_prefix=cluster.env["WEBOS_BUS_PREFIX"],
        load_plugins="declares",
    )
    return Kernel(settings, plugins={"declares": Declares()}, discover=False)


async def test_three_workers_fan_out_across_listeners_and_compete_within_one(cluster):
    for _ in range(3):
        cluster.spawn()
    async with emitter(cluster) as kernel:
        ids = [(await kernel.bus.emit("work:item:added", {"n": n})).envelope.id for n in range(300)]
    cluster.wait_for(lambda lines: len(lines) >= 600)
    lines = cluster.lines()
    handled = Counter((kind, event_id) for kind, _, event_id in lines)
    # Every listener handled every event exactly once across the three processes...
    assert set(handled) == {(kind, i) for kind in ("count", "index") for i in ids}
    assert set(handled.values()) == {1}
    # ...and the work was shared between processes.
    assert len({pid for _, pid, _ in lines}) >= 2


async def test_a_worker_killed_mid_listener_loses_nothing(cluster):
    first = cluster.spawn()
    async with emitter(cluster) as kernel:
        sent = (await kernel.bus.emit("work:item:added", {"slow": 3})).envelope.id
        cluster.wait_for(lambda lines: ["start", str(first.pid), sent] in lines)
        os.kill(first.pid, signal.SIGKILL)
        second = cluster.spawn()
    # The entry stayed pending in the group; the live worker claimed it after the
    # visibility timeout and handled it, with the same event id.
    cluster.wait_for(lambda lines: ["index", str(second.pid), sent] in lines, timeout=30)
    assert ["index", str(first.pid), sent] not in cluster.lines()


SOAK_EVENTS = 100_000


async def test_soak_with_random_worker_kills(cluster):
    """100,000 events through three workers, one killed (SIGKILL) and replaced every
    second or so: every event is handled at least once, and an event handled twice was
    first handled by a worker that was then killed (a redelivery), never otherwise."""
    import asyncio
    import random

    for _ in range(3):
        cluster.spawn()
    killed: set[str] = set()
    rng = random.Random(7)

    async def chaos(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            alive = [w for w in cluster.workers if w.poll() is None]
            victim = rng.choice(alive)
            victim.kill()
            victim.wait()
            killed.add(str(victim.pid))
            await asyncio.to_thread(cluster.spawn)

    stop = asyncio.Event()
    async with emitter(cluster) as kernel:
        chaos_task = asyncio.ensure_future(chaos(stop))
        ids = []
        for start in range(0, SOAK_EVENTS, 500):
            # Emits of one batch go out concurrently, as many requests would.
            results = await asyncio.gather(
                *(kernel.bus.emit("work:item:added", {"n": n}) for n in range(start, start + 500))
            )
            ids.extend(result.envelope.id for result in results)
        wanted = set(ids)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            counted = {event_id for kind, _, event_id in cluster.lines() if kind == "count"}
            if counted >= wanted:
                break
            await asyncio.sleep(1)
        stop.set()
        await chaos_task
    lines = [line for line in cluster.lines() if line[0] == "count"]
    by_event: dict[str, list[str]] = {}
    for _, pid, event_id in lines:
        by_event.setdefault(event_id, []).append(pid)
    missing = wanted - set(by_event)
    assert not missing, f"{len(missing)} events never handled"
    assert len(killed) >= 3
    # A duplicate means the entry was handled and its worker died before acknowledging.
    suspicious = [pids for pids in by_event.values() if len(pids) > 1 and pids[0] not in killed]
    assert suspicious == []
