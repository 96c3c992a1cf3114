"""The audit log: append-only rows of who did what to which resource, always with a workspace."""

from __future__ import annotations

import json
import uuid
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

FILTERS = {"action": "action = :action", "action_prefix": "action LIKE :action_prefix ESCAPE '\\'",
           "user_id": "user_id = :user_id", "resource_type": "resource_type = :resource_type",
           "resource_id": "resource_id = :resource_id", "since": "created_at >= :since",
           "until": "created_at < :until"}


def insert(conn: apsw.Connection, *, action: str, workspace_id: str | None, user_id: str | None = None,
           user_email: str | None = None, ip_address: str | None = None, user_agent: str | None = None,
           resource_type: str | None = None, resource_id: str | None = None, changes: Any = None,
           metadata: Any = None) -> None:
    conn.execute(
        "INSERT INTO audit_logs(id, workspace_id, user_id, user_email, ip_address, user_agent, action,"
        " resource_type, resource_id, changes, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), workspace_id, user_id, user_email, ip_address, (user_agent or "")[:300] or None, action,
         resource_type, resource_id, None if changes is None else json.dumps(changes),
         None if metadata is None else json.dumps(metadata), utc_now()),
    )


def _where(workspace_id: str, filters: dict[str, str]) -> tuple[str, dict[str, Any]]:
    clauses = ["workspace_id = :workspace_id"] + [FILTERS[name] for name in filters]
    return " AND ".join(clauses), {"workspace_id": workspace_id, **filters}


def search(conn: apsw.Connection, workspace_id: str, filters: dict[str, str], limit: int,
           offset: int) -> tuple[list[Row], int]:
    where, params = _where(workspace_id, filters)
    total = conn.execute(f"SELECT count(*) AS n FROM audit_logs WHERE {where}", params).fetchone()["n"]
    rows = conn.execute(
        "SELECT id, workspace_id, user_id, user_email, ip_address, user_agent, action, resource_type, resource_id,"
        f" changes, metadata, created_at FROM audit_logs WHERE {where} ORDER BY created_at DESC, rowid DESC"
        " LIMIT :limit OFFSET :offset", {**params, "limit": limit, "offset": offset},
    )
    result = []
    for row in rows:
        row["changes"] = json.loads(row["changes"]) if row["changes"] else None
        row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else None
        result.append(row)
    return result, total


def actions(conn: apsw.Connection, workspace_id: str) -> list[str]:
    """The action names this workspace's log holds, for the console's filter."""
    rows = conn.execute("SELECT DISTINCT action FROM audit_logs WHERE workspace_id = ? ORDER BY action",
                        (workspace_id,))
    return [row["action"] for row in rows]
