"""Website sources (PRD §5.4.2): add a site with its crawl settings, see its status and pages, re-crawl, retry,
delete; and the schedule that re-crawls them.

Each crawl run has a ``crawl_id``; the job that carries it does nothing unless it is still the source's current
run, so a duplicate or stale job is harmless. The web layer enqueues the job after these functions commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import apsw
import msgspec
from msgspec import Meta, Struct

from chatsupport.domain.audit import Actor, pagination, record
from chatsupport.domain.auth import Context
from chatsupport.domain.knowledge import require_chatbot
from chatsupport.errors import AppError
from chatsupport.ingest.crawler import normalize_url, site_of
from chatsupport.net.errors import OutboundRefused
from chatsupport.net.outbound import DEFAULT_MAX_BYTES, OutboundClient
from chatsupport.store import knowledge_urls as store
from chatsupport.store.db import Database, Row
from chatsupport.store.instance_state import utc_now

Frequency = Literal["daily", "weekly", "monthly", "none"]
Pattern = Annotated[str, Meta(min_length=1, max_length=300)]
INTERVALS = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=30)}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PAGE_STATUSES = ("queued", "indexed", "unchanged", "skipped", "failed")


class Schedule(Struct, forbid_unknown_fields=True):
    """PRD shape: ``{"enabled", "frequency", "day_of_week", "time"}`` (UTC); ``frequency`` alone also works."""

    frequency: Frequency = "none"
    enabled: bool = True
    day_of_week: Literal[WEEKDAYS] | None = None  # type: ignore[valid-type]
    time: Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None


class CrawlSettings(Struct, forbid_unknown_fields=True):
    max_pages: Annotated[int, Meta(ge=1, le=5000)] = 50
    max_depth: Annotated[int, Meta(ge=0, le=20)] = 3
    include_patterns: Annotated[list[Pattern], Meta(max_length=50)] = []
    exclude_patterns: Annotated[list[Pattern], Meta(max_length=50)] = []
    follow_external_links: bool = False
    respect_robots_txt: bool = True
    # None: 0.25 s, or none at all for hosts in CHATSUPPORT_OUTBOUND_ALLOWLIST (your own servers)
    delay_seconds: Annotated[float, Meta(ge=0, le=60)] | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    max_page_bytes: Annotated[int, Meta(ge=1024, le=50 * 1024 * 1024)] = DEFAULT_MAX_BYTES
    schedule: Frequency | Schedule | None = None


class UrlSourceCreate(Struct, forbid_unknown_fields=True):
    chatbot_id: Annotated[str, Meta(max_length=100)]
    url: Annotated[str, Meta(min_length=1, max_length=2000)]
    crawl_settings: CrawlSettings = msgspec.field(default_factory=CrawlSettings)
    schedule: Frequency | Schedule | None = None


def _schedule(request: UrlSourceCreate) -> dict[str, Any]:
    given = request.schedule or request.crawl_settings.schedule or "none"
    plan = Schedule(frequency=given) if isinstance(given, str) else given
    frequency = plan.frequency if plan.enabled else "none"
    return {"frequency": frequency, "day_of_week": plan.day_of_week, "time": plan.time}


def next_run(schedule: dict[str, Any], after: datetime) -> str | None:
    """When the next scheduled crawl is due: ``after`` + the interval, moved to the asked weekday and time."""
    interval = INTERVALS.get(schedule.get("frequency") or "none")
    if interval is None:
        return None
    due = after + interval
    if schedule.get("time"):
        hour, minute = (int(x) for x in schedule["time"].split(":"))
        due = due.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if schedule.get("frequency") == "weekly" and schedule.get("day_of_week"):
        due += timedelta(days=(WEEKDAYS.index(schedule["day_of_week"]) - due.weekday()) % 7)
    if due <= after:
        due += interval
    return due.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def present(source: Row, chunks: int | None = None) -> dict[str, Any]:
    settings = dict(source["settings"])
    schedule = settings.pop("schedule", {"frequency": "none"})
    body = {"id": source["id"], "chatbot_id": source["chatbot_id"], "url": source["url"], "domain": source["domain"],
            "status": source["status"], "crawl_job_id": source["crawl_id"], "crawl_settings": settings,
            "schedule": {**schedule, "enabled": schedule.get("frequency", "none") != "none"}}
    body.update({k: source[k] for k in ("pages_found", "pages_processed", "pages_skipped", "pages_failed",
                                        "error_code", "error_message", "last_crawl_at", "next_crawl_at",
                                        "created_at", "updated_at")})
    if chunks is not None:
        body["chunks_created"] = chunks
    return body


def check_start_url(ctx: Context, url: str) -> str:
    """A normalised http(s) URL whose host is not refused outright (addresses, localhost). Names are judged again
    after DNS by the crawl itself, on every request."""
    normalized = normalize_url(url)
    if normalized is None:
        raise AppError("validation_error", details=[{"field": "url", "message": "An http:// or https:// URL."}])
    try:
        OutboundClient(ctx.settings.OUTBOUND_ALLOWLIST).check_url(normalized)
    except OutboundRefused as exc:
        raise AppError("url_not_allowed", details=[{"field": "url", "message": str(exc)}]) from None
    return normalized


def create(ctx: Context, actor: Actor, request: UrlSourceCreate) -> dict[str, Any]:
    url = check_start_url(ctx, request.url)
    settings = msgspec.to_builtins(request.crawl_settings)
    settings["schedule"] = _schedule(request)
    now = utc_now()
    source = {"id": str(uuid.uuid4()), "chatbot_id": request.chatbot_id, "url": url, "domain": site_of(url),
              "settings": settings, "crawl_id": str(uuid.uuid4()), "next_crawl_at": None,
              "created_by": actor.user_id, "created_at": now}

    def write(conn: apsw.Connection) -> Row:
        require_chatbot(conn, actor, request.chatbot_id, writable=True)
        store.insert_source(conn, source)
        record(conn, "knowledge.url_added", actor=actor, resource_type="knowledge_url", resource_id=source["id"],
               changes={"after": {"url": url}})
        return store.source_by_id(conn, source["id"])  # type: ignore[return-value]

    return present(ctx.db.write(write))


def _require(conn: apsw.Connection, actor: Actor, source_id: str) -> Row:
    source = store.get_source(conn, actor.workspace_id, source_id)
    if source is None:
        raise AppError("not_found", "No such URL source.")
    return source


def get(ctx: Context, actor: Actor, source_id: str) -> dict[str, Any]:
    conn = ctx.db.reader()
    source = _require(conn, actor, source_id)
    return present(source, store.chunk_total(conn, source_id))


def search(ctx: Context, actor: Actor, chatbot_id: str | None, page: int, limit: int) -> dict[str, Any]:
    conn = ctx.db.reader()
    if chatbot_id:
        require_chatbot(conn, actor, chatbot_id)
    rows, total = store.list_sources(conn, actor.workspace_id, chatbot_id, limit, (page - 1) * limit)
    return {"data": [present(r) for r in rows], "pagination": pagination(page, limit, total)}


def pages(ctx: Context, actor: Actor, source_id: str, status: str | None, page: int, limit: int) -> dict[str, Any]:
    """The pages the latest crawl reached, in crawl order, with why a page was skipped or failed."""
    if status is not None and status not in PAGE_STATUSES:
        raise AppError("validation_error", details=[{"field": "status", "message": f"One of {PAGE_STATUSES}."}])
    conn = ctx.db.reader()
    source = _require(conn, actor, source_id)
    rows, total = store.list_pages(conn, source_id, source["crawl_id"], status, limit, (page - 1) * limit)
    keep = ("id", "url", "canonical_url", "depth", "status", "reason", "http_status", "title", "document_id",
            "chunk_count", "error_message", "fetched_at")
    return {"data": [{k: r[k] for k in keep} for r in rows], "pagination": pagination(page, limit, total)}


def begin_crawl(conn: apsw.Connection, source_id: str) -> str:
    """A new run: fresh counters and crawl id. Page rows stay: their ETags and hashes make re-crawls cheap."""
    crawl_id = str(uuid.uuid4())
    store.update_source(conn, source_id, status="pending", crawl_id=crawl_id, pages_found=0, pages_processed=0,
                        pages_skipped=0, pages_failed=0, error_code=None, error_message=None, resume_count=0,
                        heartbeat_at=None, crawl_started_at=None)
    return crawl_id


def recrawl(ctx: Context, actor: Actor, source_id: str, only_failed: bool = False) -> tuple[dict[str, Any], bool]:
    """(source, whether a job must be queued). A crawl already under way is left alone."""
    def write(conn: apsw.Connection) -> tuple[Row, bool]:
        source = _require(conn, actor, source_id)
        require_chatbot(conn, actor, source["chatbot_id"], writable=True)
        if only_failed and source["status"] != "failed":
            raise AppError("conflict", "Only a failed crawl can be retried; use recrawl to crawl again.")
        if source["status"] in ("pending", "crawling"):
            return source, False
        begin_crawl(conn, source_id)
        record(conn, "knowledge.url_retried" if only_failed else "knowledge.url_recrawled", actor=actor,
               resource_type="knowledge_url", resource_id=source_id)
        return store.source_by_id(conn, source_id), True  # type: ignore[return-value]

    source, queued = ctx.db.write(write)
    return present(source), queued


def delete(ctx: Context, actor: Actor, source_id: str) -> None:
    """The source, its pages and their documents, chunks, vectors and text-index rows, in one transaction. A crawl
    still running notices at its next page (its crawl id is gone) and stops without writing."""
    def write(conn: apsw.Connection) -> None:
        source = _require(conn, actor, source_id)
        removed = store.delete_source(conn, source_id)
        record(conn, "knowledge.url_deleted", actor=actor, resource_type="knowledge_url", resource_id=source_id,
               changes={"before": {"url": source["url"]}}, metadata={"documents_removed": removed})

    ctx.db.write(write)


# --- schedule and recovery (background) ---------------------------------------------------------------------------
def start_due(db: Database, now: datetime | None = None) -> list[tuple[str, str]]:
    """Scheduled re-crawls whose time has come: (source id, crawl id) of each run started."""
    moment = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def write(conn: apsw.Connection) -> list[tuple[str, str]]:
        return [(s["id"], begin_crawl(conn, s["id"])) for s in store.sources_due(conn, moment)]

    return db.write(write)
