"""Chatbots: create with PRD defaults, change with a version bump and a snapshot, archive and restore.

Everything is scoped to the actor's workspace: another workspace's id is simply "not found".
"""

from __future__ import annotations

import copy
import html
import secrets
import uuid
from typing import Any

import apsw
import msgspec

from chatsupport.domain.audit import Actor, pagination, record
from chatsupport.domain.auth import Context
from chatsupport.domain.chatbot_schema import DEFAULTS, SETTINGS_SECTIONS, ChatbotCreate, ChatbotUpdate
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.store import chatbots as store
from chatsupport.store import widget as widget_store
from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

LIST_STATUSES = {"active": ("active",), "inactive": ("inactive",), "archived": ("archived",),
                 "current": ("active", "inactive"), "all": ("active", "inactive", "archived")}
SNAPSHOT_FIELDS = ("name", "description", "status", "settings", "allowed_origins")


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; lists, scalars and null replace."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def embed_code(ctx: Context, public_key: str) -> str:
    src = html.escape(f"{ctx.settings.base_url}/widget.js", quote=True)
    return f'<script async src="{src}" data-chatbot="{html.escape(public_key, quote=True)}"></script>'


def present(ctx: Context, actor: Actor, bot: Row) -> dict[str, Any]:
    """The API shape: settings sections at the top level, the secret only for those allowed to see it."""
    body: dict[str, Any] = {"id": bot["id"], "workspace_id": bot["workspace_id"], "name": bot["name"],
                            "description": bot["description"], "status": bot["status"]}
    body.update({section: bot["settings"].get(section, DEFAULTS[section]) for section in SETTINGS_SECTIONS})
    body.update({"allowed_origins": bot["allowed_origins"], "public_key": bot["public_key"],
                 "embed_code": embed_code(ctx, bot["public_key"]), "version": bot["version"],
                 "created_by": bot["created_by"], "created_at": bot["created_at"], "updated_at": bot["updated_at"],
                 "archived_at": bot["archived_at"],
                 "widget_detected": widget_store.sightings(ctx.db.reader(), bot["id"])})
    if allowed(actor.role, "chatbot.secrets"):
        body["identity_secret"] = bot["identity_secret"]
    return body


def _split(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column values, settings patch) from a request's fields."""
    settings = {k: v for k, v in fields.items() if k in SETTINGS_SECTIONS}
    columns = {k: v for k, v in fields.items() if k not in SETTINGS_SECTIONS}
    return columns, settings


def _snapshot(conn: apsw.Connection, bot: dict[str, Any], actor: Actor) -> None:
    store.add_version(conn, bot["id"], bot["version"], {k: bot[k] for k in SNAPSHOT_FIELDS}, actor.user_id)


def _check_name(conn: apsw.Connection, actor: Actor, name: str, except_id: str | None = None) -> None:
    if store.name_taken(conn, actor.workspace_id, name, except_id):
        raise AppError("already_exists", "A chatbot with this name already exists.",
                       details=[{"field": "name", "message": "Already used by another chatbot."}])


def create(ctx: Context, actor: Actor, request: ChatbotCreate) -> dict[str, Any]:
    columns, settings = _split(msgspec.to_builtins(request))
    now = utc_now()
    bot = {"id": str(uuid.uuid4()), "workspace_id": actor.workspace_id, "name": columns["name"],
           "description": columns.get("description"), "status": columns.get("status", "active"),
           "settings": merge(DEFAULTS, settings), "public_key": "pk_" + secrets.token_hex(16),
           "identity_secret": "sk_" + secrets.token_hex(32), "allowed_origins": columns.get("allowed_origins", []),
           "version": 1, "created_by": actor.user_id, "created_at": now, "updated_at": now, "archived_at": None}

    def write(conn: apsw.Connection) -> Row:
        _check_name(conn, actor, bot["name"])
        store.insert(conn, bot)
        _snapshot(conn, bot, actor)
        record(conn, "chatbot.created", actor=actor, resource_type="chatbot", resource_id=bot["id"],
               changes={"after": {"name": bot["name"], "status": bot["status"]}})
        return store.get(conn, actor.workspace_id, bot["id"])  # type: ignore[return-value]

    return present(ctx, actor, ctx.db.write(write))


