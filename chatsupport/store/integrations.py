"""Integration settings: the instance's SMTP override (one row) and each workspace's transcript-email and Slack
settings. Secret columns hold encrypted blobs; this module never sees a clear-text secret."""

from __future__ import annotations

from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now


WORKSPACE_COLUMNS = frozenset({"transcript_email", "slack_webhook_enc", "slack_hint"})


def smtp(conn: apsw.Connection) -> Row | None:
    return conn.execute("SELECT host, port, username, password_enc, sender, starttls, updated_at FROM smtp_settings"
                        " WHERE id = 1").fetchone()


def save_smtp(conn: apsw.Connection, *, host: str, port: int, username: str, password_enc: bytes | None,
              sender: str, starttls: bool, user_id: str | None) -> None:
    conn.execute(
        "INSERT INTO smtp_settings(id, host, port, username, password_enc, sender, starttls, updated_by, updated_at)"
        " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET host = excluded.host,"
        " port = excluded.port, username = excluded.username, password_enc = excluded.password_enc,"
        " sender = excluded.sender, starttls = excluded.starttls, updated_by = excluded.updated_by,"
        " updated_at = excluded.updated_at",
        (host, port, username, password_enc, sender, int(starttls), user_id, utc_now()))


def clear_smtp(conn: apsw.Connection) -> bool:
    conn.execute("DELETE FROM smtp_settings WHERE id = 1")
    return conn.changes() > 0


def workspace(conn: apsw.Connection, workspace_id: str) -> Row:
    """The workspace's settings, defaults (all off) when it never saved any."""
    row = conn.execute("SELECT transcript_email, slack_webhook_enc, slack_hint, updated_at FROM"
                       " workspace_integrations WHERE workspace_id = ?", (workspace_id,)).fetchone()
    if row is None:
        return {"transcript_email": False, "slack_webhook_enc": None, "slack_hint": None, "updated_at": None}
    return {**row, "transcript_email": bool(row["transcript_email"])}


def update_workspace(conn: apsw.Connection, workspace_id: str, **changes: Any) -> None:
    """Only the given columns change (``transcript_email``, ``slack_webhook_enc``, ``slack_hint``)."""
    columns = sorted(changes)
    if not set(columns) <= WORKSPACE_COLUMNS:
        raise ValueError(f"unknown integration columns: {set(columns) - WORKSPACE_COLUMNS}")
    conn.execute("INSERT INTO workspace_integrations(workspace_id) VALUES (?) ON CONFLICT(workspace_id) DO NOTHING",
                 (workspace_id,))
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(f"UPDATE workspace_integrations SET {assignments}, updated_at = ? WHERE workspace_id = ?",
                 [changes[name] for name in columns] + [utc_now(), workspace_id])
