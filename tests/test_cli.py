"""The webos command, through typer's runner: listings, emit, check."""

import json
import textwrap

import pytest
from typer.testing import CliRunner

from webos.cli import app

runner = CliRunner()


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A modules folder with one good, one broken, one misspelled and one disabled plugin."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "good.py").write_text(
        textwrap.dedent(
            '''
            from webos import bus, event

            @event("good:thing:done")
            def good_thing_done(payload: dict) -> None:
                """A good thing was done."""

            @bus.on("good:thing:done")
            async def cheer(payload):
                print("CHEER", payload.get("what"))

            @bus.on("good:thing:done")
            async def grumble(payload):
                if payload.get("fail"):
                    raise ValueError("grumpy today")
            '''
        )
    )
    (folder / "broken.py").write_text("raise ImportError('a dependency is missing')\n")
    (folder / "typo.py").write_text(
        "from webos import bus\n\n@bus.on('good:thing:don')\nasync def f(payload):\n    pass\n"
    )
    (folder / "sleepy.py").write_text("")
    monkeypatch.setenv("WEBOS_MODULES_DIR", str(folder))
    monkeypatch.setenv("WEBOS_DISABLE_PLUGINS", "sleepy")
    monkeypatch.setenv("WEBOS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return folder


def by_name(output: str) -> dict:
    return {row["name"]: row for row in json.loads(output)}


def test_plugins_json_shows_loaded_failed_misspelled_and_disabled(modules):
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = by_name(result.stdout)
    assert rows["good"]["status"] == "loaded"
    assert rows["good"]["declares"] == ["good:thing:done"]
    assert rows["good"]["listens"] == ["good:thing:done"]
    assert rows["good"]["source"] == f"modules-dir:{modules.resolve()}"
    assert rows["broken"]["status"] == "failed"
    assert "a dependency is missing" in rows["broken"]["error"]
    assert rows["typo"]["status"] == "failed"
    assert "did you mean 'good:thing:done'" in rows["typo"]["error"]
    assert rows["sleepy"]["status"] == "disabled"
    assert set(rows["good"]) >= {
        "name",
        "version",
        "source",
        "status",
        "error",
        "listens",
        "declares",
        "routes",
    }
    # Built-ins only with --all.
    assert "health" not in rows and "kernel" not in rows
    everything = by_name(runner.invoke(app, ["plugins", "--json", "--all"]).stdout)
    assert everything["kernel"]["source"] == "builtin"
    assert everything["health"]["routes"] == ["GET /health"]


def test_plugins_table_is_readable(modules):
    result = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in ("good", "broken", "failed", "disabled", "typo"):
        assert word in result.stdout


def test_events_json_and_markdown(modules):
    rows = by_name(runner.invoke(app, ["events", "--json"]).stdout)
    good = rows["good:thing:done"]
    assert good["hook"] == "good_thing_done"
    assert good["declared_by"] == "good"
    assert good["doc"] == "A good thing was done."
    assert good["listeners"] == ["good:grumble", "good:cheer"]
    assert rows["kernel:startup"]["payload"] == [
        {"name": "plugins", "type": "array[string]", "required": True, "description": ""}
    ]
    markdown = runner.invoke(app, ["events", "--markdown"]).stdout
    assert "## `good:thing:done`" in markdown and "Hook `good_thing_done`" in markdown


def test_emit_reports_listeners_and_fails_when_one_fails(modules):
    ok = runner.invoke(app, ["emit", "good:thing:done", "--payload", '{"what": "tests"}'])
    assert ok.exit_code == 0, ok.output
    assert "CHEER tests" in ok.stdout
    assert "ok     good:cheer" in ok.stdout and "ok     good:grumble" in ok.stdout

    bad = runner.invoke(app, ["emit", "good:thing:done", "--payload", '{"fail": true}'])
    assert bad.exit_code == 1
    assert "FAILED good:grumble" in bad.stdout and "ValueError: grumpy today" in bad.stdout


def test_emit_refuses_bad_input_clearly(modules):
    unknown = runner.invoke(app, ["emit", "good:thing:dome"])
    assert unknown.exit_code == 2
    assert "Did you mean 'good:thing:done'" in unknown.stderr
    not_json = runner.invoke(app, ["emit", "good:thing:done", "--payload", "{nope"])
    assert not_json.exit_code == 2 and "not valid JSON" in not_json.stderr
    not_mapping = runner.invoke(app, ["emit", "good:thing:done", "--payload", "[1]"])
    assert not_mapping.exit_code == 2 and "expected a mapping" in not_mapping.stderr


def test_check_fails_on_problems_and_passes_without_them(modules, monkeypatch):
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "2 problem(s)" in result.stdout
    assert "broken" in result.stdout and "typo" in result.stdout

    monkeypatch.setenv("WEBOS_DISABLE_PLUGINS", "broken,typo")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")
