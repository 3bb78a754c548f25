"""A third-party plugin distribution, built and pip-installed into a virtual environment.

This is what a user does: ``webos install ./their-plugin`` (pip underneath), then
``webos plugins``. The new environment sees this environment's packages (webos and
its dependencies) through a ``.pth`` file, so nothing is downloaded.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "webos-hello"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory, make_venv) -> Path:
    return make_venv(tmp_path_factory.mktemp("venv"))


def webos(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "webos", *args],
        capture_output=True,
        text=True,
        check=check,
        cwd=venv,
    )


def test_installed_plugin_is_discovered_listed_and_runs(venv, tmp_path):
    source = tmp_path / "webos-hello"
    shutil.copytree(FIXTURE, source)
    installed = webos(venv, "install", "--", "--no-deps", "--no-build-isolation", str(source))
    assert "Successfully installed webos-hello-0.3.0" in installed.stdout, installed.stderr

    rows = {row["name"]: row for row in json.loads(webos(venv, "plugins", "--json").stdout)}
    hello = rows["hello"]
    assert hello["status"] == "loaded", hello
    assert hello["source"] == "entrypoint:webos-hello"
    assert hello["version"] == "0.3.0"
    assert hello["declares"] == ["hello:greeted"]
    assert hello["listens"] == ["hello:greeted"]
    assert hello["routes"] == ["GET /hello/{name}"]

    events = {row["name"]: row for row in json.loads(webos(venv, "events", "--json").stdout)}
    assert events["hello:greeted"]["declared_by"] == "hello"
    assert events["hello:greeted"]["listeners"] == ["hello:log_greeting"]
    assert events["hello:greeted"]["payload"][0]["name"] == "name"

    emitted = webos(venv, "emit", "hello:greeted", "--payload", '{"name": "Ada"}')
    assert "ok     hello:log_greeting" in emitted.stdout
    assert "HELLO: greeted Ada" in emitted.stderr

    webos(venv, "uninstall", "webos-hello")
    rows = {row["name"] for row in json.loads(webos(venv, "plugins", "--json").stdout)}
    assert "hello" not in rows
