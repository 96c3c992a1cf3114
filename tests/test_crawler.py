"""Crawling a real website served on 127.0.0.1, through the API, the in-process job consumer, the real embedder
and the SSRF guard (127.0.0.1 is reachable only because it is in CHATSUPPORT_OUTBOUND_ALLOWLIST).

The site has pages linked from the home page and listed only in the sitemap, a robots.txt that disallows one
folder, a canonical duplicate, a mirror with the same text, an excluded blog, an external link, a page over the
size limit, a redirect, a redirect loop and a broken link. No request ever leaves loopback: external and
private-address links are either out of scope or refused by the guard before it connects.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, error_code, login, open_client
from chatsupport.retrieval.embedder import DEFAULT_CACHE
from local_site import LocalSite, Page, html

URLS = "/api/v1/knowledge-base/urls"
SETTINGS = {"max_pages": 50, "max_depth": 3, "exclude_patterns": ["/blog/*"], "max_page_bytes": 200_000}

BILLING = html("Billing and invoices", """<nav><a href="/">Home</a></nav><main><h1>Billing and invoices</h1>
<p>Invoices are emailed on the first day of every month and can be downloaded as PDF from the account page.</p>
<h2>Refunds</h2><p>Refunds are paid back to the original card within fourteen days of a cancellation.</p></main>""")


def text_page(title: str, sentences: str, links: str = "") -> str:
    return html(title, f"<nav>{links}</nav><main><h1>{title}</h1><p>{sentences}</p></main>")


def build_site(site: LocalSite) -> None:
    u = site.url
    site.pages.update({
        "/robots.txt": Page(f"User-agent: *\nDisallow: /private/\nSitemap: {u}/sitemap.xml\n",
                            content_type="text/plain"),
        "/sitemap.xml": Page(sitemap(u, "/", "/docs/getting-started", "/docs/only-in-sitemap"),
                             content_type="application/xml"),
        "/": Page(text_page("Acme Help Center", "Welcome to the Acme help center. Find guides about accounts, billing "
                            "and getting started with the Acme scheduling product.", """
            <a href="/docs/getting-started">Start</a> <a href="/docs/billing">Billing</a>
            <a href="/private/secret">Staff</a> <a href="/docs/billing?utm_source=nav#top">Billing again</a>
            <a href="/docs/billing-copy">Billing (print)</a> <a href="/docs/mirror">Billing mirror</a>
            <a href="/blog/news">Blog</a> <a href="http://external.example/page">Partner</a>
            <a href="/docs/huge">Big</a> <a href="/old-faq">FAQ</a> <a href="/docs/loop">Loop</a>
            <a href="/docs/broken">Broken</a> <a href="mailto:help@acme.example">Mail</a>
            <a href="javascript:alert(1)">JS</a> <a href="#main">Skip</a>""")),
        "/docs/getting-started": Page(text_page("Getting started", "Create an account, invite your team and connect "
                                                "your calendar to start scheduling meetings with Acme.",
                                                '<a href="/">Home</a> <a href="/docs/advanced">Advanced</a>')),
        "/docs/advanced": Page(text_page("Advanced settings", "Administrators can configure single sign-on, audit "
                                         "retention and custom booking rules for every workspace.")),
        "/docs/only-in-sitemap": Page(text_page("Data export", "Every workspace can export its bookings as CSV "
                                                "from the reports page at any time.")),
        "/docs/billing": Page(BILLING, etag='"billing-v1"'),
        "/docs/billing-copy": Page(BILLING.replace("<head>", f'<head><link rel="canonical" href="{u}/docs/billing">')
                                   .replace("Refunds are", "Refunds, as printed, are")),
        "/docs/mirror": Page(BILLING),
        "/private/secret": Page(text_page("Staff only", "Internal runbook that must never be crawled.")),
        "/blog/news": Page(text_page("News", "Release notes for the spring edition of the product.")),
        "/docs/huge": Page(text_page("Huge", "word " * 60_000)),
        "/old-faq": Page(status=301, headers={"Location": "/docs/faq"}),
        "/docs/faq": Page(text_page("Frequently asked questions", "Can I change my plan later? Yes, upgrades and "
                                    "downgrades take effect at the next billing cycle.")),
        "/docs/loop": Page(status=302, headers={"Location": "/docs/loop-2"}),
        "/docs/loop-2": Page(status=302, headers={"Location": "/docs/loop"}),
    })


def sitemap(base: str, *paths: str) -> str:
    entries = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'


class Instance:
    def __init__(self, client: TestClient):
        self.client = client
        self.db = client.app.state.services.db
        add_user(client, "Acme", "owner@acme.example", "owner")
        add_user(client, "Acme", "viewer@acme.example", "viewer")
        self.owner = bearer(login(client, "owner@acme.example"))
        self.viewer = bearer(login(client, "viewer@acme.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Acme Bot"}, headers=self.owner).json()

    def add(self, url: str, **settings: Any) -> Any:
        return self.client.post(URLS, headers=self.owner, json={
            "chatbot_id": self.bot["id"], "url": url, "crawl_settings": {**SETTINGS, **settings}})

    def wait(self, source_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            source = self.client.get(f"{URLS}/{source_id}", headers=self.owner).json()
            if source["status"] in ("completed", "failed"):
                return source
            time.sleep(0.1)
        raise TimeoutError(f"crawl still {source['status']}: {source}")

    def pages(self, source_id: str) -> dict[str, dict[str, Any]]:
        body = self.client.get(f"{URLS}/{source_id}/pages?limit=200", headers=self.owner).json()
        return {p["url"]: p for p in body["data"]}

    def chunks(self, url: str) -> list[dict[str, Any]]:
        return self.db.query("SELECT c.rowid AS rowid, c.url, c.title, c.content FROM knowledge_chunks c"
                             " JOIN knowledge_documents d ON d.id = c.document_id WHERE d.source_url = ?"
                             " ORDER BY c.rowid", (url,))


def crawl_settings(data_dir: Path, **extra: str) -> Any:
    return account_settings(data_dir, RUN_WORKER="true", MODEL_CACHE_DIR=str(DEFAULT_CACHE), **extra)


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as server:
        build_site(server)
        yield server


@pytest.fixture
def acme(data_dir: Path) -> Iterator[Instance]:
    with open_client(crawl_settings(data_dir, OUTBOUND_ALLOWLIST="127.0.0.1")) as client:
        yield Instance(client)


def crawl(acme: Instance, site: LocalSite) -> dict[str, Any]:
    created = acme.add(f"{site.url}/")
    assert created.status_code == 201, created.text
    assert created.json()["status"] in ("pending", "crawling")
    return acme.wait(created.json()["id"])


def test_a_site_is_crawled_breadth_first_with_robots_sitemap_and_duplicates(acme: Instance,
                                                                           site: LocalSite) -> None:
    source = crawl(acme, site)
    u = site.url
    assert source["status"] == "completed", source
    pages = acme.pages(source["id"])
    state = {url.removeprefix(u): (p["status"], p["reason"]) for url, p in pages.items()}
    assert state == {
        "/": ("indexed", None), "/docs/getting-started": ("indexed", None),
        "/docs/only-in-sitemap": ("indexed", None), "/docs/billing": ("indexed", None),
        "/old-faq": ("indexed", None), "/docs/advanced": ("indexed", None),
        "/private/secret": ("skipped", "robots"), "/docs/billing-copy": ("skipped", "duplicate"),
        "/docs/mirror": ("skipped", "duplicate"), "/blog/news": ("skipped", "filtered"),
        "/docs/huge": ("failed", "too_large"), "/docs/loop": ("failed", "too_many_redirects"),
        "/docs/broken": ("failed", "http_404"),
    }
    assert (source["pages_found"], source["pages_processed"], source["pages_skipped"],
            source["pages_failed"]) == (13, 6, 4, 3)
    assert pages[f"{u}/docs/advanced"]["depth"] == 2 and pages[f"{u}/"]["depth"] == 0
    assert pages[f"{u}/old-faq"]["canonical_url"] == f"{u}/docs/faq"
    # robots-disallowed, filtered and external pages were never requested
    requested = site.paths()
    assert "/private/secret" not in requested and "/blog/news" not in requested
    assert requested[:2] == ["/robots.txt", "/sitemap.xml"] and requested.count("/docs/billing") == 1
    assert source["chunks_created"] == sum(p["chunk_count"] or 0 for p in pages.values()) > 0


def test_chunks_carry_the_page_url_and_title(acme: Instance, site: LocalSite) -> None:
    source = crawl(acme, site)
    billing = acme.chunks(f"{site.url}/docs/billing")
    assert billing and {c["url"] for c in billing} == {f"{site.url}/docs/billing"}
    assert {c["title"] for c in billing} == {"Billing and invoices"}
    assert any("fourteen days" in c["content"] for c in billing)
    assert not any("Home" == c["content"].strip() for c in billing)  # navigation is not main text
    faq = acme.chunks(f"{site.url}/docs/faq")  # indexed under the URL it redirected to
    assert faq and faq[0]["title"] == "Frequently asked questions"
    docs = acme.db.query("SELECT source_type, source_url, title FROM knowledge_documents")
    assert len(docs) == source["pages_processed"] and {d["source_type"] for d in docs} == {"url"}
    answer = acme.client.post("/api/v1/knowledge-base/test", headers=acme.owner, json={
        "chatbot_id": acme.bot["id"], "query": "when are refunds paid back", "top_k": 3}).json()
    assert answer["results"][0]["metadata"]["url"] == f"{site.url}/docs/billing"


def test_recrawl_keeps_unchanged_pages_and_removes_vanished_ones(acme: Instance, site: LocalSite) -> None:
    source = crawl(acme, site)
    u = site.url
    before = {path: [c["rowid"] for c in acme.chunks(u + path)] for path in ("/", "/docs/billing",
                                                                            "/docs/getting-started")}
    site.pages["/docs/getting-started"] = Page(text_page(
        "Getting started", "Create an account and connect your video conferencing tool before inviting guests.",
        '<a href="/">Home</a> <a href="/docs/advanced">Advanced</a>'))
    site.pages["/docs/advanced"] = Page(text_page("Gone", "gone"), status=410)
    site.pages["/sitemap.xml"] = Page(sitemap(u, "/", "/docs/getting-started"), content_type="application/xml")
    site.hits.clear()
    again = acme.client.post(f"{URLS}/{source['id']}/recrawl", headers=acme.owner)
    assert again.status_code == 202 and again.json()["crawl_job_id"] != source["crawl_job_id"]
    after = acme.wait(source["id"])
    assert after["status"] == "completed"
    pages = acme.pages(source["id"])
    # unchanged: a 304 for the page with an ETag, the same text for the others; their chunks were not re-embedded
    assert pages[f"{u}/docs/billing"]["status"] == "unchanged" and pages[f"{u}/"]["status"] == "unchanged"
    assert [h.headers.get("if-none-match") for h in site.hits if h.path == "/docs/billing"] == ['"billing-v1"']
    assert [c["rowid"] for c in acme.chunks(f"{u}/")] == before["/"]
    assert [c["rowid"] for c in acme.chunks(f"{u}/docs/billing")] == before["/docs/billing"]
    changed = acme.chunks(f"{u}/docs/getting-started")
    assert pages[f"{u}/docs/getting-started"]["status"] == "indexed"
    assert set(before["/docs/getting-started"]).isdisjoint(c["rowid"] for c in changed)
    assert any("video conferencing" in c["content"] for c in changed)
    # vanished: 410 → its document goes; no longer listed or linked → the page goes too
    assert pages[f"{u}/docs/advanced"]["status"] == "failed" and pages[f"{u}/docs/advanced"]["document_id"] is None
    assert acme.chunks(f"{u}/docs/advanced") == [] and acme.chunks(f"{u}/docs/only-in-sitemap") == []
    assert f"{u}/docs/only-in-sitemap" not in pages
    assert after["pages_processed"] == 4 and after["pages_failed"] == 4


def test_scheduled_recrawl_runs_from_the_periodic_job(acme: Instance, site: LocalSite) -> None:
    from chatsupport.tasks.crawl import start_scheduled_crawls

    created = acme.client.post(URLS, headers=acme.owner, json={
        "chatbot_id": acme.bot["id"], "url": f"{site.url}/docs/faq", "crawl_settings": {"max_depth": 0},
        "schedule": {"enabled": True, "frequency": "weekly", "day_of_week": "monday", "time": "02:00"}})
    assert created.status_code == 201, created.text
    first = acme.wait(created.json()["id"])
    assert first["schedule"]["frequency"] == "weekly" and first["next_crawl_at"] > first["last_crawl_at"]
    acme.db.execute_write("UPDATE knowledge_urls SET next_crawl_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
                          (first["id"],))
    assert start_scheduled_crawls() == 1
    second = acme.wait(first["id"])
    assert second["crawl_job_id"] != first["crawl_job_id"] and second["last_crawl_at"] > first["last_crawl_at"]
    assert second["pages_processed"] == 1 and second["next_crawl_at"] > second["last_crawl_at"]


def test_a_crawl_killed_half_way_resumes_where_it_stopped(acme: Instance, site: LocalSite) -> None:
    """What a dead worker leaves: a run marked crawling, its start page done, the rest of its frontier queued."""
    from chatsupport.tasks.crawl import start_scheduled_crawls

    source = crawl(acme, site)
    sid = source["id"]
    acme.db.execute_write(
        "UPDATE knowledge_urls SET status = 'crawling', crawl_id = 'run-2', heartbeat_at = '2000-01-01T00:00:00.000Z',"
        " crawl_started_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
        (sid,))
    acme.db.execute_write("UPDATE knowledge_url_pages SET crawl_id = 'run-2', fetched_at = NULL,"
                          " status = CASE WHEN url = ? THEN 'indexed' WHEN reason IN ('robots', 'filtered') THEN status"
                          " ELSE 'queued' END WHERE source_id = ?",
                          (f"{site.url}/", sid))
    site.hits.clear()
    assert start_scheduled_crawls() == 1
    resumed = acme.wait(sid)
    assert resumed["status"] == "completed" and resumed["crawl_job_id"] == "run-2"
    assert (resumed["pages_found"], resumed["pages_processed"], resumed["pages_skipped"],
            resumed["pages_failed"]) == (13, 6, 4, 3)
    assert "/" not in site.paths() and "/sitemap.xml" not in site.paths()
    assert acme.db.query_one("SELECT count(*) AS n FROM knowledge_documents")["n"] == 6  # nothing duplicated


def test_delete_removes_pages_documents_chunks_vectors_and_text_index(acme: Instance, site: LocalSite) -> None:
    source = crawl(acme, site)
    assert acme.db.query_one("SELECT count(*) AS n FROM knowledge_chunks")["n"] > 0
    assert acme.client.delete(f"{URLS}/{source['id']}", headers=acme.viewer).status_code == 403
    assert acme.client.delete(f"{URLS}/{source['id']}", headers=acme.owner).status_code == 204
    for table in ("knowledge_chunks", "knowledge_chunk_vectors", "knowledge_chunk_bits", "knowledge_chunks_fts_docsize",
                  "knowledge_documents", "knowledge_url_pages", "knowledge_urls"):
        assert acme.db.query_one(f"SELECT count(*) AS n FROM {table}")["n"] == 0, table
    assert acme.client.get(f"{URLS}/{source['id']}", headers=acme.owner).status_code == 404


def test_a_failed_crawl_says_why_and_can_be_retried(acme: Instance, site: LocalSite) -> None:
    created = acme.add(f"{site.url}/not-yet", max_depth=0)
    failed = acme.wait(created.json()["id"])
    assert failed["status"] == "failed" and failed["error_code"] == "http_404" and failed["error_message"]
    assert acme.client.post(f"{URLS}/{failed['id']}/recrawl", headers=acme.viewer).status_code == 403
    site.pages["/not-yet"] = Page(text_page("Now here", "This page was published after the first crawl failed."))
    retried = acme.client.post(f"{URLS}/{failed['id']}/retry", headers=acme.owner)
    assert retried.status_code == 202
    done = acme.wait(failed["id"])
    assert done["status"] == "completed" and done["error_code"] is None and done["pages_processed"] == 1
    conflict = acme.client.post(f"{URLS}/{failed['id']}/retry", headers=acme.owner)
    assert conflict.status_code == 409 and error_code(conflict) == "conflict"


def test_private_address_links_are_refused_by_the_guard(acme: Instance) -> None:
    """Even when external links are followed, the guard refuses private and metadata addresses before connecting."""
    with LocalSite() as partners:  # no robots.txt, no sitemap: just this page and its two links
        partners.pages["/partners"] = Page(text_page(
            "Partners", "Our partners integrate with the Acme scheduling API.",
            '<a href="http://10.0.0.5/admin">Intranet</a> <a href="http://169.254.169.254/latest/meta-data/">Cloud</a>'))
        created = acme.add(f"{partners.url}/partners", follow_external_links=True, max_depth=1)
        source = acme.wait(created.json()["id"])
    pages = acme.pages(source["id"])
    assert source["status"] == "completed" and source["pages_failed"] == 2
    assert {pages[u]["reason"] for u in ("http://10.0.0.5/admin", "http://169.254.169.254/latest/meta-data/")} == {
        "url_not_allowed"}


def test_without_the_allow_list_loopback_is_refused(data_dir: Path, site: LocalSite) -> None:
    with open_client(crawl_settings(data_dir)) as client:
        acme = Instance(client)
        for url in (f"{site.url}/", f"http://localhost:{site.port}/", f"http://2130706433:{site.port}/",
                    "http://169.254.169.254/latest/meta-data/", "http://[::1]/"):
            refused = acme.add(url)
            assert refused.status_code == 422, (url, refused.text)
            assert error_code(refused) == "url_not_allowed"
        bad = acme.add("ftp://example.com/")
        assert bad.status_code == 422 and error_code(bad) == "validation_error"
    assert site.hits == []


def test_viewers_read_but_cannot_add_sites(acme: Instance, site: LocalSite) -> None:
    denied = acme.client.post(URLS, headers=acme.viewer, json={"chatbot_id": acme.bot["id"], "url": site.url})
    assert denied.status_code == 403
    source = crawl(acme, site)
    listed = acme.client.get(f"{URLS}?chatbot_id={acme.bot['id']}", headers=acme.viewer).json()
    assert [s["id"] for s in listed["data"]] == [source["id"]]
    assert acme.client.get(f"{URLS}/{source['id']}/pages", headers=acme.viewer).status_code == 200
    invalid = acme.client.post(URLS, headers=acme.owner, json={
        "chatbot_id": acme.bot["id"], "url": site.url, "crawl_settings": {"max_pages": 0}})
    assert invalid.status_code == 400 or invalid.status_code == 422


def test_max_pages_bounds_the_fetches(acme: Instance, site: LocalSite) -> None:
    created = acme.add(f"{site.url}/", max_pages=3)
    source = acme.wait(created.json()["id"])
    pages = acme.pages(source["id"])
    fetched = [p for p in pages.values() if p["fetched_at"]]
    assert source["status"] == "completed" and len(fetched) == 3
    assert "queued" not in {p["status"] for p in pages.values()}  # what was left in the frontier is dropped
    assert source["pages_found"] == len(pages) and source["pages_processed"] == 3
