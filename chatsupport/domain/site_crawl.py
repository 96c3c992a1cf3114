"""One crawl run of a website source: breadth-first over its page rows, one transaction per page.

The frontier lives in ``knowledge_url_pages`` (``queued`` rows of the run's ``crawl_id``, by depth then discovery
order), so a run killed half-way is resumed by queueing the same crawl id again: pages already written are not
``queued`` any more. Each page is examined without holding the writer (fetch, parse, extract, chunk, embed) and
then written in one transaction that first checks the run is still current; a deleted or restarted source makes
the old job stop without writing. Unchanged pages (304, or the same text under the same canonical URL) keep their
chunks — nothing is re-embedded. Pages the run no longer reaches, and pages that answer 404/410, are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import apsw

from chatsupport.domain.sites import next_run
from chatsupport.ingest import crawler
from chatsupport.ingest.pipeline import chunk_rows, chunker_for, embed
from chatsupport.net.errors import OutboundError, OutboundRefused
from chatsupport.net.outbound import OutboundClient, OutboundResponse
from chatsupport.retrieval.indexing import check_model
from chatsupport.store import knowledge_index
from chatsupport.store import knowledge_urls as store
from chatsupport.store.db import Database, Row
from chatsupport.store.instance_state import utc_now

log = logging.getLogger(__name__)

DEFAULT_DELAY = 0.25
STALL_AFTER = timedelta(minutes=3)
MAX_RESUMES = 3
GONE = (404, 410)
SEED_ERRORS = {"robots": ("robots_disallowed", "robots.txt does not allow crawling the start page."),
               "filtered": ("no_pages", "The start page and everything it links to were filtered out."),
               "noindex": ("no_pages", "The start page asks not to be indexed (meta robots noindex)."),
               "no_text": ("no_pages", "No readable text was found on the start page."),
               "not_html": ("no_pages", "The start page is not an HTML page.")}

_running: set[str] = set()
_running_lock = threading.Lock()


class Cancelled(Exception):
    """This run is no longer the source's current one (re-crawled or deleted meanwhile)."""


@dataclass
class Outcome:
    """What examining one page decided; written in one transaction by ``_commit``."""

    status: str
    reason: str | None = None
    message: str | None = None
    fetched: bool = True
    drop_document: bool = False
    links: list[str] = field(default_factory=list)
    page: dict[str, Any] = field(default_factory=dict)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    vectors: list[bytes] = field(default_factory=list)
    document: dict[str, Any] | None = None


def now_iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def run(db: Database, embedder: Any, allowlist: tuple[str, ...], source_id: str, crawl_id: str) -> str:
    """Run (or resume) one crawl; returns the source's final status, or why nothing was done."""
    with _running_lock:
        if source_id in _running:
            return "busy"
        _running.add(source_id)
    try:
        source = store.source_by_id(db.reader(), source_id)
        if source is None or source["crawl_id"] != crawl_id or source["status"] not in ("pending", "crawling"):
            return "stale"
        settings = source["settings"]
        with OutboundClient(allowlist, timeout=settings["timeout_seconds"],
                            max_bytes=settings["max_page_bytes"]) as client:
            return CrawlRun(db, embedder, client, source).run()
    except Cancelled:
        return "cancelled"
    except Exception:  # noqa: BLE001 - the owner sees a retryable failure; the log has the details
        log.exception("crawl %s of source %s failed", crawl_id, source_id)
        _fail(db, source_id, crawl_id, "crawl_failed", "The crawl stopped because of an internal error. Retry it.")
        return "failed"
    finally:
        with _running_lock:
            _running.discard(source_id)


def _fail(db: Database, source_id: str, crawl_id: str, code: str, message: str) -> None:
    def write(conn: apsw.Connection) -> None:
        source = store.source_by_id(conn, source_id)
        if source is not None and source["crawl_id"] == crawl_id:
            store.update_source(conn, source_id, status="failed", error_code=code, error_message=message)

    db.write(write)


