"""API keys for the REST API: create (the key is shown once), list, revoke, and resolve a presented key to an actor.

A key is ``cs_live_`` plus 43 random URL-safe characters (256 bits), so a plain SHA-256 is a safe way to store it
and a hash lookup is the comparison. A key acts for the user who created it, with the role its scope grants —
read → viewer, write → agent, admin → admin — and never more than that user's role *now*: demoting the creator
weakens the key, deactivating them stops it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Sequence

import apsw

from chatsupport.domain import audit
from chatsupport.domain.audit import Actor, Origin
from chatsupport.domain.auth import Context, iso, now_utc, parse_iso, token_hash
from chatsupport.domain.permissions import ADMIN, AGENT, OWNER, VIEWER
from chatsupport.errors import AppError
from chatsupport.store import api_keys, users
from chatsupport.store.db import Row

KEY_PREFIX = "cs_live_"
SCOPES = ("read", "write", "admin")
SCOPE_ROLE = {"read": VIEWER, "write": AGENT, "admin": ADMIN}
ROLE_RANK = {VIEWER: 0, AGENT: 1, ADMIN: 2, OWNER: 3}
NAME_MAX = 100
TOUCH_EVERY = timedelta(minutes=1)
SHOWN_PREFIX = len(KEY_PREFIX) + 4


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def effective_role(scopes: Sequence[str], creator_role: str) -> str:
    """The strongest role the scopes grant, capped at the creator's current role."""
    granted = max((SCOPE_ROLE[s] for s in scopes if s in SCOPE_ROLE), key=ROLE_RANK.__getitem__, default=VIEWER)
    return min(granted, creator_role, key=ROLE_RANK.__getitem__)


def shown(row: Row) -> dict[str, Any]:
    """What the list shows of a key: never the key, only its first and last characters."""
    return {"id": row["id"], "name": row["name"], "scopes": api_keys.scopes_of(row), "prefix": row["prefix"],
            "last_four": row["last_four"], "created_by": row["created_by"],
            "created_by_name": row["created_by_name"] or row["created_by_email"], "created_at": row["created_at"],
            "last_used_at": row["last_used_at"]}


def _checked(name: str, scopes: Sequence[str]) -> tuple[str, list[str]]:
    name = " ".join(name.split())
    problems = []
    if not 1 <= len(name) <= NAME_MAX:
        problems.append({"field": "name", "message": f"Give the key a name of 1–{NAME_MAX} characters."})
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        problems.append({"field": "scopes", "message": "Choose at least one scope of read, write and admin"
                         + (f" ({', '.join(unknown)} is not one)." if unknown else ".")})
    if problems:
        raise AppError("validation_error", details=problems)
    return name, [s for s in SCOPES if s in scopes]


def create(ctx: Context, actor: Actor, name: str, scopes: Sequence[str]) -> dict[str, Any]:
    """A new key for the actor's workspace; the returned ``key`` is the only time it is ever shown."""
    name, ordered = _checked(name, scopes)
    key = KEY_PREFIX + secrets.token_urlsafe(32)

    def write(conn: apsw.Connection) -> Row:
        key_id = api_keys.insert(conn, workspace_id=actor.workspace_id, name=name, scopes=ordered,
                                 prefix=key[:SHOWN_PREFIX], last_four=key[-4:], key_hash=token_hash(key),
                                 created_by=actor.user_id)
        audit.record(conn, "api_key.created", actor=actor, resource_type="api_key", resource_id=key_id,
                     metadata={"name": name, "scopes": ordered})
        row = api_keys.get_active(conn, actor.workspace_id, key_id)
        assert row is not None
        return row

    return {**shown(ctx.db.write(write)), "key": key}


def list_keys(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    return [shown(row) for row in api_keys.active_in_workspace(ctx.db.reader(), actor.workspace_id)]


def exists(ctx: Context, actor: Actor, key_id: str) -> bool:
    return api_keys.get_active(ctx.db.reader(), actor.workspace_id, key_id) is not None


def revoke(ctx: Context, actor: Actor, key_id: str) -> None:
    """Revoke at once: the next request with the key gets 401. An unknown or revoked id is ``not_found``."""
    def write(conn: apsw.Connection) -> bool:
        row = api_keys.get_active(conn, actor.workspace_id, key_id)
        if row is None or not api_keys.revoke(conn, actor.workspace_id, key_id):
            return False
        audit.record(conn, "api_key.revoked", actor=actor, resource_type="api_key", resource_id=key_id,
                     metadata={"name": row["name"], "scopes": api_keys.scopes_of(row)})
        return True

    if not ctx.db.write(write):
        raise AppError("not_found", "No such API key.")


def actor_from_key(ctx: Context, key: str, origin: Origin) -> Actor:
    """The actor a Bearer API key acts as, or ``invalid_token`` (unknown, revoked, or its creator is gone)."""
    reader = ctx.db.reader()
    row = api_keys.by_hash(reader, token_hash(key))
    creator = users.get(reader, row["created_by"]) if row and row["created_by"] else None
    if row is None or creator is None or creator["status"] != "active" \
            or creator["workspace_id"] != row["workspace_id"]:
        raise AppError("invalid_token", "The API key is unknown or was revoked.")
    now = now_utc()
    if row["last_used_at"] is None or parse_iso(row["last_used_at"]) + TOUCH_EVERY < now:
        ctx.db.write(lambda conn: api_keys.touch(conn, row["id"], iso(now)))
    return Actor(user_id=creator["id"], workspace_id=row["workspace_id"],
                 role=effective_role(api_keys.scopes_of(row), creator["role"]), email=creator["email"],
                 display_name=creator["display_name"], origin=origin)
