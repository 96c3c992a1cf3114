"""LLM provider configuration, the daily cloud-token cap and token usage: plain SQL (migration 6).

Writers take the writer connection (``db.write(lambda conn: …)``); readers take the ``Database``. Days are UTC
``YYYY-MM-DD`` strings, so "today" is the same day for every process of the instance.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

import apsw

from chatsupport.store.db import Database, Row

CLOUD_KINDS = ("openai", "anthropic")
PROVIDER_COLUMNS = ("kind", "position", "enabled", "base_url", "model", "api_key_encrypted", "api_key_hint",
                    "first_token_timeout_s", "total_timeout_s")


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def list_providers(db: Database, workspace_id: str) -> list[Row]:
    """The workspace's providers in chain order, keys included (encrypted): never hand these rows to the API."""
    return db.query("SELECT * FROM llm_providers WHERE workspace_id = ? ORDER BY position, kind", (workspace_id,))


def replace_providers(conn: apsw.Connection, workspace_id: str, rows: Iterable[dict[str, Any]]) -> None:
    """Make the workspace's provider list exactly ``rows`` (keeping ids and created_at of kinds that stay)."""
    rows = list(rows)
    kinds = [row["kind"] for row in rows]
    marks = ",".join("?" * len(kinds))
    conn.execute(f"DELETE FROM llm_providers WHERE workspace_id = ? AND kind NOT IN ({marks or 'NULL'})",
                 (workspace_id, *kinds))
    for row in rows:
        values = [row.get(column) for column in PROVIDER_COLUMNS]
        conn.execute(
            f"INSERT INTO llm_providers (id, workspace_id, {', '.join(PROVIDER_COLUMNS)}) "
            f"VALUES (?, ?, {', '.join('?' * len(PROVIDER_COLUMNS))}) "
            "ON CONFLICT (workspace_id, kind) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in PROVIDER_COLUMNS if c != "kind")
            + ", updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')",
            (str(uuid.uuid4()), workspace_id, *values))


def get_cap(db: Database, workspace_id: str) -> int | None:
    """The workspace's own cap (``None`` when it has not set one: the instance default applies)."""
    row = db.query_one("SELECT daily_token_cap FROM llm_limits WHERE workspace_id = ?", (workspace_id,))
    return None if row is None else row["daily_token_cap"]


def set_cap(conn: apsw.Connection, workspace_id: str, cap: int | None) -> None:
    conn.execute("INSERT INTO llm_limits (workspace_id, daily_token_cap) VALUES (?, ?) ON CONFLICT (workspace_id) "
                 "DO UPDATE SET daily_token_cap = excluded.daily_token_cap, "
                 "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')", (workspace_id, cap))


def cloud_tokens_on(db: Database, workspace_id: str, day: str) -> int:
    """Tokens (in + out) the workspace spent on cloud providers on ``day``."""
    marks = ",".join("?" * len(CLOUD_KINDS))
    row = db.query_one(f"SELECT coalesce(sum(tokens_in + tokens_out), 0) AS n FROM llm_usage "
                       f"WHERE workspace_id = ? AND day = ? AND provider IN ({marks})",
                       (workspace_id, day, *CLOUD_KINDS))
    return int(row["n"]) if row else 0


def add_usage(conn: apsw.Connection, workspace_id: str, day: str, provider: str, tokens_in: int,
              tokens_out: int) -> None:
    conn.execute("INSERT INTO llm_usage (workspace_id, day, provider, requests, tokens_in, tokens_out) "
                 "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (workspace_id, day, provider) DO UPDATE SET "
                 "requests = requests + 1, tokens_in = tokens_in + excluded.tokens_in, "
                 "tokens_out = tokens_out + excluded.tokens_out",
                 (workspace_id, day, provider, tokens_in, tokens_out))


def usage_on(db: Database, workspace_id: str, day: str) -> list[Row]:
    return db.query("SELECT provider, requests, tokens_in, tokens_out FROM llm_usage WHERE workspace_id = ? "
                    "AND day = ? ORDER BY provider", (workspace_id, day))
