"""Turn authored Markdown/MDX (and plain HTML files) into clean Markdown the chunker can follow.

What stays: headings, paragraphs, lists, tables, fenced code, link text, and absolute (http/https) link targets
as ``[text](url)`` — "go to your [notification settings](https://…/settings/notifications)" is the answer, and
an answer may only link to URLs found in the sources. What goes: front matter (its title and description are kept
as fields), MDX import/export lines and comments, HTML/JSX component tags (their inner text stays, so a ``<Tip>``
keeps its advice; a one-line ``<a href="https://…">`` becomes a Markdown link), images, HTML comments and
relative link targets (they only resolve on the original site). Code blocks are left untouched. The chunker
embeds and sizes the text with link targets removed (``ingest.chunking.readable``), so keeping them changes
what an answer can quote, not what a passage means.
Placeholders written in angle brackets in prose (``<CACHE_DIR>``) survive: a tag is only stripped when it is a
known HTML element, a PascalCase component, carries attributes, self-closes, or is closed somewhere in the page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

HTML_TAGS = frozenset(
    "a abbr b blockquote br button caption center code col colgroup dd del details div dl dt em figcaption figure "
    "font footer h1 h2 h3 h4 h5 h6 header hr i iframe img input ins kbd label li main nav ol p picture pre s "
    "section small source span strong sub summary sup svg table tbody td tfoot th thead tr u ul video path "
    "g rect circle".split())
DROP_WITH_CONTENT = ("script", "style", "svg", "iframe", "video", "picture", "noscript")

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
TAG = re.compile(r"</?([A-Za-z][\w.:-]*)((?:\s[^<>]*?)?)(/?)>", re.S)
HEADING_TAG = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.S | re.I)
MDX_LINE = re.compile(r"^(import\s.+\sfrom\s.+|import\s+['\"].+|export\s+(const|default|function|let)\b.*)$", re.M)
MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]+)\]\(((?:[^()\s]|\([^)]*\))*)(?:\s+\"[^\"]*\")?\)")
HTML_LINK = re.compile(r"<a\s[^<>]*?href=[\"'](https?://[^\"'\s]+)[\"'][^<>]*>([^<>\n]+)</a\s*>", re.I)
REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
DOC_MARKER = re.compile(r"\[\[[\w-]+\]\]")


@dataclass(frozen=True)
class CleanDocument:
    title: str
    description: str
    text: str


def _front_matter(raw: str) -> tuple[dict[str, str], str]:
    """Simple ``key: value`` front matter; nested YAML is ignored (only title/description matter here)."""
    if not raw.startswith("---\n"):
        return {}, raw
    end = raw.find("\n---", 4)
    if end < 0:
        return {}, raw
    fields = {}
    for line in raw[4:end].splitlines():
        match = re.match(r"^([A-Za-z_]+):\s*(.+)$", line)
        if match:
            fields[match.group(1).lower()] = match.group(2).strip().strip("'\"")
    body_start = raw.find("\n", end + 4)
    return fields, raw[body_start + 1:] if body_start >= 0 else ""


def _strip_tags(text: str) -> str:
    closed = {m.lower() for m in re.findall(r"</([A-Za-z][\w.:-]*)\s*>", text)}

    def replace(match: re.Match[str]) -> str:
        name, attrs, selfclose = match.group(1), match.group(2), match.group(3)
        is_tag = (name.lower() in HTML_TAGS or name.lower() in closed or bool(selfclose)
                  or (name[0].isupper() and any(c.islower() for c in name)) or "=" in attrs)
        if not is_tag:
            return match.group(0)
        block = name.lower() in {"p", "div", "br", "tr", "li", "table", "ul", "ol", "section", "details", "summary"}
        if name.lower() == "li" and not match.group(0).startswith("</"):
            return "\n- "
        if name.lower() in {"td", "th"}:
            return " | "
        return "\n" if block else ""

    for name in DROP_WITH_CONTENT:
        text = re.sub(rf"<{name}\b.*?</{name}\s*>", "", text, flags=re.S | re.I)
    return TAG.sub(replace, text)


def _clean_prose(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"\{/\*.*?\*/\}", "", text, flags=re.S)
    text = MDX_LINE.sub("", text)
    text = HEADING_TAG.sub(lambda m: "\n" + "#" * int(m.group(1)) + " " + re.sub(r"<[^>]+>", "", m.group(2)) + "\n",
                           text)
    text = HTML_LINK.sub(lambda m: f"[{m.group(2).strip()}]({m.group(1)})", text)
    text = _strip_tags(text)
    text = MD_IMAGE.sub("", text)
    text = MD_LINK.sub(_link, text)
    text = REF_LINK.sub(r"\1", text)
    text = DOC_MARKER.sub("", text)
    text = html.unescape(text)
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(line if line.strip() else "" for line in lines)


def _link(match: re.Match[str]) -> str:
    """An absolute link keeps its target (normalised, title dropped); a relative one becomes its text."""
    text, target = match.group(1), match.group(2)
    return f"[{text}]({target})" if re.match(r"https?://", target) else text


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """(is_code, text) segments so cleaning never touches code."""
    segments: list[tuple[bool, str]] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            segments.append((False, "\n".join(current)))
            current, fence = [line], match.group(1)
        elif fence is not None and line.strip().startswith(fence):
            current.append(line)
            segments.append((True, "\n".join(current)))
            current, fence = [], None
        else:
            current.append(line)
    segments.append((fence is not None, "\n".join(current)))
    return segments


def clean_markdown(raw: str, fallback_title: str = "") -> CleanDocument:
    fields, body = _front_matter(raw.replace("\r\n", "\n").lstrip("\ufeff"))
    parts = [seg if is_code else _clean_prose(seg) for is_code, seg in _split_fences(body)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).strip()
    title = fields.get("title", "")
    if not title:
        first_h1 = re.search(r"^#\s+(.+)$", text, re.M)
        title = first_h1.group(1).strip() if first_h1 else fallback_title
    return CleanDocument(title=title.strip(), description=fields.get("description", ""), text=text)


class _HtmlToMarkdown(HTMLParser):
    BLOCKS = {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "blockquote", "dl", "dd", "dt"}
    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "svg", "template", "form", "aside"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
        self.in_title = False
        self.in_pre = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag == "title":
            self.in_title = True
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in {"td", "th"}:
            self.out.append(" | ")
        elif tag == "pre":
            self.in_pre = True
            self.out.append("\n```\n")
        elif tag in self.BLOCKS:
            self.out.append("\n\n" if tag not in {"br", "tr"} else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "title":
            self.in_title = False
        elif tag == "pre":
            self.in_pre = False
            self.out.append("\n```\n")
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"} or tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip_depth:
            self.out.append(data if self.in_pre else re.sub(r"\s+", " ", data))


def html_to_markdown(raw: str, fallback_title: str = "") -> CleanDocument:
    parser = _HtmlToMarkdown()
    parser.feed(raw)
    parser.close()
    lines = [line.strip() if not line.startswith("    ") else line for line in "".join(parser.out).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = parser.title.strip()
    if not title:
        first_h1 = re.search(r"^#\s+(.+)$", text, re.M)
        title = first_h1.group(1).strip() if first_h1 else fallback_title
    return CleanDocument(title=title, description="", text=text)
