"""A workspace's brand: its name and logo (columns) and its colours and time zone (keys of ``settings``, set one by
one so other keys of the document, such as the analytics report schedule, stay as they are)."""

from __future__ import annotations

import json
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now


def get(conn: apsw.Connection, workspace_id: str) -> Row | None:
    row = conn.execute("SELECT id, name, logo_path, json_extract(settings, '$.brand') AS brand,"
                       " json_extract(settings, '$.timezone') AS timezone FROM workspaces"
                       " WHERE id = ? AND deleted_at IS NULL", (workspace_id,)).fetchone()
    if row is not None:
        row["brand"] = json.loads(row["brand"]) if row["brand"] else {}
    return row


def save(conn: apsw.Connection, workspace_id: str, name: str, brand: dict[str, Any], timezone: str) -> None:
    conn.execute("UPDATE workspaces SET name = ?, settings = json_set(settings, '$.brand', json(?), '$.timezone', ?),"
                 " updated_at = ? WHERE id = ?", (name, json.dumps(brand), timezone, utc_now(), workspace_id))


def set_logo(conn: apsw.Connection, workspace_id: str, logo_path: str | None) -> None:
    conn.execute("UPDATE workspaces SET logo_path = ?, updated_at = ? WHERE id = ?",
                 (logo_path, utc_now(), workspace_id))
