"""The testing helpers plugin authors get: capture_events and the listener-outcome asserts."""

import asyncio
import re
from typing import TypedDict

import pytest

from webos import Kernel, bus, event
from webos.testing import (
    EventCapture,
    assert_listener_failed,
    assert_listener_timed_out,
    assert_listeners_ok,
)

pytestmark = pytest.mark.anyio


class Order(TypedDict):
    order_id: int


class Shop:
    """Declares the events these tests emit; its listeners fail, hang, or chain on demand."""

    def __init__(self):
        self.handled = []

    @staticmethod
    @event("shop:order:placed")
    def shop_order_placed(payload: Order) -> None:
        """An order was placed."""

    @staticmethod
    @event("shop:order:shipped")
    def shop_order_shipped(payload: Order) -> None:
        """An order left the warehouse."""

    @staticmethod
    @event("shop:order:lost")
    def shop_order_lost(payload: Order) -> None:
        """Nobody listens to this one."""

    @bus.on("shop:order:placed", priority=10)
    async def ship(self, payload):
        # Emits from inside a listener, before any other listener of the cause runs.
        await bus.emit("shop:order:shipped", payload)

    @bus.on("shop:order:shipped")
    def count(self, payload):
        self.handled.append(payload["order_id"])


class Faulty:
    @bus.on("shop:order:placed")
    def explode(self, payload):
        if payload["order_id"] < 0:
            raise ValueError(f"order {payload['order_id']} is negative")

    @bus.on("shop:order:placed", timeout=0.05)
    async def dawdle(self, payload):
        if payload["order_id"] == 0:
            await asyncio.sleep(5)


# -- capture_events ---------------------------------------------------------------------


async def test_a_capture_records_matching_events_in_emission_order(make_kernel, capture_events):
    capture = capture_events("shop:*")
    everything = capture_events("*")
    kernel = make_kernel(plugins={"shop": Shop()})
    assert [r.name for r in kernel.loaded_plugins()] == ["kernel", "shop", "capture", "capture_2"]
    async with kernel:
        result = await kernel.bus.emit("shop:order:placed", {"order_id": 7}, source="till")

    # The cause first, although a listener emitted the consequence before others ran.
    assert capture.names == ["shop:order:placed", "shop:order:shipped"]
    assert capture.payloads == [{"order_id": 7}, {"order_id": 7}]
    placed, shipped = capture.events
    assert placed is result.envelope and placed.source == "till"
    assert shipped.parent_id == placed.id
    # Both captures ran before the shop's own priority-10 listener.
    assert sorted(result.ran[:2]) == ["capture:record", "capture_2:record"]
    assert result.ran[2] == "shop:ship"
    assert everything.names == [
        "kernel:startup",
        "shop:order:placed",
        "shop:order:shipped",
        "kernel:shutdown",
    ]


async def test_a_capture_passed_explicitly_is_loaded_once(make_kernel, capture_events):
    capture = capture_events("shop:order:placed")
    kernel = make_kernel(plugins={"shop": Shop(), "capture": Faulty(), "mine": capture})
    # An inline plugin named "capture" exists already, and the capture is loaded as "mine".
    assert [r.name for r in kernel.loaded_plugins()] == ["kernel", "shop", "capture", "mine"]


async def test_every_kernel_made_after_the_capture_loads_it(make_kernel, capture_events):
    capture = capture_events("shop:order:placed")
    for order_id in (1, 2):
        async with make_kernel(plugins={"shop": Shop()}) as kernel:
            await kernel.bus.emit("shop:order:placed", {"order_id": order_id})
    assert capture.payloads == [{"order_id": 1}, {"order_id": 2}]
    assert capture.kernels == 2
    capture.clear()
    assert capture.events == []


async def test_a_capture_also_works_in_a_kernel_built_by_hand(webos_settings):
    capture = EventCapture("shop:order:placed")
    settings = webos_settings.model_copy(update={"load_plugins": "shop,spy"})
    async with Kernel(settings, plugins={"shop": Shop(), "spy": capture}) as kernel:
        await kernel.bus.emit("shop:order:placed", {"order_id": 3})
    assert capture.payloads == [{"order_id": 3}]
    assert repr(capture) == "<EventCapture 'shop:order:placed': 1 event(s)>"


async def test_wait_for_returns_once_background_events_arrive(make_kernel, capture_events):
    capture = capture_events("shop:order:*")
    async with make_kernel(plugins={"shop": Shop()}) as kernel:
        kernel.bus.publish("shop:order:placed", {"order_id": 1})
        kernel.bus.publish("shop:order:placed", {"order_id": 2})
        assert capture.events == []  # published: nothing has run yet
        events = await capture.wait_for(4, timeout=5)
        assert len(events) == 4
        assert sorted(capture.names) == ["shop:order:placed"] * 2 + ["shop:order:shipped"] * 2
        assert await capture.wait_for(1) == events  # already there: returns at once


async def test_wait_for_times_out_listing_what_arrived(make_kernel, capture_events):
    capture = capture_events("shop:order:placed")
    async with make_kernel(plugins={"shop": Shop()}) as kernel:
        await kernel.bus.emit("shop:order:placed", {"order_id": 5}, source="till")
        started = asyncio.get_running_loop().time()
        with pytest.raises(AssertionError) as failure:
            await capture.wait_for(3, timeout=0.1)
        assert 0.1 <= asyncio.get_running_loop().time() - started < 1
    assert str(failure.value) == (
        "capture_events('shop:order:placed'): waited 0.1 s for 3 event(s); 1 arrived:\n"
        "  shop:order:placed from till: {'order_id': 5}"
    )


