"""``chatsupport eval answers``: index a corpus in a throw-away instance, then ask every question as the first
message of a fresh conversation through ``AnswerEngine`` — the code path the widget uses — and score it as
shared/eval/README.md says:

- answerable: answered (not escalated), containing at least one expected fact, citing an expected source;
- unanswerable: declined (no sources) or escalated;
- escalate: escalated for a reason other than ``low_confidence``.

Corpus indexing is ``retrieval.evaluation``'s, so both evaluations see the same chunks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import urlsplit

from chatsupport.domain import conversations as states
from chatsupport.llm.answer import AnswerEngine, Turn
from chatsupport.llm.base import Provider
from chatsupport.retrieval.evaluation import index_corpus, percentile, read_questions
from chatsupport.store import chatbots, workspaces
from chatsupport.store.db import Database
from chatsupport.store.instance_state import utc_now
from chatsupport.store.migrations import migrate

KINDS = ("answerable", "unanswerable", "escalate")
# The eval measures answers, not the typing indicator.
EVAL_SETTINGS = {"behavior_settings": {"response_delay": 0}}


def make_provider(kind: str, model: str = "", base_url: str = "", api_key: str = "") -> Provider | None:
    """None means the engine's built-in extractive provider."""
    if kind == "extractive":
        return None
    allow = (urlsplit(base_url).hostname or "",) if base_url else ()
    if kind == "openai":
        from chatsupport.llm.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(base_url=base_url, model=model, api_key=api_key, allowlist=allow)
    if kind == "anthropic":
        from chatsupport.llm.providers.anthropic import AnthropicProvider

        return AnthropicProvider(base_url=base_url, model=model, api_key=api_key, allowlist=allow)
    if kind == "local":
        from chatsupport.llm.providers.local import LocalProvider, shared_model

        if not model or not Path(model).is_file():
            raise ValueError("--provider local needs --model PATH to a .gguf file")
        return LocalProvider(shared_model(Path(model), n_ctx=4096, n_threads=1, n_threads_batch=1))
    raise ValueError(f"unknown provider {kind!r}")


def new_eval_chatbot(db: Database) -> tuple[str, str]:
    chatbot_id = str(uuid.uuid4())

    def write(conn: Any) -> str:
        workspace = workspaces.create(conn, f"eval-{chatbot_id[:8]}")
        now = utc_now()
        chatbots.insert(conn, {"id": chatbot_id, "workspace_id": workspace["id"], "name": "eval", "description": None,
                               "status": "active", "settings": EVAL_SETTINGS, "public_key": secrets.token_urlsafe(16),
                               "identity_secret": secrets.token_urlsafe(32), "allowed_origins": [], "version": 1,
                               "created_by": None, "created_at": now, "updated_at": now})
        return str(workspace["id"])

    return db.write(write), chatbot_id


async def ask_all(engine: AnswerEngine, workspace_id: str, chatbot_id: str, questions: list[dict[str, Any]],
                  sources: dict[str, str]) -> list[dict[str, Any]]:
    records = []
    for question in questions:
        conversation_id = engine.db.write(lambda conn: states.start(conn, workspace_id, chatbot_id))
        started = time.perf_counter()
        turn = await engine.ask(workspace_id, conversation_id, question["question"])
        records.append(record(question, turn, sources, (time.perf_counter() - started) * 1000))
    return records


def record(question: dict[str, Any], turn: Turn, sources: dict[str, str], ms: float) -> dict[str, Any]:
    cited = [sources.get(s["source_id"], s["source_id"]) for s in turn.sources]
    return {"id": question["id"], "outcome": turn.outcome, "answer": turn.answer,
            "sources": [] if turn.outcome == "declined" else cited, "confidence": turn.confidence,
            "escalated": turn.escalated, "reason": turn.reason, "provider": turn.provider, "ms": round(ms, 1)}


def correct(question: dict[str, Any], rec: dict[str, Any]) -> bool:
    kind = question.get("kind", "answerable")
    if kind == "answerable":
        answer = rec["answer"].lower()
        return (rec["outcome"] == "answered" and any(f.lower() in answer for f in question.get("answer_facts", []))
                and bool(set(rec["sources"]) & set(question.get("expected_sources", []))))
    if kind == "unanswerable":
        return rec["outcome"] == "declined" or rec["escalated"]
    return rec["escalated"] and rec["reason"] != "low_confidence"


def score(records: list[dict[str, Any]], questions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_id = {q["id"]: q for q in questions}
    table: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [r for r in records if by_id[r["id"]].get("kind", "answerable") == kind]
        if mine:
            hits = sum(1 for r in mine if correct(by_id[r["id"]], r))
            ms = sorted(r["ms"] for r in mine)
            table[kind] = {"share": hits / len(mine), "correct": hits, "questions": len(mine),
                           "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)}
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = [f"{'kind':<13} {'share':>6} {'correct':>8} {'p50 ms':>7} {'p95 ms':>7}"]
    for kind, row in table.items():
        lines.append(f"{kind:<13} {row['share']:>6.3f} {int(row['correct']):>4}/{int(row['questions']):<3} "
                     f"{row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f}")
    return "\n".join(lines)


def evaluate(corpus: Path, questions_path: Path, embedder: Any, provider: Provider | None = None,
             out: Path | None = None, stdout: TextIO = sys.stdout,
             progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    questions = read_questions(questions_path)
    with tempfile.TemporaryDirectory(prefix="chatsupport-eval-") as tmp:
        database = Path(tmp) / "eval.db"
        migrate(database)
        db = Database(database, synchronous="NORMAL")
        try:
            workspace_id, chatbot_id = new_eval_chatbot(db)
            sources, stats = index_corpus(db, embedder, chatbot_id, corpus, progress)
            progress(f"indexed in {stats.total_seconds:.1f}s; asking {len(questions)} questions")
            engine = AnswerEngine(db, embedder, provider)
            records = asyncio.run(ask_all(engine, workspace_id, chatbot_id, questions, sources))
        finally:
            db.close()
    table = score(records, questions)
    name = records[0]["provider"] if records and records[0]["provider"] else (getattr(provider, "name", None)
                                                                              or "extractive")
    print(f"corpus {corpus}: {stats.documents} documents, {stats.chunks} chunks; provider {name}", file=stdout)
    print(format_table(table), file=stdout)
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return {"table": table, "records": records}
