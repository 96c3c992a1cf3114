"""Uploaded file → what kind it really is (sniffed) → clean Markdown pages for the chunker.

The kind is decided from the bytes, never from the name: a PDF starts with ``%PDF-``, a DOCX is a ZIP holding
``word/document.xml``, and text must decode. The extension only chooses between text flavours (Markdown or
plain), which are equally harmless. Extraction raises ``ExtractionError`` with one of the stable codes
``extraction_failed``, ``encrypted`` or ``no_text`` and words an owner can act on.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chatsupport.errors import AppError
from chatsupport.ingest.markdown_clean import clean_markdown, html_to_markdown

SNIFF_BYTES = 8192
MB = 1024 * 1024
# PRD §5.4.1 (and the issue) per kind; the upload is cut off at the limit while it streams.
LIMITS = {"pdf": 50 * MB, "docx": 25 * MB, "text": 10 * MB, "markdown": 10 * MB, "html": 10 * MB, "csv": 5 * MB}
MAX_LIMIT = max(LIMITS.values())
EXTENSIONS = {"pdf": "pdf", "docx": "docx", "text": "txt", "markdown": "md", "html": "html", "csv": "csv"}
MIME_TYPES = {"pdf": "application/pdf", "html": "text/html", "text": "text/plain", "markdown": "text/markdown",
              "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "csv": "text/csv"}
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")
MIN_TEXT_CHARS = 20
# The XML of a real Word document unpacks to a few MB (a 500-page manual: ~10 MB); a zip bomb's to gigabytes,
# which python-docx would parse into memory whole. Media files do not count: they are never unpacked.
MAX_DOCX_UNPACKED = 64 * MB
HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<!--)", re.I)
LEADING_COMMENTS = re.compile(rb"^\s*(?:<!--.*?-->\s*)+", re.S)


class ExtractionError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UnsupportedType(Exception):
    """The bytes are not a kind we read; the message says what the owner can do instead."""


@dataclass
class Page:
    text: str
    number: int | None = None


@dataclass
class Extracted:
    title: str
    pages: list[Page] = field(default_factory=list)
    page_count: int | None = None

    @property
    def text_length(self) -> int:
        return sum(len(p.text) for p in self.pages)


# --- sniffing -----------------------------------------------------------------------------------------------
def sniff(head: bytes, filename: str = "") -> str:
    """The kind from the first bytes: pdf, docx (provisionally: any ZIP), html, or text — which the name may
    call markdown or csv (harmless either way: all three are read as text)."""
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedType("Old Word (.doc) files are not supported: save the file as .docx and upload it again.")
    if decode_text(head, partial=True) is None:
        raise UnsupportedType("Only PDF, Word (.docx), text, Markdown and HTML files are supported.")
    if _looks_like_html(head.lstrip(b"\xef\xbb\xbf"), filename):
        return "html"
    if filename.lower().endswith(".csv"):
        return "csv"
    return "markdown" if filename.lower().endswith(MARKDOWN_SUFFIXES) else "text"


def _looks_like_html(head: bytes, filename: str) -> bool:
    """A leading ``<!-- … -->`` is HTML's, unless the name says Markdown or text and no HTML tag follows the
    comments: generated Markdown often opens with a "do not edit" comment, and read as HTML it loses its structure
    (or all its text)."""
    if not HTML_START.match(head):
        return False
    if not head.lstrip().startswith(b"<!--") or not filename.lower().endswith((*MARKDOWN_SUFFIXES, ".txt")):
        return True
    rest = LEADING_COMMENTS.sub(b"", head, count=1)  # unchanged when the comment runs past the sniffed bytes
    return HTML_START.match(rest) is not None and not rest.lstrip().startswith(b"<!--")


def confirm(kind: str, path: Path) -> None:
    """The checks that need the whole file: a ZIP must be a Word document, text must decode throughout."""
    if kind == "docx":
        try:
            with zipfile.ZipFile(path) as archive:
                if "word/document.xml" not in archive.namelist():
                    raise UnsupportedType("This ZIP file is not a Word document (.docx).")
                if docx_unpacked_size(archive) > MAX_DOCX_UNPACKED:
                    raise AppError("too_large", f"The Word file unpacks to more than {MAX_DOCX_UNPACKED // MB} MB "
                                                "of text, more than any real document: it cannot be used.")
        except zipfile.BadZipFile:
            return  # a damaged DOCX is accepted and then fails extraction with a clear reason
    elif kind in {"text", "markdown", "html", "csv"} and decode_text(path.read_bytes()) is None:
        raise UnsupportedType("The file is not readable text (it is binary or in an unknown encoding).")


def docx_unpacked_size(archive: zipfile.ZipFile) -> int:
    """What the parts python-docx parses unpack to, as the archive declares it (zipfile never reads past that)."""
    return sum(info.file_size for info in archive.infolist() if not info.filename.startswith("word/media/"))


def decode_text(data: bytes, partial: bool = False) -> str | None:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 when it has no control characters."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None if not partial else data[:len(data) // 2 * 2].decode("utf-16", "ignore")
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3:  # a character cut in half by the sniff window
            return data[:exc.start].decode("utf-8-sig")
    text = data.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return text if controls <= len(text) // 200 and "\ufffd" not in text else None


# --- extraction ---------------------------------------------------------------------------------------------
def extract(path: Path, kind: str, fallback_title: str) -> Extracted:
    readers = {"pdf": extract_pdf, "docx": extract_docx, "html": extract_html, "markdown": extract_markdown,
               "text": extract_text}
    if kind not in readers:
        raise ExtractionError("extraction_failed", f"Files of kind {kind!r} cannot be extracted.")
    result = readers[kind](path, fallback_title)
    if sum(len(re.sub(r"\W", "", p.text)) for p in result.pages) < MIN_TEXT_CHARS:
        hint = " It looks scanned: run it through OCR first." if kind == "pdf" else ""
        raise ExtractionError("no_text", f"No text was found in the file.{hint}")
    result.pages = [p for p in result.pages if p.text.strip()]
    result.title = result.title or fallback_title
    return result


def _read_text(path: Path) -> str:
    text = decode_text(path.read_bytes())
    if text is None:
        raise ExtractionError("extraction_failed", "The file is not readable text.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract_markdown(path: Path, fallback_title: str) -> Extracted:
    doc = clean_markdown(_read_text(path), fallback_title)
    return Extracted(title=doc.title, pages=[Page(doc.text)])


SETEXT = re.compile(r"^(\S[^\n]{0,118})\n(=+|-+)\s*$", re.M)


def extract_text(path: Path, fallback_title: str) -> Extracted:
    """Plain text keeps what structure it has: underlined (setext) headings become Markdown headings."""
    text = _read_text(path)
    text = SETEXT.sub(lambda m: ("# " if m.group(2)[0] == "=" else "## ") + m.group(1), text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    first = re.search(r"^#\s+(.+)$", text, re.M)
    return Extracted(title=first.group(1).strip() if first else fallback_title, pages=[Page(text)])


def extract_html(path: Path, fallback_title: str) -> Extracted:
    """Main text of a saved page: navigation, header, footer, scripts and forms are dropped."""
    doc = html_to_markdown(_read_text(path), fallback_title)
    return Extracted(title=doc.title, pages=[Page(doc.text)])


def extract_docx(path: Path, fallback_title: str) -> Extracted:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        with zipfile.ZipFile(path) as archive:
            if docx_unpacked_size(archive) > MAX_DOCX_UNPACKED:
                raise ExtractionError("extraction_failed", f"The Word file unpacks to more than "
                                      f"{MAX_DOCX_UNPACKED // MB} MB of text, more than any real document.")
        document = docx.Document(str(path))
    except ExtractionError:
        raise
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionError("extraction_failed", "The Word file is damaged and could not be read.") from exc
    except Exception as exc:  # noqa: BLE001 - lxml and zip raise many kinds for broken files
        raise ExtractionError("extraction_failed", "The Word file could not be read.") from exc
    title = (document.core_properties.title or "").strip()
    lines, title = _docx_lines(document, title)
    return Extracted(title=title or fallback_title, pages=[Page("\n\n".join(lines))])


def _docx_lines(document: object, title: str) -> tuple[list[str], str]:
    """Body paragraphs and tables in document order; Heading N styles become Markdown headings."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines: list[str] = []
    for block in document.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(block, Table):
            lines.append(_docx_table(block))
            continue
        if not isinstance(block, Paragraph) or not block.text.strip():
            continue
        style = (block.style.name if block.style is not None else "") or ""
        text = block.text.strip()
        if style == "Title":
            title = title or text
            lines.append(f"# {text}")
        elif style.startswith("Heading") and style[-1:].isdigit():
            lines.append("#" * min(6, int(style[-1])) + " " + text)
        elif "List" in style:
            lines.append(f"- {text}")
        else:
            lines.append(text)
    return lines, title


