"""Bus semantics: concurrency, order, error isolation, the envelope, bad input."""

import asyncio
from typing import TypedDict

import pytest
from loguru import logger
from pydantic import BaseModel

from webos import (
    EventNameError,
    InvalidPayloadError,
    NoKernelError,
    UnknownEventError,
    WebOSError,
    bus,
    event,
    hookimpl,
)

pytestmark = pytest.mark.anyio


class Published(TypedDict):
    title: str
    slug: str


class Declarations:
    """An inline plugin declaring the events these tests emit."""

    @staticmethod
    @event("demo:post:published")
    def demo_post_published(payload: Published) -> None:
        """A post went live."""

    @staticmethod
    @event("demo:ping")
    def demo_ping(payload: dict) -> None:
        """Anything goes."""


class Order(BaseModel):
    order_id: int
    total: float


class Shop:
    @staticmethod
    @event("shop:order:placed")
    def shop_order_placed(payload: Order) -> None:
        """An order was placed."""


class Recorder:
    def __init__(self):
        self.calls = []

    @bus.on("demo:ping")
    async def first(self, payload):
        self.calls.append(("first", payload["n"]))

    @bus.on("demo:ping")
    def second_sync(self, payload, event):
        self.calls.append(("second_sync", event.name))


async def test_async_and_sync_listeners_both_run(make_kernel):
    recorder = Recorder()
    kernel = make_kernel(plugins={"decl": Declarations(), "rec": recorder})
    async with kernel:
        result = await kernel.bus.emit("demo:ping", {"n": 7})
    assert result.ok
    assert sorted(result.ran) == ["rec:first", "rec:second_sync"]
    assert sorted(recorder.calls) == [("first", 7), ("second_sync", "demo:ping")]


class Sleepers:
    def __init__(self):
        self.started = []

    @bus.on("demo:ping")
    async def slow(self, payload):
        self.started.append("slow")
        await asyncio.sleep(0.3)

    @bus.on("demo:ping")
    async def fast(self, payload):
        self.started.append("fast")


async def test_a_slow_listener_does_not_delay_the_start_of_others(make_kernel):
    sleepers = Sleepers()
    kernel = make_kernel(plugins={"decl": Declarations(), "s": sleepers})
    async with kernel:
        task = asyncio.ensure_future(kernel.bus.emit("demo:ping", {}))
        await asyncio.sleep(0.05)
        # Both started while the slow one is still sleeping.
        assert sorted(sleepers.started) == ["fast", "slow"]
        assert not task.done()
        result = await task
    assert result.ok


class Ordered:
    def __init__(self):
        self.order = []

    @bus.on("demo:ping", trylast=True)
    async def last(self, payload):
        self.order.append("last")

    @bus.on("demo:ping")
    async def middle(self, payload):
        self.order.append("middle")

    @bus.on("demo:ping", tryfirst=True)
    async def first(self, payload):
        self.order.append("first")


async def test_start_order_follows_tryfirst_and_trylast(make_kernel):
    ordered = Ordered()
    kernel = make_kernel(plugins={"decl": Declarations(), "o": ordered})
    async with kernel:
        result = await kernel.bus.emit("demo:ping", {})
    assert ordered.order == ["first", "middle", "last"]
    assert result.ran == ["o:first", "o:middle", "o:last"]


class Faulty:
    def __init__(self):
        self.survivor_ran = False

    @bus.on("demo:ping", tryfirst=True)
    async def explodes(self, payload):
        raise RuntimeError("boom")

    @bus.on("demo:ping")
    def explodes_sync(self, payload):
        raise KeyError("missing")

    @bus.on("demo:ping", trylast=True)
    async def survivor(self, payload):
        self.survivor_ran = True


async def test_a_failing_listener_is_isolated_logged_and_reported(make_kernel):
    faulty = Faulty()
    kernel = make_kernel(plugins={"decl": Declarations(), "f": faulty})
    lines = []
    sink = logger.add(lambda message: lines.append(message), format="{message}\n{exception}")
    try:
        async with kernel:
            result = await kernel.bus.emit("demo:ping", {"n": 1})
    finally:
        logger.remove(sink)
    assert faulty.survivor_ran
    assert not result.ok
    assert [r.listener for r in result.failed] == ["f:explodes", "f:explodes_sync"]
    assert result.failed[0].error == "RuntimeError: boom"
    assert isinstance(result.failed[0].exception, RuntimeError)
    log = "".join(lines)
    assert "f:explodes" in log and "demo:ping" in log and "plugin f" in log
    assert "Traceback" in log and "RuntimeError: boom" in log


