"""What the benchmark scripts share: target checks, the text table, the JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_OPS = {
    "<=": lambda value, limit: value <= limit,
    ">=": lambda value, limit: value >= limit,
    "<": lambda value, limit: value < limit,
}


def check(targets: list[tuple[str, float, str, float]]) -> list[dict[str, Any]]:
    """(name, measured value, operator, limit) rows, each with whether it is met."""
    return [
        {"name": name, "value": value, "op": op, "limit": limit, "met": _OPS[op](value, limit)}
        for name, value, op, limit in targets
    ]


def table(rows: list[list[str]]) -> str:
    """Aligned text: the first column left, the others right, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        cells = [row[0].ljust(widths[0]), *rest]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def merge_json(path: Path, section: str, data: dict[str, Any]) -> None:
    """Write ``data`` under ``section`` of the JSON file, keeping the other sections."""
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    existing[section] = data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n")
