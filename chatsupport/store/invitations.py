"""Team invitations: a 7-day, single-use link to join a workspace with a role. Only the token's SHA-256 is
stored, so the link cannot be read back from the database: a manager who lost it issues a new one."""

from __future__ import annotations

import uuid

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

COLUMNS = ("id, workspace_id, email, role, display_name, invited_by, mailed, created_at, expires_at, accepted_at,"
           " accepted_user_id, revoked_at")


def insert(conn: apsw.Connection, *, workspace_id: str, email: str, role: str, display_name: str, token_hash: str,
           invited_by: str, expires_at: str, mailed: bool) -> Row:
    invitation_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO invitations(id, workspace_id, email, role, display_name, token_hash, invited_by, mailed,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (invitation_id, workspace_id, email, role, display_name, token_hash, invited_by, int(mailed), utc_now(),
         expires_at),
    )
    return get(conn, workspace_id, invitation_id)  # type: ignore[return-value]


def get(conn: apsw.Connection, workspace_id: str, invitation_id: str) -> Row | None:
    return conn.execute(f"SELECT {COLUMNS} FROM invitations WHERE id = ? AND workspace_id = ?",
                        (invitation_id, workspace_id)).fetchone()


def by_token_hash(conn: apsw.Connection, token_hash: str) -> Row | None:
    return conn.execute(f"SELECT {COLUMNS} FROM invitations WHERE token_hash = ?", (token_hash,)).fetchone()


def open_in_workspace(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    """Neither accepted nor revoked (expired ones included: the console offers them a new link), newest first,
    with the inviter's name."""
    return list(conn.execute(
        f"SELECT {', '.join('i.' + c.strip() for c in COLUMNS.split(','))}, u.display_name AS invited_by_name,"
        " u.email AS invited_by_email FROM invitations i LEFT JOIN users u ON u.id = i.invited_by"
        " WHERE i.workspace_id = ? AND i.accepted_at IS NULL AND i.revoked_at IS NULL"
        " ORDER BY i.created_at DESC, i.id", (workspace_id,)))


def open_for_email(conn: apsw.Connection, workspace_id: str, email: str) -> list[Row]:
    return list(conn.execute(f"SELECT {COLUMNS} FROM invitations WHERE workspace_id = ? AND email = ?"
                             " AND accepted_at IS NULL AND revoked_at IS NULL", (workspace_id, email)))


def renew(conn: apsw.Connection, invitation_id: str, token_hash: str, expires_at: str, mailed: bool) -> None:
    """A new link for the same invitation: the old token stops working."""
    conn.execute("UPDATE invitations SET token_hash = ?, expires_at = ?, mailed = ? WHERE id = ?",
                 (token_hash, expires_at, int(mailed), invitation_id))


def revoke(conn: apsw.Connection, invitation_id: str) -> None:
    conn.execute("UPDATE invitations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                 (utc_now(), invitation_id))


def accept(conn: apsw.Connection, invitation_id: str, user_id: str) -> None:
    conn.execute("UPDATE invitations SET accepted_at = ?, accepted_user_id = ? WHERE id = ?",
                 (utc_now(), user_id, invitation_id))
