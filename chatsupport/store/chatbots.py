"""Chatbots and their version snapshots. Settings are one JSON document; the domain owns its shape."""

from __future__ import annotations

import json
from typing import Any

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

COLUMNS = ("id, workspace_id, name, description, status, settings, public_key, identity_secret, allowed_origins,"
           " version, created_by, created_at, updated_at, archived_at")


def _decode(row: Row | None) -> Row | None:
    if row is not None:
        row["settings"] = json.loads(row["settings"])
        row["allowed_origins"] = json.loads(row["allowed_origins"])
    return row


def insert(conn: apsw.Connection, bot: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO chatbots(id, workspace_id, name, description, status, settings, public_key, identity_secret,"
        " allowed_origins, version, created_by, created_at, updated_at) VALUES (:id, :workspace_id, :name,"
        " :description, :status, :settings, :public_key, :identity_secret, :allowed_origins, :version, :created_by,"
        " :created_at, :updated_at)",
        {**bot, "settings": json.dumps(bot["settings"]), "allowed_origins": json.dumps(bot["allowed_origins"])},
    )


def update(conn: apsw.Connection, bot: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE chatbots SET name = :name, description = :description, status = :status, settings = :settings,"
        " allowed_origins = :allowed_origins, version = :version, updated_at = :updated_at,"
        " archived_at = :archived_at WHERE id = :id AND workspace_id = :workspace_id",
        {**bot, "settings": json.dumps(bot["settings"]), "allowed_origins": json.dumps(bot["allowed_origins"])},
    )


def get(conn: apsw.Connection, workspace_id: str, chatbot_id: str) -> Row | None:
    return _decode(conn.execute(f"SELECT {COLUMNS} FROM chatbots WHERE id = ? AND workspace_id = ?",
                                (chatbot_id, workspace_id)).fetchone())


def name_taken(conn: apsw.Connection, workspace_id: str, name: str, except_id: str | None = None) -> bool:
    """Duplicate detection (PRD §5.2.1) among the workspace's bots that are not archived."""
    return conn.execute(
        "SELECT 1 AS x FROM chatbots WHERE workspace_id = ? AND name = ? COLLATE NOCASE AND status != 'archived'"
        " AND id IS NOT ?", (workspace_id, name, except_id),
    ).fetchone() is not None


def search(conn: apsw.Connection, workspace_id: str, statuses: tuple[str, ...], limit: int,
           offset: int) -> tuple[list[Row], int]:
    marks = ",".join("?" * len(statuses))
    params = (workspace_id, *statuses)
    total = conn.execute(f"SELECT count(*) AS n FROM chatbots WHERE workspace_id = ? AND status IN ({marks})",
                         params).fetchone()["n"]
    rows = conn.execute(f"SELECT {COLUMNS} FROM chatbots WHERE workspace_id = ? AND status IN ({marks})"
                        " ORDER BY created_at, id LIMIT ? OFFSET ?", (*params, limit, offset))
    return [_decode(row) for row in rows], total  # type: ignore[misc]


def add_version(conn: apsw.Connection, chatbot_id: str, version: int, snapshot: dict[str, Any],
                changed_by: str | None) -> None:
    conn.execute("INSERT INTO chatbot_versions(chatbot_id, version, snapshot, changed_by, created_at)"
                 " VALUES (?, ?, ?, ?, ?)", (chatbot_id, version, json.dumps(snapshot), changed_by, utc_now()))


def versions(conn: apsw.Connection, chatbot_id: str) -> list[Row]:
    return list(conn.execute("SELECT version, changed_by, created_at FROM chatbot_versions WHERE chatbot_id = ?"
                             " ORDER BY version", (chatbot_id,)))
