"""pytest fixtures for testing WebOS and its plugins (registered through ``pytest11``).

- ``webos_settings``: `Settings` pointing at a SQLite file and a modules folder in ``tmp_path``.
- ``make_kernel``: builds an isolated kernel with exactly the plugins a test names.
- ``make_client``: an ``httpx.AsyncClient`` bound to a kernel's app, with the app started.
- ``log``: every loguru record logged during the test.
- ``capture_events``: ``capture_events("auth:*")`` records the matching events of every
  kernel that ``make_kernel`` builds after it; ``await capture.wait_for(n)`` waits for them.
- ``register_and_login``: a fresh user through the auth plugin's routes; returns auth headers.
- ``assert_listener_failed``, ``assert_listener_timed_out``, ``assert_listeners_ok``: one
  listener's outcome in the `EmitResult` of an emit, with every listener's shown when it differs.
- ``import_path``: imports a helper module of a tests folder by its file path.
- ``require_service``: skips a test when a server is absent (fails it under CI).

Async tests run on anyio's pytest plugin (``@pytest.mark.anyio``); WebOS runs on
asyncio, so define ``anyio_backend`` to return ``"asyncio"`` in your conftest.py.
Importing this module stays light: the web layer is imported inside the fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import importlib.util
import os
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from .bus import EmitResult, Envelope, ListenerResult, bus
from .kernel import Kernel
from .settings import Settings

if TYPE_CHECKING:
    import httpx
    from loguru import Message, Record

__all__ = [
    "CaptureEvents",
    "EventCapture",
    "MakeClient",
    "MakeKernel",
    "assert_listener_failed",
    "assert_listener_timed_out",
    "assert_listeners_ok",
    "capture_events",
    "import_path",
    "log",
    "make_client",
    "make_kernel",
    "register_and_login",
    "require_service",
    "webos_settings",
]

MakeKernel = Callable[..., Kernel]
MakeClient = Callable[[Kernel], AbstractAsyncContextManager["httpx.AsyncClient"]]
CaptureEvents = Callable[[str], "EventCapture"]

# Above any priority a plugin would pick: the capture records an event before any other
# listener of it runs, so events emitted from inside listeners are recorded after their cause.
_FIRST = 2**31


@pytest.fixture
def webos_settings(tmp_path: Path) -> Settings:
    """Settings isolated in ``tmp_path``: a fresh SQLite file, an empty modules folder."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'webos.db'}",
        modules_dir=tmp_path / "modules",
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only option
    )


@pytest.fixture
def _webos_captures() -> list[EventCapture]:
    # Shared by capture_events (which adds) and make_kernel (which loads) within one test.
    return []


@pytest.fixture
def make_kernel(webos_settings: Settings, _webos_captures: list[EventCapture]) -> MakeKernel:
    """``make_kernel("auth", "blogger", plugins={"mine": module}, **settings)``.

    Loads exactly the named plugins (installed ones found by entry-point name,
    built-ins by name) plus the inline ``plugins``, which replace an installed
    plugin of the same name (a fake ``blogger``, say), plus every capture made
    by ``capture_events`` before this call (as ``capture``, ``capture_2``, ...).
    Raises if a named plugin is missing or any plugin fails, unless
    ``allow_failures=True``.
    """

    def build(
        *names: str,
        plugins: Mapping[str, object] | None = None,
        allow_failures: bool = False,
        **overrides: Any,
    ) -> Kernel:
        inline = dict(plugins or {})
        given = {id(obj) for obj in inline.values()}
        for capture in _webos_captures:
            if id(capture) not in given:
                inline[_free_name("capture", inline)] = capture
            capture.kernels += 1
        fields = {"load_plugins": ",".join([*names, *inline]), **overrides}
        settings = webos_settings.model_copy(update=fields)
        kernel = Kernel(settings, plugins=inline).load()
        missing = [name for name in names if not any(r.name == name for r in kernel.records)]
        if missing:
            raise LookupError(
                f"make_kernel: no plugin named {', '.join(map(repr, missing))} was found; "
                "is its distribution installed (pip install -e ./path/to/plugin)?"
            )
        failed = [f"{r.name}: {r.error}" for r in kernel.records if r.status == "failed"]
        if failed and not allow_failures:
            raise AssertionError(
                "make_kernel: plugins failed to load (pass allow_failures=True to test that):\n"
                + "\n".join(failed)
            )
        return kernel

    return build


def _free_name(base: str, taken: Mapping[str, object]) -> str:
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}_{number}"
    return name


