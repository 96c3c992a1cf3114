"""``chatsupport eval retrieval``: index a corpus in a throw-away instance and score the three search modes.

Every .md/.mdx/.txt/.html/.pdf/.docx file under the corpus (LICENSE* and SOURCE.txt excepted) becomes one document whose
source is its path relative to the corpus folder. PDF and DOCX go through the ingestion extractors; a file they
cannot read (or a checkout without them) is skipped and counted, not fatal. All chunks of the corpus are embedded in one batched call — the model's own speed —
then written document by document. Each question runs in ``keyword``, ``vector`` and ``hybrid`` mode (the first
two are hybrid's own halves) and is scored as in shared/eval/README.md: recall@5 and MRR@10 over distinct sources
for answerable questions, latency over all questions.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from chatsupport.ingest.chunking import Chunk, Chunker, chunk_document
from chatsupport.ingest.markdown_clean import CleanDocument, clean_markdown, html_to_markdown
from chatsupport.retrieval import indexing
from chatsupport.retrieval.search import MODES, search
from chatsupport.store import chatbots, knowledge_index, workspaces
from chatsupport.store.db import Database
from chatsupport.store.instance_state import utc_now
from chatsupport.store.migrations import migrate

TEXT_SUFFIXES = {".md", ".mdx", ".txt", ".html", ".htm"}
LATER_SUFFIXES = {".pdf", ".docx"}
TOP_SOURCES = 10


@dataclass
class IndexStats:
    documents: int
    chunks: int
    skipped: list[str]
    embed_seconds: float
    total_seconds: float


def corpus_files(root: Path) -> list[Path]:
    """Indexable files (text kinds, plus PDF/DOCX for the extractors), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.upper().startswith("LICENSE")
                  and p.name != "SOURCE.txt" and p.suffix.lower() in TEXT_SUFFIXES | LATER_SUFFIXES)


def load_document(path: Path) -> CleanDocument:
    raw = path.read_text(encoding="utf-8", errors="replace")
    fallback = path.stem.replace("-", " ").replace("_", " ")
    if path.suffix.lower() in {".html", ".htm"}:
        return html_to_markdown(raw, fallback)
    return clean_markdown(raw, fallback)


def file_chunks(path: Path, chunker: Chunker) -> tuple[str, list[Chunk]] | None:
    """(title, chunks) of one file; None for a PDF/DOCX the ingestion extractors cannot read (or are absent)."""
    if path.suffix.lower() in TEXT_SUFFIXES:
        doc = load_document(path)
        return doc.title, chunk_document(chunker, doc.title, doc.text, doc.description)
    try:
        from chatsupport.ingest.extract import extract

        extracted = extract(path, path.suffix.lower().lstrip("."), path.stem)
    except Exception:  # noqa: BLE001 - a file the extractors refuse is reported as skipped, not fatal
        return None
    chunks = [c for page in extracted.pages for c in chunker.chunk(page.text, extracted.title,
                                                                   page_number=page.number)]
    for position, chunk in enumerate(chunks):
        chunk.position = position
    return extracted.title, chunks


def new_chatbot(db: Database, name: str = "eval") -> str:
    chatbot_id = str(uuid.uuid4())

    def write(conn: Any) -> None:
        workspace = workspaces.create(conn, f"{name}-{chatbot_id[:8]}")
        now = utc_now()
        chatbots.insert(conn, {"id": chatbot_id, "workspace_id": workspace["id"], "name": name, "description": None,
                               "status": "active", "settings": {}, "public_key": secrets.token_urlsafe(16),
                               "identity_secret": secrets.token_urlsafe(32), "allowed_origins": [], "version": 1,
                               "created_by": None, "created_at": now, "updated_at": now})

    db.write(write)
    return chatbot_id


