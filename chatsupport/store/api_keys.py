"""API keys for the REST API: plain SQL. Only the SHA-256 of a key is stored; a request's key is found by its hash.

Revoked keys stay (``revoked_at`` set) so the audit trail can name them; every read below leaves them out.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

SHOWN_COLUMNS = ("k.id, k.name, k.scopes, k.prefix, k.last_four, k.created_by, k.created_at, k.last_used_at, "
                 "u.display_name AS created_by_name, u.email AS created_by_email")


def insert(conn: apsw.Connection, *, workspace_id: str, name: str, scopes: list[str], prefix: str, last_four: str,
           key_hash: str, created_by: str) -> str:
    key_id = str(uuid.uuid4())
    conn.execute("INSERT INTO api_keys(id, workspace_id, name, prefix, last_four, key_hash, scopes, created_by)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (key_id, workspace_id, name, prefix, last_four, key_hash, json.dumps(scopes), created_by))
    return key_id


def active_in_workspace(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    return list(conn.execute(f"SELECT {SHOWN_COLUMNS} FROM api_keys k LEFT JOIN users u ON u.id = k.created_by"
                             " WHERE k.workspace_id = ? AND k.revoked_at IS NULL ORDER BY k.created_at DESC, k.id",
                             (workspace_id,)))


def get_active(conn: apsw.Connection, workspace_id: str, key_id: str) -> Row | None:
    return conn.execute(f"SELECT {SHOWN_COLUMNS} FROM api_keys k LEFT JOIN users u ON u.id = k.created_by"
                        " WHERE k.workspace_id = ? AND k.id = ? AND k.revoked_at IS NULL",
                        (workspace_id, key_id)).fetchone()


def by_hash(conn: apsw.Connection, key_hash: str) -> Row | None:
    """The live key with this hash (what a Bearer request resolves to), or None."""
    return conn.execute("SELECT id, workspace_id, scopes, created_by, last_used_at FROM api_keys"
                        " WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)).fetchone()


def revoke(conn: apsw.Connection, workspace_id: str, key_id: str) -> bool:
    cursor = conn.execute("UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ? AND id = ?"
                          " AND revoked_at IS NULL RETURNING id", (utc_now(), workspace_id, key_id))
    return cursor.fetchone() is not None


def touch(conn: apsw.Connection, key_id: str, when: str) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (when, key_id))


def scopes_of(row: Any) -> list[str]:
    return list(json.loads(row["scopes"] or "[]"))