@pytest.fixture
def log() -> Iterator[list[Record]]:
    """Every loguru record (DEBUG and up) logged during the test: ``record["message"]``..."""
    from loguru import logger

    records: list[Record] = []

    def sink(message: Message) -> None:
        records.append(message.record)

    handler = logger.add(sink, level="DEBUG", format="{message}")
    try:
        yield records
    finally:
        logger.remove(handler)


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """``async with make_client(kernel) as client``: the app started, requests over ASGI."""

    @asynccontextmanager
    async def client_for(kernel: Kernel) -> AsyncIterator[httpx.AsyncClient]:
        import httpx

        from .app import create_app

        app = create_app(kernel)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://webos.test"
            ) as client:
                yield client

    yield client_for


# -- capturing events ---------------------------------------------------------


class EventCapture:
    """Records every event matching ``pattern`` in the kernels it is loaded into.

    It is a plugin: an object with one listener, ``record``, of ``pattern`` (an
    event name or a wildcard, as ``@bus.on`` takes), which runs before any other
    listener of the event. ``make_kernel`` loads the captures made before it is
    called; to use one with a `Kernel` you build, pass it in ``plugins=``.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        #: The recorded events' envelopes (``.name``, ``.payload``...), in the order delivered.
        self.events: list[Envelope] = []
        #: How many kernels ``make_kernel`` has loaded this capture into.
        self.kernels = 0
        self._arrived: asyncio.Event | None = None

        def record(event: Envelope) -> None:
            self.events.append(event)
            if self._arrived is not None:
                self._arrived.set()

        # Marked per instance: the pattern is known only now, and the kernel collects
        # listeners from the object's attributes.
        self.record = bus.on(pattern, tryfirst=True, priority=_FIRST)(record)

    def __repr__(self) -> str:
        return f"<EventCapture {self.pattern!r}: {len(self.events)} event(s)>"

    @property
    def names(self) -> list[str]:
        """The recorded events' names, in the order delivered."""
        return [envelope.name for envelope in self.events]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The recorded events' payloads (copies), in the order delivered."""
        return [dict(envelope.payload) for envelope in self.events]

    def clear(self) -> None:
        """Forget what was recorded so far (``kernel:startup``, a setup's events...)."""
        self.events.clear()

    async def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Envelope]:
        """Wait until ``count`` events in all have been recorded; return those recorded.

        For events delivered in the background (``bus.publish``). After ``timeout``
        seconds, fails with what did arrive.
        """
        __tracebackhide__ = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.events) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._shortfall(count, timeout))
            self._arrived = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
        return list(self.events)

    def _shortfall(self, count: int, timeout: float) -> str:
        arrived = len(self.events)
        lines = [
            f"capture_events({self.pattern!r}): waited {timeout:g} s for {count} event(s); "
            + (f"{arrived} arrived:" if arrived else "none arrived.")
        ]
        lines += [
            f"  {e.name} from {e.source or 'unknown'}: {dict(e.payload)!r}" for e in self.events
        ]
        if not self.kernels:
            lines.append(
                "make_kernel() did not load this capture: create it before calling "
                "make_kernel(), or pass it to your Kernel in plugins={'capture': capture}."
            )
        return "\n".join(lines)


@pytest.fixture
def capture_events(_webos_captures: list[EventCapture]) -> CaptureEvents:
    """``capture = capture_events("auth:*")``, then ``make_kernel(...)``: records its events.

    Each capture is loaded into every kernel ``make_kernel`` builds after it was
    made (create it first, in the test or in a fixture the kernel's fixture uses).
    ``capture.events`` are the envelopes, ``capture.names`` and ``capture.payloads``
    their parts; ``await capture.wait_for(n, timeout=5)`` waits for events
    published in the background.
    """

    def make(pattern: str) -> EventCapture:
        capture = EventCapture(pattern)
        _webos_captures.append(capture)
        return capture

    return make


# -- listener outcomes --------------------------------------------------------


def assert_listener_failed(
    result: EmitResult,
    listener: str,
    exc_type: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    match: str | re.Pattern[str] | None = None,
) -> ListenerResult:
    """Check that ``listener`` (``"plugin:function"``) raised while handling the event.

    ``exc_type``: the exception must be an instance of it; ``match``: a regular
    expression searched in ``str(exception)``, as ``pytest.raises`` does.
    Returns the listener's `ListenerResult` (its ``.exception`` is the error).
    """
    __tracebackhide__ = True
    outcome = _outcome_of(result, listener, "assert_listener_failed")
    problem = None
    if outcome.ok:
        problem = f"expected {listener} to fail, but it succeeded"
    elif outcome.timed_out:
        problem = (
            f"expected {listener} to fail, but it {outcome.error} (it raised nothing); "
            "use assert_listener_timed_out for that"
        )
    elif exc_type is not None and not isinstance(outcome.exception, exc_type):
        wanted = _type_names(exc_type)
        problem = f"expected {listener} to raise {wanted}, but it raised {outcome.error}"
    elif match is not None and not re.search(match, str(outcome.exception)):
        pattern = match.pattern if isinstance(match, re.Pattern) else match
        problem = (
            f"{listener} failed with {outcome.error}, which does not match {pattern!r} "
            f"(searched in {str(outcome.exception)!r})"
        )
    if problem is not None:
        raise AssertionError(f"{problem}\n{_describe(result)}")
    return outcome


