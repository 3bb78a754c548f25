"""docs/writing-plugins.md, run: every code block, in order, so that the guide cannot rot.

A ``bash`` block runs as a script (``set -euo pipefail``); a block whose info string
has ``title="path"`` is written to that file; any other block fails this test. They
run in an empty folder, in a fresh virtual environment that sees this environment's
packages through a ``.pth`` file (as in test_third_party.py), so the guide's
``pip install`` never touches this environment. pip is kept offline: what the
guide's plugin depends on is found installed, and hatchling is used from here.
"""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

GUIDE = Path(__file__).parent.parent / "docs" / "writing-plugins.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'\btitle="(?P<path>[^"]+)"')


@dataclass(frozen=True)
class Block:
    line: int
    info: str
    body: str

    @property
    def title(self) -> str | None:
        found = TITLE.search(self.info)
        return found["path"] if found else None


def blocks(text: str) -> list[Block]:
    found = [
        Block(text.count("\n", 0, m.start()) + 1, m["info"].strip(), m["body"])
        for m in FENCE.finditer(text)
    ]
    # Every fence pairs up into a block found here: none is skipped by an odd indent.
    fences = len(re.findall(r"^\s*```", text, re.MULTILINE))
    if fences != 2 * len(found):
        raise AssertionError(f"{fences} fences but {len(found)} blocks: is one indented?")
    return found


def test_every_block_is_one_the_runner_knows():
    found = blocks(GUIDE.read_text())
    unknown = [b for b in found if b.info != "bash" and b.title is None]
    assert unknown == [], "blocks neither `bash` nor with a title=: " + ", ".join(
        f"line {b.line} ({b.info or 'no info string'})" for b in unknown
    )
    assert sum(b.info == "bash" for b in found) >= 5


@pytest.mark.slow
def test_the_guide_runs_from_start_to_end(tmp_path, make_venv):
    venv = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBOS_", "PYTEST_"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation in the environment
    )
    outputs: list[tuple[str, str]] = []
    for block in blocks(GUIDE.read_text()):
        if block.title is not None:
            target = work / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body)
            continue
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + block.body],
            capture_output=True,
            text=True,
            check=False,
            cwd=work,
            env=env,
        )
        assert done.returncode == 0, (
            f"the block at line {block.line} of {GUIDE.name} failed ({done.returncode}):\n"
            f"{block.body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
        outputs.append((block.body, done.stdout))

    # What the guide promises, seen from outside: the tests ran (none skipped), a wheel exists.
    test_runs = [out for body, out in outputs if "pytest bookmarks" in body]
    assert len(test_runs) == 2
    assert "4 passed in" in test_runs[0] and "skipped" not in test_runs[0]
    assert "3 passed in" in test_runs[1] and "skipped" not in test_runs[1]
    assert (work / "dist" / "bookmarks-0.1.0-py3-none-any.whl").is_file()
