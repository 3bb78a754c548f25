"""The bus beyond emit-and-await: timeouts, publish and draining, wildcards, priority,
causality, the depth limit, tracing, and listeners that care which task they run in."""

import asyncio
import contextlib
import contextvars

import pytest

from webos import EventDepthError, EventNameError, bus, event

pytestmark = pytest.mark.anyio


class Declarations:
    @staticmethod
    @event("shop:order:placed")
    def shop_order_placed(payload: dict) -> None:
        """An order was placed."""

    @staticmethod
    @event("shop:order:shipped")
    def shop_order_shipped(payload: dict) -> None:
        """An order was shipped."""

    @staticmethod
    @event("mail:sent")
    def mail_sent(payload: dict) -> None:
        """A mail went out."""


SETTINGS = {
    "listener_timeout",
    "shutdown_grace",
    "max_event_depth",
    "trace_events",
    "trace_plugins",
}


def kernel_with(make_kernel, **given):
    """A kernel with the declarations above, the plugins given, and the settings given."""
    settings = {name: given.pop(name) for name in list(given) if name in SETTINGS}
    return make_kernel(plugins={"decl": Declarations(), **given}, **settings)


# -- timeouts ---------------------------------------------------------------------------


class Slow:
    def __init__(self):
        self.cancelled = 0
        self.finished = []

    @bus.on("shop:order:placed", timeout=0.05)
    async def stuck(self, payload):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    @bus.on("shop:order:placed")
    async def default_timeout(self, payload):
        await asyncio.sleep(payload.get("sleep", 0))
        self.finished.append("default_timeout")

    @bus.on("shop:order:placed")
    async def quick(self, payload):
        await asyncio.sleep(0.01)
        self.finished.append("quick")


async def test_a_listener_past_its_timeout_is_cancelled_and_reported(make_kernel, log):
    slow = Slow()
    kernel = kernel_with(make_kernel, slow=slow, listener_timeout=0.2)
    async with kernel:
        # Twice: the first run learns which listeners suspend, the second starts them
        # in tasks up front; a timeout must hold either way.
        for _ in range(2):
            result = await kernel.bus.emit("shop:order:placed", {"sleep": 0})
            assert [r.listener for r in result.timed_out] == ["slow:stuck"]
            assert result.timed_out[0].error.startswith("timed out after 0.0")
            assert sorted(slow.finished[-2:]) == ["default_timeout", "quick"]
        # The kernel-wide default (WEBOS_LISTENER_TIMEOUT) applies to the others.
        result = await kernel.bus.emit("shop:order:placed", {"sleep": 5})
        assert sorted(r.listener for r in result.timed_out) == [
            "slow:default_timeout",
            "slow:stuck",
        ]
    assert slow.cancelled == 3
    messages = [r["message"] for r in log]
    assert any("slow:stuck (plugin slow) timed out after" in m for m in messages)


class Stubborn:
    def __init__(self):
        self.finished = []

    @bus.on("shop:order:placed", timeout=0.05)
    async def swallows_cancellation(self, payload):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        # and returns normally: still past its timeout

    @bus.on("shop:order:placed")
    async def after(self, payload):
        await asyncio.sleep(0.01)
        self.finished.append(True)


async def test_a_listener_that_swallows_its_timeout_is_still_reported_and_the_emit_goes_on(
    make_kernel,
):
    stubborn = Stubborn()
    kernel = kernel_with(make_kernel, s=stubborn)
    async with kernel:
        for _ in range(2):  # in the emitter's task, then in a task of its own
            result = await kernel.bus.emit("shop:order:placed", {})
            assert [r.listener for r in result.timed_out] == ["s:swallows_cancellation"]
            # The emitting task was not left cancelled by the listener's timer.
            assert asyncio.current_task().cancelling() == 0
            await asyncio.sleep(0.01)
    assert stubborn.finished == [True, True]


# -- publish and draining ---------------------------------------------------------------


class Background:
    def __init__(self):
        self.done = []

    @bus.on("shop:order:shipped")
    async def ship(self, payload):
        await asyncio.sleep(payload["sleep"])
        self.done.append(payload["n"])


async def test_publish_returns_at_once_and_stop_waits_for_the_listeners(make_kernel):
    background = Background()
    kernel = kernel_with(make_kernel, bg=background)
    async with kernel:
        envelope = kernel.bus.publish("shop:order:shipped", {"sleep": 0.2, "n": 1})
        assert envelope.name == "shop:order:shipped" and background.done == []
        assert len(kernel.background) == 1
    assert background.done == [1]
    assert len(kernel.background) == 0


