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
from chatsupport.domain.brand import colours as brand_colours
from chatsupport.domain.chatbot_schema import DEFAULTS, SETTINGS_SECTIONS, ChatbotCreate, ChatbotUpdate, \
    check_timezone
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.store import chatbots as store
from chatsupport.store import widget as widget_store
from chatsupport.store.db import Row
from chatsupport.store.instance_state import utc_now

LIST_STATUSES = {"active": ("active",), "inactive": ("inactive",), "archived": ("archived",),
                 "current": ("active", "inactive"), "all": ("active", "inactive", "archived")}
SNAPSHOT_FIELDS = ("name", "description", "status", "settings", "allowed_origins")
ROLLBACK_FIELDS = ("name", "description", "settings", "allowed_origins")
NAME_MAX = 50


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; lists, scalars and null replace."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def snippet(base_url: str, public_key: str) -> str:
    """The one line a customer pastes before ``</body>``."""
    src = html.escape(f"{base_url}/widget.js", quote=True)
    return f'<script async src="{src}" data-chatbot="{html.escape(public_key, quote=True)}"></script>'


def embed_code(ctx: Context, public_key: str) -> str:
    return snippet(ctx.settings.base_url, public_key)


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
    """(column values, settings patch) from a request's fields; a named time zone must exist."""
    settings = {k: v for k, v in fields.items() if k in SETTINGS_SECTIONS}
    columns = {k: v for k, v in fields.items() if k not in SETTINGS_SECTIONS}
    timezone = settings.get("business_hours", {}).get("timezone")
    if timezone is not None:
        check_timezone(timezone, "business_hours.timezone")
    return columns, settings


def _snapshot(conn: apsw.Connection, bot: dict[str, Any], actor: Actor, restored_from: int | None = None) -> None:
    store.add_version(conn, bot["id"], bot["version"], {k: bot[k] for k in SNAPSHOT_FIELDS}, actor.user_id,
                      restored_from)


def _check_name(conn: apsw.Connection, actor: Actor, name: str, except_id: str | None = None) -> None:
    if store.name_taken(conn, actor.workspace_id, name, except_id):
        raise AppError("already_exists", "A chatbot with this name already exists.",
                       details=[{"field": "name", "message": "Already used by another chatbot."}])


