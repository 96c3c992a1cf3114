"""Saved filters (PRD §5.3.4): a name for a set of ``Filters`` that one console user keeps for themselves and
applies with ``GET /api/v1/conversations?filter_id=…``. Each user sees and deletes only their own; at most one
is their default (saving a new default clears the old flag)."""

from __future__ import annotations

import uuid
from typing import Any

import apsw

from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context
from chatsupport.domain.conversation_filters import parse_filters
from chatsupport.errors import AppError
from chatsupport.store import conversation_search as store
from chatsupport.store.instance_state import utc_now

MAX_PER_USER = 100
MAX_NAME_CHARS = 100


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "filters": row["filters"], "is_default": row["is_default"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def list_mine(ctx: Context, actor: Actor) -> dict[str, Any]:
    return {"data": [_out(row) for row in store.saved_filters(ctx.db.reader(), actor.workspace_id, actor.user_id)]}


def get(ctx: Context, actor: Actor, filter_id: str) -> dict[str, Any]:
    """The caller's saved filter; anyone else's is "not found" like an unknown id."""
    row = store.saved_filter(ctx.db.reader(), actor.workspace_id, actor.user_id, filter_id)
    if row is None:
        raise AppError("not_found", "Saved filter not found.")
    return _out(row)


def create(ctx: Context, actor: Actor, name: str, filters: Any, is_default: bool = False) -> dict[str, Any]:
    """Stores the filters in their normalised JSON spelling (``Filters.as_dict``), so what is applied later is
    exactly what was validated now."""
    clean = " ".join(name.split())
    if not 1 <= len(clean) <= MAX_NAME_CHARS:
        raise AppError("validation_error", details=[{"field": "name",
                                                     "message": f"1 to {MAX_NAME_CHARS} characters."}])
    stored = parse_filters(filters).as_dict()
    filter_id = str(uuid.uuid4())

    def write(conn: apsw.Connection) -> None:
        if store.name_taken(conn, actor.user_id, clean):
            raise AppError("already_exists", f"You already have a saved filter named “{clean}”.",
                           details=[{"field": "name", "message": "Choose another name."}])
        if len(store.saved_filters(conn, actor.workspace_id, actor.user_id)) >= MAX_PER_USER:
            raise AppError("validation_error", details=[{"field": "name", "message": (
                f"At most {MAX_PER_USER} saved filters each; delete one first.")}])
        store.add_saved_filter(conn, filter_id, actor.workspace_id, actor.user_id, clean, stored, is_default,
                               utc_now())

    ctx.db.write(write)
    return get(ctx, actor, filter_id)


def delete(ctx: Context, actor: Actor, filter_id: str) -> None:
    if not ctx.db.write(lambda conn: store.delete_saved_filter(conn, actor.workspace_id, actor.user_id, filter_id)):
        raise AppError("not_found", "Saved filter not found.")
