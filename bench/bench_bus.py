"""Emit cost of the WebOS bus against hand-written loops and other async event libraries.

One process, one event loop, the same workload through each implementation:

- ``for``: ``for f in listeners: await f(payload)`` (the floor; runs listeners one by one)
- ``gather``: ``await asyncio.gather(*(f(payload) for f in listeners))``
- ``pluggy``: a real ``pluggy.PluginManager``, N impl plugins, the coroutines gathered
- ``pyee``: ``AsyncIOEventEmitter.emit`` then ``await emitter.wait_for_complete()``
- ``blinker``: ``await Signal.send_async(...)`` (awaits receivers one by one)
- ``webos``: ``await kernel.bus.emit("bench:ping", payload)``, N ``@bus.on`` listeners

Workloads: N = 1, 10, 100 listeners that return without suspending, the same that
suspend once (``await asyncio.sleep(0)``), and 10 listeners sleeping 50 ms.

    python bench/bench_bus.py [--json bench/results.json] [--rounds 5] [--round-time 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import tempfile
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import _report  # bench/_report.py, beside this script
import blinker
import pluggy
from loguru import logger
from pyee.asyncio import AsyncIOEventEmitter

import webos
from webos import Kernel, Settings, bus, event

PAYLOAD: dict[str, Any] = {"n": 1}
EVENT = "bench:ping"
SIZES = (1, 10, 100)
SLEEP_LISTENERS = 10
SLEEP_SECONDS = 0.05
IMPLS = ("for", "gather", "pluggy", "pyee", "blinker", "webos")
#: Implementations that await listeners one after another: the sleep case costs N x 50 ms.
SEQUENTIAL = ("for", "blinker")

Run = Callable[[int], Awaitable[None]]
Counter = list[int]

# -- listeners ---------------------------------------------------------------------------


def make_listener(kind: str, counter: Counter | None = None) -> Callable[..., Awaitable[None]]:
    """A new, distinct ``async def listener(payload)``; counting calls if ``counter`` is given."""
    if counter is not None:
        inner = make_listener(kind)

        async def counted(payload: Any) -> None:
            await inner(payload)
            counter[0] += 1

        return counted
    if kind == "return":

        async def listener(payload: Any) -> None:
            return None

    elif kind == "yield":

        async def listener(payload: Any) -> None:
            await asyncio.sleep(0)

    elif kind == "sleep":

        async def listener(payload: Any) -> None:
            await asyncio.sleep(SLEEP_SECONDS)

    else:
        raise ValueError(kind)
    return listener


def make_receiver(kind: str, counter: Counter | None = None) -> Callable[..., Awaitable[None]]:
    """The same listener in blinker's calling convention: ``receiver(sender, **kwargs)``."""
    if counter is not None:
        inner = make_listener(kind, counter)

        async def counted(sender: Any, payload: Any) -> None:
            await inner(payload)

        return counted
    if kind == "return":

        async def receiver(sender: Any, payload: Any) -> None:
            return None

    elif kind == "yield":

        async def receiver(sender: Any, payload: Any) -> None:
            await asyncio.sleep(0)

    elif kind == "sleep":

        async def receiver(sender: Any, payload: Any) -> None:
            await asyncio.sleep(SLEEP_SECONDS)

    else:
        raise ValueError(kind)
    return receiver


# -- implementations: each yields ``run(iterations)``, the emit loop written inline ------


