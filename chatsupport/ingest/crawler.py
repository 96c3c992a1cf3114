"""Site-crawling pieces that need no database: URL normalisation and scope, what an HTML page links to and calls
itself (canonical), robots.txt, sitemaps, and main-text extraction with trafilatura.

Every request goes through ``chatsupport.net.outbound`` (the SSRF guard), robots.txt and sitemaps included. The
crawl job that strings these together, with its state in the database, is ``chatsupport.domain.site_crawl``.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
import urllib.robotparser
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree

from chatsupport.net.errors import OutboundError, OutboundRefused
from chatsupport.net.outbound import OutboundResponse

ROBOTS_AGENT = "ChatSupportBot"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TRACKING_PARAMS = re.compile(r"^(utm_\w+|gclid|fbclid|mc_cid|mc_eid)$", re.I)
MAX_ROBOTS_DELAY = 10.0
MAX_SITEMAPS = 5
Fetch = Callable[[str], OutboundResponse]


# --- URLs ---------------------------------------------------------------------------------------------------
def normalize_url(url: str, base: str | None = None) -> str | None:
    """One spelling per page: absolute, fragment dropped, lower-case scheme/host, default port and dot segments
    removed, tracking parameters dropped. None for anything that is not http(s)."""
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    host = f"[{host}]" if ":" in host else host
    netloc = host if port is None or port == {"http": 80, "https": 443}[scheme] else f"{host}:{port}"
    path = posixpath.normpath(parts.path) if parts.path not in ("", "/") else "/"
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    path = "/" + path.lstrip("/") if path != "." else "/"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not TRACKING_PARAMS.match(k)], doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def site_of(url: str) -> str:
    """The host a "same site" check compares: ``www.`` is the same site as the bare domain."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Scope:
    """Which discovered URLs belong to the crawl (same site unless told otherwise) and which the owner filtered."""

    seed: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_external: bool = False

    def reachable(self, url: str) -> bool:
        return self.follow_external or site_of(url) == site_of(self.seed)

    def filtered(self, url: str) -> bool:
        """Globs match the path (with query), or the whole URL when the pattern names a scheme."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")

        def match(pattern: str) -> bool:
            return fnmatch.fnmatchcase(url if "://" in pattern else path, pattern)

        if self.include and not any(match(p) for p in self.include):
            return True
        return any(match(p) for p in self.exclude)


# --- HTML -----------------------------------------------------------------------------------------------------
@dataclass
class PageInfo:
    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    base: str | None = None
    title: str = ""
    noindex: bool = False
    nofollow: bool = False


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.info = PageInfo()
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        rel = a.get("rel", "").lower().split()
        if tag == "a" and a.get("href") and "nofollow" not in rel:
            self.info.links.append(a["href"])
        elif tag == "link" and "canonical" in rel and a.get("href") and self.info.canonical is None:
            self.info.canonical = a["href"]
        elif tag == "base" and a.get("href") and self.info.base is None:
            self.info.base = a["href"]
        elif tag == "meta" and a.get("name", "").lower() in ("robots", ROBOTS_AGENT.lower()):
            content = a.get("content", "").lower()
            self.info.noindex |= "noindex" in content or "none" in content
            self.info.nofollow |= "nofollow" in content or "none" in content
        elif tag == "title" and not self.info.title:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.info.title += data


def read_page(html: str, url: str) -> PageInfo:
    """Links (absolute, normalised, in page order, no duplicates), canonical URL and robots meta of a page."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # malformed markup: keep what was read so far
        pass
    info = parser.info
    base = normalize_url(info.base, url) if info.base else url
    links = (normalize_url(href, base or url) for href in info.links)
    info.links = list(dict.fromkeys(link for link in links if link))
    info.canonical = normalize_url(info.canonical, base or url) if info.canonical else None
    info.title = " ".join(info.title.split())
    return info


