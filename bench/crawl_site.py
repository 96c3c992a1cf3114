"""Benchmark: a 200-page site crawled and indexed from a local server, end to end (target: under 2 minutes).

Usage: PYTHONPATH=. .venv/bin/python bench/crawl_site.py [--pages 200] [--corpus DIR] [--runs 1]

The site is ``tests/local_site.LocalSite`` on 127.0.0.1, reached through ``CHATSUPPORT_OUTBOUND_ALLOWLIST`` like
the crawler tests. Its pages are real help-center text: the first N files of corpus B turned into HTML (one
home page, section pages, articles; a robots.txt and a sitemap.xml). The crawl runs as the product runs it: the
add-site domain call, then the ``crawl_site`` Huey task on the in-process consumer; the clock starts when the job
is queued and stops when the source reports ``completed`` (every page fetched, extracted, chunked, embedded and
committed). The embedding model is loaded before the clock starts, as it is in a running server.
"""

from __future__ import annotations

import argparse
import html
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from local_site import LocalSite, Page  # noqa: E402

from chatsupport.config import load_settings  # noqa: E402
from chatsupport.domain import accounts, sites  # noqa: E402
from chatsupport.domain.audit import Actor  # noqa: E402
from chatsupport.retrieval.evaluation import corpus_files, new_chatbot  # noqa: E402
from chatsupport.services import start_services  # noqa: E402
from chatsupport.tasks.crawl import crawl_site  # noqa: E402
from quick import add_quick_flag, write_results  # noqa: E402

SECTION_SIZE = 20


def to_html(title: str, markdown: str, links: list[tuple[str, str]]) -> str:
    """Headings and paragraphs are enough for trafilatura; code fences become <pre>."""
    blocks = []
    for block in re.split(r"\n\s*\n", markdown):
        block = block.strip()
        if not block:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)", block)
        if heading and "\n" not in block:
            level = min(len(heading.group(1)) + 1, 6)
            blocks.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif block.startswith("```"):
            blocks.append(f"<pre>{html.escape(block.strip('`'))}</pre>")
        else:
            blocks.append(f"<p>{html.escape(block)}</p>")
    nav = " ".join(f'<a href="{href}">{html.escape(text)}</a>' for href, text in links)
    return (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body><nav>{nav}</nav>"
            f"<main><h1>{html.escape(title)}</h1>{''.join(blocks)}</main></body></html>")


def build_site(site: LocalSite, corpus: Path, pages: int) -> int:
    """Home → sections → articles; ``pages`` pages in all. Returns the bytes of HTML served."""
    files = corpus_files(corpus)
    sections = max(1, round((pages - 1) / (SECTION_SIZE + 1)))
    articles = pages - 1 - sections
    texts = [(p.stem.replace("-", " ").capitalize(), p.read_text(errors="replace")) for p in files[:articles]]
    per_section = -(-len(texts) // sections)
    home_links = [(f"/section/{s}", f"Section {s}") for s in range(sections)]
    site.pages["/"] = Page(to_html("Help center", "Welcome to the help center.", home_links))
    served = 0
    for s in range(sections):
        chunk = list(enumerate(texts))[s * per_section:(s + 1) * per_section]
        links = [("/", "Home")] + [(f"/article/{i}", title) for i, (title, _) in chunk]
        site.pages[f"/section/{s}"] = Page(to_html(f"Section {s}", f"Articles of section {s}.", links))
        for i, (title, text) in chunk:
            body = to_html(title, text, [("/", "Home"), (f"/section/{s}", f"Section {s}")])
            site.pages[f"/article/{i}"] = Page(body)
            served += len(body)
    urls = "".join(f"<url><loc>{site.url}{path}</loc></url>" for path in site.pages)
    site.pages["/sitemap.xml"] = Page(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                                      f'sitemap/0.9">{urls}</urlset>', content_type="application/xml")
    site.pages["/robots.txt"] = Page(f"User-agent: *\nSitemap: {site.url}/sitemap.xml\n", content_type="text/plain")
    return served


def crawl_once(services: Any, actor: Actor, bot: str, url: str, pages: int) -> dict[str, Any]:
    request = sites.UrlSourceCreate(chatbot_id=bot, url=url, crawl_settings=sites.CrawlSettings(
        max_pages=pages, max_depth=3))
    source = sites.create(services, actor, request)
    started = time.perf_counter()
    crawl_site(source["id"], source["crawl_job_id"])
    while True:
        state = sites.get(services, actor, source["id"])
        if state["status"] in ("completed", "failed"):
            return {**state, "seconds": time.perf_counter() - started}
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--corpus", default="/work/shared/corpora/B-huggingface-hub-docs")
    parser.add_argument("--runs", type=int, default=1, help="fresh source each run (a re-crawl would be cheaper)")
    parser.add_argument("--model-cache", default="data/model-cache")
    add_quick_flag(parser, "a 50-page site, one run")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.runs = 50, 1
    with tempfile.TemporaryDirectory() as tmp, LocalSite() as site:
        served = build_site(site, Path(args.corpus), args.pages)
        settings = load_settings(env={
            "CHATSUPPORT_DATA_DIR": str(Path(tmp) / "data"), "CHATSUPPORT_ARGON2_MEMORY_KIB": "1024",
            "CHATSUPPORT_OUTBOUND_ALLOWLIST": "127.0.0.1",
            "CHATSUPPORT_MODEL_CACHE_DIR": str(Path(args.model_cache).resolve())})
        services = start_services(settings, run_worker=True, hold_lock=False)
        services.embedder.encode(["warm up"])
        html_pages = sum(1 for p in site.pages if not p.endswith((".xml", ".txt")))
        print(f"site: {html_pages} HTML pages, {served / 1e6:.1f} MB of articles, WORKER_THREADS="
              f"{settings.WORKER_THREADS}")
        results = []
        for run in range(args.runs):
            bot = new_chatbot(services.db, f"crawl{run}")
            ws = services.db.query("SELECT w.id, w.name FROM chatbots c JOIN workspaces w ON w.id = c.workspace_id"
                                   " WHERE c.id = ?", (bot,))[0]
            user, _ = accounts.create_user(services, workspace=ws["name"], email=f"bench{run}@example.com",
                                           password="Bench#12345", role="owner")
            actor = Actor(user_id=user["id"], workspace_id=ws["id"], role="owner", email=user["email"],
                          display_name="bench")
            result = crawl_once(services, actor, bot, f"{site.url}/", args.pages)
            results.append(result)
            print(f"run {run + 1}: {result['status']} in {result['seconds']:.1f} s — found {result['pages_found']}, "
                  f"indexed {result['pages_processed']}, skipped {result['pages_skipped']}, failed "
                  f"{result['pages_failed']}, {result.get('chunks_created')} chunks "
                  f"({result['pages_processed'] / result['seconds']:.1f} pages/s, "
                  f"{(result.get('chunks_created') or 0) / result['seconds']:.1f} chunks/s)"
                  + (f" error: {result['error_message']}" if result["error_message"] else ""))
        print(f"median end-to-end: {statistics.median(r['seconds'] for r in results):.1f} s (target < 120 s)")
        services.stop()
    write_results("crawl_site", args, {"pages": args.pages, "runs": results,
                                       "median_seconds": statistics.median(r["seconds"] for r in results)})


if __name__ == "__main__":
    main()
