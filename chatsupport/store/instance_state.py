"""Instance-wide facts kept as key/value rows (last housekeeping run, last backup, …)."""

from __future__ import annotations

from datetime import datetime, timezone

import apsw


def utc_now() -> str:
    """The one timestamp format of the store: UTC, ISO-8601, milliseconds, ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def put(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO instance_state(key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, utc_now()),
    )


def get(conn: apsw.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM instance_state WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None
