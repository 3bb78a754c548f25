"""Start-up cost of ``webos plugins --json`` with 100 installed plugins, against bare imports.

Generates N entry-point plugins into a temporary site directory (a module
``webos_benchplug_NNN`` declaring ``benchNNN:thing:done`` and listening to it, plus a
``*.dist-info`` folder with METADATA and entry_points.txt in the group ``webos.plugins``),
then times, with that directory on PYTHONPATH, alternating:

- ``cli``: ``python -m webos plugins --json`` (the output must list all N as loaded);
- ``baseline``: ``python -c`` importing what webos's own modules import directly (found with
  ``python -X importtime -m webos plugins --json``) and the N plugin modules, with a stub
  ``webos`` module whose ``event`` and ``bus.on`` do nothing;
- ``python``: ``python -c pass``, for scale.

Only the generated plugins load: ``WEBOS_LOAD_PLUGINS`` names them (built-ins and other
installed plugins show as disabled and are not imported), ``WEBOS_MODULES_DIR`` is an
empty folder, and the commands run in an empty folder (no ``.env``).

    python bench/bench_startup.py [--json bench/results.json] [--runs 7] [--plugins 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _report  # bench/_report.py, beside this script

TARGET = 1.5
PREFIX = "webos_benchplug_"

PLUGIN_SOURCE = '''\
"""Benchmark plugin {n}: one event, one listener."""

from webos import bus, event


@event("bench{n}:thing:done")
def bench{n}_thing_done(payload) -> None:
    """Emitted when thing {n} is done."""


@bus.on("bench{n}:thing:done")
async def on_thing_done(payload):
    return None
'''

# Imports the direct dependencies, then the plugins through a do-nothing ``webos``.
BASELINE = """\
import importlib, sys, types

for name in {deps!r}:
    importlib.import_module(name)
stub = types.ModuleType("webos")
stub.event = lambda name: (lambda function: function)
stub.bus = types.SimpleNamespace(on=lambda name, **options: (lambda function: function))
sys.modules["webos"] = stub
for name in {plugins!r}:
    importlib.import_module(name)
"""


def generate(site: Path, count: int) -> list[tuple[str, str]]:
    """Write the plugins; (entry-point name, module name) of each."""
    made = []
    for i in range(count):
        n = f"{i:03d}"
        module, dist = f"{PREFIX}{n}", f"webos-benchplug-{n}"
        (site / f"{module}.py").write_text(PLUGIN_SOURCE.format(n=n))
        info = site / f"{module}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[webos.plugins]\nbenchplug_{n} = {module}\n")
        made.append((f"benchplug_{n}", module))
    return made


def child_env(site: Path, modules_dir: Path, names: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBOS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed plugins have their .pyc files
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    env["WEBOS_MODULES_DIR"] = str(modules_dir)
    env["WEBOS_LOAD_PLUGINS"] = ",".join(names)
    return env


def direct_imports(importtime: str) -> list[str]:
    """Modules that webos's own modules import directly, in first-import order.

    ``-X importtime`` prints one line per module after its children, indented by
    depth; read backwards, each line's parent is the last line one level up.
    """
    lines = [line for line in importtime.splitlines() if line.startswith("import time:")]
    stack: list[str] = []
    found: dict[str, int] = {}
    for index, line in reversed(list(enumerate(lines[1:]))):  # the first line is the header
        field = line.split("|", 2)[2]
        name = field.strip()
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        del stack[depth:]
        parent = stack[-1] if stack else None
        stack.append(name)
        if parent is None or not is_webos(parent) or is_webos(name):
            continue
        if not name.startswith(PREFIX):
            found[name] = index  # a module is imported once: its only line
    return sorted(found, key=found.__getitem__)


def is_webos(module: str) -> bool:
    return module == "webos" or module.startswith(("webos.", "webos_modules_"))


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {done.returncode}:\n{done.stderr}")
    return elapsed, done.stdout


def check_listing(stdout: str, names: list[str]) -> None:
    rows = {row["name"]: row for row in json.loads(stdout)}
    wrong = [n for n in names if rows.get(n, {}).get("status") != "loaded"]
    if wrong:
        first = rows.get(wrong[0])
        raise AssertionError(f"{len(wrong)} plugins not loaded, e.g. {wrong[0]}: {first}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    parser.add_argument("--plugins", type=int, default=100)
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="webos-bench-") as tmp:
        root = Path(tmp)
        site, modules_dir, cwd = root / "site", root / "modules", root / "cwd"
        for folder in (site, modules_dir, cwd):
            folder.mkdir()
        plugins = generate(site, args.plugins)
        names = [name for name, _ in plugins]
        env = child_env(site, modules_dir, names)

        cli = [sys.executable, "-m", "webos", "plugins", "--json"]
        # Untimed: writes the .pyc files, checks the listing, finds what webos imports.
        probe = subprocess.run(
            [sys.executable, "-X", "importtime", *cli[1:]],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0:
            raise RuntimeError(f"webos plugins --json failed:\n{probe.stderr}")
        check_listing(probe.stdout, names)
        deps = direct_imports(probe.stderr)
        baseline = [
            sys.executable,
            "-c",
            BASELINE.format(deps=deps, plugins=[module for _, module in plugins]),
        ]
        bare = [sys.executable, "-c", "pass"]
        timed(baseline, env, cwd)  # warm-up

        samples: dict[str, list[float]] = {"cli": [], "baseline": [], "python": []}
        for _ in range(args.runs):
            elapsed, stdout = timed(cli, env, cwd)
            check_listing(stdout, names)
            samples["cli"].append(elapsed * 1e3)
            samples["baseline"].append(timed(baseline, env, cwd)[0] * 1e3)
            samples["python"].append(timed(bare, env, cwd)[0] * 1e3)

    median = {key: statistics.median(values) for key, values in samples.items()}
    ratio = median["cli"] / median["baseline"]
    results = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "plugins": args.plugins,
        "runs": args.runs,
        "ms": {key: {"median": median[key], "samples": samples[key]} for key in samples},
        "ratio_cli_to_baseline": ratio,
        "baseline_imports": deps,
        "target": {"name": "cli / baseline", "op": "<=", "limit": TARGET, "met": ratio <= TARGET},
    }

    print(f"Python {results['python']}, {results['cpus']} CPUs; {args.plugins} entry-point plugins")
    print(f"baseline imports webos's direct dependencies: {', '.join(deps)}")
    print(f"wall time in ms, median of {args.runs} runs (alternating)")
    labels = {
        "cli": "python -m webos plugins --json",
        "baseline": f"python -c 'import deps + {args.plugins} plugins'",
        "python": "python -c pass",
    }
    for key, label in labels.items():
        runs = " ".join(f"{s:.0f}" for s in samples[key])
        print(f"  {key:8}  {label:42}  {median[key]:7.1f}   [{runs}]")
    mark = "MET   " if ratio <= TARGET else "MISSED"
    print(f"Target\n  [{mark}] cli / baseline: {ratio:.2f} (target <= {TARGET})")
    print(f"(JSON in {args.json})")
    _report.merge_json(args.json, "startup", results)
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
