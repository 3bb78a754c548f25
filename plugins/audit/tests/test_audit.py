"""The audit lines, emitted through a real kernel with a stand-in auth plugin."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from webos import Kernel, bus
from webos.testing import assert_listener_failed

if TYPE_CHECKING:
    from loguru import Record

MakeKernel = Callable[..., Kernel]

EVENTS = ["auth:login:failure", "auth:login:success", "auth:logout", "auth:user:registered"]
USER = {"user_id": "7", "email": "ada@example.com"}


def audit_lines(log: list[Record]) -> list[Record]:
    return [record for record in log if record["message"].startswith("AUDIT:")]


@pytest.fixture
def kernel(make_kernel: MakeKernel, fake_auth: ModuleType) -> Kernel:
    """The installed audit plugin and the stand-in auth plugin, nothing else."""
    return make_kernel("audit", plugins={"auth": fake_auth})


def test_loaded_through_its_entry_point(kernel: Kernel) -> None:
    record = kernel.plugin("audit")
    assert record is not None, "is webos-audit installed? pip install -e plugins/audit"
    assert record.source == "entrypoint:webos-audit"
    assert record.listens == EVENTS
    assert {kernel.events[name].declared_by for name in EVENTS} == {"auth"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "payload", "sentence"),
    [
        ("auth:user:registered", USER, "AUDIT: User ada@example.com registered."),
        ("auth:login:success", USER, "AUDIT: User ada@example.com has entered the system."),
        (
            "auth:login:failure",
            {"email": "ada@example.com", "reason": "wrong password"},
            "AUDIT: Failed login for ada@example.com (wrong password).",
        ),
        ("auth:logout", USER, "AUDIT: User ada@example.com logged out."),
    ],
)
async def test_each_auth_event_is_audited(
    kernel: Kernel,
    log: list[Record],
    name: str,
    payload: dict[str, Any],
    sentence: str,
) -> None:
    async with kernel:
        result = await kernel.bus.emit(name, payload, source="auth")
    assert result.ok and len(result.ran) == 1
    envelope = result.envelope
    [record] = audit_lines(log)
    assert record["message"] == (
        f"{sentence} [event {envelope.id} from auth, correlation {envelope.id}]"
    )
    assert record["level"].name == "INFO"
    assert record["name"] == "webos_audit.hooks"
    assert record["function"] == result.ran[0].removeprefix("audit:")
    assert record["extra"] == {
        "event_id": envelope.id,
        "event_source": "auth",
        "event_time": envelope.time.isoformat(),
        "correlation_id": envelope.id,
        "parent_id": None,
    }


@pytest.mark.anyio
async def test_event_without_source(kernel: Kernel, log: list[Record]) -> None:
    async with kernel:
        result = await kernel.bus.emit("auth:logout", USER)
    [record] = audit_lines(log)
    envelope = result.envelope
    assert record["message"] == (
        f"AUDIT: User ada@example.com logged out. [event {envelope.id} from unknown, "
        f"correlation {envelope.id}]"
    )
    assert record["extra"]["event_source"] is None


@pytest.mark.anyio
async def test_braces_in_an_email_are_kept(kernel: Kernel, log: list[Record]) -> None:
    async with kernel:
        await kernel.bus.emit("auth:login:success", {"user_id": "1", "email": "{x}@example.com"})
    [record] = audit_lines(log)
    assert record["message"].startswith("AUDIT: User {x}@example.com has entered the system.")


class _Broken:
    """Another plugin's listener of the same event, which fails."""

    @bus.on("auth:login:success")
    def explode(self, payload: dict[str, Any]) -> None:
        raise RuntimeError("disk full")


@pytest.mark.anyio
async def test_a_failing_neighbour_does_not_stop_the_audit(
    make_kernel: MakeKernel, fake_auth: ModuleType, log: list[Record]
) -> None:
    kernel = make_kernel("audit", plugins={"auth": fake_auth, "broken": _Broken()})
    async with kernel:
        result = await kernel.bus.emit("auth:login:success", USER, source="auth")
    assert_listener_failed(result, "broken:explode", RuntimeError, match="disk full")
    [record] = audit_lines(log)
    assert record["message"].startswith("AUDIT: User ada@example.com has entered the system.")


class _LogsInAfterRegistering:
    """A listener that emits from inside a listener: its event is the child of the first."""

    @bus.on("auth:user:registered")
    async def log_in(self, payload: dict[str, Any]) -> None:
        await bus.emit("auth:login:success", payload)


@pytest.mark.anyio
async def test_the_line_shows_what_caused_the_event(
    make_kernel: Callable[..., Kernel], fake_auth: ModuleType, log: list[Record]
) -> None:
    kernel = make_kernel("audit", plugins={"auth": fake_auth, "chain": _LogsInAfterRegistering()})
    async with kernel:
        first = await kernel.bus.emit("auth:user:registered", USER, source="auth")
    lines = {record["function"]: record for record in audit_lines(log)}
    registered, logged_in = lines["user_registered"], lines["logged_in"]
    parent = first.envelope
    assert registered["message"].endswith(f"[event {parent.id} from auth, correlation {parent.id}]")
    assert logged_in["extra"]["parent_id"] == parent.id
    assert logged_in["extra"]["correlation_id"] == parent.id
    assert logged_in["extra"]["event_source"] == "chain"
    assert logged_in["message"].endswith(
        f"from chain, correlation {parent.id}, parent {parent.id}]"
    )
