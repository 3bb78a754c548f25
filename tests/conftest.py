"""Fixtures shared by the kernel's own tests."""

import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest


def _make_venv(root: Path) -> Path:
    """A fresh virtual environment that sees this one's packages, with its own commands.

    Its site-packages gets a .pth file adding this environment's, so webos and its
    dependencies import without a download; what the test pip-installs into it stays
    there. The ``webos``, ``pytest`` and ``pip`` commands that installing them would
    have put in ``bin/`` are small scripts calling ``python -m``.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    lines = [f"import site; site.addsitedir({path!r})" for path in sorted(outer)]
    (Path(purelib) / "_outer_env.pth").write_text("\n".join(lines) + "\n")
    for command, module in [("webos", "webos"), ("pytest", "pytest"), ("pip", "pip")]:
        script = root / "bin" / command
        script.write_text(f'#!/bin/sh\nexec "{python}" -m {module} "$@"\n')
        script.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def make_venv() -> Callable[[Path], Path]:
    """``make_venv(path)``: see `_make_venv`."""
    return _make_venv