async def test_publish_validates_before_returning(make_kernel):
    from webos import InvalidPayloadError, UnknownEventError

    kernel = kernel_with(make_kernel)
    async with kernel:
        with pytest.raises(UnknownEventError):
            kernel.bus.publish("shop:order:shiped", {})
        with pytest.raises(InvalidPayloadError):
            kernel.bus.publish("shop:order:shipped", {"when": object()})
        assert len(kernel.background) == 0


async def test_stop_cancels_what_outlives_the_grace(make_kernel, log):
    background = Background()
    kernel = kernel_with(make_kernel, bg=background, shutdown_grace=0.1, listener_timeout=0)
    async with kernel:
        kernel.bus.publish("shop:order:shipped", {"sleep": 30, "n": 1})
        kernel.bus.publish("shop:order:shipped", {"sleep": 0.01, "n": 2})
    assert background.done == [2]
    assert any("Cancelled after the 0.1 s shutdown grace" in r["message"] for r in log)


class TwoSlow:
    def __init__(self):
        self.cancelled = []

    @bus.on("shop:order:shipped")
    async def one(self, payload):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled.append("one")
            raise

    @bus.on("shop:order:shipped")
    async def two(self, payload):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled.append("two")
            raise


async def test_cancelling_an_emit_cancels_its_listeners_as_gather_does(make_kernel):
    plugin = TwoSlow()
    kernel = kernel_with(make_kernel, slow=plugin)
    async with kernel:
        for _ in range(2):  # while learning which listeners suspend, and after
            emitting = asyncio.ensure_future(kernel.bus.emit("shop:order:shipped", {}))
            await asyncio.sleep(0.02)
            emitting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await emitting
            await asyncio.sleep(0.01)
            assert sorted(plugin.cancelled) == ["one", "two"]
            plugin.cancelled.clear()


# -- wildcards --------------------------------------------------------------------------


class Watcher:
    def __init__(self):
        self.shop = []
        self.everything = []

    @bus.on("shop:*")
    async def shop_events(self, payload, event):
        self.shop.append(event.name)

    @bus.on("*")
    def all_events(self, event):
        self.everything.append(event.name)


async def test_wildcards_match_by_prefix_and_everything(make_kernel):
    watcher = Watcher()
    kernel = kernel_with(make_kernel, watch=watcher)
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {})
        await kernel.bus.emit("mail:sent", {})
    assert watcher.shop == ["shop:order:placed"]
    assert watcher.everything == [
        "kernel:startup",
        "shop:order:placed",
        "mail:sent",
        "kernel:shutdown",
    ]
    from webos.catalogue import event_rows

    rows = {row["name"]: row["listeners"] for row in event_rows(kernel)}
    # pluggy's order: per event, the impl registered last first (here, by method name).
    assert rows["shop:order:shipped"] == ["watch:shop_events", "watch:all_events"]
    assert rows["mail:sent"] == ["watch:all_events"]
    assert kernel.plugin("watch").listens == ["*", "shop:*"]


@pytest.mark.parametrize("pattern", ["shop*", "shop:", "*:order", "Shop:*", "shop:*:x"])
def test_malformed_wildcards_are_refused(pattern):
    with pytest.raises(EventNameError, match="Malformed event"):
        bus.on(pattern)


# -- priority ---------------------------------------------------------------------------


class Prioritised:
    def __init__(self):
        self.order = []

    @bus.on("shop:order:placed", tryfirst=True)
    def pluggy_first(self, payload):
        self.order.append("tryfirst")

    @bus.on("shop:order:placed", priority=10)
    def urgent(self, payload):
        self.order.append("priority 10")

    @bus.on("shop:order:placed", priority=-5)
    def late(self, payload):
        self.order.append("priority -5")

    @bus.on("shop:order:placed")
    def plain(self, payload):
        self.order.append("plain")

    @bus.on("shop:order:placed", trylast=True)
    def pluggy_last(self, payload):
        self.order.append("trylast")


async def test_priority_orders_first_and_ties_keep_pluggys_order(make_kernel):
    plugin = Prioritised()
    kernel = kernel_with(make_kernel, p=plugin)
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {})
    assert plugin.order == ["priority 10", "tryfirst", "plain", "trylast", "priority -5"]


# -- causality --------------------------------------------------------------------------


