"""Liveness and readiness, for Docker's HEALTHCHECK, load balancers and the operator."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from chatsupport.services import Services
from chatsupport.store import migrations
from chatsupport.web.permissions import public


class Health(msgspec.Struct):
    status: Literal["ok"]


class Readiness(msgspec.Struct):
    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]]  # database, extensions, migrations, embedder: each with "ok" and details


@get("/healthz", media_type=MediaType.JSON, sync_to_thread=False, **public())
def healthz() -> Health:
    """200 while the process lives."""
    return Health(status="ok")


def readiness(services: Services) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        services.db.query_one("SELECT 1 AS ok")
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = {"ok": False, "error": str(exc)}
    caps = services.db.capabilities
    checks["extensions"] = {"ok": bool(caps["fts5"] and caps["sqlite_vec"]), "fts5": caps["fts5"],
                            "sqlite_vec": caps["sqlite_vec"]}
    pending = migrations.pending(services.db.reader())
    checks["migrations"] = {"ok": not pending, "pending": [m.version for m in pending]}
    embedder = services.embedder
    checks["embedder"] = {"ok": embedder.state == "ready", "state": embedder.state, "error": embedder.error}
    return {"status": "ready" if all(c["ok"] for c in checks.values()) else "not_ready", "checks": checks}


@get("/readyz", media_type=MediaType.JSON, **public(),
     responses={503: ResponseSpec(data_container=Readiness, description="Not ready yet", generate_examples=False)})
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """200 with its checks when database, extensions and embedder are ready; 503 with the same JSON until then."""
    report = await asyncio.to_thread(readiness, request.app.state.services)
    return Response(msgspec.convert(report, Readiness), status_code=200 if report["status"] == "ready" else 503)