class EnvelopeReader:
    def __init__(self):
        self.envelopes = []

    @bus.on("demo:post:published")
    async def read(self, payload, event):
        self.envelopes.append(event)


async def test_listener_may_ask_for_the_envelope(make_kernel):
    reader = EnvelopeReader()
    kernel = make_kernel(plugins={"decl": Declarations(), "r": reader})
    async with kernel:
        one = await kernel.bus.emit("demo:post:published", {"title": "T", "slug": "t"})
        two = await kernel.bus.emit(
            "demo:post:published", {"title": "U", "slug": "u"}, source="tests"
        )
    first, second = reader.envelopes
    assert first.name == "demo:post:published" and first.payload == {"title": "T", "slug": "t"}
    assert first.id == one.envelope.id and second.id == two.envelope.id and first.id != second.id
    assert first.time.tzinfo is not None and first.time <= second.time
    assert second.source == "tests"
    assert first.to_dict()["payload"] == {"title": "T", "slug": "t"}


async def test_unknown_event_suggests_the_closest_name(make_kernel):
    kernel = make_kernel(plugins={"decl": Declarations()})
    async with kernel:
        with pytest.raises(UnknownEventError, match="Did you mean 'demo:post:published'"):
            await kernel.bus.emit("demo:post:publish", {"title": "T", "slug": "t"})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["not", "a", "mapping"], "expected a mapping"),
        ({"title": "T", "slug": object()}, "field 'slug'"),
        ({1: "x"}, "keys must be strings"),
        ({"title": "T"}, "field 'slug'.*Field required"),
        ({"title": 3, "slug": "s"}, "field 'title'"),
    ],
)
async def test_bad_payloads_are_refused_before_any_listener_runs(make_kernel, payload, message):
    reader = EnvelopeReader()
    kernel = make_kernel(plugins={"decl": Declarations(), "r": reader})
    async with kernel:
        with pytest.raises(InvalidPayloadError, match=message) as info:
            await kernel.bus.emit("demo:post:published", payload)
    assert "demo:post:published" in str(info.value)
    assert reader.envelopes == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({1: "x"}, "keys must be strings"),
        ({"n": object()}, "field 'n'"),
        ({"n": float("nan")}, "field 'n'"),
        ({"n": [1, {"deep": {2, 3}}]}, "field 'n"),
        (["n", 1], "expected a mapping"),
    ],
)
async def test_an_event_without_schema_refuses_non_json_payloads_every_time(
    make_kernel, payload, message
):
    # The emit path checks plain payloads itself once the event's route is known:
    # the first emit makes the route, the next ones take that path.
    received = []

    class Listener:
        @bus.on("demo:ping")
        async def got(self, payload):
            received.append(payload)

    kernel = make_kernel(plugins={"decl": Declarations(), "l": Listener()})
    async with kernel:
        for n in (1, 2.5):
            assert (await kernel.bus.emit("demo:ping", {"n": n})).ok
        with pytest.raises(InvalidPayloadError, match=message):
            await kernel.bus.emit("demo:ping", payload)
    assert received == [{"n": 1}, {"n": 2.5}]


async def test_pydantic_model_schemas_validate_too(make_kernel):
    kernel = make_kernel(plugins={"shop": Shop()})
    async with kernel:
        assert (await kernel.bus.emit("shop:order:placed", {"order_id": 1, "total": 2.5})).ok
        with pytest.raises(InvalidPayloadError, match="field 'total'"):
            await kernel.bus.emit("shop:order:placed", {"order_id": 1, "total": "lots"})


@pytest.mark.parametrize("name", ["single", "Upper:case", "a::b", "a:b-c", "1a:b", "a:b:", ""])
def test_malformed_names_are_refused_at_declaration_and_listen_time(name):
    with pytest.raises(EventNameError, match="Malformed event name"):
        event(name)
    with pytest.raises(EventNameError, match="Malformed event name"):
        bus.on(name)


async def test_module_level_bus_needs_a_running_kernel():
    with pytest.raises(NoKernelError, match="no WebOS kernel is running"):
        await bus.emit("demo:ping", {})


