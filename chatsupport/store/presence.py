"""Agent presence: the console's heartbeats, one row per user. Plain SQL; what counts as online lives here too
(``OFFLINE_AFTER_SECONDS``) because the answer engine's wait estimate and the team list must agree on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import apsw

from chatsupport.store.db import Row

# No heartbeat for this long and a person is offline, whatever they last said (the console beats every ~30 s,
# so a closed tab or a sleeping laptop drops out within two minutes).
OFFLINE_AFTER_SECONDS = 120
STAFF_ROLES = ("owner", "admin", "agent")


def stamp(moment: datetime) -> str:
    """The store's timestamp format (UTC, milliseconds, ``…Z``: sorts as text) for an aware datetime."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def online_cutoff(now: datetime) -> str:
    """Heartbeats at or after this stamp count as present."""
    return stamp(now - timedelta(seconds=OFFLINE_AFTER_SECONDS))


def heartbeat(conn: apsw.Connection, workspace_id: str, user_id: str, status: str, now: datetime) -> Row:
    """Record a heartbeat; ``status_since`` moves only when the status changes (or the person was offline)."""
    at = stamp(now)
    conn.execute(
        "INSERT INTO agent_presence(user_id, workspace_id, status, last_heartbeat_at, status_since)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET"
        " status_since = CASE WHEN status = excluded.status AND last_heartbeat_at >= ? THEN status_since"
        "                ELSE excluded.status_since END,"
        " status = excluded.status, last_heartbeat_at = excluded.last_heartbeat_at",
        (user_id, workspace_id, status, at, at, online_cutoff(now)))
    conn.execute("UPDATE users SET last_active_at = ? WHERE id = ?", (at, user_id))
    return get(conn, user_id)  # type: ignore[return-value]


def get(conn: apsw.Connection, user_id: str) -> Row | None:
    return conn.execute("SELECT user_id, workspace_id, status, last_heartbeat_at, status_since FROM agent_presence"
                        " WHERE user_id = ?", (user_id,)).fetchone()


def team(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    """Every active person of the workspace with their last heartbeat (NULLs for never)."""
    return conn.execute(
        "SELECT u.id AS user_id, u.display_name, u.email, u.role, p.status AS reported_status,"
        " p.last_heartbeat_at, p.status_since FROM users u LEFT JOIN agent_presence p ON p.user_id = u.id"
        " WHERE u.workspace_id = ? AND u.status = 'active' AND u.deleted_at IS NULL"
        " ORDER BY u.display_name, u.email", (workspace_id,)).fetchall()
