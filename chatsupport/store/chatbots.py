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
                changed_by: str | None, restored_from: int | None = None) -> None:
    conn.execute("INSERT INTO chatbot_versions(chatbot_id, version, snapshot, changed_by, restored_from, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)",
                 (chatbot_id, version, json.dumps(snapshot), changed_by, restored_from, utc_now()))


VERSION_COLUMNS = ("v.version, v.snapshot, v.changed_by, v.restored_from, v.created_at,"
                   " nullif(u.display_name, '') AS changed_by_name, u.email AS changed_by_email")


def _decode_version(row: Row) -> Row:
    row["snapshot"] = json.loads(row["snapshot"])
    return row


def versions(conn: apsw.Connection, chatbot_id: str) -> list[Row]:
    """Every snapshot, oldest first (the list shows what each changed, so it needs its predecessor)."""
    rows = conn.execute(f"SELECT {VERSION_COLUMNS} FROM chatbot_versions v LEFT JOIN users u ON u.id = v.changed_by"
                        " WHERE v.chatbot_id = ? ORDER BY v.version", (chatbot_id,))
    return [_decode_version(row) for row in rows]


def version(conn: apsw.Connection, chatbot_id: str, number: int) -> Row | None:
    row = conn.execute(f"SELECT {VERSION_COLUMNS} FROM chatbot_versions v LEFT JOIN users u ON u.id = v.changed_by"
                       " WHERE v.chatbot_id = ? AND v.version = ?", (chatbot_id, number)).fetchone()
    return _decode_version(row) if row is not None else None
