"""``GET /health``: is the kernel up, and which plugins loaded or failed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    kernel = request.app.state.kernel
    failed = [r.name for r in kernel.records if r.status == "failed"]
    return {
        "status": "ok" if kernel.running else "starting",
        "plugins": [r.name for r in kernel.loaded_plugins()],
        "failed": failed,
    }