def index_corpus(db: Database, embedder: Any, chatbot_id: str, root: Path,
                 progress: Callable[[str], None]) -> tuple[dict[str, str], IndexStats]:
    """Index every file; returns document id → source path and timings."""
    started = time.perf_counter()
    chunker = Chunker(embedder.count_tokens, max_tokens=embedder.max_tokens)
    per_file: list[tuple[str, str, list[Chunk]]] = []
    skipped: list[str] = []
    for path in corpus_files(root):
        source = path.relative_to(root).as_posix()
        loaded = file_chunks(path, chunker)
        if loaded is None:
            skipped.append(source)
        else:
            per_file.append((source, loaded[0], loaded[1]))
    every_chunk = [c for _, _, chunks in per_file for c in chunks]
    progress(f"{len(per_file)} files, {len(every_chunk)} chunks; embedding")
    embed_started = time.perf_counter()
    vectors = indexing.embed(embedder, every_chunk)
    embed_seconds = time.perf_counter() - embed_started
    sources: dict[str, str] = {}
    offset = 0
    for source, title, chunks in per_file:
        document_id = db.write(lambda conn: knowledge_index.add_document(conn, chatbot_id, title=title,
                                                                         filename=source))
        indexing.write_chunks(db, embedder, chatbot_id, chunks, vectors[offset:offset + len(chunks)],
                              document_id=document_id)
        offset += len(chunks)
        sources[document_id] = source
    stats = IndexStats(len(per_file), len(every_chunk), skipped, embed_seconds, time.perf_counter() - started)
    return sources, stats


def run_questions(db: Database, embedder: Any, chatbot_id: str, questions: list[dict[str, Any]],
                  sources: dict[str, str]) -> list[dict[str, Any]]:
    records = []
    for question in questions:
        for mode in MODES:
            started = time.perf_counter()
            hits = search(db, embedder, chatbot_id, question["question"], top_k=TOP_SOURCES, mode=mode)
            ms = (time.perf_counter() - started) * 1000
            records.append({"id": question["id"], "config": mode, "sources": [sources[h.source_id] for h in hits],
                            "scores": [h.score for h in hits], "ms": round(ms, 2)})
    return records


def score(records: list[dict[str, Any]], questions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    expected = {q["id"]: set(q.get("expected_sources") or []) for q in questions}
    answerable = {q["id"] for q in questions if q.get("kind", "answerable") == "answerable" and expected[q["id"]]}
    table: dict[str, dict[str, float]] = {}
    for mode in MODES:
        mine = [r for r in records if r["config"] == mode]
        recall, rr = [], []
        for record in (r for r in mine if r["id"] in answerable):
            ranks = [i for i, s in enumerate(record["sources"][:TOP_SOURCES], 1) if s in expected[record["id"]]]
            recall.append(1.0 if ranks and ranks[0] <= 5 else 0.0)
            rr.append(1.0 / ranks[0] if ranks else 0.0)
        latencies = sorted(r["ms"] for r in mine)
        table[mode] = {"recall@5": _mean(recall), "mrr@10": _mean(rr), "p50_ms": percentile(latencies, 50),
                       "p95_ms": percentile(latencies, 95), "questions": len(recall)}
    return table


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def percentile(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values) + 0.5) - 1))]


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = [f"{'config':<8} {'recall@5':>8} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}"]
    for mode, row in table.items():
        lines.append(f"{mode:<8} {row['recall@5']:>8.3f} {row['mrr@10']:>7.3f} {row['p50_ms']:>7.1f} "
                     f"{row['p95_ms']:>7.1f}")
    return "\n".join(lines)


def read_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(corpus: Path, questions_path: Path, embedder: Any, out: Path | None = None,
             stdout: TextIO = sys.stdout, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The whole command: fresh instance in a temporary folder, index, query, print, optionally write JSONL."""
    questions = read_questions(questions_path)
    with tempfile.TemporaryDirectory(prefix="chatsupport-eval-") as tmp:
        database = Path(tmp) / "eval.db"
        migrate(database)
        db = Database(database, synchronous="NORMAL")
        try:
            chatbot_id = new_chatbot(db)
            sources, stats = index_corpus(db, embedder, chatbot_id, corpus, progress)
            progress(f"indexed in {stats.total_seconds:.1f}s ({stats.chunks / max(stats.embed_seconds, 1e-9):.1f}"
                     f" chunks/s embedding); {len(questions)} questions x {len(MODES)} configs")
            records = run_questions(db, embedder, chatbot_id, questions, sources)
        finally:
            db.close()
    table = score(records, questions)
    print(f"corpus {corpus}: {stats.documents} documents, {stats.chunks} chunks"
          + (f", {len(stats.skipped)} skipped (unreadable PDF/DOCX)" if stats.skipped else ""), file=stdout)
    print(format_table(table), file=stdout)
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return {"table": table, "stats": stats, "records": records}
