"""``webos serve`` as a user runs it: a subprocess on a free port, real HTTP, its stdout read.

The tutorial's flow: serve, register, log in, watch the terminal for the audit
line and for the listener in a local module (``./modules/listener_demo``),
publish a post, stop with Ctrl-C.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

LISTENER_DEMO = """
from fastapi import APIRouter
from loguru import logger

from webos import bus

router = APIRouter(prefix="/demo")


@router.get("/ping")
async def ping():
    return {"pong": True}


@bus.on("auth:login:success")
async def on_user_login(payload):
    logger.info(f"DEMO: {payload.get('email')} logged in")


@bus.on("kernel:shutdown")
async def on_shutdown(payload):
    logger.info("DEMO: shutting down")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A ``webos serve`` subprocess whose output lines are collected as they arrive."""

    def __init__(self, cwd: Path, port: int, *extra: str, **settings: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("WEBOS_")} | settings
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webos", "serve", "--port", str(port), *extra],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._queue.put(line)

    def wait_for_line(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            try:
                self.lines.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
        raise AssertionError(f"{text!r} never appeared in the output:\n{''.join(self.lines)}")

    def all_lines(self) -> list[str]:
        """Every line so far, once the process has ended: nothing left in the pipe."""
        while True:
            try:
                self.lines.append(self._queue.get(timeout=0.5))
            except queue.Empty:
                return self.lines

    def wait_until_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.wait_for_line("\0", timeout=0.5)
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("webos serve did not answer /health in time")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server(tmp_path):
    demo = tmp_path / "modules" / "listener_demo"
    demo.mkdir(parents=True)
    (demo / "__init__.py").write_text("")
    (demo / "router.py").write_text(textwrap.dedent(LISTENER_DEMO))
    running = Server(tmp_path, free_port())
    try:
        running.wait_until_up()
        yield running
    finally:
        running.stop()


def test_serve_register_login_publish_and_stop(server, tmp_path):
    email = "ada@example.com"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        registered = client.post("/auth/register", json={"email": email, "password": "s3cret-pass"})
        assert registered.status_code == 201, registered.text
        login = client.post("/auth/login", json={"email": email, "password": "s3cret-pass"})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        # The tutorial's promise: every listener of auth:login:success ran, in the terminal.
        server.wait_for_line(f"AUDIT: User {email} has entered the system.")
        server.wait_for_line(f"DEMO: {email} logged in")

        assert client.get("/demo/ping").json() == {"pong": True}
        assert client.get("/auth/me", headers=headers).json()["email"] == email
        post = client.post(
            "/blog/posts", json={"title": "Hello World", "body": "First!"}, headers=headers
        )
        assert post.status_code == 201, post.text
        slug = post.json()["slug"]
        assert client.get(f"/blog/posts/{slug}").json()["title"] == "Hello World"
        assert client.post("/blog/posts", json={"title": "x", "body": "y"}).status_code == 401

    assert server.stop() == 0
    server.wait_for_line("DEMO: shutting down")
    # The embedded default: a SQLite file in the working directory.
    assert (tmp_path / "webos.db").is_file()


def test_serve_strict_refuses_to_start_with_a_broken_plugin(tmp_path):
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    strict = Server(tmp_path, free_port(), "--strict")
    try:
        assert strict.process.wait(timeout=30) != 0
        strict.wait_for_line("broken: import failed: RuntimeError: broken on purpose")
    finally:
        strict.stop()


PUBLISHER = '''
import asyncio
from pathlib import Path

from fastapi import APIRouter

from webos import bus, event

router = APIRouter()


@event("slowjob:requested")
def slowjob_requested(payload: dict) -> None:
    """Someone asked for the slow job."""


@router.post("/slowjob/{n}")
async def request_job(n: int):
    bus.publish("slowjob:requested", {"n": n})
    return {"accepted": n}


@bus.on("slowjob:requested")
async def do_job(payload):
    await asyncio.sleep(1.0)
    Path(f"done-{payload['n']}").write_text("ok")
'''


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_clean_stop_finishes_what_was_published(tmp_path, stop_signal):
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "slowjob.py").write_text(textwrap.dedent(PUBLISHER))
    running = Server(tmp_path, free_port())
    try:
        running.wait_until_up()
        for n in (1, 2, 3):
            response = httpx.post(f"{running.url}/slowjob/{n}", timeout=5)
            assert response.json() == {"accepted": n}
        running.process.send_signal(stop_signal)
        # uvicorn shuts down cleanly, then re-raises the signal it caught (SIGTERM: -15).
        assert running.process.wait(timeout=30) in (0, -stop_signal)
    finally:
        running.stop()
    # Stopped while the jobs slept: every one finished before the process exited.
    assert sorted(p.name for p in tmp_path.glob("done-*")) == ["done-1", "done-2", "done-3"]
    running.wait_for_line("Waiting up to 10.0 s for 3 background event(s)")


def test_several_workers_share_the_bus_on_redis(tmp_path):
    import uuid

    from webos.testing import require_service

    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"webos-test-{uuid.uuid4().hex[:8]}"
    running = Server(
        tmp_path,
        free_port(),
        "--workers",
        "2",
        WEBOS_BUS_URL="redis://127.0.0.1:6379/0",
        WEBOS_BUS_PREFIX=prefix,
    )
    try:
        running.wait_until_up()
        emails = [f"user{n}@example.com" for n in range(6)]
        # A connection per request, so that requests spread over both workers (and a
        # kept-alive connection that a worker closes is never reused mid-flight).
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=running.url, timeout=10, limits=no_keepalive) as client:
            for email in emails:
                body = {"email": email, "password": "s3cret-pass"}
                assert client.post("/auth/register", json=body).status_code == 201
                login = client.post("/auth/login", json=body)
                assert login.status_code == 200
                # A token made by one worker is good on the other (the key is in the database).
                token = login.json()["access_token"]
                for _ in range(2):
                    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
                    assert me.json()["email"] == email
        for email in emails:
            running.wait_for_line(f"AUDIT: User {email} has entered the system.")
    except httpx.TransportError as exc:
        running.stop()
        output = "".join(running.all_lines())
        raise AssertionError(f"{exc!r}; the server said:\n{output}") from exc
    finally:
        running.stop()
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    audit = [line for line in running.all_lines() if "has entered the system." in line]
    # Each login was audited once across the two workers: one consumer group per listener.
    assert len(audit) == len(emails)