class Chain:
    def __init__(self):
        self.seen = {}

    @bus.on("shop:order:placed")
    async def ship_it(self, payload, event):
        await asyncio.sleep(0)  # the child is emitted after a suspension, from a task
        await bus.emit("shop:order:shipped", {"order": payload.get("order")})

    @bus.on("shop:order:shipped")
    async def mail_it(self, payload, event):
        self.seen["shipped"] = event
        await bus.emit("mail:sent", {})

    @bus.on("mail:sent")
    def record(self, event):
        self.seen["mail"] = event


async def test_events_emitted_by_listeners_carry_parent_and_correlation(
    make_kernel, capture_events
):
    chain_events = capture_events("*")
    kernel = kernel_with(make_kernel, chain=Chain())
    async with kernel:
        root = (await kernel.bus.emit("shop:order:placed", {"order": 1})).envelope
        await chain_events.wait_for(4)  # startup, placed, shipped, mail
    assert chain_events.names[1:4] == ["shop:order:placed", "shop:order:shipped", "mail:sent"]
    _, placed, shipped, mail = chain_events.events[:4]
    assert placed.id == root.id
    assert root.parent_id is None and root.correlation_id == root.id and root.depth == 0
    assert shipped.parent_id == root.id and shipped.correlation_id == root.id
    assert mail.parent_id == shipped.id and mail.correlation_id == root.id
    assert (shipped.depth, mail.depth) == (1, 2)
    assert shipped.source == "chain" and mail.source == "chain"


async def test_the_correlation_id_flows_from_the_http_request(make_kernel, make_client):
    from fastapi import APIRouter

    chain = Chain()
    router = APIRouter()

    @router.post("/order")
    async def order():
        await bus.emit("shop:order:placed", {"order": 7})
        return {}

    class Shop:
        pass

    shop = Shop()
    shop.router = router
    kernel = kernel_with(make_kernel, chain=chain, shop=shop)
    async with make_client(kernel) as client:
        response = await client.post("/order", headers={"X-Correlation-ID": "req-42"})
        assert response.headers["x-correlation-id"] == "req-42"
        assert chain.seen["mail"].correlation_id == "req-42"
        assert chain.seen["shipped"].source == "chain"
        fresh = await client.post("/order")
    assert len(fresh.headers["x-correlation-id"]) == 32
    assert chain.seen["mail"].correlation_id == fresh.headers["x-correlation-id"]


# -- the depth limit --------------------------------------------------------------------


class Echo:
    def __init__(self):
        self.depths = []

    @bus.on("shop:order:placed")
    async def again(self, payload, event):
        self.depths.append(event.depth)
        await bus.emit("shop:order:placed", payload)


async def test_a_listener_re_emitting_its_event_stops_at_the_depth_limit(make_kernel, log):
    echo = Echo()
    kernel = kernel_with(make_kernel, echo=echo, max_event_depth=5)
    async with kernel:
        result = await kernel.bus.emit("shop:order:placed", {})
    assert echo.depths == [0, 1, 2, 3, 4, 5]
    # The innermost listener failed with the depth error; every outer one returned.
    assert result.ok
    errors = [r["exception"].value for r in log if r["exception"] is not None]
    assert [type(e) for e in errors] == [EventDepthError]
    assert "past the limit of 5" in str(errors[0])
    assert "WEBOS_MAX_EVENT_DEPTH" in str(errors[0])


# -- tracing ----------------------------------------------------------------------------


async def test_trace_logs_each_matching_event_with_listener_timings(make_kernel, log):
    chain = Chain()
    kernel = kernel_with(make_kernel, chain=chain, trace_events="mail:*")
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {"order": 1})
    traces = [r["message"] for r in log if r["message"].startswith("TRACE ")]
    assert len(traces) == 1
    assert traces[0].startswith("TRACE mail:sent [")
    assert "depth=2" in traces[0] and "chain:record" in traces[0] and " ms ok" in traces[0]


# -- listeners that care which task they run in -----------------------------------------

var = contextvars.ContextVar("var", default="unset")


class TaskBound:
    def __init__(self):
        self.same_task = []

    @bus.on("shop:order:placed")
    async def with_timeout_scope(self, payload):
        # asyncio.timeout (like anyio's cancel scopes) must be exited in the task
        # that entered it, across the listener's suspensions.
        first = asyncio.current_task()
        async with asyncio.timeout(5):
            token = var.set("mine")
            await asyncio.sleep(0.01)
            var.reset(token)
        self.same_task.append(asyncio.current_task() is first)

    @bus.on("shop:order:placed")
    async def also_suspends(self, payload):
        first = asyncio.current_task()
        await asyncio.sleep(0)
        self.same_task.append(asyncio.current_task() is first)


