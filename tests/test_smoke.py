import pytest

from webos import bus, event


@event("demo:thing:happened")
def demo_thing_happened(payload: dict) -> None:
    """A thing happened."""


seen = []


@bus.on("demo:thing:happened")
async def record(payload, event):
    seen.append((payload["n"], event.name))


@pytest.mark.anyio
async def test_emit_reaches_listener(make_kernel):
    import sys

    kernel = make_kernel(plugins={"demo": sys.modules[__name__]})
    async with kernel:
        result = await kernel.bus.emit("demo:thing:happened", {"n": 1})
    assert result.ok and result.ran == ["demo:record"]
    assert seen == [(1, "demo:thing:happened")]
