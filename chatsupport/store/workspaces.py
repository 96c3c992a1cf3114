"""Workspaces: the tenant boundary. Every other aggregate carries a ``workspace_id``."""

from __future__ import annotations

import re
import uuid

import apsw

from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "workspace"


def _free_slug(conn: apsw.Connection, name: str) -> str:
    base = slugify(name)
    slug, n = base, 1
    while conn.execute("SELECT 1 AS x FROM workspaces WHERE slug = ?", (slug,)).fetchone():
        n += 1
        slug = f"{base}-{n}"
    return slug


def create(conn: apsw.Connection, name: str) -> Row:
    now = utc_now()
    row = {"id": str(uuid.uuid4()), "name": name, "slug": _free_slug(conn, name), "created_at": now,
           "updated_at": now}
    conn.execute("INSERT INTO workspaces(id, name, slug, created_at, updated_at)"
                 " VALUES (:id, :name, :slug, :created_at, :updated_at)", row)
    return row


def get(conn: apsw.Connection, workspace_id: str) -> Row | None:
    return conn.execute("SELECT id, name, slug, created_at FROM workspaces WHERE id = ? AND deleted_at IS NULL",
                        (workspace_id,)).fetchone()


def find_by_name(conn: apsw.Connection, name: str) -> Row | None:
    """Workspace names are not unique; the CLI addresses the oldest one with that name (or that slug)."""
    return conn.execute(
        "SELECT id, name, slug, created_at FROM workspaces WHERE deleted_at IS NULL"
        " AND (name = ? COLLATE NOCASE OR slug = ?) ORDER BY created_at LIMIT 1", (name, name.lower()),
    ).fetchone()
