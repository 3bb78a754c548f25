"""The ``webos`` command: a thin layer over the kernel.

Listings and checks import only the core; ``serve`` imports uvicorn and the
web layer inside the command.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Annotated, Any

import typer

from .kernel import Kernel
from .settings import Settings

app = typer.Typer(
    name="webos",
    help="WebOS: a FastAPI web kernel whose plugins talk through an event bus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _kernel(strict: bool = False) -> Kernel:
    settings = Settings()
    if strict:
        settings.strict_plugins = True
    return Kernel(settings).load()


def _quiet_logs() -> None:
    # Listings print to stdout; plugin failures logged while loading go to stderr.
    from loguru import logger

    logger.remove()
    # sys.stderr looked up per message: a test runner may swap it out and close it.
    logger.add(_to_stderr, level="WARNING", format="{level}: {message}")


def _to_stderr(message: Any) -> None:
    # sys.stderr looked up per message: a test runner may swap it out and close it.
    sys.stderr.write(message)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart when code changes (development).")] = False,
    strict: Annotated[
        bool, typer.Option(help="Refuse to start if any plugin fails to load.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (needs WEBOS_BUS_URL when more than 1).")
    ] = 1,
) -> None:
    """Serve the app on uvicorn with every discovered plugin loaded."""
    if workers > 1 and not Settings().bus_url:
        typer.echo(
            "error: --workers > 1 needs a broker-backed bus: with the in-process bus each "
            "worker would only see the events emitted in its own process. Set "
            "WEBOS_BUS_URL=redis://host:6379/0, or serve with one worker.",
            err=True,
        )
        raise typer.Exit(2)
    if workers > 1 and reload:
        typer.echo("error: --reload and --workers exclude each other", err=True)
        raise typer.Exit(2)
    import uvicorn

    if strict:
        os.environ["WEBOS_STRICT_PLUGINS"] = "1"  # also seen by --reload's worker process
    uvicorn.run(
        "webos.app:serve_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        log_config=None,
    )


@app.command()
def worker() -> None:
    """Run the plugins' listeners without HTTP: a consumer of the broker (WEBOS_BUS_URL)."""
    settings = Settings()
    if not settings.bus_url:
        typer.echo(
            "error: a worker consumes events from a broker: set WEBOS_BUS_URL "
            "(redis://host:6379/0). With the in-process bus, listeners run in `webos serve`.",
            err=True,
        )
        raise typer.Exit(2)
    from .log import configure_logging

    configure_logging(settings.log_level)
    asyncio.run(_work(Kernel(settings).load()))


async def _work(kernel: Kernel) -> None:
    import signal

    from .database import Database

    kernel.database = Database(kernel.settings.database_url)  # listeners may use it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await kernel.database.create_all()
    try:
        async with kernel:
            with kernel.activate():
                await stop.wait()
    finally:
        await kernel.database.dispose()


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Include built-in plugins.")] = False,
) -> None:
    """List plugins: name, version, source, status, what they declare and listen to."""
    _quiet_logs()
    kernel = _kernel()
    records = [r for r in kernel.records if show_all or r.source != "builtin"]
    rows = [r.to_dict() for r in records]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "version", "source", "status", "declares", "listens", "routes")
    for row in rows:
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error']}"
        table.add_row(
            row["name"],
            row["version"] or "",
            row["source"],
            status,
            "\n".join(row["declares"]),
            "\n".join(row["listens"]),
            "\n".join(row["routes"]),
        )
    Console().print(table)


