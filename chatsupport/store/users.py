"""Users: console and API accounts, one workspace each (email is unique across the instance)."""

from __future__ import annotations

import uuid
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

PUBLIC_COLUMNS = ("id, workspace_id, email, display_name, role, status, email_verified, timezone, "
                  "max_concurrent_conversations, last_login_at, created_at, updated_at")


def count(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"]


def create(conn: apsw.Connection, *, workspace_id: str, email: str, password_hash: str, role: str,
           display_name: str, email_verified: bool = False) -> Row:
    now = utc_now()
    user_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO users(id, workspace_id, email, password_hash, role, display_name, email_verified,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, workspace_id, email, password_hash, role, display_name, int(email_verified), now, now),
    )
    return get(conn, user_id)  # type: ignore[return-value]


def get(conn: apsw.Connection, user_id: str) -> Row | None:
    return conn.execute(f"SELECT {PUBLIC_COLUMNS} FROM users WHERE id = ? AND deleted_at IS NULL",
                        (user_id,)).fetchone()


def get_in_workspace(conn: apsw.Connection, workspace_id: str, user_id: str) -> Row | None:
    return conn.execute(f"SELECT {PUBLIC_COLUMNS} FROM users WHERE id = ? AND workspace_id = ?"
                        " AND deleted_at IS NULL", (user_id, workspace_id)).fetchone()


def email_exists(conn: apsw.Connection, email: str) -> bool:
    return conn.execute("SELECT 1 AS x FROM users WHERE email = ?", (email,)).fetchone() is not None


def credentials(conn: apsw.Connection, email: str) -> Row | None:
    """The row login needs, password hash included; never leaves the domain layer."""
    return conn.execute(f"SELECT {PUBLIC_COLUMNS}, password_hash FROM users WHERE email = ? AND deleted_at IS NULL",
                        (email,)).fetchone()


def password_hash(conn: apsw.Connection, user_id: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    return row["password_hash"] if row else None


def update(conn: apsw.Connection, user_id: str, **fields: Any) -> None:
    allowed = {"display_name", "password_hash", "role", "status", "email_verified", "last_login_at",
               "last_active_at", "timezone", "max_concurrent_conversations"}
    if not fields or not set(fields) <= allowed:
        raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    conn.execute(f"UPDATE users SET {assignments}, updated_at = :now WHERE id = :id",
                 {**fields, "now": utc_now(), "id": user_id})


def in_workspace(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    return list(conn.execute(f"SELECT {PUBLIC_COLUMNS} FROM users WHERE workspace_id = ? AND deleted_at IS NULL"
                             " ORDER BY created_at, email", (workspace_id,)))


def conversations_held(conn: apsw.Connection, workspace_id: str, user_id: str | None = None) -> dict[str, int]:
    """How many conversations each staff member is handling live (``agent_handling``), by user id; one user's
    count with ``user_id``. What an agent's max concurrent conversations limits."""
    extra, params = ("AND assigned_agent_id = ?", (workspace_id, user_id)) if user_id else ("", (workspace_id,))
    rows = conn.execute("SELECT assigned_agent_id AS id, count(*) AS n FROM conversations WHERE workspace_id = ?"
                        f" AND status = 'agent_handling' AND assigned_agent_id IS NOT NULL {extra}"
                        " GROUP BY assigned_agent_id", params)
    return {row["id"]: row["n"] for row in rows}
