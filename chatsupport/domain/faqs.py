"""FAQs (PRD §5.4.3): an owner's own answers, indexed as first-class retrieval items.

Each active FAQ is one or more chunks (title = the question, content = the answer) tied to it by ``faq_id``, so
search returns it as ``source_type: faq``. Single FAQs are embedded in the request (one short text, off the
event loop); a CSV import stores the rows at once and leaves the embedding to a background job.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any, Callable, Sequence

import apsw

from chatsupport.domain.audit import Actor, pagination, record
from chatsupport.domain.auth import Context
from chatsupport.domain.knowledge import require_chatbot
from chatsupport.errors import AppError
from chatsupport.ingest import pipeline
from chatsupport.ingest.extract import decode_text
from chatsupport.store import knowledge as store
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database, Row

PRIORITIES = ("high", "medium", "low")
STATUSES = ("active", "inactive", "draft")
LIMITS = {"question": 500, "answer": 10_000, "category": 100}
MAX_TAGS = 20
DUPLICATE = "Duplicate question found"
# One import is one transaction and one report: a knowledge base's FAQs, not a data dump (a 5 MB CSV of tiny
# rows would otherwise hold a million rows, their report and their embedding job in memory at once).
MAX_IMPORT_ROWS = 5000


def present(faq: Row) -> dict[str, Any]:
    return {"id": faq["id"], "chatbot_id": faq["chatbot_id"], "question": faq["question"], "answer": faq["answer"],
            "category": faq["category"], "tags": faq["tags"], "priority": faq["priority"], "status": faq["status"],
            "metadata": faq["metadata"], "embedding_generated": bool(faq["embedding_generated"]),
            "usage_count": faq["usage_count"], "created_at": faq["created_at"], "updated_at": faq["updated_at"]}


def _problems(fields: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for name in ("question", "answer"):
        if not isinstance(fields.get(name), str) or not fields[name].strip():
            out.append({"field": name, "message": "Required."})
    for name, limit in LIMITS.items():
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            out.append({"field": name, "message": f"At most {limit} characters."})
    tags = fields.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) and len(t) <= 50
                                                                     for t in tags):
        out.append({"field": "tags", "message": f"A list of at most {MAX_TAGS} short strings."})
    if fields.get("priority", "medium") not in PRIORITIES:
        out.append({"field": "priority", "message": f"One of {', '.join(PRIORITIES)}."})
    if fields.get("status", "active") not in STATUSES:
        out.append({"field": "status", "message": f"One of {', '.join(STATUSES)}."})
    if not isinstance(fields.get("metadata", {}), dict):
        out.append({"field": "metadata", "message": "Must be an object."})
    return out


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated, trimmed FAQ fields (defaults filled in); 422 with per-field details otherwise."""
    problems = _problems(fields)
    if problems:
        raise AppError("validation_error", details=problems)
    tags = [t.strip() for t in fields.get("tags", []) if t.strip()]
    return {"question": fields["question"].strip(), "answer": fields["answer"].strip(),
            "category": (fields.get("category") or "").strip() or None, "tags": list(dict.fromkeys(tags)),
            "priority": fields.get("priority", "medium"), "status": fields.get("status", "active"),
            "metadata": fields.get("metadata", {})}


# --- indexing -----------------------------------------------------------------------------------------------
def build_chunks(encoder: pipeline.Encoder, faqs: Sequence[Row]) -> list[tuple[str, list[dict[str, Any]], list[bytes]]]:
    """(faq id, chunk rows, vectors) for each active FAQ; inactive ones get none (they stop being found)."""
    chunker = pipeline.chunker_for(encoder)
    per_faq = [(faq, chunker.chunk(faq["answer"], title=faq["question"]) if faq["status"] == "active" else [])
               for faq in faqs]
    texts = [c.embed_text for _, chunks in per_faq for c in chunks]
    vectors = pipeline.embed(encoder, texts) if texts else []
    out, at = [], 0
    for faq, chunks in per_faq:
        out.append((faq["id"], pipeline.chunk_rows(chunks), vectors[at:at + len(chunks)]))
        at += len(chunks)
    return out


