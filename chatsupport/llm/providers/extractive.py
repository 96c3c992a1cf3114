"""The built-in provider that needs no model: it answers with the sentences of the retrieved passages that best
answer the question — at most three, from at most two sources, each source linked — so a fresh install answers
correctly out of the box and never says anything the documentation does not.

Sentence choice is what makes or breaks it (half of a naive extractor's misses): candidates are prose sentences,
list items and table rows read out with their column names (code, images, imports and navigation dropped), scored
by meaning (cosine with the question in the retriever's own embedding space, each sentence embedded under its
page title and heading path as the chunks were), by the question's words they share (weighted by rarity across
the candidates, so "invoice" counts more than "account") — in the sentence and, more weakly, in its title and
heading path — by how well their passage was retrieved, a little by position, and, for questions asking for an
amount, by carrying a number (an ordering bonus kept out of confidence); a short label that is not a sentence
("Pay only for seconds used") loses a little, since under its page title it matches the topic without stating
anything. The best sentence brings its neighbour along when the neighbour continues it, because documentation
states a fact and its condition in consecutive sentences. Links are quoted as "text (url)" — the only URLs an
answer contains come from the sources — but embedded without their target. Text that addresses an AI ("ignore
previous instructions…") is never a candidate: documents are data, not instructions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Sequence

import numpy as np

from chatsupport.llm.base import ChatRequest, Passage, StreamEvent

MAX_SENTENCES = 3
MAX_SOURCES = 2
# Sentences embedded per answer (the best by shared words and passage score): embedding them is most of the time
# to the first byte. 12 instead of 24 took p95 from 283 to ~185 ms at 100k chunks and scored the same or better
# on dev-B (docs/benchmarks.md).
MAX_CANDIDATES = 12
# Weights of the sentence score; meaning dominates, shared rare words break ties between paraphrases.
W_COSINE, W_WORDS, W_PASSAGE, W_POSITION = 0.55, 0.25, 0.25, 0.05
# A second source is only cited when its best sentence is nearly as good as the first source's.
SECOND_SOURCE_RATIO = 0.9
NEIGHBOUR_RATIO = 0.6

STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been being am do
does did doing have has had having i me my we our you your he she it its they them their this that these those
there here what which who whom whose when where why how can could should would will shall may might must not no
so than then too very just also about into over under again further once all any both each few more most other
some such only own same s t don now get got getting want need like im ive dont didnt cant whats hi hello please
thanks one still way make use using""".split())
INJECTION = re.compile(r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions|prompt|rules|above)\b|"
                       r"\b(system prompt|you are now|act as|jailbreak|reveal (your|the) (prompt|instructions))\b",
                       re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE = re.compile(r"^\s*\|.*\|\s*$|^\s*[-:| ]{3,}$")
