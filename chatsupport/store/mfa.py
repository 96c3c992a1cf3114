"""Two-factor rows: a user's TOTP secret (encrypted by the domain layer), their recovery codes (hashed), and the
workspace switch that makes two-factor mandatory."""

from __future__ import annotations

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now


def get(conn: apsw.Connection, user_id: str) -> Row | None:
    return conn.execute("SELECT user_id, workspace_id, secret_encrypted, confirmed_at, last_step, created_at"
                        " FROM user_mfa WHERE user_id = ?", (user_id,)).fetchone()


def enabled(conn: apsw.Connection, user_id: str) -> bool:
    return conn.execute("SELECT 1 AS x FROM user_mfa WHERE user_id = ? AND confirmed_at IS NOT NULL",
                        (user_id,)).fetchone() is not None


def save_pending(conn: apsw.Connection, user_id: str, workspace_id: str, secret_encrypted: bytes) -> None:
    """A fresh unconfirmed secret, replacing an earlier unconfirmed one (never a confirmed one)."""
    conn.execute("DELETE FROM user_mfa WHERE user_id = ? AND confirmed_at IS NULL", (user_id,))
    conn.execute("INSERT INTO user_mfa(user_id, workspace_id, secret_encrypted) VALUES (?, ?, ?)",
                 (user_id, workspace_id, secret_encrypted))


def confirm(conn: apsw.Connection, user_id: str, step: int) -> None:
    conn.execute("UPDATE user_mfa SET confirmed_at = ?, last_step = ? WHERE user_id = ?", (utc_now(), step, user_id))


def use_step(conn: apsw.Connection, user_id: str, step: int) -> bool:
    """Record ``step`` as used; False when it (or a later one) already was, so a code works once."""
    conn.execute("UPDATE user_mfa SET last_step = ? WHERE user_id = ? AND last_step < ?", (step, user_id, step))
    return conn.changes() > 0


def delete(conn: apsw.Connection, user_id: str) -> None:
    conn.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM user_mfa WHERE user_id = ?", (user_id,))


# --- recovery codes -----------------------------------------------------------------------------------------
def replace_recovery_codes(conn: apsw.Connection, user_id: str, workspace_id: str, hashes: list[str]) -> None:
    conn.execute("DELETE FROM mfa_recovery_codes WHERE user_id = ?", (user_id,))
    for code_hash in hashes:
        conn.execute("INSERT INTO mfa_recovery_codes(user_id, workspace_id, code_hash) VALUES (?, ?, ?)",
                     (user_id, workspace_id, code_hash))


def use_recovery_code(conn: apsw.Connection, user_id: str, code_hash: str) -> bool:
    conn.execute("UPDATE mfa_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
                 (utc_now(), user_id, code_hash))
    return conn.changes() > 0


def recovery_codes_left(conn: apsw.Connection, user_id: str) -> int:
    return conn.execute("SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL",
                        (user_id,)).fetchone()["n"]


# --- the workspace switch -----------------------------------------------------------------------------------
def required(conn: apsw.Connection, workspace_id: str) -> bool:
    row = conn.execute("SELECT require_mfa FROM workspace_security WHERE workspace_id = ?",
                       (workspace_id,)).fetchone()
    return bool(row and row["require_mfa"])


def set_required(conn: apsw.Connection, workspace_id: str, require: bool) -> None:
    conn.execute("INSERT INTO workspace_security(workspace_id, require_mfa, updated_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(workspace_id) DO UPDATE SET require_mfa = excluded.require_mfa,"
                 " updated_at = excluded.updated_at", (workspace_id, int(require), utc_now()))


def members(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    """Active members with whether they use two-factor, for the security page."""
    return list(conn.execute(
        "SELECT u.id, u.email, u.display_name, u.role, m.confirmed_at AS mfa_since FROM users u"
        " LEFT JOIN user_mfa m ON m.user_id = u.id AND m.confirmed_at IS NOT NULL"
        " WHERE u.workspace_id = ? AND u.deleted_at IS NULL AND u.status = 'active' ORDER BY u.email",
        (workspace_id,)))
