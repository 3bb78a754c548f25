"""The bus on Redis Streams, against the real redis-server on 127.0.0.1:6379.

Each test uses a key prefix of its own and deletes its keys afterwards. Without a
server these tests skip (fail under WEBOS_REQUIRE_SERVICES=1, as in CI).
"""

import asyncio
import json
import time
import uuid

import pytest

from webos import bus, event
from webos.testing import require_service

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix():
    require_service("Redis", "127.0.0.1", 6379)
    name = f"webos-test-{uuid.uuid4().hex[:8]}"
    yield name
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


class Orders:
    @staticmethod
    @event("shop:order:placed")
    def shop_order_placed(payload: dict) -> None:
        """An order was placed."""


class Worker:
    """Listeners of every delivery kind, recording what this process saw."""

    def __init__(self, fail_until=0):
        self.once, self.also_once, self.broadcast, self.local = [], [], [], []
        self.fail_until = fail_until
        self.attempts = 0

    @bus.on("shop:order:placed")
    async def handle(self, payload, event):
        self.attempts += 1
        if payload.get("poison") and self.attempts <= self.fail_until:
            raise RuntimeError(f"cannot handle order {payload['n']}")
        self.once.append((payload["n"], event.id))

    @bus.on("shop:order:placed")
    async def index(self, payload):
        self.also_once.append(payload["n"])

    @bus.on("shop:order:placed", delivery="broadcast")
    def invalidate(self, payload):
        self.broadcast.append(payload["n"])

    @bus.on("shop:order:placed", delivery="local")
    def here_only(self, payload):
        self.local.append(payload["n"])


def broker_kernel(make_kernel, prefix, worker, **settings):
    return make_kernel(
        plugins={"orders": Orders(), "w": worker},
        bus_url=REDIS_URL,
        bus_prefix=prefix,
        **settings,
    )