def _docx_table(table: object) -> str:
    rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]  # type: ignore[attr-defined]
    if not rows:
        return ""
    out = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


# --- PDF ----------------------------------------------------------------------------------------------------
PAGE_NUMBER = re.compile(r"^\s*(page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?\s*((of|/)\s*\d{1,4})?\s*$", re.I)


@dataclass
class Line:
    text: str
    size: float
    top: bool
    bottom: bool
    first: bool = False  # the first line of a text block: a paragraph boundary


def extract_pdf(path: Path, fallback_title: str) -> Extracted:
    import pymupdf

    try:
        doc = pymupdf.open(str(path), filetype="pdf")
    except Exception as exc:  # noqa: BLE001 - MuPDF raises its own error types for damaged files
        raise ExtractionError("extraction_failed", "Unable to read the PDF. The file may be damaged.") from exc
    with doc:
        if doc.needs_pass:
            raise ExtractionError("encrypted", "The PDF is password-protected. Remove the password and upload it "
                                               "again.")
        try:
            pages = [_pdf_lines(page) for page in doc]
        except Exception as exc:  # noqa: BLE001
            raise ExtractionError("extraction_failed", "Unable to extract text from the PDF. The file may be "
                                                       "damaged.") from exc
        title = (doc.metadata or {}).get("title", "") or ""
    body = _body_size(pages)
    repeated = _repeated_margins(pages, body)
    texts = [Page(_pdf_markdown(lines, repeated, body), number) for number, lines in enumerate(pages, start=1)]
    return Extracted(title=title.strip() or fallback_title, pages=texts, page_count=len(pages))


