"""``webos new plugin``: what it writes, what it refuses, and that the result works.

The slow tests do what a plugin author does right after generating one: install
it into a fresh virtual environment next to webos (which sees this environment's
packages through a ``.pth`` file, so nothing is downloaded), run its own tests,
list it with ``webos plugins``, and run the steps of its CI file.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from webos.cli import app
from webos.scaffold import TEMPLATE

runner = CliRunner()

FILES = [
    ".github/workflows/ci.yml",
    ".gitignore",
    "README.md",
    "acme_notes/__init__.py",
    "acme_notes/events.py",
    "acme_notes/hooks.py",
    "acme_notes/py.typed",
    "acme_notes/router.py",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/test_acme_notes.py",
]


def new_plugin(*args: str):
    return runner.invoke(app, ["new", "plugin", *args])


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# -- what it writes ----------------------------------------------------------------------


def test_writes_a_distribution_named_as_asked(tmp_path):
    result = new_plugin("acme-notes", "--dir", str(tmp_path / "work"))
    assert result.exit_code == 0, result.output
    root = tmp_path / "work" / "acme-notes"
    assert tree(root) == FILES
    assert result.stdout.splitlines()[0] == (
        f"Created the plugin 'acme_notes' (distribution acme-notes) in {root}:"
    )
    assert [line.strip() for line in result.stdout.splitlines()[1:-1]] == FILES
    assert result.stdout.splitlines()[-1] == (
        f"Next: pip install -e '{root}[test]' && pytest {root} && webos plugins"
    )

    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["project"]["name"] == "acme-notes"
    assert project["project"]["dependencies"] == ["webos"]
    assert "pytest>=8" in project["project"]["optional-dependencies"]["test"]
    assert project["project"]["entry-points"]["webos.plugins"] == {"acme_notes": "acme_notes"}
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["acme_notes"]

    router = (root / "acme_notes" / "router.py").read_text()
    assert 'APIRouter(prefix="/acme_notes"' in router
    assert "user: CurrentUser" in router
    assert '@event("acme_notes:item:created")' in (root / "acme_notes" / "events.py").read_text()
    assert "{{" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["acme-notes"]  # no leftovers


def test_a_relative_dir_and_the_default_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = new_plugin("notes")
    assert result.exit_code == 0, result.output
    assert "notes/__init__.py" in tree(tmp_path / "notes")
    assert result.stdout.splitlines()[-1] == (
        "Next: pip install -e './notes[test]' && pytest ./notes && webos plugins"
    )
    result = new_plugin("notes", "--dir", "plugins")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "Next: pip install -e './plugins/notes[test]' && pytest ./plugins/notes && webos plugins"
    )


def test_the_command_is_documented_in_its_help():
    result = runner.invoke(app, ["new", "plugin", "--help"])
    assert result.exit_code == 0
    assert "Write an installable plugin" in result.stdout
    assert "--dir" in result.stdout


# -- what it refuses ---------------------------------------------------------------------


def test_refuses_to_overwrite_an_existing_folder(tmp_path):
    existing = tmp_path / "acme"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    result = new_plugin("acme", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {existing} already exists, and `webos new plugin` never overwrites "
        "anything: remove it, or choose another name or --dir\n"
    )
    assert tree(existing) == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["acme"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme", "'Acme' is not a valid plugin name: use lowercase letters and digits, words "
         "joined by single '-' or '_', starting with a letter (such as 'acme')"),
        ("my plugin", "(such as 'my-plugin')"),
        ("café", "(such as 'cafe')"),
        ("2fast", "'2fast' is not a valid plugin name"),
        ("acme-", "'acme-' is not a valid plugin name"),
        ("a--b", "(such as 'a-b')"),
        ("my.plugin", "'my.plugin' is not a valid plugin name"),
        ("class", "'class' is a Python keyword, so `import class` cannot work: pick another "
         "name, such as 'class-plugin'"),
        ("json", "the package 'json' would shadow the standard library's module 'json'"),
        ("webos", "the package 'webos' is WebOS's own package"),
        ("tests", "the package 'tests' would clash with the `tests` folder of every project"),
        ("kernel", "'kernel' is the name of a plugin built into WebOS"),
        ("health", "'health' is the name of a plugin built into WebOS"),
        ("auth", "a plugin named 'auth' is already installed (from webos-auth)"),
        ("fastapi", "a module named 'fastapi' is already importable ("),
    ],
)  # fmt: skip
def test_refuses_a_name_that_cannot_name_a_package(tmp_path, name, message):
    result = new_plugin(name, "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- what it is worth --------------------------------------------------------------------


@pytest.fixture(scope="module")
def venv(tmp_path_factory, make_venv) -> Path:
    return make_venv(tmp_path_factory.mktemp("venv"))


def run(venv: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=venv_env(venv, **env),
    )


def venv_env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBOS_", "PYTEST_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return {**env, **extra}


@pytest.mark.slow
def test_generated_plugin_installs_passes_its_tests_and_is_listed(venv, tmp_path):
    made = run(venv, "webos", "new", "plugin", "acme-notes", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "acme-notes"
    pip = run(
        venv, "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(root), cwd=tmp_path
    )
    assert "Successfully installed acme-notes-0.1.0" in pip.stdout, pip.stdout + pip.stderr

    tests = run(venv, "pytest", "-q", "-p", "no:cacheprovider", str(root), cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    # All four ran: the auth plugin, installed here, lets the logged-in test run too.
    assert tests.stdout.splitlines()[-1].startswith("4 passed in "), tests.stdout

    plugins = json.loads(run(venv, "webos", "plugins", "--json", cwd=tmp_path).stdout)
    row = next(row for row in plugins if row["name"] == "acme_notes")
    assert row == {
        "name": "acme_notes",
        "version": "0.1.0",
        "source": "entrypoint:acme-notes",
        "status": "loaded",
        "error": None,
        "listens": ["acme_notes:item:created"],
        "declares": ["acme_notes:item:created"],
        "routes": ["GET /acme_notes/hello", "POST /acme_notes/items"],
    }
    events = json.loads(run(venv, "webos", "events", "--json", cwd=tmp_path).stdout)
    created = next(row for row in events if row["name"] == "acme_notes:item:created")
    assert created["declared_by"] == "acme_notes"
    assert created["listeners"] == ["acme_notes:log_item_created"]
    assert [field["name"] for field in created["payload"]] == ["name", "created_by"]
    assert created["doc"].startswith("Emitted by the acme_notes plugin after a logged-in user")

    emitted = run(
        venv,
        "webos",
        "emit",
        "acme_notes:item:created",
        "--payload",
        '{"name": "first", "created_by": "ada@example.com"}',
        cwd=tmp_path,
    )
    assert "ok     acme_notes:log_item_created" in emitted.stdout, emitted.stderr
    assert "acme_notes: ada@example.com created the item 'first'" in emitted.stderr


@pytest.mark.slow
def test_the_steps_of_the_generated_ci_file_pass(venv, tmp_path):
    assert run(venv, "webos", "new", "plugin", "ci-demo", cwd=tmp_path).returncode == 0
    root = tmp_path / "ci-demo"
    workflow = (root / ".github" / "workflows" / "ci.yml").read_text()
    steps = re.findall(r"^\s*- run: (.+)$", workflow, re.MULTILINE)
    assert steps == ["pip install -e '.[test]'", "pytest", "webos check"]
    for step in steps:
        # Verbatim, but offline: the dependencies are found installed, through the .pth file,
        # and hatchling is used from here (PIP_NO_BUILD_ISOLATION=0 means no isolation).
        done = run(venv, *shlex.split(step), cwd=root, PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0")
        assert done.returncode == 0, f"{step}:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.startswith("ok: ")


@pytest.mark.slow
def test_the_templates_ship_in_the_wheel(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    [wheel] = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        f"webos/{p.relative_to(TEMPLATE.parent.parent).as_posix()}"
        for p in TEMPLATE.rglob("*.tmpl")
    }
    assert "webos/templates/plugin/pyproject.toml.tmpl" in templates
    assert templates <= shipped, built.stderr
