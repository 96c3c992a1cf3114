"""Benchmark: server-side time to the first answer byte on the extractive path (typing delay 0).

Usage:
  PYTHONPATH=. .venv/bin/python bench/answer_latency.py CORPUS_DIR QUESTIONS.jsonl [--pad-to N]
      [--provider extractive|local --model GGUF]
  PYTHONPATH=. .venv/bin/python bench/answer_latency.py --db INDEXED.db --chatbot ID QUESTIONS.jsonl

Each question is the first message of a fresh conversation through ``AnswerEngine.respond`` (the widget's code
path); the clock runs from the call to the first ``delta`` event, so it covers loading the conversation,
embedding, intent and sentiment, the escalation rules, storing the customer message, hybrid retrieval, sentence
ranking and the first streamed piece. ``--pad-to`` adds synthetic chunks (copies of real vectors with noise and
shuffled real words) to reach N chunks in the chatbot, to measure at scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chatsupport.domain import conversations as states
from chatsupport.llm.answer import AnswerEngine
from chatsupport.llm.evaluation import EVAL_SETTINGS, make_provider, new_eval_chatbot
from chatsupport.retrieval.embedder import shared_embedder
from chatsupport.retrieval.evaluation import index_corpus, read_questions
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate
from quick import add_quick_flag, write_results

rng = np.random.default_rng(11)


def pad(db: Database, chatbot_id: str, target: int) -> int:
    rows = db.query("SELECT c.content, v.embedding FROM knowledge_chunks c JOIN knowledge_chunk_vectors v"
                    " ON v.chunk_rowid = c.rowid WHERE c.chatbot_id = ?", (chatbot_id,))
    have = len(rows)
    vectors = np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows])
    # an array once: rng.choice on a list of ~2M words would convert it on every call
    vocabulary = np.array(" ".join(r["content"] for r in rows).split())
    for start in range(have, target, 500):
        count = min(500, target - start)
        picks = rng.integers(0, have, count)
        noisy = vectors[picks] + rng.normal(0, 0.04, (count, vectors.shape[1])).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        chunks = [{"title": f"padding {start}", "heading": "", "position": i,
                   "content": " ".join(rng.choice(vocabulary, 100))} for i in range(count)]
        doc = db.write(lambda conn: index.add_document(conn, chatbot_id, title=f"padding {start}"))
        db.write(lambda conn: index.replace_chunks(conn, chatbot_id, chunks, [v.tobytes() for v in noisy],
                                                   document_id=doc))
    return max(have, target)


async def first_byte_ms(engine: AnswerEngine, workspace_id: str, chatbot_id: str,
                        question: str) -> tuple[float, str | None]:
    """(ms to the first streamed piece, the provider that answered — None for declines and escalations, which
    stream a fixed notice without asking a provider)."""
    conversation = engine.db.write(lambda conn: states.start(conn, workspace_id, chatbot_id))
    started = time.perf_counter()
    first = None
    provider = None
    async for event in engine.respond(workspace_id, conversation, question):
        if first is None and event["type"] in ("delta", "message"):
            first = (time.perf_counter() - started) * 1000
        if event["type"] == "message":
            provider = event["turn"].provider if event["outcome"] == "answered" else None
    return first or 0.0, provider


async def measure(engine: AnswerEngine, workspace_id: str, chatbot_id: str,
                  questions: list[str]) -> list[tuple[float, str | None]]:
    await first_byte_ms(engine, workspace_id, chatbot_id, "warm up the caches")
    return [await first_byte_ms(engine, workspace_id, chatbot_id, q) for q in questions]


def report(results: list[tuple[float, str | None]], chunks: int) -> dict[str, dict[str, float]]:
    groups = {"all": [ms for ms, _ in results]}
    summary: dict[str, dict[str, float]] = {}
    for ms, provider in results:
        groups.setdefault(f"answered by {provider}" if provider else "declined or escalated", []).append(ms)
    for label, times in groups.items():
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(f"{chunks} chunks, {len(times)} questions ({label}): first byte p50 {statistics.median(times):.0f} ms, "
              f"p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms")
        summary[label] = {"questions": len(times), "p50_ms": statistics.median(times), "p95_ms": p95,
                          "max_ms": ordered[-1]}
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="[CORPUS_DIR] QUESTIONS.jsonl")
    parser.add_argument("--db", help="an already indexed database (with --chatbot)")
    parser.add_argument("--chatbot")
    parser.add_argument("--pad-to", type=int, default=0)
    parser.add_argument("--provider", default="extractive", choices=("extractive", "local"))
    parser.add_argument("--model", default="", help="GGUF path for --provider local")
    add_quick_flag(parser, "the corpus indexed as is (no padding), 20 questions")
    args = parser.parse_args(argv)
    questions = [q["question"] for q in read_questions(Path(args.paths[-1]))]
    if args.quick:
        questions, args.pad_to = questions[:20], 0
    embedder = shared_embedder()
    embedder.encode(["warm"])
    with tempfile.TemporaryDirectory(prefix="chatsupport-bench-") as tmp:
        if args.db:
            db = Database(Path(args.db), synchronous="NORMAL")
            chatbot_id = args.chatbot
            workspace_id = db.query_one("SELECT workspace_id FROM chatbots WHERE id = ?", (chatbot_id,))["workspace_id"]
            db.write(lambda conn: conn.execute("UPDATE chatbots SET settings = ? WHERE id = ?",
                                               (json.dumps(EVAL_SETTINGS), chatbot_id)))
        else:
            migrate(Path(tmp) / "bench.db")
            db = Database(Path(tmp) / "bench.db", synchronous="NORMAL")
            workspace_id, chatbot_id = new_eval_chatbot(db)
            index_corpus(db, embedder, chatbot_id, Path(args.paths[0]), lambda m: print(m, file=sys.stderr))
        try:
            chunks = pad(db, chatbot_id, args.pad_to) if args.pad_to else \
                db.query_one("SELECT count(*) AS n FROM knowledge_chunks WHERE chatbot_id = ?", (chatbot_id,))["n"]
            engine = AnswerEngine(db, embedder, make_provider(args.provider, args.model))
            summary = report(asyncio.run(measure(engine, workspace_id, chatbot_id, questions)), chunks)
            write_results("answer_latency", args, {"chunks": chunks, "provider": args.provider, **summary})
        finally:
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