def assert_listener_timed_out(result: EmitResult, listener: str) -> ListenerResult:
    """Check that ``listener`` (``"plugin:function"``) was cancelled at its timeout."""
    __tracebackhide__ = True
    outcome = _outcome_of(result, listener, "assert_listener_timed_out")
    if not outcome.timed_out:
        what = "succeeded" if outcome.ok else f"failed with {outcome.error}"
        raise AssertionError(f"expected {listener} to time out, but it {what}\n{_describe(result)}")
    return outcome


def assert_listeners_ok(result: EmitResult) -> None:
    """Check that every listener of the event succeeded."""
    __tracebackhide__ = True
    if not result.ok:
        failed = ", ".join(outcome.listener for outcome in result.failed)
        raise AssertionError(
            f"expected every listener to succeed, but not {failed}\n{_describe(result)}"
        )


def _describe(result: EmitResult) -> str:
    """Every listener's outcome, one line each: what the assertion helpers show."""
    envelope = result.envelope
    lines = [
        f"{envelope.name} [{envelope.id}] from {envelope.source or 'unknown'}, "
        f"{len(result.listeners)} listener(s):"
    ]
    for outcome in result.results:
        took = f" ({outcome.duration * 1000:.1f} ms)" if outcome.duration is not None else ""
        if outcome.ok:
            state = "ok"
        elif outcome.timed_out:
            state = "TIMED OUT"
        else:
            state = "FAILED"
        detail = f": {outcome.error}" if outcome.error else ""
        lines.append(f"  {state:<9} {outcome.listener}{took}{detail}")
    if not result.listeners:
        lines.append("  (none)")
    return "\n".join(lines)


def _outcome_of(result: EmitResult, listener: str, helper: str) -> ListenerResult:
    __tracebackhide__ = True
    for outcome in result.results:
        if outcome.listener == listener:
            return outcome
    ran = result.ran
    close = difflib.get_close_matches(listener, ran, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if ":" not in listener:
        hint += " (name listeners as 'plugin:function')"
    raise AssertionError(
        f"{helper}: no listener {listener!r} ran for {result.envelope.name}{hint}\n"
        + _describe(result)
    )


def _type_names(exc_type: type[BaseException] | tuple[type[BaseException], ...]) -> str:
    types = exc_type if isinstance(exc_type, tuple) else (exc_type,)
    return " or ".join(t.__name__ for t in types)


# -- HTTP and services --------------------------------------------------------


async def register_and_login(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = "correct horse battery",  # noqa: S107 - a test fixture's password
) -> dict[str, str]:
    """Register a fresh user and log in; returns the ``Authorization`` header to send."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    registered = await client.post("/auth/register", json={"email": email, "password": password})
    if registered.status_code != 201:
        raise AssertionError(f"register failed: {registered.status_code} {registered.text}")
    login = await client.post("/auth/login", json={"email": email, "password": password})
    if login.status_code != 200:
        raise AssertionError(f"login failed: {login.status_code} {login.text}")
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def require_service(name: str, host: str, port: int) -> None:
    """Skip the test when a server is absent; fail instead under ``WEBOS_REQUIRE_SERVICES=1``.

    CI sets that variable, so a missing server there is a failure, never a silent skip.
    """
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("WEBOS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and WEBOS_REQUIRE_SERVICES=1 (set by .ci/run) demands it")
    pytest.skip(reason)


def import_path(path: Path, name: str | None = None) -> ModuleType:
    """Import the module at ``path``: a helper (a fake plugin, say) beside your tests.

    A tests folder is usually not a package (pytest's ``--import-mode=importlib``), so
    such a module cannot be imported by name. It is registered in ``sys.modules``
    (under ``name``, or one made from its path) so that its type annotations resolve.
    """
    qualified = name or "webos_test_" + "_".join(path.with_suffix("").parts[-3:])
    qualified = "".join(c if c.isalnum() else "_" for c in qualified)
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