class CrawlRun:
    def __init__(self, db: Database, embedder: Any, client: OutboundClient, source: Row):
        self.db, self.embedder, self.client, self.source = db, embedder, client, source
        self.id, self.crawl_id, self.settings = source["id"], source["crawl_id"], source["settings"]
        self.scope = crawler.Scope(source["url"], tuple(self.settings["include_patterns"]),
                                   tuple(self.settings["exclude_patterns"]), self.settings["follow_external_links"])
        self.robots = crawler.Robots(self.client.get, self.settings["respect_robots_txt"])
        self.politeness = crawler.Politeness(self._delay)
        self.cap = self.settings["max_pages"] * 10 + 100  # rows per run: a page with 10k links cannot flood it

    def run(self) -> str:
        self._write(self._started)
        if store.crawl_size(self.db.reader(), self.id, self.crawl_id) == 0:
            self._seed()
        while store.fetched_count(self.db.reader(), self.id, self.crawl_id) < self.settings["max_pages"]:
            page = store.next_queued(self.db.reader(), self.id, self.crawl_id)
            if page is None:
                break
            self._commit(page, self._examine(page))
        return self._write(self._finish)

    # --- transactions -----------------------------------------------------------------------------------------
    def _write(self, fn: Any) -> Any:
        def guarded(conn: apsw.Connection) -> Any:
            source = store.source_by_id(conn, self.id)
            if source is None or source["crawl_id"] != self.crawl_id:
                raise Cancelled()
            return fn(conn)

        return self.db.write(guarded)

    def _started(self, conn: apsw.Connection) -> None:
        started = store.source_by_id(conn, self.id)["crawl_started_at"] or utc_now()  # type: ignore[index]
        store.update_source(conn, self.id, status="crawling", crawl_started_at=started, heartbeat_at=utc_now())

    def _progress(self, conn: apsw.Connection) -> dict[str, int]:
        counts = store.counts(conn, self.id, self.crawl_id)
        totals = {"pages_found": sum(counts.values()),
                  "pages_processed": counts.get("indexed", 0) + counts.get("unchanged", 0),
                  "pages_skipped": counts.get("skipped", 0), "pages_failed": counts.get("failed", 0)}
        store.update_source(conn, self.id, heartbeat_at=utc_now(), **totals)
        return totals

    def _seed(self) -> None:
        """The start page at depth 0 and the sitemap's pages at depth 1, in one transaction."""
        seed = self.source["url"]
        listed: list[str] = []
        if self.settings["max_depth"] >= 1:
            try:
                sitemaps = self.robots.sitemaps(seed) or [crawler.origin_of(seed) + "/sitemap.xml"]
                listed = crawler.sitemap_urls(self.client.get, sitemaps, self.cap)
            except OutboundRefused:
                listed = []  # the start page itself will fail with the reason
        entries = [(seed, "queued", None)] + self._classify(listed)

        def write(conn: apsw.Connection) -> None:
            for url, status, reason in entries:
                store.discover(conn, self.id, self.crawl_id, url, 0 if url == seed else 1, status, reason)
            self._progress(conn)

        self._write(write)

    def _classify(self, urls: list[str]) -> list[tuple[str, str, str | None]]:
        """(url, status, reason) for newly found URLs in scope: queued, or skipped by a filter or robots.txt."""
        found: list[tuple[str, str, str | None]] = []
        for raw in urls:
            url = crawler.normalize_url(raw)
            if url is None or not self.scope.reachable(url):
                continue
            if self.scope.filtered(url):
                found.append((url, "skipped", "filtered"))
                continue
            try:
                allowed = self.robots.allowed(url)
            except OutboundRefused:
                allowed = True  # fetching it fails with the guard's reason, recorded on the page
            found.append((url, "queued", None) if allowed else (url, "skipped", "robots"))
        return found

    def _commit(self, page: Row, outcome: Outcome) -> None:
        depth = page["depth"] + 1
        links = self._classify(outcome.links) if depth <= self.settings["max_depth"] else []

        def write(conn: apsw.Connection) -> None:
            current = store.page(conn, page["id"])
            if current is None or current["crawl_id"] != self.crawl_id or current["status"] != "queued":
                return  # another job of this run got here first
            for url, status, reason in links:
                if store.crawl_size(conn, self.id, self.crawl_id) >= self.cap:
                    break
                store.discover(conn, self.id, self.crawl_id, url, depth, status, reason)
            fields = self._page_fields(conn, current, outcome)
            store.update_page(conn, page["id"], **fields)
            self._progress(conn)

        self._write(write)

    def _page_fields(self, conn: apsw.Connection, page: Row, outcome: Outcome) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": outcome.status, "reason": outcome.reason,
                                  "error_message": outcome.message, **outcome.page}
        if outcome.fetched:
            fields["fetched_at"] = utc_now()
        if outcome.links or outcome.status in ("indexed", "unchanged"):
            fields["links"] = json.dumps(outcome.links)
        if outcome.drop_document and page["document_id"]:
            store.delete_document(conn, page["document_id"])
            fields.update(document_id=None, content_hash=None, etag=None, last_modified=None)
        if outcome.document is not None:
            fields["document_id"] = self._save_document(conn, page, outcome)
        return fields

    def _save_document(self, conn: apsw.Connection, page: Row, outcome: Outcome) -> str:
        """The page's document and its chunks, vectors and FTS rows replaced together."""
        document_id = page["document_id"] or str(uuid.uuid4())
        store.save_document(conn, {**outcome.document, "id": document_id,  # type: ignore[dict-item]
                                   "chatbot_id": self.source["chatbot_id"]})
        check_model(conn, self.embedder.name, self.embedder.dimension)
        count = knowledge_index.replace_chunks(conn, self.source["chatbot_id"], outcome.chunks, outcome.vectors,
                                               document_id=document_id)
        knowledge_index.set_chunk_count(conn, document_id, count)
        return document_id

    def _finish(self, conn: apsw.Connection) -> str:
        seed = store.page_by_url(conn, self.id, self.source["url"])
        totals = self._progress(conn)
        now = datetime.now(timezone.utc)
        schedule = self.settings.get("schedule") or {}
        seed_failed = seed is not None and (seed["status"] == "failed" or (
            seed["status"] == "skipped" and totals["pages_processed"] == 0))
        if seed_failed:  # a wrong or unreachable start URL: say so rather than index whatever the sitemap lists
            reason = seed["reason"] or ""  # type: ignore[index]
            code, message = SEED_ERRORS.get(reason, (reason, seed["error_message"]))  # type: ignore[index]
            store.update_source(conn, self.id, status="failed", error_code=code or "fetch_failed",
                                error_message=message or "The start page could not be fetched.",
                                last_crawl_at=now_iso(now), next_crawl_at=next_run(schedule, now))
            return "failed"
        for row in store.leftovers(conn, self.id, self.crawl_id):
            store.delete_page(conn, row["id"])
        self._progress(conn)
        store.update_source(conn, self.id, status="completed", error_code=None, error_message=None,
                            last_crawl_at=now_iso(now), next_crawl_at=next_run(schedule, now))
        return "completed"

    # --- one page, without the writer ----------------------------------------------------------------------------
    def _examine(self, page: Row) -> Outcome:
        url = page["url"]
        reader = self.db.reader()
        if store.processed_twin(reader, self.id, self.crawl_id, page["id"], canonical_url=url):
            return Outcome("skipped", "duplicate", "Another URL of this site shows the same page.", fetched=False,
                           drop_document=True)
        try:
            if not self.robots.allowed(url):
                return Outcome("skipped", "robots", fetched=False, drop_document=True)
            self.politeness.wait(url)
            response = self.client.get(url, headers=self._conditional(page))
        except OutboundError as exc:
            return Outcome("failed", exc.code, str(exc))
        return self._judge(page, response)

    def _conditional(self, page: Row) -> dict[str, str]:
        """If-None-Match / If-Modified-Since for a page we hold: a 304 costs no download and no embedding."""
        if not page["document_id"]:
            return {}
        headers = {"If-None-Match": page["etag"]} if page["etag"] else {}
        if page["last_modified"]:
            headers["If-Modified-Since"] = page["last_modified"]
        return headers

    def _judge(self, page: Row, response: OutboundResponse) -> Outcome:
        validators = {"http_status": response.status, "etag": response.header("etag") or None,
                      "last_modified": response.header("last-modified") or None}
        if response.status == 304 and page["document_id"]:
            return Outcome("unchanged", links=json.loads(page["links"]), page={"http_status": 304})
        if response.status in GONE:
            return Outcome("failed", f"http_{response.status}", "The page no longer exists.", drop_document=True,
                           page=validators)
        if response.status != 200:
            return Outcome("failed", f"http_{response.status}", f"The server answered HTTP {response.status}.",
                           page=validators)
        final = crawler.normalize_url(response.url) or page["url"]
        if not self.scope.reachable(final):
            return Outcome("skipped", "offsite_redirect", f"Redirected off the site to {final}.",
                           drop_document=True, page=validators)
        if response.content_type not in crawler.HTML_TYPES:
            return Outcome("skipped", "not_html", f"Not an HTML page ({response.content_type or 'no type'}).",
                           drop_document=True, page=validators)
        return self._read(page, response, final, validators)

    def _read(self, page: Row, response: OutboundResponse, final: str, validators: dict[str, Any]) -> Outcome:
        html = crawler.decode_html(response)
        info = crawler.read_page(html, final)
        canonical = info.canonical if info.canonical and self.scope.reachable(info.canonical) else final
        links = [] if info.nofollow else info.links
        reader = self.db.reader()
        if canonical != page["url"] and store.processed_twin(reader, self.id, self.crawl_id, page["id"],
                                                             canonical_url=canonical):
            return Outcome("skipped", "duplicate", f"Same page as {canonical}.", drop_document=True,
                           page={**validators, "canonical_url": canonical})
        if info.noindex or (page["depth"] == 0 and self.scope.filtered(page["url"])):
            reason = "noindex" if info.noindex else "filtered"
            return Outcome("skipped", reason, links=links, drop_document=True, page=validators)
        title, text = crawler.extract_main_text(html, final, info.title)
        if not text:
            return Outcome("skipped", "no_text", "No readable text on the page.", links=links, drop_document=True,
                           page=validators)
        digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
        fields = {**validators, "canonical_url": canonical, "title": title, "content_hash": digest}
        twin = store.processed_twin(reader, self.id, self.crawl_id, page["id"], content_hash=digest)
        if twin is not None:
            return Outcome("skipped", "duplicate", f"Same content as {twin['url']}.", links=links,
                           drop_document=True, page={**validators, "canonical_url": canonical})
        if page["document_id"] and page["content_hash"] == digest and page["canonical_url"] == canonical:
            return Outcome("unchanged", links=links, page=fields)
        return self._index(title, text, canonical, len(response.content), links, fields)

    def _index(self, title: str, text: str, url: str, size: int, links: list[str],
               fields: dict[str, Any]) -> Outcome:
        """Chunk (each chunk keeps the page URL and title) and embed, before taking the writer."""
        chunks = chunker_for(self.embedder).chunk(text, title=title, url=url)
        if not chunks:
            return Outcome("skipped", "no_text", "No readable text on the page.", links=links, drop_document=True)
        vectors = embed(self.embedder, [c.embed_text for c in chunks])
        document = {"title": title, "source_url": url, "size": size, "content_hash": fields["content_hash"],
                    "text_length": len(text), "metadata": {"url_source_id": self.id}}
        return Outcome("indexed", links=links, page=fields, chunks=chunk_rows(chunks), vectors=vectors,
                       document=document)

    def _delay(self, url: str) -> float:
        configured = self.settings.get("delay_seconds")
        delay = configured if configured is not None else (0.0 if self.client.is_allowlisted(url) else DEFAULT_DELAY)
        try:
            return max(delay, self.robots.delay(url))
        except OutboundRefused:
            return delay


def resume_stalled(db: Database, now: datetime | None = None) -> list[tuple[str, str]]:
    """Crawls a dead worker left behind: queued again with the same crawl id (they resume where they stopped),
    or failed-for-retry after ``MAX_RESUMES`` interruptions. Runs of this process that are alive are skipped."""
    moment = now or datetime.now(timezone.utc)

    def write(conn: apsw.Connection) -> list[tuple[str, str]]:
        again = []
        for source in store.sources_stalled(conn, now_iso(moment - STALL_AFTER)):
            with _running_lock:
                if source["id"] in _running:
                    continue
            if source["status"] == "crawling" and source["resume_count"] >= MAX_RESUMES:
                store.update_source(conn, source["id"], status="failed", error_code="crawl_interrupted",
                                    error_message="The crawl was interrupted several times. Retry it.")
                continue
            resumes = source["resume_count"] + (1 if source["status"] == "crawling" else 0)
            store.update_source(conn, source["id"], resume_count=resumes, heartbeat_at=now_iso(moment))
            again.append((source["id"], source["crawl_id"]))
        return again

    return db.write(write)