def create(ctx: Context, actor: Actor, request: ChatbotCreate) -> dict[str, Any]:
    columns, settings = _split(msgspec.to_builtins(request))
    now = utc_now()
    chosen = brand_colours(ctx.db.reader(), actor.workspace_id)   # a new bot wears the workspace's colours
    defaults = merge(DEFAULTS, {"widget_settings": {"theme": chosen}}) if chosen else DEFAULTS
    bot = {"id": str(uuid.uuid4()), "workspace_id": actor.workspace_id, "name": columns["name"],
           "description": columns.get("description"), "status": columns.get("status", "active"),
           "settings": merge(defaults, settings), "public_key": "pk_" + secrets.token_hex(16),
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


def _save(conn: apsw.Connection, actor: Actor, before: Row, after: dict[str, Any], action: str,
          restored_from: int | None = None) -> Row:
    """Bump the version, keep a snapshot, audit what changed — only when something did."""
    changed = {k: after[k] for k in SNAPSHOT_FIELDS if after[k] != before[k]}
    if not changed:
        return before
    after = {**after, "version": before["version"] + 1, "updated_at": utc_now()}
    store.update(conn, after)
    _snapshot(conn, after, actor, restored_from)
    record(conn, action, actor=actor, resource_type="chatbot", resource_id=before["id"],
           changes={"before": {k: before[k] for k in changed}, "after": changed},
           metadata={"version": after["version"], **({"restored_from": restored_from} if restored_from else {})})
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


# --- clone -------------------------------------------------------------------------------------------------------
def _free_copy_name(conn: apsw.Connection, actor: Actor, name: str) -> str:
    """"<name> copy", then "<name> copy 2", … within the 50-character name rule (parentheses are not allowed)."""
    for n in range(1, 1000):
        suffix = " copy" if n == 1 else f" copy {n}"
        candidate = name[:NAME_MAX - len(suffix)].rstrip() + suffix
        if not store.name_taken(conn, actor.workspace_id, candidate):
            return candidate
    raise AppError("already_exists", "Too many copies of this chatbot; give the clone a name.",
                   details=[{"field": "name", "message": "Give the clone a name of its own."}])


def clone(ctx: Context, actor: Actor, chatbot_id: str, name: str | None) -> dict[str, Any]:
    """A new bot with the source's settings, description and allowed origins, a new public key and identity
    secret, and version 1. Conversations and knowledge are not copied: documents and their vectors stay with the
    source (upload or crawl them for the clone), so a clone is cheap and two bots never share an index."""
    def write(conn: apsw.Connection) -> Row:
        source = _require(conn, actor, chatbot_id)
        new_name = name or _free_copy_name(conn, actor, source["name"])
        _check_name(conn, actor, new_name)
        now = utc_now()
        bot = {"id": str(uuid.uuid4()), "workspace_id": actor.workspace_id, "name": new_name,
               "description": source["description"],
               "status": "inactive" if source["status"] == "archived" else source["status"],
               "settings": copy.deepcopy(source["settings"]), "public_key": "pk_" + secrets.token_hex(16),
               "identity_secret": "sk_" + secrets.token_hex(32), "allowed_origins": list(source["allowed_origins"]),
               "version": 1, "created_by": actor.user_id, "created_at": now, "updated_at": now, "archived_at": None}
        store.insert(conn, bot)
        _snapshot(conn, bot, actor)
        record(conn, "chatbot.cloned", actor=actor, resource_type="chatbot", resource_id=bot["id"],
               changes={"after": {"name": bot["name"], "status": bot["status"]}},
               metadata={"source_id": source["id"], "source_version": source["version"]})
        return store.get(conn, actor.workspace_id, bot["id"])  # type: ignore[return-value]

    return present(ctx, actor, ctx.db.write(write))


# --- versions and rollback ---------------------------------------------------------------------------------------
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"ai_settings": {"temperature": 0.7}}`` → ``{"ai_settings.temperature": 0.7}``; lists stay whole."""
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes between two snapshots, in a stable order: ``{"field", "old", "new"}``."""
    before, after = flatten(_comparable(old)), flatten(_comparable(new))
    return [{"field": path, "old": before.get(path), "new": after.get(path)}
            for path in sorted(before.keys() | after.keys()) if before.get(path) != after.get(path)]


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Settings sections at the top level, merged onto the defaults, so an old sparse snapshot compares fairly."""
    settings = merge(DEFAULTS, snapshot.get("settings") or {})
    return {**{k: snapshot.get(k) for k in SNAPSHOT_FIELDS if k != "settings"}, **settings}


def _summary(row: Row, previous: Row | None) -> list[str]:
    if previous is None:
        return []
    return [change["field"] for change in diff(previous["snapshot"], row["snapshot"])]


def _version_out(row: Row, previous: Row | None) -> dict[str, Any]:
    return {"version": row["version"], "changed_by": row["changed_by"],
            "changed_by_name": row["changed_by_name"] or row["changed_by_email"], "created_at": row["created_at"],
            "restored_from": row["restored_from"], "changed_fields": _summary(row, previous)}


def versions(ctx: Context, actor: Actor, chatbot_id: str) -> list[dict[str, Any]]:
    """Newest first; ``changed_fields`` is what that version changed from the one before (empty for version 1)."""
    conn = ctx.db.reader()
    _require(conn, actor, chatbot_id)
    rows = store.versions(conn, chatbot_id)
    return [_version_out(row, rows[i - 1] if i else None) for i, row in enumerate(rows)][::-1]


def version(ctx: Context, actor: Actor, chatbot_id: str, number: int) -> dict[str, Any]:
    """One snapshot, with the field-level changes from it to the bot as it is now (what a rollback would undo)."""
    conn = ctx.db.reader()
    bot = _require(conn, actor, chatbot_id)
    row = store.version(conn, chatbot_id, number)
    if row is None:
        raise AppError("not_found", "No such version.")
    previous = store.version(conn, chatbot_id, number - 1) if number > 1 else None
    current = {k: bot[k] for k in SNAPSHOT_FIELDS}
    return {**_version_out(row, previous), "snapshot": row["snapshot"],
            "changes_to_current": diff(row["snapshot"], current)}


def rollback(ctx: Context, actor: Actor, chatbot_id: str, number: int) -> dict[str, Any]:
    """The snapshot's name, description, settings and allowed origins become a NEW version (history is never
    rewritten). The status is not rolled back: activation and archiving are decisions of their own."""
    def write(conn: apsw.Connection) -> Row:
        bot = _require(conn, actor, chatbot_id)
        row = store.version(conn, chatbot_id, number)
        if row is None:
            raise AppError("not_found", "No such version.")
        if bot["status"] == "archived":
            raise AppError("conflict", "The chatbot is archived; restore it first.")
        old = row["snapshot"]
        if old["name"] != bot["name"]:
            _check_name(conn, actor, old["name"], bot["id"])
        after = {**bot, **{k: copy.deepcopy(old[k]) for k in ROLLBACK_FIELDS}}
        return _save(conn, actor, bot, after, "chatbot.rolled_back", restored_from=number)

    saved = ctx.db.write(write)
    _tell_widgets(saved)
    return present(ctx, actor, saved)