_NOISE = re.compile(r"^\s*(import |export |<|!\[|\{|\}|//|#!|\$ |>>>|\.\.\.)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_TAG = re.compile(r"<[^>]{1,200}>")
_URL = re.compile(r" ?\(?https?://[^\s)]+\)?")  # kept in the quoted sentence, left out of what is embedded
_WORD = re.compile(r"[a-z0-9][a-z0-9'._/-]*[a-z0-9]|[a-z0-9]")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[*_`])")
# A question asking for an amount ("how much", "price", "how many") is answered by a sentence with a number in it.
QUANTITY = re.compile(r"\b(how (much|many|long|often|big|large)|price|pricing|cost|costs|fee|fees|rate|limit|"
                      r"limits|quota|per (hour|month|year|seat|day|minute))\b", re.I)
NUMBER = re.compile(r"[$€£]\s?\d|\d")
W_CONTEXT, W_QUANTITY = 0.10, 0.05
# A short line that is not a sentence ("Pay only for seconds used", "Regulatory and legal compliance") is a label
# or a bolded heading: embedded under its page title it matches the topic, but it states nothing.
W_FRAGMENT, FRAGMENT_WORDS = 0.05, 6


@dataclass
class Candidate:
    passage: int
    order: int
    text: str
    score: float = 0.0
    bonus: float = 0.0  # the part of ``score`` that only orders candidates (answer type), kept out of confidence

    @property
    def match(self) -> float:
        return self.score - self.bonus


def clean_inline(line: str) -> str:
    """Markdown link → its text (the link itself is cited as the source), HTML tags and emphasis dropped."""
    line = _LINK.sub(lambda m: m.group(1) if not m.group(2).startswith("http") else f"{m.group(1)} ({m.group(2)})",
                     line)
    line = _TAG.sub(" ", line).replace("**", "").replace("__", "")
    line = re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", line)
    return re.sub(r"\s+", " ", line).strip()


def prose_lines(text: str) -> list[str]:
    """Lines that can carry an answer: prose and list items, and table rows read out with their column names
    (prices and limits live in tables); no code blocks, images, imports, headings or bare links."""
    lines, in_code, header = [], False, None
    for raw in text.splitlines():
        if _FENCE.match(raw):
            in_code = not in_code
            continue
        if _TABLE.match(raw) and not in_code:
            header, line = _table_line(raw, header)
        elif in_code or _NOISE.match(raw) or raw.lstrip().startswith("#"):
            header = None
            continue
        else:
            header, line = None, clean_inline(raw)
        if line and len(line.split()) >= 4:
            lines.append(line)
    return lines


def _cells(row: str) -> list[str]:
    return [clean_inline(c) for c in row.strip().strip("|").split("|")]


def _table_line(raw: str, header: list[str] | None) -> tuple[list[str] | None, str]:
    """(header now in force, the row as a sentence). The chunker repeats a table's header row before its rows,
    so the first row of a run — or one equal to the header — is the header; a data row reads
    "T4 small — CPU: 4 vCPU; Hourly price: $0.40" so it can be quoted on its own."""
    if re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", raw):
        return header, ""
    cells = _cells(raw)
    if header is None or cells == header or len(cells) != len(header):
        return cells, ""
    pairs = [f"{h}: {c}" for h, c in zip(header[1:], cells[1:]) if c and h]
    return header, f"{cells[0]} — {'; '.join(pairs)}." if cells[0] and pairs else ""


def sentences(text: str) -> list[str]:
    out = []
    for line in prose_lines(text):
        out.extend(s.strip() for s in _SPLIT.split(line) if 4 <= len(s.split()) <= 80 and not INJECTION.search(s))
    return out


def words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def _stem(word: str) -> str:
    """Crude suffix folding so "invoices"/"invoice" and "charged"/"charge" meet; not a linguistic stemmer."""
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def coverage(question: str, ranked: Sequence[Candidate], text: str | None = None) -> float:
    """Share of the question's weight found in ``text`` (default: anywhere in the evidence); words weigh by their
    rarity among the candidates, and a word no candidate has weighs most."""
    return _overlap(words(question), " ".join(c.text for c in ranked) if text is None else text, _rarity(ranked))


def candidates(passages: Sequence[Passage]) -> list[Candidate]:
    found = [Candidate(i, order, s) for i, p in enumerate(passages) for order, s in enumerate(sentences(p.content))]
    return found


def rank(question: str, passages: Sequence[Passage], embedder: Any | None,
         question_vector: np.ndarray | None = None) -> list[Candidate]:
    """Candidates scored (best first). Without an embedder, words, passage score and position only."""
    found = candidates(passages)
    if not found:
        return []
    asked = words(question)
    rarity = _rarity(found)
    overlap = [_overlap(asked, c.text, rarity) for c in found]
    for i, c in enumerate(found[:-1]):  # the answer after a matching FAQ question survives the pre-filter
        if c.text.endswith("?") and found[i + 1].passage == c.passage:
            overlap[i + 1] = max(overlap[i + 1], overlap[i])
    if len(found) > MAX_CANDIDATES:  # embed only the most promising: keeps time to first byte flat
        keep = sorted(range(len(found)), key=lambda i: -(overlap[i] + passages[found[i].passage].score))
        keep = sorted(keep[:MAX_CANDIDATES])
        found, overlap = [found[i] for i in keep], [overlap[i] for i in keep]
    # embedded under its page title and heading path, as the chunks were indexed: "Leave an organization: Click
    # the button" means something that "Click the button" alone does not
    cosine = _cosines(question, [f"{_context(passages[c.passage])}: {_URL.sub('', c.text)}" for c in found], embedder,
                      question_vector)
    context = [_overlap(asked, _context(passages[c.passage]) + " " + c.text, rarity) for c in found]
    wants_amount = bool(QUANTITY.search(question))
    for c, words_score, in_context, cos in zip(found, overlap, context, cosine):
        position = 1.0 / (1.0 + c.order / 4)
        c.bonus = W_QUANTITY if wants_amount and NUMBER.search(c.text) else 0.0
        c.score = (W_COSINE * cos + W_WORDS * words_score + W_CONTEXT * in_context
                   + W_PASSAGE * passages[c.passage].score + W_POSITION * position + c.bonus
                   - (W_FRAGMENT if _fragment(c.text) else 0.0))
    _answers_follow_questions(found)
    return sorted((c for c in found if not c.text.endswith("?")), key=lambda c: -c.score)


def _fragment(text: str) -> bool:
    return len(text.split()) < FRAGMENT_WORDS and not re.search(r"[.!?:;)]\W*$", text)


def _context(p: Passage) -> str:
    """Page title and heading path: a sentence under "Leave an organization" answers "how do I leave an org"
    even when it only says "click the button"."""
    return " > ".join(x for x in (p.title, p.extra.get("heading")) if x)


def _answers_follow_questions(found: list[Candidate]) -> None:
    """FAQ-style pages ask the customer's question, then answer it: the question matches best, but the answer is
    the sentence after it, which inherits (most of) the question's score."""
    by_position = {(c.passage, c.order): c for c in found}
    for c in found:
        if c.text.endswith("?"):
            after = by_position.get((c.passage, c.order + 1))
            if after is not None and not after.text.endswith("?"):
                after.score = max(after.score, 0.95 * c.score)


def _rarity(found: Sequence[Candidate]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for c in found:
        for w in words(c.text):
            counts[w] = counts.get(w, 0) + 1
    n = len(found)
    return {w: math.log(1 + n / k) for w, k in counts.items()}


def _overlap(asked: set[str], text: str, rarity: dict[str, float]) -> float:
    if not asked:
        return 0.0
    have = words(text)
    default = max(rarity.values(), default=1.0)
    total = sum(rarity.get(w, default) for w in asked)
    return sum(rarity.get(w, default) for w in asked & have) / total if total else 0.0


def _cosines(question: str, texts: list[str], embedder: Any | None, question_vector: np.ndarray | None) -> list[float]:
    if embedder is None:
        return [0.0] * len(texts)
    if question_vector is None:
        vectors = _encode(embedder, [question, *texts])
        question_vector, matrix = vectors[0], vectors[1:]
    else:
        matrix = _encode(embedder, texts)
    return [float(x) for x in np.clip(np.asarray(matrix) @ np.asarray(question_vector), 0.0, 1.0)]


def _encode(embedder: Any, texts: list[str]) -> np.ndarray:
    """Sentences repeat across answers: the embedder's cache serves them (a bare model has no cache)."""
    cached = getattr(embedder, "encode_cached", None)
    return cached(texts) if cached is not None else embedder.encode(texts)


def select(ranked: Sequence[Candidate], passages: Sequence[Passage]) -> list[Candidate]:
    """≤ 3 sentences from ≤ 2 sources: the best sentence, its continuation, then the next best of the same
    source (facts sit near each other), or of a second source when that one matches nearly as well."""
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    by_position = {(c.passage, c.order): c for c in ranked}
    after = by_position.get((best.passage, best.order + 1))
    if after is not None and after.score >= NEIGHBOUR_RATIO * best.score:
        chosen.append(after)
    first = _source_key(passages[best.passage])
    second: str | None = None
    for c in ranked[1:]:
        if len(chosen) >= MAX_SENTENCES:
            break
        key = _source_key(passages[c.passage])
        if c in chosen or any(c.text == o.text for o in chosen):
            continue
        if key == first or key == second:
            chosen.append(c)
        elif second is None and c.score >= SECOND_SOURCE_RATIO * best.score:
            second = key
            chosen.append(c)
    return sorted(chosen, key=lambda c: (_source_key(passages[c.passage]) != first, c.passage, c.order))


def _source_key(p: Passage) -> str:
    return f"{p.source_type}:{p.source_id}"


def compose(chosen: Sequence[Candidate], passages: Sequence[Passage]) -> str:
    """The answer text: the sentences as written, then one "Source" line per cited source (linked when the source
    has a URL — the only links the answer ever contains)."""
    body = " ".join(c.text for c in chosen)
    cited: list[Passage] = []
    for c in chosen:
        if all(_source_key(p) != _source_key(passages[c.passage]) for p in cited):
            cited.append(passages[c.passage])
    lines = [f"Source: [{p.title}]({p.url})" if p.url else f"Source: {p.title}" for p in cited]
    return body + "\n\n" + "\n".join(lines)


class ExtractiveProvider:
    """``Provider`` with no model. Uses sentences pre-ranked by the pipeline (``passage.extra["ranked"]`` on the
    first passage) when present, so each sentence is embedded once per question."""

    name = "extractive"

    def __init__(self, embedder: Any | None = None):
        self.embedder = embedder

    def answer(self, request: ChatRequest) -> str:
        passages = list(request.passages)
        ranked = passages[0].extra.get("ranked") if passages else None
        if ranked is None:
            ranked = rank(request.question, passages, self.embedder)
        chosen = select(ranked, passages)
        return compose(chosen, passages) if chosen else ""

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        text = self.answer(request)
        # sentence by sentence, separators kept: the streamed text is the answer exactly, line breaks included
        parts = re.split(r"((?<=[.!?\n])\s+)", text) if text else []
        for i in range(0, len(parts), 2):
            yield StreamEvent(delta=parts[i] + (parts[i + 1] if i + 1 < len(parts) else ""))
        tokens_in = sum(len(p.content) for p in request.passages) // 4 + len(request.question) // 4
        yield StreamEvent(done=True, tokens_in=tokens_in, tokens_out=len(text) // 4, model="extractive")
