"""``GET /api/v1/audit-logs``: the workspace's security log, newest first, owner and admin only."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter

from chatsupport.domain import audit
from chatsupport.web.api.schemas import AuditPage
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

Filter = Annotated[str, Parameter(max_length=200, default="")]


@get("/api/v1/audit-logs", **requires("audit.view"))
async def list_audit_logs(request: Request[Any, Any, Any], action: Filter = "", user_id: Filter = "",
                          resource_type: Filter = "", resource_id: Filter = "", since: Filter = "",
                          until: Filter = "", page: Annotated[int, Parameter(ge=1, default=1)] = 1,
                          limit: Annotated[int, Parameter(ge=1, le=200, default=50)] = 50) -> AuditPage:
    """Filters combine with AND. ``action`` is exact (``user.login``) or a prefix (``user.*``); ``since`` and
    ``until`` are ISO timestamps (UTC, compared as text)."""
    filters = {"action": action, "user_id": user_id, "resource_type": resource_type, "resource_id": resource_id,
               "since": since, "until": until}
    result = await asyncio.to_thread(audit.search, services_of(request).db, actor_of(request), filters, page, limit)
    return msgspec.convert(result, AuditPage)


ROUTES = [list_audit_logs]