def decode_html(response: OutboundResponse) -> str:
    """The body as text: charset from the header, else a <meta charset>, else UTF-8 (lenient)."""
    declared = re.search(r"charset=([\w.:-]+)", response.header("content-type"), re.I)
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", response.content[:4096], re.I)
    charset = declared.group(1) if declared else meta.group(1).decode("ascii") if meta else "utf-8"
    try:
        return response.content.decode(charset, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def extract_main_text(html: str, url: str, fallback_title: str) -> tuple[str, str]:
    """(title, Markdown of the main content) by trafilatura; navigation, footers and boilerplate are left out.
    Markdown keeps the headings, which the chunker follows."""
    import trafilatura  # imported on first use: it costs ~1 s and only crawl jobs need it

    text = trafilatura.extract(html, url=url, output_format="markdown", include_links=False,
                               include_images=False, include_tables=True, include_comments=False,
                               favor_recall=True) or ""
    metadata = trafilatura.extract_metadata(html, default_url=url)
    title = (metadata.title if metadata and metadata.title else "") or fallback_title or url
    return " ".join(title.split()), text.strip()


# --- robots.txt and sitemaps ------------------------------------------------------------------------------------
class Robots:
    """robots.txt per origin, fetched once per crawl through the guard (RFC 9309: a missing file allows all; a
    server error or an unreachable file means "don't crawl"). A refused origin stays refused."""

    def __init__(self, fetch: Fetch, respect: bool = True):
        self.fetch = fetch
        self.respect = respect
        self._parsers: dict[str, urllib.robotparser.RobotFileParser | OutboundRefused] = {}

    def _parser(self, url: str) -> urllib.robotparser.RobotFileParser:
        origin = origin_of(url)
        if origin not in self._parsers:
            self._parsers[origin] = self._load(origin)
        found = self._parsers[origin]
        if isinstance(found, OutboundRefused):
            raise found
        return found

    def _load(self, origin: str) -> urllib.robotparser.RobotFileParser | OutboundRefused:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            response = self.fetch(origin + "/robots.txt")
        except OutboundRefused as exc:
            return exc
        except OutboundError:
            return _verdict(parser, allow=False)
        if response.status >= 500:
            return _verdict(parser, allow=False)
        if response.status >= 400:
            return _verdict(parser, allow=True)
        parser.parse(response.content.decode("utf-8", errors="replace").splitlines())
        parser.modified()
        return parser

    def allowed(self, url: str) -> bool:
        """False when robots.txt disallows ``url``; raises ``OutboundRefused`` for a refused origin."""
        parser = self._parser(url)
        return not self.respect or parser.can_fetch(ROBOTS_AGENT, url)

    def delay(self, url: str) -> float:
        parser = self._parser(url)
        delay = parser.crawl_delay(ROBOTS_AGENT) if self.respect else None
        return min(float(delay), MAX_ROBOTS_DELAY) if delay else 0.0

    def sitemaps(self, url: str) -> list[str]:
        return list(self._parser(url).site_maps() or [])


def _verdict(parser: urllib.robotparser.RobotFileParser, allow: bool) -> urllib.robotparser.RobotFileParser:
    """A parser that answers yes (or no) for every URL, without a file (the stdlib's own flags, untyped)."""
    setattr(parser, "allow_all" if allow else "disallow_all", True)
    parser.modified()
    return parser


def sitemap_urls(fetch: Fetch, sitemaps: list[str], limit: int) -> list[str]:
    """Page URLs listed in the sitemaps (following sitemap indexes, at most ``MAX_SITEMAPS`` files)."""
    pending, seen, pages = list(sitemaps), set(), []  # type: ignore[var-annotated]
    while pending and len(seen) < MAX_SITEMAPS and len(pages) < limit:
        location = pending.pop(0)
        if location in seen:
            continue
        seen.add(location)
        try:
            response = fetch(location)
        except OutboundError:
            continue
        if response.status != 200:
            continue
        kind, locations = _parse_sitemap(response.content)
        (pending if kind == "sitemapindex" else pages).extend(locations)
    return pages[:limit]


def _parse_sitemap(content: bytes) -> tuple[str, list[str]]:
    """('urlset' | 'sitemapindex', locations). Entity expansion is refused by expat's own limits."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return "invalid", []
    kind = root.tag.rsplit("}", 1)[-1]
    locations = [el.text.strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc" and el.text]
    return kind, locations


class Politeness:
    """Waits between requests to the same host: the crawl's delay, or robots.txt's Crawl-delay if longer."""

    def __init__(self, delay: Callable[[str], float]):
        self.delay = delay
        self._last: dict[str, float] = {}

    def wait(self, url: str) -> None:
        host = urlsplit(url).netloc
        pause = self.delay(url) - (time.monotonic() - self._last.get(host, float("-inf")))
        if pause > 0:
            time.sleep(pause)
        self._last[host] = time.monotonic()
