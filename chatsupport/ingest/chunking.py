"""Structure-following chunking of clean Markdown, sized in the embedder's own word pieces.

A page is read as sections (heading path → blocks: paragraphs, list items, table rows, code). Blocks are packed
into chunks up to ``target_tokens``; a block too big on its own is split by sentences, then by words; tables
repeat their header row in every piece. The embedded text of a chunk is ``title > heading path`` plus its content
and never exceeds ``max_tokens`` word pieces (special tokens included), so nothing is silently cut by the model.
Stored content keeps absolute link targets as ``[text](url)`` (answers quote and link them); what is embedded and
sized is ``readable`` text, the link text alone. Consecutive chunks of one section share ``overlap_tokens`` of
trailing text so an answer spanning the boundary is still found. Tiny sections are merged into the chunk before
them (their heading kept inline) because a chunk of one short sentence matches almost any query in vector search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

CountTokens = Callable[[Sequence[str]], list[int]]

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")
SPECIAL_TOKENS = 2  # [CLS] and [SEP]: count_tokens includes them once per text
LINK = re.compile(r"\[([^\]]+)\]\(https?://[^()\s]*(?:\([^()\s]*\)[^()\s]*)*\)")


@dataclass
class Chunk:
    content: str
    title: str = ""
    heading: str = ""
    position: int = 0
    token_count: int = 0
    page_number: int | None = None
    url: str | None = None
    faq_id: str | None = None

    @property
    def embed_text(self) -> str:
        return compose(self.title, self.heading, self.content)


def compose(title: str, heading: str, content: str) -> str:
    """What the embedding model reads: title and heading path give a passage its context; link targets are left
    out (a URL's pieces would crowd the model's 256 word pieces and say little about meaning)."""
    context = " > ".join(part for part in (title, heading) if part)
    return readable(f"{context}\n{content}" if context else content)


def readable(text: str) -> str:
    """``[text](https://…)`` → ``text``."""
    return LINK.sub(r"\1", text) if "](" in text else text


@dataclass
class Section:
    path: list[str]
    units: list[str] = field(default_factory=list)


def _blocks(text: str) -> Iterator[tuple[str, str]]:
    """(kind, text) blocks: heading, para, item, table, code."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif FENCE.match(line):
            fence, j = FENCE.match(line).group(1), i + 1  # type: ignore[union-attr]
            while j < len(lines) and not lines[j].strip().startswith(fence):
                j += 1
            yield "code", "\n".join(lines[i:j + 1])
            i = j + 1
        elif HEADING.match(line):
            yield "heading", line
            i += 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            yield "table", "\n".join(lines[i:j])
            i = j
        else:
            j = i + 1
            is_item = bool(LIST_ITEM.match(line))
            while j < len(lines) and lines[j].strip() and not _starts_block(lines[j], is_item):
                j += 1
            yield ("item" if is_item else "para"), "\n".join(lines[i:j])
            i = j


def _starts_block(line: str, in_item: bool) -> bool:
    if FENCE.match(line) or HEADING.match(line) or line.lstrip().startswith("|"):
        return True
    return bool(LIST_ITEM.match(line)) and (in_item or not line.startswith(" "))


def sections(text: str, title: str) -> list[Section]:
    """Group blocks under their heading path; a leading H1 equal to the title is not repeated in the path."""
    result = [Section([])]
    stack: list[tuple[int, str]] = []
    for kind, block in _blocks(text):
        if kind == "heading":
            match = HEADING.match(block)
            level, name = len(match.group(1)), match.group(2).strip()  # type: ignore[union-attr]
            if level == 1 and name.lower() == title.lower():
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, name))
            result.append(Section([n for _, n in stack if n]))
        elif kind == "table":
            result[-1].units.extend(_table_rows(block))
        else:
            result[-1].units.append(block)
    return [s for s in result if s.units]


def _table_rows(table: str) -> list[str]:
    """Each data row carries the header row so a split table still says what its columns mean."""
    rows = [r for r in table.splitlines() if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", r)]
    if len(rows) <= 2:
        return ["\n".join(rows)]
    header = rows[0]
    return [f"{header}\n{row}" for row in rows[1:]]


class Chunker:
    def __init__(self, count_tokens: CountTokens, max_tokens: int = 256, target_tokens: int = 200,
                 overlap_tokens: int = 40, min_tokens: int = 64):
        self.count = count_tokens
        self.max_tokens = max_tokens
        self.target = min(target_tokens, max_tokens)
        self.overlap = overlap_tokens
        self.min_tokens = min_tokens

    def _size(self, texts: Sequence[str]) -> list[int]:
        """Word pieces without the special tokens (BERT-style pieces add up across whitespace)."""
        return [n - SPECIAL_TOKENS for n in self.count([readable(t) for t in texts])] if texts else []

    def chunk(self, text: str, title: str = "", page_number: int | None = None,
              url: str | None = None) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in sections(text, title):
            heading = " > ".join(section.path)
            budget = self.max_tokens - SPECIAL_TOKENS - self._size([compose(title, heading, "")])[0] - 1
            units = self._fit_units(section.units, max(budget, 16))
            if chunks and chunks[-1].token_count < self.min_tokens and self._merge(chunks[-1], section, units):
                continue
            chunks.extend(self._pack(units, title, heading, budget))
        for position, chunk in enumerate(chunks):
            chunk.position, chunk.page_number, chunk.url = position, page_number, url
        return [c for c in chunks if c.content.strip()]

    def _fit_units(self, units: list[str], budget: int) -> list[tuple[str, int]]:
        """Units with their sizes, every one within budget (split by sentences, then words)."""
        out: list[tuple[str, int]] = []
        for unit, size in zip(units, self._size(units)):
            if size <= budget:
                out.append((unit, size))
            else:
                out.extend(self._split(unit, budget))
        return out

    def _split(self, unit: str, budget: int) -> list[tuple[str, int]]:
        pieces = [p for p in (unit.splitlines() if unit.lstrip().startswith(("```", "~~~")) else
                              SENTENCE_END.split(unit)) if p.strip()]
        if len(pieces) <= 1:
            words = unit.split()
            pieces = [" ".join(words[i:i + 24]) for i in range(0, len(words), 24)]
        out: list[tuple[str, int]] = []
        for piece, size in zip(pieces, self._size(pieces)):
            if size > budget:
                out.extend(self._split_chars(piece, budget))
            elif out and out[-1][1] + size + 1 <= budget:
                out[-1] = (out[-1][0] + " " + piece, out[-1][1] + size + 1)
            else:
                out.append((piece, size))
        return out

    def _split_chars(self, piece: str, budget: int) -> list[tuple[str, int]]:
        """Last resort for unbroken strings (minified code, long tokens): halve until it fits."""
        if len(piece) < 2 or self._size([piece])[0] <= budget:
            return [(piece, self._size([piece])[0])]
        middle = len(piece) // 2
        return self._split_chars(piece[:middle], budget) + self._split_chars(piece[middle:], budget)

    def _pack(self, units: list[tuple[str, int]], title: str, heading: str, budget: int) -> list[Chunk]:
        chunks: list[Chunk] = []
        current: list[tuple[str, int]] = []
        limit = min(self.target, budget)
        for unit in units:
            used = sum(n + 1 for _, n in current)
            if current and used + unit[1] > limit:
                chunks.append(self._make(current, title, heading))
                current = self._tail(current, budget - unit[1])
            current.append(unit)
        if current:
            chunks.append(self._make(current, title, heading))
        return chunks

    def _tail(self, units: list[tuple[str, int]], room: int) -> list[tuple[str, int]]:
        """Trailing units worth at most ``overlap_tokens`` (and fitting beside the next unit) as overlap."""
        tail: list[tuple[str, int]] = []
        total = 0
        for unit in reversed(units):
            if total + unit[1] + 1 > min(self.overlap, room):
                break
            tail.insert(0, unit)
            total += unit[1] + 1
        return tail

    def _make(self, units: list[tuple[str, int]], title: str, heading: str) -> Chunk:
        content = "\n".join(u for u, _ in units)
        return Chunk(content=content, title=title, heading=heading, token_count=sum(n + 1 for _, n in units))

    def _merge(self, previous: Chunk, section: Section, units: list[tuple[str, int]]) -> bool:
        """Append a following section to a too-small chunk when all of it fits; its heading stays inline."""
        heading_line = section.path[-1] if section.path else ""
        extra = self._size([heading_line])[0] + 1 + sum(n + 1 for _, n in units)
        room = self.max_tokens - SPECIAL_TOKENS - self._size([previous.embed_text])[0] - 1
        if extra > room or previous.token_count + extra > self.target:
            return False
        previous.content += "\n" + "\n".join([heading_line, *(u for u, _ in units)]).strip("\n")
        previous.token_count += extra
        return True


def chunk_document(chunker: Chunker, title: str, text: str, description: str = "",
                   page_number: int | None = None, url: str | None = None) -> list[Chunk]:
    """A cleaned page: its front-matter description (written to summarise the page) opens the first chunk."""
    body = f"{description}\n\n{text}" if description else text
    return chunker.chunk(body, title, page_number=page_number, url=url)
