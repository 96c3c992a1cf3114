"""Workspace brand settings: name, logo, colours and time zone (the zone analytics periods and reports use).

A logo is a PNG or JPEG of at most 2 MB, recognised by its first bytes (a renamed text file is refused whatever
its name says), written under ``<data>/uploads/brand`` with a fresh name, and served with its sniffed type.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import apsw

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.domain.chatbot_schema import check_timezone
from chatsupport.errors import AppError
from chatsupport.store import brand as store

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
DEFAULTS = {"primary_color": "#2563EB", "secondary_color": "#1E40AF"}
DEFAULT_TIMEZONE = "UTC"
HEX = re.compile(r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
LOGO_NAME = re.compile(r"^[0-9a-f-]{36}-[0-9a-f]{16}\.(png|jpg)$")


def timezone_of(conn: apsw.Connection, workspace_id: str) -> str:
    """The workspace's IANA time zone, UTC until an owner sets one."""
    row = store.get(conn, workspace_id)
    return (row and row["timezone"]) or DEFAULT_TIMEZONE


def view(ctx: Context, actor: Actor) -> dict[str, Any]:
    row = store.get(ctx.db.reader(), actor.workspace_id)
    if row is None:
        raise AppError("not_found", "No such workspace.")
    return {"name": row["name"], "has_logo": bool(row["logo_path"]), "timezone": row["timezone"] or DEFAULT_TIMEZONE,
            **{key: row["brand"].get(key, default) for key, default in DEFAULTS.items()}}


def colours(conn: apsw.Connection, workspace_id: str) -> dict[str, str] | None:
    """The colours an owner chose, or None while the workspace still has the defaults (never saved)."""
    row = store.get(conn, workspace_id)
    chosen = {key: row["brand"][key] for key in DEFAULTS if HEX.match(str(row["brand"].get(key, "")))} if row else {}
    return chosen or None


def stylesheet(conn: apsw.Connection, workspace_id: str) -> str:
    """The console's brand layer: the colours as CSS variables (a stripe under the top bar) and the logo beside
    the product name. Values are re-checked against HEX here, so nothing stored can inject CSS."""
    row = store.get(conn, workspace_id)
    if row is None:
        return ""
    chosen = {**DEFAULTS, **(colours(conn, workspace_id) or {})}
    css = (f":root {{ --brand-primary: {chosen['primary_color']}; --brand-secondary: {chosen['secondary_color']}; }}\n"
           ".topbar { border-bottom: 3px solid var(--brand-primary); }\n")
    if row["logo_path"]:
        css += (".brand::before { content: \"\"; display: inline-block; width: 1.5rem; height: 1.5rem;"
                " margin-right: .5rem; vertical-align: middle; background: url(/settings/workspace/logo)"
                " center / contain no-repeat; }\n")
    return css


def update(ctx: Context, actor: Actor, name: str, primary_color: str, secondary_color: str, timezone: str) -> None:
    name = " ".join(name.split())
    problems = [] if 1 <= len(name) <= 100 else [{"field": "name", "message": "1–100 characters."}]
    for field, value in (("primary_color", primary_color), ("secondary_color", secondary_color)):
        if not HEX.match(value):
            problems.append({"field": field, "message": "A hex colour such as #2563EB."})
    if problems:
        raise AppError("validation_error", details=problems)
    check_timezone(timezone, "timezone")
    brand = {"primary_color": primary_color, "secondary_color": secondary_color}

    def write(conn: apsw.Connection) -> None:
        before = store.get(conn, actor.workspace_id)
        store.save(conn, actor.workspace_id, name, brand, timezone)
        record(conn, "workspace.updated", actor=actor, resource_type="workspace", resource_id=actor.workspace_id,
               changes={"before": {"name": before["name"], "timezone": before["timezone"], **before["brand"]},
                        "after": {"name": name, "timezone": timezone, **brand}})

    ctx.db.write(write)


def logo_kind(data: bytes) -> str | None:
    """"png" or "jpg" from the file's signature, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    return None


def _logo_dir(ctx: Context) -> Path:
    return ctx.settings.data.uploads / "brand"


def save_logo(ctx: Context, actor: Actor, data: bytes) -> None:
    """Write the new file, point the workspace at it, then remove the old one (a failure leaves the old logo)."""
    if len(data) > LOGO_MAX_BYTES:
        raise AppError("too_large", "The logo is larger than 2 MB.",
                       details=[{"field": "logo", "message": "At most 2 MB."}])
    kind = logo_kind(data)
    if kind is None:
        raise AppError("unsupported_type", "The logo must be a PNG or JPEG image.",
                       details=[{"field": "logo", "message": "A PNG or JPEG image."}])
    folder = _logo_dir(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{actor.workspace_id}-{secrets.token_hex(8)}.{kind}"
    partial = folder / (name + ".part")
    partial.write_bytes(data)
    partial.replace(folder / name)

    def write(conn: apsw.Connection) -> str | None:
        old = store.get(conn, actor.workspace_id)["logo_path"]
        store.set_logo(conn, actor.workspace_id, name)
        record(conn, "workspace.logo_changed", actor=actor, resource_type="workspace",
               resource_id=actor.workspace_id, metadata={"bytes": len(data), "type": LOGO_TYPES[kind]})
        return old

    old = ctx.db.write(write)
    if old and LOGO_NAME.match(old):
        (folder / old).unlink(missing_ok=True)


def logo_file(ctx: Context, workspace_id: str) -> tuple[Path, str] | None:
    """(path, content type) of the workspace's logo, or None. Only names this module wrote are ever opened."""
    row = store.get(ctx.db.reader(), workspace_id)
    name = row["logo_path"] if row else None
    if not name or not LOGO_NAME.match(name):
        return None
    path = _logo_dir(ctx) / name
    return (path, LOGO_TYPES[name.rsplit(".", 1)[1]]) if path.is_file() else None
