"""``GET /metrics``: the Prometheus scrape endpoint.

Open to loopback clients (a Prometheus or node agent on the same box); anyone else presents
``Authorization: Bearer <CHATSUPPORT_METRICS_TOKEN>`` or an owner/admin access token. A request that a reverse
proxy on the same box forwards is not a loopback client unless the proxy is trusted and the real client is local.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chatsupport import metrics
from chatsupport.config import Settings
from chatsupport.domain.backups import list_backups
from chatsupport.store.db import Database
from chatsupport.tasks.queue import huey
from chatsupport.web.auth import api_guard, services_of
from chatsupport.web.client import client_ip

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _loopback(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    proxies = services_of(connection).settings.TRUSTED_PROXIES
    peer = (connection.scope.get("client") or ("",))[0] or ""
    ip = client_ip(connection.scope, proxies)
    if ip == peer and any(connection.headers.get(name) for name in _FORWARDING_HEADERS):
        return False  # an untrusted local proxy passing on someone else's request
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


async def metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if _loopback(connection):
        return
    expected = services_of(connection).settings.METRICS_TOKEN
    scheme, _, token = (connection.headers.get("authorization") or "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode()):
        return
    await api_guard(connection, handler)  # an owner/admin access token; 401 without one, 403 for other roles


def refresh_backup_gauges(settings: Settings) -> None:
    """Age of the newest complete archive (one whose manifest reads); a partial archive does not count."""
    stamps = [datetime.fromisoformat(b.created_at.replace("Z", "+00:00")).timestamp()
              for b in list_backups(settings) if b.schema_version is not None]
    metrics.BACKUPS.set(value=len(stamps))
    metrics.BACKUP_AGE.clear()
    if stamps:
        metrics.BACKUP_AGE.set(value=round(time.time() - max(stamps), 3))


@get("/metrics", guards=[metrics_guard], opt={"permission": "metrics.view"}, include_in_schema=False,
     media_type=MediaType.TEXT, sync_to_thread=True)
def metrics_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Gauges that are cheap to read at scrape time are read now rather than kept up to date on every change."""
    metrics.QUEUE_DEPTH.set(value=huey.pending_count())
    refresh_backup_gauges(services_of(request).settings)
    refresh_memory_gauges(services_of(request).db)
    return Response(metrics.render(), media_type=PROMETHEUS_TEXT)


def refresh_memory_gauges(db: Database) -> None:
    metrics.PROCESS_RSS.clear()
    statm = Path("/proc/self/statm")
    if statm.exists():  # Linux; elsewhere the gauge is absent rather than wrong
        metrics.PROCESS_RSS.set(value=int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    stats = db.memory()
    metrics.SQLITE_CONNECTIONS.set(value=stats["connections"])
    metrics.SQLITE_PAGE_CACHE.set(value=stats["page_cache_bytes"])


ROUTES = [metrics_page]