async def wait_until(check, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def test_groups_fan_out_consumers_compete_broadcast_reaches_all(make_kernel, prefix):
    one, two = Worker(), Worker()
    async with (
        broker_kernel(make_kernel, prefix, one) as a,
        broker_kernel(make_kernel, prefix, two),
    ):
        for n in range(20):
            result = await a.bus.emit("shop:order:placed", {"n": n})
            assert result.ran == ["w:here_only"]  # emit awaits the local listeners only
        await wait_until(lambda: len(one.once) + len(two.once) == 20)
        await wait_until(lambda: len(one.also_once) + len(two.also_once) == 20)
        await wait_until(lambda: len(one.broadcast) == 20 and len(two.broadcast) == 20)
    # Each "once" listener handled every event exactly once across both processes.
    assert sorted(n for n, _ in one.once + two.once) == list(range(20))
    assert sorted(one.also_once + two.also_once) == list(range(20))
    assert one.local == list(range(20)) and two.local == []


async def test_a_failing_event_is_redelivered_then_dead_lettered_then_replayed(make_kernel, prefix):
    worker = Worker(fail_until=99)
    settings = {"max_deliveries": 3, "bus_visibility_timeout": 0.2}
    async with broker_kernel(make_kernel, prefix, worker, **settings) as kernel:
        sent = (await kernel.bus.emit("shop:order:placed", {"n": 1, "poison": True})).envelope
        dlq = kernel.transport.dlq
        await wait_until(lambda: worker.attempts >= 3)
        await asyncio.sleep(0.6)
        [letter] = await dlq.entries()
        assert worker.attempts == 3
        assert letter["dlq_group"] == "w:handle"
        assert letter["dlq_deliveries"] == "3"
        assert "RuntimeError: cannot handle order 1" in letter["dlq_error"]
        assert letter["id"] == sent.id and json.loads(letter["payload"]) == {"n": 1, "poison": True}
        # The bug is fixed: replay it, to the listener that failed only.
        worker.fail_until = 0
        assert await dlq.replay() == [letter["dlq_id"]]
        await wait_until(lambda: worker.once)
        assert worker.once == [(1, sent.id)]  # the same envelope id: listeners can dedupe
        assert await dlq.entries() == []
        assert sorted(worker.also_once) == [1]  # the other listener did not get it twice


async def test_bad_input_from_the_wire_goes_to_the_dlq(make_kernel, prefix):
    worker = Worker()
    async with broker_kernel(make_kernel, prefix, worker) as kernel:
        transport = kernel.transport
        stream = transport.stream("shop:order:placed")
        await transport.redis.xadd(stream, {"name": "shop:order:placed", "payload": "{nope"})
        await transport.redis.xadd(stream, {"id": "x", "name": "n", "time": "t", "payload": "[]"})
        await kernel.bus.emit("shop:order:placed", {"n": 5})
        await wait_until(lambda: worker.once)
        await asyncio.sleep(0.2)
        errors = sorted({row["dlq_error"] for row in await transport.dlq.entries()})
    assert worker.once[0][0] == 5
    assert errors == [
        "bad message: missing field(s): id, time",
        "bad message: payload is not a JSON object",
    ]


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, on a free port, that the test may stop and restart."""
    import shutil
    import socket
    import subprocess

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"

        def start(self):
            self.process = subprocess.Popen(
                command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        return
                time.sleep(0.05)
            raise AssertionError("redis-server did not start")

        def stop(self):
            self.process.terminate()
            self.process.wait(timeout=10)

    running = Server()
    running.start()
    yield running
    if running.process.poll() is None:
        running.stop()


async def test_redis_going_away_and_coming_back(make_kernel, own_redis):
    from webos.redis_streams import BrokerError

    worker = Worker()
    kernel = make_kernel(
        plugins={"orders": Orders(), "w": worker}, bus_url=own_redis.url, bus_prefix="t"
    )
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {"n": 1})
        await wait_until(lambda: len(worker.once) == 1)
        own_redis.stop()
        # Emitters get a clear error; nothing is half-sent.
        with pytest.raises(BrokerError, match="could not publish 'shop:order:placed'"):
            await kernel.bus.emit("shop:order:placed", {"n": 2})
        own_redis.start()  # an empty server: the consumers must recreate their groups
        await asyncio.sleep(1.5)
        for n in (3, 4):
            await kernel.bus.emit("shop:order:placed", {"n": n})
        await wait_until(lambda: [n for n, _ in worker.once] == [1, 3, 4], timeout=20)


def test_dlq_commands_list_replay_and_purge(prefix, monkeypatch):
    from typer.testing import CliRunner

    from webos.cli import app
    from webos.redis_streams import RedisTransport

    monkeypatch.setenv("WEBOS_BUS_URL", REDIS_URL)
    monkeypatch.setenv("WEBOS_BUS_PREFIX", prefix)

    async def bury(n):
        transport = RedisTransport(REDIS_URL, prefix=prefix)
        fields = {"id": f"e{n}", "name": "shop:order:placed", "payload": "{}", "time": "t"}
        entry = await transport.redis.xadd(transport.stream("shop:order:placed"), fields)
        await transport.dlq.add(
            "w:handle",
            transport.stream("shop:order:placed"),
            entry.decode(),
            fields,
            5,
            "RuntimeError: boom",
        )
        await transport.stop()

    for n in range(3):
        asyncio.run(bury(n))
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["dlq", "list", "--json"]).stdout)
    assert [row["id"] for row in rows] == ["e0", "e1", "e2"]
    assert rows[0]["dlq_error"] == "RuntimeError: boom" and rows[0]["dlq_group"] == "w:handle"
    table = runner.invoke(app, ["dlq", "list"]).stdout
    assert "-> w:handle after 5 deliveries: RuntimeError: boom" in table

    replayed = runner.invoke(app, ["dlq", "replay", rows[0]["dlq_id"]])
    assert replayed.exit_code == 0 and "replayed 1" in replayed.stdout
    missing = runner.invoke(app, ["dlq", "replay", "0-1"])
    assert missing.exit_code == 1 and "not found: 0-1" in missing.stderr
    assert runner.invoke(app, ["dlq", "replay"]).exit_code == 2

    purged = runner.invoke(app, ["dlq", "purge", "--all"])
    assert "purged 2" in purged.stdout
    assert json.loads(runner.invoke(app, ["dlq", "list", "--json"]).stdout) == []


def test_serve_refuses_several_workers_without_a_broker(monkeypatch):
    from typer.testing import CliRunner

    from webos.cli import app

    monkeypatch.delenv("WEBOS_BUS_URL", raising=False)
    result = CliRunner().invoke(app, ["serve", "--workers", "4"])
    assert result.exit_code == 2
    assert "needs a broker-backed bus" in result.stderr and "WEBOS_BUS_URL" in result.stderr


async def test_an_entry_trimmed_while_pending_shows_in_the_dead_letters(make_kernel, prefix):
    class Stuck:
        """Takes an entry and never finishes it: it stays pending in the group."""

        def __init__(self):
            self.started = asyncio.Event()

        @bus.on("shop:order:placed", timeout=0.2)
        async def hang(self, payload):
            self.started.set()
            await asyncio.sleep(10)

    stuck = Stuck()
    settings = {"bus_visibility_timeout": 0.3, "max_deliveries": 100}
    kernel = make_kernel(
        plugins={"orders": Orders(), "s": stuck}, bus_url=REDIS_URL, bus_prefix=prefix, **settings
    )
    async with kernel:
        transport = kernel.transport
        await kernel.bus.emit("shop:order:placed", {"n": 1})
        await asyncio.wait_for(stuck.started.wait(), 5)
        # Trimming (here by hand, as MAXLEN ~ would under load) removes the pending entry.
        await transport.redis.xtrim(transport.stream("shop:order:placed"), maxlen=0)
        await asyncio.sleep(1.5)
        letters = await transport.dlq.entries()
    assert [row["dlq_error"] for row in letters] == ["entry trimmed before it was handled"]
    assert letters[0]["dlq_group"] == "s:hang"
