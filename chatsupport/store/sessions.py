"""Sessions (API refresh-token families and console sessions), one-time user tokens, and failed logins.

Only SHA-256 hashes of tokens are stored: a copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import uuid

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now


def insert_token(conn: apsw.Connection, *, user_id: str, family_id: str, token_hash: str, kind: str,
                 expires_at: str, user_agent: str | None, ip_address: str | None) -> None:
    now = utc_now()
    conn.execute(
        "INSERT INTO refresh_tokens(id, user_id, family_id, token_hash, kind, user_agent, ip_address, created_at,"
        " last_used_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), user_id, family_id, token_hash, kind, (user_agent or "")[:300], ip_address, now, now,
         expires_at),
    )


def by_hash(conn: apsw.Connection, token_hash: str) -> Row | None:
    return conn.execute(
        "SELECT id, user_id, family_id, kind, created_at, last_used_at, expires_at, rotated_at, revoked_at"
        " FROM refresh_tokens WHERE token_hash = ?", (token_hash,),
    ).fetchone()


def mark_rotated(conn: apsw.Connection, token_id: str) -> None:
    conn.execute("UPDATE refresh_tokens SET rotated_at = ? WHERE id = ?", (utc_now(), token_id))


def touch(conn: apsw.Connection, token_id: str, expires_at: str) -> None:
    conn.execute("UPDATE refresh_tokens SET last_used_at = ?, expires_at = ? WHERE id = ?",
                 (utc_now(), expires_at, token_id))


def family_active(conn: apsw.Connection, family_id: str, now: str) -> bool:
    return conn.execute(
        "SELECT 1 AS x FROM refresh_tokens WHERE family_id = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1",
        (family_id, now),
    ).fetchone() is not None


def revoke_family(conn: apsw.Connection, family_id: str) -> None:
    conn.execute("UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
                 (utc_now(), family_id))


def revoke_user(conn: apsw.Connection, user_id: str) -> None:
    conn.execute("UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                 (utc_now(), user_id))


def active_families(conn: apsw.Connection, user_id: str, now: str) -> list[str]:
    """A user's live sessions, oldest sign-in first."""
    rows = conn.execute(
        "SELECT family_id, min(created_at) AS started FROM refresh_tokens WHERE user_id = ? GROUP BY family_id"
        " HAVING sum(revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ?) > 0 ORDER BY started, family_id",
        (user_id, now),
    )
    return [row["family_id"] for row in rows]


# --- one-time tokens (password reset, email verification) ---------------------------------------------------
def insert_user_token(conn: apsw.Connection, *, user_id: str, purpose: str, token_hash: str,
                      expires_at: str) -> None:
    conn.execute("INSERT INTO user_tokens(id, user_id, purpose, token_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
                 (str(uuid.uuid4()), user_id, purpose, token_hash, expires_at))


def user_token(conn: apsw.Connection, purpose: str, token_hash: str) -> Row | None:
    return conn.execute("SELECT id, user_id, expires_at, used_at FROM user_tokens WHERE purpose = ?"
                        " AND token_hash = ?", (purpose, token_hash)).fetchone()


def use_user_tokens(conn: apsw.Connection, user_id: str, purpose: str) -> None:
    """Spend every outstanding token of this purpose: a reset link works once, and older links die with it."""
    conn.execute("UPDATE user_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
                 (utc_now(), user_id, purpose))


# --- failed logins ------------------------------------------------------------------------------------------
def failures_since(conn: apsw.Connection, key: str, since: str) -> list[str]:
    rows = conn.execute("SELECT created_at FROM login_failures WHERE throttle_key = ? AND created_at > ?"
                        " ORDER BY created_at", (key, since))
    return [row["created_at"] for row in rows]


def add_failure(conn: apsw.Connection, key: str, older_than: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE created_at <= ?", (older_than,))
    conn.execute("INSERT INTO login_failures(throttle_key, created_at) VALUES (?, ?)", (key, utc_now()))


def clear_failures(conn: apsw.Connection, key: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE throttle_key = ?", (key,))
