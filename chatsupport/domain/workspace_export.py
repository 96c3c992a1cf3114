"""The whole workspace as one zip (PRD §6.5, data portability): a JSON array per table, written by a Huey job.

It shares the bulk exports' table, folder, seven-day expiry, housekeeping and "three at a time" limit
(``domain.exports``), as ``kind = 'workspace'``. What is left out on purpose: password hashes, MFA secrets,
chatbots' identity secrets, API key hashes, provider keys and anything in the workspace settings whose name says
secret, password, key or token; uploaded files themselves (the documents' metadata is there). Each table is read in
keyset batches, one short read each, and streamed into the zip entry, so memory stays flat; the file is written as
``<id>.zip.part`` and renamed when whole.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatsupport.domain import exports
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, iso, now_utc
from chatsupport.errors import AppError
from chatsupport.store import exports as store
from chatsupport.store.db import Database, Row


KIND = "workspace"
BATCH = 1000
SECRET_WORDS = ("secret", "password", "key", "token")


@dataclass(frozen=True)
class Table:
    """One file of the zip: ``source`` is ``FROM … WHERE`` with the workspace as its one parameter."""

    name: str
    columns: str
    source: str
    keys: tuple[str, ...]
    json_columns: tuple[str, ...] = ()


_BOT = "chatbot_id IN (SELECT id FROM chatbots WHERE workspace_id = ?)"
_CONVERSATION = "conversation_id IN (SELECT id FROM conversations WHERE workspace_id = ?)"
TABLES = (
    Table("users", "id, email, display_name, role, status, timezone, max_concurrent_conversations, created_at,"
          " last_login_at", "FROM users WHERE workspace_id = ?", ("rowid",)),
    Table("chatbots", "id, name, description, status, settings, public_key, allowed_origins, version, created_at,"
          " updated_at, archived_at", "FROM chatbots WHERE workspace_id = ?", ("rowid",),
          ("settings", "allowed_origins")),
    Table("knowledge_documents", "id, chatbot_id, source_type, title, original_filename, source_url, file_size_bytes,"
          " mime_type, status, page_count, chunk_count, metadata, created_at, updated_at",
          f"FROM knowledge_documents WHERE {_BOT}", ("rowid",), ("metadata",)),
    Table("knowledge_faqs", "id, chatbot_id, question, answer, category, tags, priority, status, usage_count,"
          " helpful_count, not_helpful_count, created_at, updated_at", f"FROM knowledge_faqs WHERE {_BOT}",
          ("rowid",), ("tags",)),
    Table("customers", "id, visitor_id, external_id, email, name, phone, company, metadata, custom_fields,"
          " first_seen_at, last_seen_at, created_at, anonymized_at", "FROM customers WHERE workspace_id = ?",
          ("rowid",), ("metadata", "custom_fields")),
    Table("conversations", "id, chatbot_id, customer_id, status, assigned_agent_id, context, tags, message_count,"
          " satisfaction_rating, satisfaction_comment, escalation_reason, resolved_at, resolution_note, created_at,"
          " updated_at, archived_at, anonymized_at", "FROM conversations WHERE workspace_id = ?", ("rowid",),
          ("context", "tags")),
    Table("messages", "id, conversation_id, sender_type, sender_id, sender_name, content, attachments, ai_metadata,"
          " intent, sentiment, feedback, created_at", f"FROM messages WHERE {_CONVERSATION} AND deleted_at IS NULL",
          ("rowid",), ("attachments", "ai_metadata")),
    Table("internal_notes", "id, conversation_id, content, author_id, created_at",
          f"FROM internal_notes WHERE {_CONVERSATION} AND deleted_at IS NULL", ("rowid",)),
    Table("conversation_tags", "conversation_id, tag", "FROM conversation_tags WHERE workspace_id = ?",
          ("conversation_id", "tag")),
    Table("analytics", "bucket, chatbot_id, conversations, resolved, abandoned, escalated, ai_resolved_confirmed,"
          " ai_resolved_assumed, customer_messages, bot_messages, agent_messages, csat_sum, csat_count,"
          " feedback_up, feedback_down", "FROM analytics_buckets WHERE workspace_id = ?", ("bucket", "chatbot_id")),
)


def request(ctx: Context, actor: Actor) -> dict[str, Any]:
    """Record the export (the caller queues the job) and audit it."""
    now = now_utc()
    total = sum(_count(ctx.db, table, actor.workspace_id) for table in TABLES)
    row = {"id": str(uuid.uuid4()), "workspace_id": actor.workspace_id, "requested_by": actor.user_id,
           "kind": KIND, "format": "json", "request": {}, "total": total, "created_at": iso(now),
           "expires_at": iso(now + exports.KEEP)}

    def write(conn: Any) -> None:
        if store.running_count(conn, actor.workspace_id) >= exports.MAX_RUNNING:
            raise AppError("rate_limited", f"{exports.MAX_RUNNING} exports are already being written; try again "
                                           "when one of them is completed.")
        store.insert(conn, row)
        record(conn, "workspace.exported", actor=actor, resource_type="export", resource_id=row["id"],
               metadata={"rows": total})

    ctx.db.write(write)
    return present(store.get(ctx.db.reader(), actor.workspace_id, row["id"], KIND))  # type: ignore[arg-type]


def present(row: Row) -> dict[str, Any]:
    done, total, completed = row["done"], row["total"], row["status"] == "completed"
    percent = 100 if completed else (min(99, done * 100 // total) if total else 0)
    return {"export_id": row["id"], "status": row["status"], "progress": {"done": done, "total": total,
                                                                          "percent": percent},
            "size_bytes": row["size"], "error": row["error"], "created_at": row["created_at"],
            "completed_at": row["completed_at"], "expires_at": row["expires_at"],
            "download_url": f"/api/v1/privacy/workspace-exports/{row['id']}/download" if completed else None}


def _live(ctx: Context, actor: Actor, export_id: str) -> Row:
    row = store.get(ctx.db.reader(), actor.workspace_id, export_id, KIND)
    if row is None or row["expires_at"] <= iso(now_utc()):
        raise AppError("not_found", "Export not found. Exports are deleted seven days after they were requested.")
    return row


def exists(ctx: Context, actor: Actor, export_id: str) -> bool:
    row = store.get(ctx.db.reader(), actor.workspace_id, export_id, KIND)
    return row is not None and row["expires_at"] > iso(now_utc())


def get(ctx: Context, actor: Actor, export_id: str) -> dict[str, Any]:
    return present(_live(ctx, actor, export_id))


def listing(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    return [present(row) for row in store.recent(ctx.db.reader(), actor.workspace_id, iso(now_utc()),
                                                 exports.LIST_LIMIT, KIND)]


def file(ctx: Context, actor: Actor, export_id: str) -> tuple[Path, str]:
    """(path, download name) of a completed export."""
    row = _live(ctx, actor, export_id)
    if row["status"] == "processing":
        raise AppError("export_not_ready", f"The export is still being written ({row['done']} of {row['total']} "
                                           "rows); try again when it is completed.")
    if row["status"] == "failed":
        raise AppError("export_failed", row["error"])
    path = ctx.settings.data.exports / row["workspace_id"] / row["file_name"]
    if not path.is_file():
        raise AppError("not_found", "The export file is gone from the server; request the export again.")
    return path, f"workspace-{row['created_at'][:10]}-{row['id'][:8]}.zip"


# --- the job ----------------------------------------------------------------------------------------------------
def _count(db: Database, table: Table, workspace_id: str) -> int:
    row = db.reader().execute(f"SELECT count(*) AS n {table.source}", (workspace_id,)).fetchone()
    return int(row["n"])


def _batches(db: Database, table: Table, workspace_id: str) -> Any:
    keys = ", ".join(table.keys)
    after: tuple[Any, ...] | None = None
    while True:
        keyset = f" AND ({keys}) > ({', '.join('?' * len(table.keys))})" if after else ""
        rows = db.reader().execute(
            f"SELECT {table.columns}, {', '.join(f'{k} AS _k{i}' for i, k in enumerate(table.keys))}"
            f" {table.source}{keyset} ORDER BY {keys} LIMIT ?", (workspace_id, *(after or ()), BATCH)).fetchall()
        if not rows:
            return
        after = tuple(rows[-1][f"_k{i}"] for i in range(len(table.keys)))
        for row in rows:
            for i in range(len(table.keys)):
                row.pop(f"_k{i}")
            for column in table.json_columns:
                row[column] = json.loads(row[column]) if row[column] else None
        yield rows


def _workspace(db: Database, workspace_id: str) -> dict[str, Any]:
    row = db.reader().execute("SELECT id, name, slug, website_url, settings, created_at FROM workspaces WHERE id = ?",
                              (workspace_id,)).fetchone()
    settings = json.loads(row["settings"]) if row else {}
    return {**(row or {}), "settings": {k: v for k, v in settings.items()
                                        if not any(word in k.lower() for word in SECRET_WORDS)}}


def run(db: Database, exports_root: Path, export_id: str) -> None:
    """The Huey job: the bulk-export runner with this module's zip writer."""
    exports.produce(db, exports_root, export_id, KIND, lambda _row: "zip", _write)


def _write(db: Database, row: Row, partial: Path) -> int:
    workspace_id = row["workspace_id"]
    counts = {table.name: _count(db, table, workspace_id) for table in TABLES}
    db.write(lambda conn: store.start(conn, row["id"], sum(counts.values()), iso(now_utc())))
    done = 0
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("workspace.json", json.dumps(_workspace(db, workspace_id), ensure_ascii=False, indent=1))
        for table in TABLES:
            with io.TextIOWrapper(archive.open(f"{table.name}.json", "w"), encoding="utf-8") as out:
                out.write("[")
                first = True
                for rows in _batches(db, table, workspace_id):
                    for item in rows:
                        out.write(("\n" if first else ",\n") + json.dumps(item, ensure_ascii=False))
                        first = False
                    done += len(rows)
                    db.write(lambda conn, count=done: store.progress(conn, row["id"], count, iso(now_utc())))
                out.write("\n]\n")
        archive.writestr("manifest.json", json.dumps({"workspace_id": workspace_id, "export_id": row["id"],
                                                      "requested_at": row["created_at"], "written_at":
                                                      iso(now_utc()), "rows": counts}, indent=1))
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    return done
