"""Bulk conversation exports (PRD §5.6.3): the request, the job that writes the file, status, download, expiry.

The job streams: conversations in keyset batches of ``BATCH`` with the messages of one batch at a time, each
written to the file before the next batch is read, so memory stays flat however many conversations match. It
writes ``<id>.<ext>.part`` and renames it when complete: a file under its final name is always whole.

File shapes. JSON: one array of conversation objects (``messages`` inside each when asked for). CSV: one row per
conversation; with ``include_messages`` one row per message instead, the conversation's fields repeated on each
(a conversation without messages still gets one row). CSV cells that a spreadsheet would run as a formula are
quoted (``transcripts.safe_cell``). Internal notes are not part of bulk exports.

Exports are kept ``KEEP`` (seven days) from the request; after that the row and the file are gone and the id is
"not found", like any unknown id. The file is downloadable only once ``status`` is ``completed``: before that
409 ``export_not_ready``, after a failure 409 ``export_failed`` with the reason. A workspace runs at most
``MAX_RUNNING`` exports at once (429 ``rate_limited`` beyond).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, TextIO

from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context, iso, now_utc
from chatsupport.domain.conversation_filters import parse_filters
from chatsupport.domain.transcripts import safe_cell
from chatsupport.errors import AppError
from chatsupport.store import exports as store
from chatsupport.store.conversation_search import filter_where
from chatsupport.store.db import Database, Row

log = logging.getLogger(__name__)

FIELDS = ("id", "created_at", "customer_email", "customer_name", "status", "message_count",
          "resolution_time_minutes", "satisfaction_rating", "assigned_agent", "chatbot", "tags", "updated_at",
          "resolved_at")
MESSAGE_COLUMNS = ("message_timestamp", "message_sender_type", "message_sender_name", "message_content")
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# Workspace exports (``domain.workspace_export``) share the exports table and its expiry; their files are zips.
FILE_EXTENSIONS = (*FORMATS, "zip")
KEEP = timedelta(days=7)
BATCH = 500
STALL = timedelta(minutes=15)
# For ``estimated_completion`` only: conversations one worker thread writes per second without / with messages
# (bench/export_memory.py measured 6,700-10,000/s with ten messages each on a shared 2-core box; kept lower).
RATE = {False: 5000, True: 2000}
LIST_LIMIT = 50
# Exports queued or running at once per workspace: each holds a worker thread and fills the disk.
MAX_RUNNING = 3


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _fields(raw: list[str] | None) -> list[str]:
    if raw is None:
        return list(FIELDS)
    unknown = [f for f in raw if f not in FIELDS]
    if unknown:
        raise _invalid("fields", f"Unknown field {unknown[0]!r}; known: {', '.join(FIELDS)}.")
    if not raw:
        raise _invalid("fields", "Name at least one field, or leave fields out for all of them.")
    return list(dict.fromkeys(raw))


def request_export(ctx: Context, actor: Actor, *, filters: Any, fmt: str, fields: list[str] | None,
                   include_messages: bool) -> dict[str, Any]:
    """Validate, record the export (status ``processing``) and audit it; the caller queues the job."""
    if fmt == "xlsx":
        raise _invalid("format", "XLSX is not offered; choose csv or json (both open in a spreadsheet).")
    if fmt not in FORMATS:
        raise _invalid("format", "csv or json.")
    chosen, parsed = _fields(fields), parse_filters(filters)
    now = now_utc()
    where, params = filter_where(actor.workspace_id, parsed, actor.user_id)
    total = store.count_conversations(ctx.db.reader(), where, params, iso(now))
    row = {"id": str(uuid.uuid4()), "workspace_id": actor.workspace_id, "requested_by": actor.user_id,
           "format": fmt, "total": total, "created_at": iso(now), "expires_at": iso(now + KEEP),
           "request": {"filters": parsed.as_dict(), "fields": chosen, "include_messages": include_messages}}

    def write(conn: Any) -> None:
        if store.running_count(conn, actor.workspace_id) >= MAX_RUNNING:
            raise AppError("rate_limited", f"{MAX_RUNNING} exports are already being written; request this one "
                                           "when one of them is completed.")
        store.insert(conn, row)
        record(conn, "export.requested", actor=actor, resource_type="export", resource_id=row["id"],
               metadata={**row["request"], "format": fmt, "total": total})

    ctx.db.write(write)
    seconds = 2 + total / RATE[include_messages]
    return {"export_id": row["id"], "status": "processing",
            "estimated_completion": iso(now + timedelta(seconds=seconds))}


# --- reading ----------------------------------------------------------------------------------------------------
def _live(ctx: Context, actor: Actor, export_id: str) -> Row:
    row = store.get(ctx.db.reader(), actor.workspace_id, export_id)
    if row is None or row["expires_at"] <= iso(now_utc()):
        raise AppError("not_found", "Export not found. Exports are deleted seven days after they were requested.")
    return row


def present(row: Row) -> dict[str, Any]:
    total, done = row["total"], row["done"]
    percent = 100 if row["status"] == "completed" else (min(99, done * 100 // total) if total else 0)
    completed = row["status"] == "completed"
    return {"export_id": row["id"], "status": row["status"], "format": row["format"],
            "progress": {"done": done, "total": total, "percent": percent},
            "row_count": done if completed else None, "size_bytes": row["size"], "error": row["error"],
            "filters": row["request"]["filters"], "fields": row["request"]["fields"],
            "include_messages": row["request"]["include_messages"], "created_at": row["created_at"],
            "completed_at": row["completed_at"], "expires_at": row["expires_at"],
            "download_url": f"/api/v1/exports/{row['id']}/download" if completed else None}


def get_export(ctx: Context, actor: Actor, export_id: str) -> dict[str, Any]:
    return present(_live(ctx, actor, export_id))


def list_exports(ctx: Context, actor: Actor) -> dict[str, Any]:
    rows = store.recent(ctx.db.reader(), actor.workspace_id, iso(now_utc()), LIST_LIMIT)
    return {"data": [present(row) for row in rows]}


def export_file(ctx: Context, actor: Actor, export_id: str) -> tuple[Path, str, str]:
    """(path, download name, media type) of a completed export."""
    row = _live(ctx, actor, export_id)
    if row["status"] == "processing":
        raise AppError("export_not_ready", f"The export is still being written ({row['done']} of "
                                           f"{row['total'] or 0} conversations); try again when it is completed.")
    if row["status"] == "failed":
        raise AppError("export_failed", row["error"])
    path = ctx.settings.data.exports / row["workspace_id"] / row["file_name"]
    if not path.is_file():
        raise AppError("not_found", "The export file is gone from the server; request the export again.")
    return path, f"conversations-{row['created_at'][:10]}-{row['id'][:8]}.{row['format']}", FORMATS[row["format"]]


# --- the job ----------------------------------------------------------------------------------------------------
def _value(row: Row, name: str, for_csv: bool) -> Any:
    if name == "assigned_agent":
        if row["assigned_agent_id"] is None:
            return None
        agent = {"id": row["assigned_agent_id"], "name": row["agent_name"], "email": row["agent_email"]}
        return agent["email"] if for_csv else agent
    if name == "chatbot":
        return row["chatbot_name"] if for_csv else {"id": row["chatbot_id"], "name": row["chatbot_name"]}
    if name == "tags" and for_csv:
        return ", ".join(row["tags"])
    return row[name]


def _message(message: Row, conversation: Row) -> dict[str, Any]:
    kind = message["sender_type"]
    name = message["sender_name"] or {"bot": conversation["chatbot_name"],
                                      "customer": conversation["customer_name"]}.get(kind)
    out = {"id": message["id"], "timestamp": message["created_at"], "sender_type": kind, "sender_name": name,
           "content": message["content"]}
    if kind == "bot":
        out["sources"] = [{"title": s.get("title"), "url": s.get("url")}
                          for s in (message["ai_metadata"] or {}).get("sources", [])]
    return out


class CsvSink:
    def __init__(self, out: TextIO, fields: list[str], include_messages: bool):
        self.writer, self.fields, self.include_messages = csv.writer(out), fields, include_messages
        self.writer.writerow([*fields, *(MESSAGE_COLUMNS if include_messages else ())])

    def write(self, conversation: Row, messages: list[Row]) -> None:
        cells = [safe_cell(_value(conversation, f, True)) for f in self.fields]
        if not self.include_messages:
            self.writer.writerow(cells)
            return
        for m in (_message(m, conversation) for m in messages) if messages else [None]:
            extra = ("", "", "", "") if m is None else (m["timestamp"], m["sender_type"], m["sender_name"] or "",
                                                        m["content"])
            self.writer.writerow([*cells, *(safe_cell(v) for v in extra)])

    def close(self) -> None:
        return None


class JsonSink:
    """A JSON array written one element at a time."""

    def __init__(self, out: TextIO, fields: list[str], include_messages: bool):
        self.out, self.fields, self.include_messages, self.first = out, fields, include_messages, True
        out.write("[")

    def write(self, conversation: Row, messages: list[Row]) -> None:
        item = {f: _value(conversation, f, False) for f in self.fields}
        if self.include_messages:
            item["messages"] = [_message(m, conversation) for m in messages]
        self.out.write(("\n" if self.first else ",\n") + json.dumps(item, ensure_ascii=False))
        self.first = False

    def close(self) -> None:
        self.out.write("\n]\n")


SINKS: dict[str, Callable[[TextIO, list[str], bool], CsvSink | JsonSink]] = {"csv": CsvSink, "json": JsonSink}


def run(db: Database, exports_root: Path, export_id: str) -> None:
    """The Huey job of a conversations export."""
    produce(db, exports_root, export_id, "conversations", lambda row: row["format"], _write)


Writer = Callable[[Database, Row, Path], int]


def produce(db: Database, exports_root: Path, export_id: str, kind: str, extension: Callable[[Row], str],
            write: Writer) -> None:
    """Run one export job of ``kind``: ``write`` fills a ``.part`` file (returning the rows written), which is
    renamed into place when complete. Does nothing for an export that is gone or already finished, so a repeated
    job is harmless; any error marks the export failed with a reason a person can act on, and leaves no partial
    file."""
    row = store.get_for_job(db.reader(), export_id)
    if row is None or row["status"] != "processing" or row["kind"] != kind:
        return
    folder = exports_root / row["workspace_id"]
    final = folder / f"{row['id']}.{extension(row)}"
    partial = final.with_name(final.name + ".part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        done = write(db, row, partial)
        os.replace(partial, final)
        size = final.stat().st_size
        db.write(lambda conn: store.complete(conn, export_id, done, final.name, size, iso(now_utc())))
    except Exception as exc:  # noqa: BLE001 - recorded on the export for the person who asked for it
        log.exception("%s export %s failed", kind, export_id)
        _discard(partial)
        reason = f"The file could not be written: {exc.strerror}." if isinstance(exc, OSError) and exc.strerror \
            else "The export stopped on an unexpected error (details are in the server log); request it again."
        db.write(lambda conn: store.fail(conn, export_id, reason, iso(now_utc())))


def _discard(path: Path) -> None:
    """Removing a file must not fail the clean-up around it (nor hide the error that led to it)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _write(db: Database, row: Row, partial: Path) -> int:
    request = row["request"]
    where, params = filter_where(row["workspace_id"], parse_filters(request["filters"]), row["requested_by"])
    until, include_messages = row["created_at"], request["include_messages"]
    total = store.count_conversations(db.reader(), where, params, until)
    db.write(lambda conn: store.start(conn, row["id"], total, iso(now_utc())))
    done, after = 0, None
    with partial.open("w", encoding="utf-8", newline="") as out:
        sink = SINKS[row["format"]](out, request["fields"], include_messages)
        while True:
            batch = store.conversation_batch(db.reader(), where, params, until, after, BATCH)
            if not batch:
                break
            messages = store.batch_messages(db.reader(), [c["id"] for c in batch]) if include_messages else {}
            for conversation in batch:
                sink.write(conversation, messages.get(conversation["id"], []))
            done += len(batch)
            after = (batch[-1]["created_at"], batch[-1]["id"])
            db.write(lambda conn, count=done: store.progress(conn, row["id"], count, iso(now_utc())))
        sink.close()
        out.flush()
        os.fsync(out.fileno())
    return done


# --- housekeeping -------------------------------------------------------------------------------------------------
def remove_expired(db: Database, exports_root: Path, now: datetime) -> dict[str, int]:
    """Delete expired exports (file and row) and fail the jobs whose process died mid-way (and their partial
    files)."""
    stamp = iso(now)
    gone = store.expired(db.reader(), stamp)
    stalled = store.stalled(db.reader(), iso(now - STALL))
    for row in gone + stalled:
        for name in (f"{row['id']}.{ext}{part}" for ext in FILE_EXTENSIONS for part in ("", ".part")):
            _discard(exports_root / row["workspace_id"] / name)

    def write(conn: Any) -> None:
        store.delete(conn, [row["id"] for row in gone])
        for row in stalled:
            store.fail(conn, row["id"], "The export was interrupted (the server stopped); request it again.", stamp)

    db.write(write)
    return {"expired_exports": len(gone), "interrupted_exports": len(stalled)}
