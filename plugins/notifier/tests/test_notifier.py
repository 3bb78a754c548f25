"""The notifier against a real HTTP server on 127.0.0.1 that answers scripted statuses."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from webos import EmitResult, Kernel
from webos.testing import assert_listener_timed_out

if TYPE_CHECKING:
    from loguru import Record

MakeKernel = Callable[..., Kernel]
Publish = Callable[[], Awaitable[EmitResult]]

POST = {"title": "Hello, world", "slug": "hello-world", "author": "Ada"}
TEXT = "New post: Hello, world by Ada (/blog/posts/hello-world)"


@dataclass(frozen=True)
class Received:
    path: str
    content_type: str
    body: Any


class WebhookServer:
    """Records every POST and answers with the scripted replies, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._replies: deque[tuple[int, float]] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"

    def reply(self, *statuses: int, delay: float = 0.0) -> None:
        """Answer the next requests with ``statuses``, each after ``delay`` seconds."""
        with self._lock:
            self._replies.extend((status, delay) for status in statuses)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next_reply(self, received: Received) -> tuple[int, float]:
        with self._lock:
            self.received.append(received)
            return self._replies.popleft() if self._replies else (200, 0.0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                received = Received(self.path, self.headers.get("Content-Type", ""), body)
                status, delay = server._next_reply(received)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output to what the notifier logs

        return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out hangs up before the delayed answer: expected here.
        pass


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def publish(make_kernel: MakeKernel, fake_blogger: ModuleType) -> Publish:
    """Run a kernel with the notifier and emit one ``blogger:post:published``."""

    async def emit() -> EmitResult:
        kernel = make_kernel("notifier", plugins={"blogger": fake_blogger})
        async with kernel:
            return await kernel.bus.emit("blogger:post:published", POST, source="blogger")

    return emit


def messages(log: list[Record], level: str) -> list[str]:
    return [record["message"] for record in log if record["level"].name == level]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_loaded_through_its_entry_point(make_kernel: MakeKernel, fake_blogger: ModuleType) -> None:
    kernel = make_kernel("notifier", plugins={"blogger": fake_blogger})
    record = kernel.plugin("notifier")
    assert record is not None, "is webos-notifier installed? pip install -e plugins/notifier"
    assert record.source == "entrypoint:webos-notifier"
    assert record.listens == ["blogger:post:published"]
    assert kernel.events["blogger:post:published"].declared_by == "blogger"


@pytest.mark.anyio
async def test_post_is_announced(
    publish: Publish, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    result = await publish()
    assert result.ok and result.ran == ["notifier:notify_post"]
    assert webhook.received == [Received("/hook", "application/json", {"text": TEXT})]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 503, 429])
async def test_transient_answer_is_retried(
    publish: Publish,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
    log: list[Record],
    status: int,
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    webhook.reply(status, 200)
    result = await publish()
    assert result.ok
    assert [r.body for r in webhook.received] == [{"text": TEXT}] * 2
    [warning] = messages(log, "WARNING")
    assert f"attempt 1/3 failed: HTTP {status}" in warning
    assert messages(log, "ERROR") == []


@pytest.mark.anyio
async def test_timeout_is_retried(
    publish: Publish, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch, log: list[Record]
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("WEBOS_NOTIFIER_TIMEOUT", "0.1")
    webhook.reply(200, delay=0.5)
    result = await publish()
    assert result.ok
    assert len(webhook.received) == 2
    [warning] = messages(log, "WARNING")
    assert "ReadTimeout" in warning
    assert messages(log, "ERROR") == []


@pytest.mark.anyio
@pytest.mark.parametrize(("setting", "attempts"), [(None, 3), ("1", 1), ("5", 5)])
async def test_persistent_failure_gives_up_without_raising(
    publish: Publish,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
    log: list[Record],
    setting: str | None,
    attempts: int,
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    if setting is not None:
        monkeypatch.setenv("WEBOS_NOTIFIER_RETRIES", setting)
    webhook.reply(*[500] * 10)
    result = await publish()
    assert result.ok and result.failed == []
    assert len(webhook.received) == attempts
    [error] = messages(log, "ERROR")
    assert error.startswith(f"Notifier: could not deliver to webhook {webhook.url}: HTTP 500")
    assert f"(status 500, {attempts} attempt(s))" in error
    warnings = messages(log, "WARNING")
    assert len(warnings) == attempts - 1
    # The backoff (0.01 s here) doubles before each retry.
    for n, warning in enumerate(warnings):
        assert warning.endswith(f"retrying in {0.01 * 2**n:.2f} s")


@pytest.mark.anyio
async def test_a_hanging_webhook_is_cut_off_at_the_listener_timeout(
    make_kernel: MakeKernel,
    fake_blogger: ModuleType,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The notifier's own timeout is generous; the kernel's bounds the whole delivery.
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    webhook.reply(200, delay=2.0)
    kernel = make_kernel("notifier", plugins={"blogger": fake_blogger}, listener_timeout=0.2)
    async with kernel:
        result = await kernel.bus.emit("blogger:post:published", POST, source="blogger")
    timed_out = assert_listener_timed_out(result, "notifier:notify_post")
    assert timed_out.duration is not None and timed_out.duration < 1.5
    assert len(webhook.received) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 404, 410])
async def test_client_error_is_not_retried(
    publish: Publish,
    webhook: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
    log: list[Record],
    status: int,
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", webhook.url)
    webhook.reply(status)
    result = await publish()
    assert result.ok
    assert len(webhook.received) == 1
    [error] = messages(log, "ERROR")
    assert f"(status {status}, 1 attempt(s))" in error


@pytest.mark.anyio
async def test_unreachable_webhook_is_logged(
    publish: Publish, monkeypatch: pytest.MonkeyPatch, log: list[Record]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", url)
    result = await publish()
    assert result.ok
    [error] = messages(log, "ERROR")
    assert error.startswith(f"Notifier: could not deliver to webhook {url}: ConnectError")
    assert "(status None, 3 attempt(s))" in error


@pytest.mark.anyio
async def test_query_string_stays_out_of_the_log(
    publish: Publish, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch, log: list[Record]
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", f"{webhook.url}?token=s3cret")
    webhook.reply(500, 500, 500)
    await publish()
    assert webhook.received[0].path == "/hook?token=s3cret"
    logged = messages(log, "WARNING") + messages(log, "ERROR")
    assert len(logged) == 3
    assert all(webhook.url in line and "s3cret" not in line for line in logged)


@pytest.mark.anyio
async def test_without_url_the_message_is_only_logged(
    publish: Publish, webhook: WebhookServer, log: list[Record]
) -> None:
    result = await publish()
    assert result.ok
    assert webhook.received == []
    assert messages(log, "INFO")[-1] == (
        f"Notifier: WEBOS_NOTIFIER_WEBHOOK_URL is not set; would have sent: {TEXT}"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "value"),
    [("WEBHOOK_URL", "ftp://example.com/hook"), ("RETRIES", "0"), ("TIMEOUT", "soon")],
)
async def test_invalid_settings_are_logged(
    publish: Publish,
    monkeypatch: pytest.MonkeyPatch,
    log: list[Record],
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv("WEBOS_NOTIFIER_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv(f"WEBOS_NOTIFIER_{name}", value)
    result = await publish()
    assert result.ok
    [error] = messages(log, "ERROR")
    assert error.startswith(f"Notifier: invalid WEBOS_NOTIFIER_* settings ({name.lower()}: ")
    assert error.endswith(f"message dropped: {TEXT}")
    assert value not in error  # the offending input (a URL may hold a token) stays out