def _write_chunks(conn: apsw.Connection, chatbot_id: str, built: tuple[str, list[dict[str, Any]], list[bytes]]) -> None:
    faq_id, chunks, vectors = built
    index.replace_chunks(conn, chatbot_id, chunks, vectors, faq_id=faq_id)


def index_by_ids(db: Database, encoder: pipeline.Encoder, faq_ids: list[str], batch: int = 64) -> int:
    """Embed and index FAQs by id (a background job), one transaction per batch; returns how many."""
    done = 0
    for start in range(0, len(faq_ids), batch):
        rows = store.faqs_by_ids(db.reader(), faq_ids[start:start + batch])
        built = build_chunks(encoder, rows)
        bots = {row["id"]: row["chatbot_id"] for row in rows}

        def write(conn: apsw.Connection) -> None:
            live = {r["id"] for r in store.faqs_by_ids(conn, bots)}  # deleted meanwhile: skip
            for item in built:
                if item[0] in live:
                    _write_chunks(conn, bots[item[0]], item)

        db.write(write)
        done += len(rows)
    return done


# --- CRUD ---------------------------------------------------------------------------------------------------
def _require(conn: apsw.Connection, actor: Actor, faq_id: str) -> Row:
    faq = store.get_faq(conn, actor.workspace_id, faq_id)
    if faq is None:
        raise AppError("not_found", "No such FAQ.")
    return faq


def _check_duplicate(conn: apsw.Connection, chatbot_id: str, question: str, except_id: str | None = None) -> None:
    other = store.faq_questions(conn, chatbot_id).get(store.normalise_question(question))
    if other is not None and other != except_id:
        raise AppError("already_exists", "An FAQ with this question already exists.",
                       details=[{"field": "question", "message": DUPLICATE, "faq_id": other}])


def create(ctx: Context, actor: Actor, encoder: pipeline.Encoder, chatbot_id: str, fields: dict[str, Any],
           also: Callable[[apsw.Connection, str], None] | None = None) -> dict[str, Any]:
    """``also``: more writes for the same transaction, given the new FAQ's id (a reviewed answer links to it)."""
    faq = {"id": str(uuid.uuid4()), "chatbot_id": chatbot_id, "created_by": actor.user_id, **normalise(fields)}
    require_chatbot(ctx.db.reader(), actor, chatbot_id, writable=True)
    built = build_chunks(encoder, [faq])[0]

    def write(conn: apsw.Connection) -> Row:
        require_chatbot(conn, actor, chatbot_id, writable=True)
        _check_duplicate(conn, chatbot_id, faq["question"])
        store.insert_faq(conn, faq)
        _write_chunks(conn, chatbot_id, built)
        record(conn, "knowledge.faq_created", actor=actor, resource_type="knowledge_faq", resource_id=faq["id"])
        if also is not None:
            also(conn, faq["id"])
        return store.get_faq(conn, actor.workspace_id, faq["id"])  # type: ignore[return-value]

    return present(ctx.db.write(write))


def get(ctx: Context, actor: Actor, faq_id: str) -> dict[str, Any]:
    return present(_require(ctx.db.reader(), actor, faq_id))


def search(ctx: Context, actor: Actor, chatbot_id: str, page: int = 1, limit: int = 50) -> dict[str, Any]:
    conn = ctx.db.reader()
    require_chatbot(conn, actor, chatbot_id)
    rows, total = store.list_faqs(conn, actor.workspace_id, chatbot_id, limit, (page - 1) * limit)
    return {"data": [present(r) for r in rows], "pagination": pagination(page, limit, total)}


def update(ctx: Context, actor: Actor, encoder: pipeline.Encoder, faq_id: str,
           changes: dict[str, Any]) -> dict[str, Any]:
    """Partial update; the FAQ is re-embedded in the same transaction that saves the new text."""
    before = _require(ctx.db.reader(), actor, faq_id)
    keep = ("question", "answer", "category", "tags", "priority", "status", "metadata")
    after = {**{k: before[k] for k in keep}, **{k: v for k, v in changes.items() if k in keep}}
    after = {"id": faq_id, "chatbot_id": before["chatbot_id"], **normalise(after)}
    built = build_chunks(encoder, [after])[0]

    def write(conn: apsw.Connection) -> Row:
        current = _require(conn, actor, faq_id)
        _check_duplicate(conn, current["chatbot_id"], after["question"], except_id=faq_id)
        store.update_faq(conn, after)
        _write_chunks(conn, current["chatbot_id"], built)
        record(conn, "knowledge.faq_updated", actor=actor, resource_type="knowledge_faq", resource_id=faq_id)
        return store.get_faq(conn, actor.workspace_id, faq_id)  # type: ignore[return-value]

    return present(ctx.db.write(write))