class Changing:
    """A listener that starts suspending only later, between two that keep their ways."""

    def __init__(self):
        self.runs = {"first": 0, "suspends": 0, "last": 0}

    @bus.on("shop:order:placed", priority=3)
    async def first(self, payload):
        if payload["wait"]:
            await asyncio.sleep(0.01)
        self.runs["first"] += 1

    @bus.on("shop:order:placed", priority=2)
    async def suspends(self, payload):
        await asyncio.sleep(0)
        self.runs["suspends"] += 1

    @bus.on("shop:order:placed", priority=1)
    async def last(self, payload):
        self.runs["last"] += 1


async def test_a_listener_that_starts_suspending_hands_over_only_its_own_group(make_kernel):
    plugin = Changing()
    kernel = kernel_with(make_kernel, c=plugin)
    async with kernel:
        # Learns that `suspends` suspends: next time it starts in a task of its own,
        # `first` and `last` each in a group of their own. Then `first` suspends too.
        for wait in (False, False, True, True):
            result = await kernel.bus.emit("shop:order:placed", {"wait": wait})
            assert result.ok, result.failed
    assert plugin.runs == {"first": 4, "suspends": 4, "last": 4}


async def test_the_envelope_is_made_on_demand_with_the_time_of_the_emit(make_kernel):
    import time

    seen = []

    class Plugin:
        @bus.on("shop:order:placed")
        async def quick(self, payload):
            pass

        @bus.on("shop:order:shipped")
        async def takes_it(self, payload, event):
            seen.append(event)
            await asyncio.sleep(0.2)

    kernel = kernel_with(make_kernel, p=Plugin())
    async with kernel:
        before = time.time()
        result = await kernel.bus.emit("shop:order:placed", {"n": 1})
        await asyncio.sleep(0.2)
        envelope = result.envelope  # asked for only now
        assert envelope is result.envelope
        assert before <= envelope.timestamp < before + 0.1
        assert (envelope.name, envelope.payload, envelope.source) == (
            "shop:order:placed",
            {"n": 1},
            None,
        )
        assert envelope.id != (await kernel.bus.emit("shop:order:placed", {"n": 2})).envelope.id

        shipped = await kernel.bus.emit("shop:order:shipped", {}, source="warehouse")
        assert seen == [shipped.envelope]
        assert shipped.envelope.source == "warehouse"


class Counting:
    def __init__(self):
        self.calls = 0

    @bus.on("shop:order:placed")
    async def quick(self, payload):
        self.calls += 1

    @bus.on("shop:order:placed")
    async def also_quick(self, payload, event):
        self.calls += 1

    @bus.on("shop:order:placed")
    def plain(self, payload):
        self.calls += 1


async def test_listeners_that_never_suspend_cost_no_task(make_kernel):
    # What makes emit cheap (bench/bench_bus.py measures it): no Task per listener,
    # nor per emit, when no listener suspends; errors and timeouts included.
    plugin = Counting()
    kernel = kernel_with(make_kernel, c=plugin, listener_timeout=5)
    loop = asyncio.get_running_loop()
    created = []

    def counting_factory(loop, coro, **kwargs):
        created.append(getattr(coro, "__qualname__", repr(coro)))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with kernel:
        await kernel.bus.emit("shop:order:placed", {})  # the first emit builds the route
        loop.set_task_factory(counting_factory)
        try:
            for n in range(5):
                assert (await kernel.bus.emit("shop:order:placed", {"n": n})).ok
        finally:
            loop.set_task_factory(None)
    assert plugin.calls == 18
    assert created == []


async def test_each_listener_runs_start_to_end_in_one_task(make_kernel):
    plugin = TaskBound()
    kernel = kernel_with(make_kernel, t=plugin)
    async with kernel:
        for _ in range(3):
            result = await kernel.bus.emit("shop:order:placed", {})
            assert result.ok, result.failed
    assert plugin.same_task == [True] * 6


async def test_trace_plugins_logs_each_hook_call_with_the_arguments_shape(
    make_kernel, make_client, log
):
    chain = Chain()
    kernel = kernel_with(make_kernel, chain=chain, trace_plugins=True)
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {"order": 1, "items": ["a"]})
    lines = [r["message"] for r in log if r["message"].startswith("PLUGIN TRACE")]
    assert any(
        line.startswith("PLUGIN TRACE chain Chain.ship_it(payload={order: int, items: list[str]}, ")
        and "for hook shop_order_placed: ok in " in line
        for line in lines
    ), lines
    assert any("Chain.record(event=Envelope) for hook mail_sent: ok" in line for line in lines)
