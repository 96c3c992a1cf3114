"""Settings → Audit log (owners and admins): the workspace's security log, newest first, filtered by action (or
a whole family such as ``user.*``), by who acted and by a date range, fifty entries a page.

Dates are whole days in UTC, both ends included; the filters live in the query string, so a filtered page can be
bookmarked or shared with another admin.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get

from chatsupport.domain import audit
from chatsupport.errors import AppError
from chatsupport.store import audit as audit_store
from chatsupport.store import users
from chatsupport.store.db import Database, Row
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import error_context, render
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
PER_PAGE = 50
DETAIL_CHARS = 400


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AppError("validation_error", details=[{"field": field, "message": "A date like 2026-01-31."}]) from None


def _filters(action: str, user_id: str, since: str, until: str) -> dict[str, str]:
    """The console's filters as ``domain.audit.search`` takes them (the ``until`` day is included)."""
    first, last = _day(since, "since"), _day(until, "until")
    if first and last and first > last:
        raise AppError("validation_error", details=[{"field": "until", "message": "On or after the start date."}])
    return {"action": action, "user_id": user_id,
            "since": f"{first.isoformat()}T00:00:00.000Z" if first else "",
            "until": f"{(last + timedelta(days=1)).isoformat()}T00:00:00.000Z" if last else ""}


def _details(entry: dict[str, Any]) -> str:
    shown = {k: entry[k] for k in ("changes", "metadata") if entry[k]}
    text = json.dumps(shown, ensure_ascii=False, separators=(", ", ": "))[1:-1] if shown else ""
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"


def _families(actions: list[str]) -> list[str]:
    return sorted({name.split(".", 1)[0] + ".*" for name in actions if "." in name})


def _choices(db: Database, workspace_id: str) -> tuple[list[str], list[Row]]:
    """The actions and the people (deactivated too) the filters offer."""
    conn = db.reader()
    return audit_store.actions(conn, workspace_id), users.in_workspace(conn, workspace_id)


@get("/settings/audit", **PAGE, **console_requires("audit.view"))
async def audit_page(request: Request[Any, Any, Any], action: str = "", user_id: str = "", since: str = "",
                     until: str = "", page: str = "1") -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    typed = {"action": action[:200], "user_id": user_id[:100], "since": since[:10], "until": until[:10]}
    number = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    known, people = await asyncio.to_thread(_choices, services.db, actor.workspace_id)
    context: dict[str, Any] = {"typed": typed, "actions": known, "families": _families(known), "people": people,
                               "entries": [], "field_errors": {}}
    status = 200
    try:
        result = await asyncio.to_thread(audit.search, services.db, actor, _filters(**typed), number, PER_PAGE)
    except AppError as exc:
        status = exc.status
        context.update(error_context(exc))
    else:
        names = {p["id"]: p["display_name"] or p["email"] for p in people}
        context["entries"] = [{**e, "who": names.get(e["user_id"] or "") or e["user_email"] or "system",
                               "details": _details(e)} for e in result["data"]]
        pages = result["pagination"]
        query = {k: v for k, v in typed.items() if v}
        context["pagination"] = pages
        context["prev_url"] = f"?{urlencode({**query, 'page': number - 1})}" if number > 1 else None
        context["next_url"] = f"?{urlencode({**query, 'page': number + 1})}" if number < pages["total_pages"] \
            else None
        context["filtered"] = bool(query)
    return render(request, "settings/audit.html", context, status=status)


ROUTES = [audit_page]