def delete(ctx: Context, actor: Actor, faq_id: str) -> None:
    def write(conn: apsw.Connection) -> None:
        faq = _require(conn, actor, faq_id)
        store.delete_faq(conn, faq["id"])
        record(conn, "knowledge.faq_deleted", actor=actor, resource_type="knowledge_faq", resource_id=faq["id"])

    ctx.db.write(write)


# --- CSV import ---------------------------------------------------------------------------------------------
def _parse_csv(data: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[dict[str, Any]]]:
    """(spreadsheet row number, fields) per data row — the header is row 1 — and file-level errors."""
    text = decode_text(data)
    if text is None:
        raise AppError("unsupported_type", "The CSV file is not readable text.")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [name for name in ("question", "answer") if name not in header]
    if missing:
        raise AppError("validation_error", "The CSV needs a header row with question and answer columns.",
                       details=[{"field": "file", "message": f"Missing column(s): {', '.join(missing)}."}])
    reader.fieldnames = header
    rows = []
    for row in reader:
        if len(rows) == MAX_IMPORT_ROWS:
            raise AppError("validation_error", f"The CSV has more than {MAX_IMPORT_ROWS:,} rows; split it into "
                           "several files.", details=[{"field": "file", "message": f"More than {MAX_IMPORT_ROWS:,} "
                                                                                   "rows."}])
        rows.append((reader.line_num, {k: (v or "") for k, v in row.items() if k}))
    return rows, []


def _row_fields(raw: dict[str, str]) -> dict[str, Any]:
    tags = [t.strip() for t in (raw.get("tags") or "").replace(";", ",").split(",") if t.strip()]
    return {"question": raw.get("question", ""), "answer": raw.get("answer", ""),
            "category": raw.get("category") or None, "tags": tags}


def import_csv(ctx: Context, actor: Actor, chatbot_id: str, data: bytes,
               overwrite: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Store every valid row (one transaction); returns the PRD report and the FAQ ids to index."""
    rows, errors = _parse_csv(data)

    def write(conn: apsw.Connection) -> tuple[int, int, list[str]]:
        require_chatbot(conn, actor, chatbot_id, writable=True)
        existing = store.faq_questions(conn, chatbot_id)
        imported, skipped, ids = 0, 0, []
        for row_number, raw in rows:
            outcome = _import_row(conn, actor, chatbot_id, existing, raw, overwrite)
            if isinstance(outcome, str) and outcome.startswith("error:"):
                errors.append({"row": row_number, "error": outcome[6:]})
                skipped += 1
            else:
                imported += 1
                ids.append(outcome)
        record(conn, "knowledge.faqs_imported", actor=actor, resource_type="chatbot", resource_id=chatbot_id,
               metadata={"imported": imported, "skipped": skipped})
        return imported, skipped, ids

    imported, skipped, ids = ctx.db.write(write)
    return {"imported": imported, "skipped": skipped, "errors": errors}, ids


def _import_row(conn: apsw.Connection, actor: Actor, chatbot_id: str, existing: dict[str, str],
                raw: dict[str, str], overwrite: bool) -> str:
    """The FAQ id stored, or ``error:<why>``."""
    try:
        fields = normalise(_row_fields(raw))
    except AppError as exc:
        return "error:" + "; ".join(f"{d['field']}: {d['message']}" for d in exc.details)
    key = store.normalise_question(fields["question"])
    if key in existing and not overwrite:
        return "error:" + DUPLICATE
    if key in existing:
        store.update_faq(conn, {"id": existing[key], "chatbot_id": chatbot_id, **fields})
        return existing[key]
    faq = {"id": str(uuid.uuid4()), "chatbot_id": chatbot_id, "created_by": actor.user_id, **fields}
    store.insert_faq(conn, faq)
    existing[key] = faq["id"]
    return faq["id"]