def _pdf_lines(page: object) -> list[Line]:
    """Text lines with their font size and whether they sit in the top or bottom 8% (header/footer zone)."""
    height = page.rect.height  # type: ignore[attr-defined]
    out: list[Line] = []
    for block in page.get_text("dict", sort=True)["blocks"]:  # type: ignore[attr-defined]
        for index, line in enumerate(block.get("lines", [])):
            spans = [s for s in line["spans"] if s["text"].strip()]
            if not spans:
                continue
            text = " ".join("".join(s["text"] for s in spans).split())
            y0, y1 = line["bbox"][1], line["bbox"][3]
            out.append(Line(text, max(s["size"] for s in spans), y0 < height * 0.08, y1 > height * 0.92, index == 0))
    return out


def _margin_key(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower())


def _repeated_margins(pages: list[list[Line]], body: float) -> set[str]:
    """Header/footer lines: the same text (numbers ignored) in the margin zone of at least half the pages, in a
    font no larger than the body text (a "Chapter 3" heading at the top of every page is not a running header)."""
    if len(pages) < 2:
        return set()
    counts = Counter(key for lines in pages for key in {_margin_key(l.text) for l in lines
                                                        if (l.top or l.bottom) and l.size <= body * 1.05})
    return {key for key, n in counts.items() if n >= max(2, len(pages) // 2)}


def _body_size(pages: list[list[Line]]) -> float:
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size, 1)] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _pdf_markdown(lines: list[Line], repeated: set[str], body: float) -> str:
    """Clean one page: drop headers, footers and page numbers; larger short lines become headings."""
    out: list[str] = []
    for line in lines:
        margin = line.top or line.bottom
        if margin and line.size <= body * 1.05 and (_margin_key(line.text) in repeated
                                                     or PAGE_NUMBER.match(line.text)):
            continue
        if line.first and out:
            out.append("")
        if line.size >= body * 1.15 and len(line.text) <= 120:
            level = 1 if line.size >= body * 1.8 else 2 if line.size >= body * 1.4 else 3
            out.append("\n" + "#" * level + " " + line.text + "\n")
        elif out and out[-1] and not out[-1].endswith("\n") and not line.text[:1].isupper() \
                and not out[-1].endswith((".", ":", "?", "!")):
            out[-1] += " " + line.text  # a sentence wrapped onto the next line
        else:
            out.append(line.text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