async def test_wait_for_on_a_capture_no_kernel_loaded_says_why(make_kernel, capture_events):
    kernel = make_kernel(plugins={"shop": Shop()})
    late = capture_events("shop:order:placed")  # after make_kernel: not in that kernel
    async with kernel:
        await kernel.bus.emit("shop:order:placed", {"order_id": 5})
        with pytest.raises(AssertionError) as failure:
            await late.wait_for(1, timeout=0.01)
    assert str(failure.value) == (
        "capture_events('shop:order:placed'): waited 0.01 s for 1 event(s); none arrived.\n"
        "make_kernel() did not load this capture: create it before calling make_kernel(), "
        "or pass it to your Kernel in plugins={'capture': capture}."
    )


async def test_capturing_an_undeclared_event_fails_the_kernel_with_a_suggestion(
    make_kernel, capture_events
):
    capture_events("shop:order:placd")
    with pytest.raises(AssertionError, match="did you mean 'shop:order:placed'"):
        make_kernel(plugins={"shop": Shop()})


def test_a_malformed_pattern_is_refused_when_the_capture_is_made(capture_events):
    with pytest.raises(ValueError, match="Shop:Order"):
        capture_events("Shop:Order")


# -- listener outcomes ------------------------------------------------------------------


@pytest.fixture
async def emit(make_kernel):
    """Emit shop:order:placed with an order id to the shop and the faulty listeners."""
    kernel = make_kernel(plugins={"shop": Shop(), "faulty": Faulty()})
    async with kernel:

        async def run(order_id):
            return await kernel.bus.emit("shop:order:placed", {"order_id": order_id})

        yield run


async def test_assert_listener_failed_returns_the_failure(emit):
    result = await emit(-1)
    failure = assert_listener_failed(result, "faulty:explode", ValueError, match=r"-1 is neg")
    assert isinstance(failure.exception, ValueError)
    assert failure.error == "ValueError: order -1 is negative"
    assert_listener_failed(result, "faulty:explode", (KeyError, ValueError))
    assert_listener_failed(result, "faulty:explode", match=re.compile("NEGATIVE", re.I))


async def test_assert_listener_failed_shows_what_happened_instead(emit):
    result = await emit(3)
    with pytest.raises(AssertionError) as failure:
        assert_listener_failed(result, "faulty:explode")
    lines = str(failure.value).splitlines()
    assert lines[0] == "expected faulty:explode to fail, but it succeeded"
    assert lines[1] == (
        f"shop:order:placed [{result.envelope.id}] from unknown, {len(result.listeners)} "
        "listener(s):"
    )
    assert [line.split()[:2] for line in lines[2:]] == [["ok", name] for name in result.ran]

    result = await emit(-2)
    with pytest.raises(AssertionError, match="to raise KeyError, but it raised ValueError: order"):
        assert_listener_failed(result, "faulty:explode", KeyError)
    with pytest.raises(AssertionError) as failure:
        assert_listener_failed(result, "faulty:explode", match="positive")
    assert str(failure.value).startswith(
        "faulty:explode failed with ValueError: order -2 is negative, which does not match "
        "'positive' (searched in 'order -2 is negative')\n"
    )
    assert "  FAILED    faulty:explode: ValueError: order -2 is negative" in str(failure.value)


async def test_assert_listener_failed_names_the_listeners_when_the_name_is_wrong(emit):
    result = await emit(-1)
    with pytest.raises(AssertionError) as failure:
        assert_listener_failed(result, "faulty:exploded")
    assert str(failure.value).startswith(
        "assert_listener_failed: no listener 'faulty:exploded' ran for shop:order:placed; "
        "did you mean 'faulty:explode'?\n"
    )
    with pytest.raises(AssertionError, match=r"\(name listeners as 'plugin:function'\)"):
        assert_listener_failed(result, "explode")


async def test_assert_listener_timed_out(emit):
    result = await emit(0)
    timed_out = assert_listener_timed_out(result, "faulty:dawdle")
    assert timed_out.timed_out and isinstance(timed_out.exception, TimeoutError)
    with pytest.raises(AssertionError) as failure:
        assert_listener_failed(result, "faulty:dawdle")
    message = str(failure.value)
    assert message.startswith(
        "expected faulty:dawdle to fail, but it timed out after 0.0"  # 0.05 s and a bit
    )
    assert "(it raised nothing); use assert_listener_timed_out for that\n" in message
    assert re.search(r"\n  TIMED OUT faulty:dawdle \(\d+\.\d ms\): timed out after", message)

    with pytest.raises(AssertionError, match=r"^expected faulty:dawdle to time out, but it succ"):
        assert_listener_timed_out(await emit(1), "faulty:dawdle")
    with pytest.raises(AssertionError) as failure:
        assert_listener_timed_out(await emit(-1), "faulty:explode")
    assert str(failure.value).startswith(
        "expected faulty:explode to time out, but it failed with ValueError: order -1 is negative"
    )


async def test_assert_listeners_ok(emit):
    assert_listeners_ok(await emit(1))
    with pytest.raises(AssertionError) as failure:
        assert_listeners_ok(await emit(0))
    assert str(failure.value).startswith(
        "expected every listener to succeed, but not faulty:dawdle\n"
    )