@asynccontextmanager
async def build_for(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    listeners = [make_listener(kind, counter) for _ in range(n)]
    payload = PAYLOAD

    async def run(iterations: int) -> None:
        for _ in range(iterations):
            for f in listeners:
                await f(payload)

    yield run


@asynccontextmanager
async def build_gather(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    listeners = [make_listener(kind, counter) for _ in range(n)]
    payload = PAYLOAD
    gather = asyncio.gather

    async def run(iterations: int) -> None:
        for _ in range(iterations):
            await gather(*(f(payload) for f in listeners))

    yield run


bench_hookspec = pluggy.HookspecMarker("bench")
bench_hookimpl = pluggy.HookimplMarker("bench")


class BenchSpec:
    @bench_hookspec
    def bench_ping(self, payload: Any) -> None:
        """The benchmark's event."""


@asynccontextmanager
async def build_pluggy(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(BenchSpec)
    for i in range(n):
        plugin = types.SimpleNamespace(bench_ping=bench_hookimpl(make_listener(kind, counter)))
        pm.register(plugin, name=f"plugin_{i:03d}")
    pm.check_pending()
    hook = pm.hook.bench_ping
    if len(hook.get_hookimpls()) != n:
        raise AssertionError(f"pluggy registered {len(hook.get_hookimpls())} impls, not {n}")
    payload = PAYLOAD
    gather = asyncio.gather

    async def run(iterations: int) -> None:
        for _ in range(iterations):
            await gather(*hook(payload=payload))

    yield run


@asynccontextmanager
async def build_pyee(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    emitter = AsyncIOEventEmitter()  # built inside the running loop
    for _ in range(n):
        emitter.add_listener(EVENT, make_listener(kind, counter))
    if len(emitter.listeners(EVENT)) != n:
        raise AssertionError(f"pyee holds {len(emitter.listeners(EVENT))} listeners, not {n}")
    payload = PAYLOAD

    async def run(iterations: int) -> None:
        emit, wait = emitter.emit, emitter.wait_for_complete
        for _ in range(iterations):
            emit(EVENT, payload)  # starts one Task per coroutine listener, returns at once
            await wait()  # asyncio.wait() over every task the emitter still tracks

    yield run


@asynccontextmanager
async def build_blinker(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    signal = blinker.Signal(EVENT)
    for _ in range(n):
        signal.connect(make_receiver(kind, counter), weak=False)  # keep them alive
    if len(signal.receivers) != n:
        raise AssertionError(f"blinker holds {len(signal.receivers)} receivers, not {n}")
    payload = PAYLOAD

    async def run(iterations: int) -> None:
        send = signal.send_async
        for _ in range(iterations):
            # Every receiver is a coroutine function, so no _sync_wrapper is needed.
            await send(None, payload=payload)

    yield run


def webos_plugin(kind: str, n: int, counter: Counter | None = None) -> types.ModuleType:
    """A plugin module object: the ``bench:ping`` declaration and N ``@bus.on`` listeners."""
    module = types.ModuleType("webos_bench_listeners")

    @event(EVENT)
    def bench_ping(payload: Any) -> None:
        """Emitted by the benchmark."""

    functions: list[Callable[..., Any]] = [bench_ping]
    for i in range(n):
        listener = make_listener(kind, counter)
        listener.__name__ = listener.__qualname__ = f"on_ping_{i:03d}"
        functions.append(bus.on(EVENT)(listener))
    for function in functions:
        function.__module__ = module.__name__  # the module owns them, as if defined there
        setattr(module, function.__name__, function)
    return module


@asynccontextmanager
async def build_webos(kind: str, n: int, counter: Counter | None = None) -> AsyncIterator[Run]:
    with tempfile.TemporaryDirectory() as empty:
        settings = Settings(
            modules_dir=Path(empty),
            load_plugins=None,
            disable_plugins="",
            strict_plugins=True,
            _env_file=None,  # type: ignore[call-arg]
        )
        kernel = Kernel(settings, plugins={"bench": webos_plugin(kind, n, counter)}, discover=False)
        async with kernel:
            emit = kernel.bus.emit
            if counter is None:
                result = await emit(EVENT, PAYLOAD)
                if len(result.ran) != n or not result.ok:
                    raise AssertionError(f"webos ran {len(result.ran)} listeners, not {n}")
            payload = PAYLOAD

            async def run(iterations: int) -> None:
                for _ in range(iterations):
                    await emit(EVENT, payload)

            yield run


BUILDERS = {
    "for": build_for,
    "gather": build_gather,
    "pluggy": build_pluggy,
    "pyee": build_pyee,
    "blinker": build_blinker,
    "webos": build_webos,
}

# -- measuring ---------------------------------------------------------------------------


async def verify(impl: str, kind: str, n: int) -> None:
    """One emit with counting listeners: every listener has finished when the emit returns."""
    counter = [0]
    async with BUILDERS[impl](kind, n, counter) as run:
        await run(1)
    if counter[0] != n:
        raise AssertionError(f"{impl}: {counter[0]} of {n} {kind} listeners finished in the emit")


async def calibrate(run: Run, round_time: float) -> int:
    """Warm up, then the number of emits that takes about ``round_time`` seconds."""
    await run(1)
    iterations = 1
    while True:
        started = time.perf_counter()
        await run(iterations)
        elapsed = time.perf_counter() - started
        if elapsed >= round_time / 10:
            return max(1, round(iterations * round_time / elapsed))
        iterations *= 4 if elapsed < round_time / 100 else 2


async def timed_round(run: Run, iterations: int) -> float:
    """Seconds per emit over one round, the collector off (as ``timeit`` does)."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        await run(iterations)
        return (time.perf_counter() - started) / iterations
    finally:
        gc.enable()


async def measure_workload(kind: str, n: int, rounds: int, round_time: float) -> dict[str, Any]:
    """Every implementation on one workload; rounds alternate between implementations,
    so a slow spell of the machine hits them all rather than one."""
    for impl in IMPLS:
        await verify(impl, kind, n)
    async with AsyncExitStack() as stack:
        runs = {impl: await stack.enter_async_context(BUILDERS[impl](kind, n)) for impl in IMPLS}
        iterations = {impl: await calibrate(runs[impl], round_time) for impl in IMPLS}
        best = dict.fromkeys(IMPLS, float("inf"))
        for _ in range(rounds):
            for impl in IMPLS:
                best[impl] = min(best[impl], await timed_round(runs[impl], iterations[impl]))
    us = {impl: best[impl] * 1e6 for impl in IMPLS}
    print(
        f"  {kind:6} N={n:<3} " + "  ".join(f"{impl} {us[impl]:.2f}" for impl in IMPLS) + " µs",
        file=sys.stderr,
    )
    return {
        "key": f"{kind}-{n}",
        "kind": kind,
        "listeners": n,
        "us_per_emit": us,
        "ratio_to_for": {impl: us[impl] / us["for"] for impl in IMPLS},
        "webos_to_gather": us["webos"] / us["gather"],
        "iterations_per_round": iterations,
    }


async def measure_all(rounds: int, round_time: float) -> dict[str, Any]:
    workloads = [
        await measure_workload(kind, n, rounds, round_time)
        for kind in ("return", "yield")
        for n in SIZES
    ]

    sleep: dict[str, Any] = {}
    for impl in IMPLS:
        await verify(impl, "sleep", SLEEP_LISTENERS)
        samples = []
        async with BUILDERS[impl]("sleep", SLEEP_LISTENERS) as run:
            for _ in range(3 if impl in SEQUENTIAL else 5):
                started = time.perf_counter()
                await run(1)
                samples.append((time.perf_counter() - started) * 1e3)
        sleep[impl] = {"samples_ms": samples, "worst_ms": max(samples)}
        print(f"  sleep  N={SLEEP_LISTENERS:<3} {impl:8} {max(samples):10.2f} ms", file=sys.stderr)
    for impl in IMPLS:
        sleep[impl]["ratio_to_for"] = sleep[impl]["worst_ms"] / sleep["for"]["worst_ms"]

    return {"workloads": workloads, "sleep": {"listeners": SLEEP_LISTENERS, "ms": sleep}}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {row["key"]: row["us_per_emit"] for row in results["workloads"]}
    r10, y10, y100 = by_key["return-10"], by_key["yield-10"], by_key["yield-100"]
    checks = [
        ("10 listeners, non-suspending: webos / for", r10["webos"] / r10["for"], "<=", 2.5),
        ("10 listeners, non-suspending: pyee / webos", r10["pyee"] / r10["webos"], ">=", 5.0),
        ("10 listeners, non-suspending: blinker / webos", r10["blinker"] / r10["webos"], ">=", 2.0),
        ("10 listeners, suspending once: webos / gather", y10["webos"] / y10["gather"], "<=", 1.3),
        (
            "100 listeners, suspending once: webos / gather",
            y100["webos"] / y100["gather"],
            "<=",
            1.3,
        ),
        (
            "10 listeners sleeping 50 ms: webos emit (ms, worst)",
            results["sleep"]["ms"]["webos"]["worst_ms"],
            "<",
            60.0,
        ),
    ]
    return _report.check(checks)


# -- reporting ---------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    out = []
    env = results["environment"]
    out.append(
        f"Python {env['python']} on {env['platform']}, {env['cpus']} CPUs; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    )
    out.append(
        f"µs per emit, best of {results['rounds']} rounds of ~{results['round_time']} s; "
        "(x for) = ratio to the hand-written for loop, lower is faster"
    )
    titles = {
        "return": "Listeners that return without suspending (async def f(payload): return None)",
        "yield": "Listeners that suspend once (await asyncio.sleep(0))",
    }
    for kind in ("return", "yield"):
        rows_of_kind = [row for row in results["workloads"] if row["kind"] == kind]
        rows = [["implementation", *(f"N={row['listeners']}" for row in rows_of_kind)]]
        for impl in IMPLS:
            cells = [impl]
            for row in rows_of_kind:
                us, ratio = row["us_per_emit"][impl], row["ratio_to_for"][impl]
                cells.append(f"{us:9.2f} µs ({ratio:6.2f}x for)")
            rows.append(cells)
        if kind == "yield":
            rows.append(
                ["webos / gather", *(f"{row['webos_to_gather']:.2f}x" for row in rows_of_kind)]
            )
        out += ["", titles[kind], _report.table(rows)]

    sleep = results["sleep"]
    rows = [["implementation", "ms per emit (worst)", "x for", "samples (ms)"]]
    for impl in IMPLS:
        entry = sleep["ms"][impl]
        rows.append(
            [
                impl,
                f"{entry['worst_ms']:.1f}",
                f"{entry['ratio_to_for']:.2f}x",
                " ".join(f"{s:.1f}" for s in entry["samples_ms"]),
            ]
        )
    out += ["", f"{sleep['listeners']} listeners each sleeping 50 ms: wall time of one emit"]
    out.append(_report.table(rows))

    out += ["", "Targets"]
    for check in results["targets"]:
        mark = "MET   " if check["met"] else "MISSED"
        bound = f"{check['op']} {check['limit']}"
        out.append(f"  [{mark}] {check['name']}: {check['value']:.2f} (target {bound})")
    return "\n".join(out)


def versions() -> dict[str, str]:
    found = {"webos": webos.__version__}
    for name in ("pluggy", "pyee", "blinker"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-time", type=float, default=0.2, help="seconds per round")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    logger.remove()  # the kernel's start-up INFO line would interleave with the table
    logger.add(sys.stderr, level="WARNING")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": versions(),
        },
        "rounds": args.rounds,
        "round_time": args.round_time,
        "payload": PAYLOAD,
    }
    results.update(asyncio.run(measure_all(args.rounds, args.round_time)))
    results["targets"] = targets(results)
    results["total_seconds"] = time.perf_counter() - started
    print(report(results))
    print(f"\n(total {results['total_seconds']:.1f} s; JSON in {args.json})")
    _report.merge_json(args.json, "bus", results)
    return 1 if args.strict and not all(check["met"] for check in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