def _require(conn: apsw.Connection, actor: Actor, chatbot_id: str) -> Row:
    bot = store.get(conn, actor.workspace_id, chatbot_id)
    if bot is None:
        raise AppError("not_found", "No such chatbot.")
    return bot


def get(ctx: Context, actor: Actor, chatbot_id: str) -> dict[str, Any]:
    return present(ctx, actor, _require(ctx.db.reader(), actor, chatbot_id))


def search(ctx: Context, actor: Actor, status: str, page: int, limit: int) -> dict[str, Any]:
    if status not in LIST_STATUSES:
        raise AppError("validation_error", details=[{"field": "status",
                                                     "message": f"One of {', '.join(LIST_STATUSES)}."}])
    if not 1 <= limit <= 100 or page < 1:
        raise AppError("validation_error", details=[{"field": "limit", "message": "limit is 1-100, page ≥ 1"}])
    rows, total = store.search(ctx.db.reader(), actor.workspace_id, LIST_STATUSES[status], limit,
                               (page - 1) * limit)
    return {"data": [present(ctx, actor, row) for row in rows], "pagination": pagination(page, limit, total)}


def _save(conn: apsw.Connection, actor: Actor, before: Row, after: dict[str, Any], action: str) -> Row:
    """Bump the version, keep a snapshot, audit what changed — only when something did."""
    changed = {k: after[k] for k in SNAPSHOT_FIELDS if after[k] != before[k]}
    if not changed:
        return before
    after = {**after, "version": before["version"] + 1, "updated_at": utc_now()}
    store.update(conn, after)
    _snapshot(conn, after, actor)
    record(conn, action, actor=actor, resource_type="chatbot", resource_id=before["id"],
           changes={"before": {k: before[k] for k in changed}, "after": changed},
           metadata={"version": after["version"]})
    return store.get(conn, actor.workspace_id, before["id"])  # type: ignore[return-value]


def update(ctx: Context, actor: Actor, chatbot_id: str, request: ChatbotUpdate) -> dict[str, Any]:
    columns, settings = _split(msgspec.to_builtins(request))

    def write(conn: apsw.Connection) -> Row:
        bot = _require(conn, actor, chatbot_id)
        if bot["status"] == "archived":
            raise AppError("conflict", "The chatbot is archived; restore it first.")
        if "name" in columns:
            _check_name(conn, actor, columns["name"], bot["id"])
        after = {**bot, **columns, "settings": merge(bot["settings"], settings)}
        return _save(conn, actor, bot, after, "chatbot.updated")

    saved = ctx.db.write(write)
    _tell_widgets(saved)
    return present(ctx, actor, saved)


def _tell_widgets(bot: Row) -> None:
    """``config:updated`` to every open widget of the bot, after the commit (docs/widget-protocol.md)."""
    from chatsupport import live
    from chatsupport.domain.widget import chatbot_config  # imported here: domain.widget builds on this module

    live.publish("config:updated", {"chatbot": chatbot_config(bot)}, channel=live.chatbot_channel(bot["id"]))


def archive(ctx: Context, actor: Actor, chatbot_id: str) -> None:
    """Soft delete: the bot stops answering and leaves the list; its data stays until it is restored."""
    def write(conn: apsw.Connection) -> Row:
        bot = _require(conn, actor, chatbot_id)
        if bot["status"] != "archived":
            _save(conn, actor, bot, {**bot, "status": "archived", "archived_at": utc_now()}, "chatbot.archived")
        return store.get(conn, actor.workspace_id, chatbot_id)  # type: ignore[return-value]

    _tell_widgets(ctx.db.write(write))


def restore(ctx: Context, actor: Actor, chatbot_id: str) -> dict[str, Any]:
    def write(conn: apsw.Connection) -> Row:
        bot = _require(conn, actor, chatbot_id)
        if bot["status"] != "archived":
            return bot
        _check_name(conn, actor, bot["name"], bot["id"])
        return _save(conn, actor, bot, {**bot, "status": "active", "archived_at": None}, "chatbot.restored")

    saved = ctx.db.write(write)
    _tell_widgets(saved)
    return present(ctx, actor, saved)
