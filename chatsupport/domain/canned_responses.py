"""Canned responses: saved replies the whole workspace shares, inserted in the console by typing "/" and their
shortcut. A shortcut is one word (letters, digits, ``-``, ``_``, ``.``), unique in the workspace ignoring case,
stored without the leading "/"; the content is sent as the agent's own message (at most 4,000 characters, like
any reply)."""

from __future__ import annotations

import re
from typing import Any

import apsw

from chatsupport.domain.agent_conversations import MAX_MESSAGE_CHARS
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.store import collaboration as store
from chatsupport.store.db import Row

SHORTCUT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}")
MAX_TITLE_CHARS = 100


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _shortcut(raw: str) -> str:
    shortcut = raw.strip().removeprefix("/")
    if not SHORTCUT.fullmatch(shortcut):
        raise _invalid("shortcut", "One word of up to 50 letters, digits, '-', '_' or '.', e.g. refund-policy.")
    return shortcut


def _text(raw: str, field: str, limit: int) -> str:
    text = raw.strip()
    if not text or len(text) > limit:
        raise _invalid(field, f"Between 1 and {limit} characters.")
    return text


def _out(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "shortcut", "title", "content", "created_by", "created_at", "updated_at")}


def _found(conn: apsw.Connection, actor: Actor, canned_id: str) -> Row:
    row = store.canned_get(conn, actor.workspace_id, canned_id)
    if row is None:
        raise AppError("not_found", "Canned response not found.")
    return row


def _unique(conn: apsw.Connection, actor: Actor, shortcut: str, except_id: str | None = None) -> None:
    if store.canned_shortcut_taken(conn, actor.workspace_id, shortcut, except_id):
        raise AppError("already_exists", f"The shortcut /{shortcut} is taken.",
                       details=[{"field": "shortcut", "message": "Already used by another canned response."}])


def exists(ctx: Context, actor: Actor, canned_id: str) -> bool:
    """For the web layer's 404-before-the-body check."""
    return store.canned_get(ctx.db.reader(), actor.workspace_id, canned_id) is not None


def list_responses(ctx: Context, actor: Actor, query: str, limit: int) -> dict[str, Any]:
    """By shortcut; ``query`` matches the start of the shortcut or of the title ("/ref" finds "refund-policy")."""
    rows = store.canned_list(ctx.db.reader(), actor.workspace_id, query.strip().removeprefix("/"), limit)
    return {"data": [_out(r) for r in rows]}


def create(ctx: Context, actor: Actor, shortcut: str, title: str, content: str) -> dict[str, Any]:
    fields = {"shortcut": _shortcut(shortcut), "title": _text(title, "title", MAX_TITLE_CHARS),
              "content": _text(content, "content", MAX_MESSAGE_CHARS)}

    def work(conn: apsw.Connection) -> Row:
        _unique(conn, actor, fields["shortcut"])
        canned_id = store.canned_insert(conn, actor.workspace_id, fields["shortcut"], fields["title"],
                                        fields["content"], actor.user_id)
        record(conn, "canned_response.created", actor=actor, resource_type="canned_response", resource_id=canned_id,
               changes={"after": {"shortcut": fields["shortcut"], "title": fields["title"]}})
        return _found(conn, actor, canned_id)

    return _out(ctx.db.write(work))


def update(ctx: Context, actor: Actor, canned_id: str, *, shortcut: str | None = None, title: str | None = None,
           content: str | None = None) -> dict[str, Any]:
    """Only the fields given change."""
    fields: dict[str, str] = {}
    if shortcut is not None:
        fields["shortcut"] = _shortcut(shortcut)
    if title is not None:
        fields["title"] = _text(title, "title", MAX_TITLE_CHARS)
    if content is not None:
        fields["content"] = _text(content, "content", MAX_MESSAGE_CHARS)

    def work(conn: apsw.Connection) -> Row:
        before = _found(conn, actor, canned_id)
        if "shortcut" in fields:
            _unique(conn, actor, fields["shortcut"], canned_id)
        if fields:
            store.canned_update(conn, actor.workspace_id, canned_id, fields)
            record(conn, "canned_response.updated", actor=actor, resource_type="canned_response",
                   resource_id=canned_id, changes={"before": {k: before[k] for k in fields if k != "content"},
                                                   "after": {k: v for k, v in fields.items() if k != "content"}},
                   metadata={"content_changed": "content" in fields})
        return _found(conn, actor, canned_id)

    return _out(ctx.db.write(work))


def delete(ctx: Context, actor: Actor, canned_id: str) -> None:
    def work(conn: apsw.Connection) -> None:
        row = _found(conn, actor, canned_id)
        store.canned_delete(conn, actor.workspace_id, canned_id)
        record(conn, "canned_response.deleted", actor=actor, resource_type="canned_response", resource_id=canned_id,
               changes={"before": {"shortcut": row["shortcut"], "title": row["title"]}})

    ctx.db.write(work)
