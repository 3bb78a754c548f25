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
) -> None:
    """Serve the app on uvicorn with every discovered plugin loaded."""
    import uvicorn

    if strict:
        os.environ["WEBOS_STRICT_PLUGINS"] = "1"  # also seen by --reload's worker process
    uvicorn.run(
        "webos.app:serve_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        log_config=None,
    )


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


def _pip(*args: str) -> None:
    completed = subprocess.run([sys.executable, "-m", "pip", *args], check=False)
    if completed.returncode:
        raise typer.Exit(completed.returncode)


def main() -> None:
    app()