async def test_emitting_on_a_stopped_kernel_is_a_clear_error(make_kernel):
    kernel = make_kernel(plugins={"decl": Declarations()})
    with pytest.raises(WebOSError, match="not running"):
        await kernel.bus.emit("demo:ping", {})


class Chained:
    """A listener that emits through the module-level bus: it must reach its own kernel."""

    def __init__(self):
        self.pongs = []

    @bus.on("demo:ping")
    async def relay(self, payload):
        if payload.get("relay"):
            await bus.emit("demo:ping", {"from": "relay"})

    @bus.on("demo:ping")
    async def count(self, payload):
        self.pongs.append(payload)


async def test_two_kernels_never_see_each_others_listeners(make_kernel):
    a, b = Chained(), Chained()
    kernel_a = make_kernel(plugins={"decl": Declarations(), "c": a})
    kernel_b = make_kernel(plugins={"decl": Declarations(), "c": b})
    async with kernel_a, kernel_b:
        with kernel_a.activate():
            await bus.emit("demo:ping", {"relay": True})
        await kernel_b.bus.emit("demo:ping", {"n": 2})
    # The relay's emit runs eagerly, inside the first event's dispatch: both reached kernel A.
    assert sorted(map(str, a.pongs)) == ["{'from': 'relay'}", "{'relay': True}"]
    assert b.pongs == [{"n": 2}]


class PluggyStyle:
    def __init__(self):
        self.seen = []

    @hookimpl
    def demo_ping(self, payload):
        self.seen.append(payload)

    @hookimpl(specname="demo_ping", tryfirst=True)
    async def another_name(self, payload, event):
        self.seen.append(event.name)


async def test_pluggy_hookimpls_are_listeners_too(make_kernel):
    plugin = PluggyStyle()
    kernel = make_kernel(plugins={"decl": Declarations(), "p": plugin})
    async with kernel:
        result = await kernel.bus.emit("demo:ping", {"x": 1})
    assert result.ran == ["p:another_name", "p:demo_ping"]
    assert plugin.seen == ["demo:ping", {"x": 1}]
    assert kernel.plugin("p").listens == ["demo:ping"]


async def test_startup_and_shutdown_events(make_kernel):
    class Lifecycle:
        def __init__(self):
            self.seen = []

        @bus.on("kernel:startup")
        def up(self, payload, event):
            self.seen.append(("up", payload["plugins"], event.source))

        @bus.on("kernel:shutdown")
        def down(self, payload):
            self.seen.append(("down",))

    life = Lifecycle()
    kernel = make_kernel(plugins={"life": life})
    async with kernel:
        assert life.seen == [("up", ["life"], "kernel")]
    assert life.seen[-1] == ("down",)


class EnvelopeOnly:
    def __init__(self):
        self.ids = []

    @bus.on("demo:ping")
    def only_event(self, event):
        self.ids.append(event.id)


async def test_a_listener_may_take_only_the_envelope(make_kernel):
    listener = EnvelopeOnly()
    kernel = make_kernel(plugins={"decl": Declarations(), "e": listener})
    async with kernel:
        result = await kernel.bus.emit("demo:ping", {})
    assert result.ok and listener.ids == [result.envelope.id]


def test_make_kernel_refuses_a_plugin_name_it_cannot_find(make_kernel):
    with pytest.raises(LookupError, match="no plugin named 'nope'"):
        make_kernel("nope")


class Shapes:
    """Listeners naming their arguments in every way pluggy allows."""

    def __init__(self):
        self.seen = []

    @bus.on("demo:ping")
    async def keyword_only(self, *, payload):
        self.seen.append(("keyword_only", payload["n"]))

    @bus.on("demo:ping")
    def reversed_order(self, event, payload):
        self.seen.append(("reversed_order", payload["n"], event.name))

    @bus.on("demo:ping")
    async def with_default(self, payload, extra=3):
        self.seen.append(("with_default", payload["n"], extra))

    @bus.on("demo:ping")
    def nothing(self):
        self.seen.append(("nothing",))


async def test_listeners_get_what_they_name_however_they_name_it(make_kernel):
    shapes = Shapes()
    kernel = make_kernel(plugins={"decl": Declarations(), "shapes": shapes})
    async with kernel:
        result = await kernel.bus.emit("demo:ping", {"n": 5})
    assert result.ok, result.failed
    assert sorted(shapes.seen) == [
        ("keyword_only", 5),
        ("nothing",),
        ("reversed_order", 5, "demo:ping"),
        ("with_default", 5, 3),
    ]
