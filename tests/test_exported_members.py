"""The public API is what webos/__init__.py exports, and nothing leaks or goes missing."""

import subprocess
import sys

import webos


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(webos) if not name.startswith("_")} | {"__version__"}
    # Submodules are attributes too once imported; they are not API.
    modules = {name for name in public if type(getattr(webos, name)).__name__ == "module"}
    assert sorted(public - modules) == sorted(webos.__all__)


def test_every_exported_name_resolves():
    for name in webos.__all__:
        assert getattr(webos, name) is not None, name


def test_all_is_sorted():
    assert webos.__all__ == sorted(webos.__all__)


def test_importing_the_core_does_not_import_the_web_stack():
    code = (
        "import sys, webos, webos.cli, webos.kernel; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'starlette', 'httpx') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
