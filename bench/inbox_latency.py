"""Benchmark: server time of the inbox on a generated history (bench/inbox_history.py).

Usage: PYTHONPATH=. .venv/bin/python bench/inbox_latency.py DATA_DIR [--runs 30]

Times the domain functions the API handlers call (no HTTP, no JSON encoding), each on a warm reader, and prints
p50 and p95 in milliseconds for: the inbox first page; a filtered list (status + tag + date range); a keyset page
deep in history (half-way down); full-text search for common words (alone and with filters) and a rare one. Each list call includes
what the API returns with it: total (capped), counts per status, previews and the unread flags. Target (issue 7):
p95 ≤ 100 ms each at 100k conversations / 1M messages.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from chatsupport.domain import conversation_search, conversation_views
from chatsupport.domain.audit import Actor
from chatsupport.domain.conversation_filters import from_query
from chatsupport.domain.conversations import STATUSES
from chatsupport.store.db import Database
from quick import add_quick_flag, write_results

WORKSPACE = "bench-workspace"


@dataclass
class BenchContext:
    """What the list and search functions read from the running app: the database."""
    db: Database


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    result = fn()  # warm the page cache and the statement cache
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], result


def rare_word(db: Database) -> str:
    """A word in a handful of messages: the longest-tailed entry of the index's vocabulary we can find cheaply."""
    db.write(lambda conn: conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.bench_vocab USING fts5vocab(main, conversation_text, row)"))
    row = db.write(lambda conn: conn.execute(
        "SELECT term FROM temp.bench_vocab WHERE doc BETWEEN 3 AND 10 AND length(term) > 6"
        " AND term NOT GLOB '*[^a-z]*' LIMIT 1").fetchone())
    return row["term"] if row else "zzzz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--runs", type=int, default=30)
    add_quick_flag(parser, "10 runs per case (use on an inbox_history.py --quick data dir)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 10
    rows = {}
    db = Database(args.data_dir / "chatsupport.db")
    ctx = BenchContext(db)
    agent = db.query_one("SELECT id, email FROM users WHERE workspace_id = ? LIMIT 1", (WORKSPACE,))
    actor = Actor(agent["id"], WORKSPACE, "agent", agent["email"], "Bench Agent")  # type: ignore[index]
    size = db.query_one("SELECT count(*) AS n FROM conversations")["n"]  # type: ignore[index]
    deep = db.query_one("SELECT updated_at, id FROM conversations WHERE workspace_id = ? AND status != 'archived'"
                        " ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET ?", (WORKSPACE, size // 2))
    cursor = conversation_views.encode_cursor("-updated_at", deep, 2) if deep else None
    since = (datetime.now(timezone.utc) - timedelta(days=90)).strftime("%Y-%m-%d")
    filtered = from_query({"status": "resolved", "tags": "billing", "start": since})
    rare = rare_word(db)
    every = from_query({"status": ",".join(STATUSES)})
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("inbox first page", lambda: conversation_views.list_conversations(ctx, actor)),
        ("filtered list (status+tag+date)", lambda: conversation_views.list_conversations(ctx, actor,
                                                                                          filters=filtered)),
        ("deep keyset page", lambda: conversation_views.list_conversations(ctx, actor, cursor=cursor)),
        ("search common word 'the'", lambda: conversation_search.search(ctx, actor, "the")),
        ("search common words 'the token'", lambda: conversation_search.search(ctx, actor, "the token")),
        ("search 'the token' + status + tag", lambda: conversation_search.search(
            ctx, actor, "the token", from_query({"status": "escalated,resolved", "tags": "billing"}))),
        (f"search rare word '{rare}', any status", lambda: conversation_search.search(ctx, actor, rare, every)),
    ]
    print(f"{size:,} conversations; {args.runs} runs each")
    print(f"{'case':<40}{'p50 ms':>9}{'p95 ms':>9}  result")
    for name, fn in cases:
        p50, p95, result = timed(fn, args.runs)
        total = result["pagination"]["total"]
        capped = "+" if result["pagination"]["total_capped"] else ""
        print(f"{name:<40}{p50:>9.1f}{p95:>9.1f}  {len(result['data'])} rows of {total}{capped}")
        rows[name] = {"p50_ms": p50, "p95_ms": p95, "rows": len(result["data"]), "total": total}
    db.close()
    write_results("inbox_latency", args, {"conversations": size, "runs": args.runs, "cases": rows})


if __name__ == "__main__":
    main()