@app.command()
def events(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown catalogue.")
    ] = False,
) -> None:
    """List every declared event, who declares it and who listens."""
    _quiet_logs()
    from .catalogue import event_rows

    rows = event_rows(_kernel())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if markdown:
        from .catalogue import events_markdown

        typer.echo(events_markdown(rows), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("event", "declared by", "listeners", "summary")
    for row in rows:
        summary = row["doc"].splitlines()[0] if row["doc"] else ""
        table.add_row(row["name"], row["declared_by"], "\n".join(row["listeners"]), summary)
    Console().print(table)


@app.command()
def emit(
    name: Annotated[str, typer.Argument(help="Event name, e.g. blogger:post:published.")],
    payload: Annotated[str, typer.Option(help="The payload as a JSON object.")] = "{}",
) -> None:
    """Boot the kernel without HTTP, emit one event, report every listener."""
    from .exceptions import WebOSError

    try:
        data: Any = json.loads(payload)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --payload is not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    kernel = _kernel()

    async def run() -> Any:
        async with kernel:
            return await kernel.emit(name, data, source="cli")

    try:
        result = asyncio.run(run())
    except WebOSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"emitted {name} [{result.envelope.id}] to {len(result.results)} listener(s)")
    for item in result.results:
        mark = "ok    " if item.ok else "FAILED"
        detail = f": {item.error}" if item.error else ""
        took = f" ({item.duration * 1000:.1f} ms)" if item.duration is not None else ""
        typer.echo(f"  {mark} {item.listener}{took}{detail}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def check() -> None:
    """Load every plugin and validate it; exit non-zero if anything is wrong."""
    _quiet_logs()
    kernel = _kernel()
    problems = kernel.problems()
    loaded = len(kernel.loaded_plugins())
    if problems:
        typer.echo(f"{len(problems)} problem(s):")
        for line in problems:
            typer.echo(f"  - {line}")
        raise typer.Exit(1)
    typer.echo(f"ok: {loaded} plugin(s) loaded, {len(kernel.events)} event(s) declared")


@app.command()
def install(
    packages: Annotated[list[str], typer.Argument(help="Packages, as pip takes them.")],
) -> None:
    """pip-install plugin packages into the environment webos runs in."""
    _pip("install", *packages)


@app.command()
def uninstall(
    packages: Annotated[list[str], typer.Argument(help="Distribution names.")],
) -> None:
    """pip-uninstall packages from the environment webos runs in."""
    _pip("uninstall", "-y", *packages)


dlq_app = typer.Typer(help="The dead-letter queue of the broker-backed bus.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _dead_letters() -> Any:
    settings = Settings()
    if not settings.bus_url:
        typer.echo("error: no dead letters without a broker: set WEBOS_BUS_URL", err=True)
        raise typer.Exit(2)
    from .redis_streams import RedisTransport

    return RedisTransport(settings.bus_url, prefix=settings.bus_prefix).dlq


def _ids_or_all(ids: list[str] | None, everything: bool) -> list[str] | None:
    """The dead letters a command names: its ids, or None for --all."""
    if everything:
        return None
    if not ids:
        typer.echo("error: name dead-letter ids, or --all", err=True)
        raise typer.Exit(2)
    return ids


async def _closing(dead_letters: Any, work: Any) -> Any:
    try:
        return await work
    finally:
        await dead_letters.transport.stop()


@dlq_app.command("list")
def dlq_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every dead letter: the event, the listener that failed it, how often, the error."""
    letters = _dead_letters()
    rows = asyncio.run(_closing(letters, letters.entries()))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(
            f"{row['dlq_id']}  {row.get('name', '?')} [{row.get('id', '?')}] -> "
            f"{row['dlq_group']} after {row['dlq_deliveries']} deliveries: {row['dlq_error']}"
        )
    typer.echo(f"{len(rows)} dead letter(s)")


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids to replay.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Send dead letters back to the listener that failed them (after fixing it)."""
    chosen = _ids_or_all(ids, replay_all)
    letters = _dead_letters()
    done = asyncio.run(_closing(letters, letters.replay(chosen)))
    typer.echo(f"replayed {len(done)} dead letter(s)")
    if chosen is not None and len(done) < len(chosen):
        typer.echo(f"error: not found: {', '.join(sorted(set(chosen) - set(done)))}", err=True)
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids to delete.")] = None,
    purge_all: Annotated[bool, typer.Option("--all", help="Delete every dead letter.")] = False,
) -> None:
    """Delete dead letters for good."""
    chosen = _ids_or_all(ids, purge_all)
    letters = _dead_letters()
    count = asyncio.run(_closing(letters, letters.purge(chosen)))
    typer.echo(f"purged {count} dead letter(s)")


def _pip(*args: str) -> None:
    completed = subprocess.run([sys.executable, "-m", "pip", *args], check=False)
    if completed.returncode:
        raise typer.Exit(completed.returncode)


new_app = typer.Typer(
    help="Start a new project from a template.", no_args_is_help=True, add_completion=False
)
app.add_typer(new_app, name="new")


@new_app.command("plugin")
def new_plugin(
    name: Annotated[
        str, typer.Argument(help="Distribution name, e.g. acme-notes (package acme_notes).")
    ],
    directory: Annotated[str, typer.Option("--dir", help="Where to create the folder NAME.")] = ".",
) -> None:
    """Write an installable plugin: events, a listener, routes, tests, README and CI."""
    from pathlib import Path

    from .scaffold import new_plugin as scaffold

    try:
        root, written = scaffold(name, Path(directory))
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    package = name.replace("-", "_")
    typer.echo(f"Created the plugin {package!r} (distribution {name}) in {root}:")
    for path in written:
        typer.echo(f"  {path}")
    where = root if root.is_absolute() else f"./{root}"  # pip takes `name[test]` for a name
    typer.echo(f"Next: pip install -e '{where}[test]' && pytest {where} && webos plugins")


def main() -> None:
    app()
