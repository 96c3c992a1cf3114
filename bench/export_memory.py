"""Benchmark: a bulk export's memory stays flat however many conversations it writes.

Usage: PYTHONPATH=. .venv/bin/python bench/export_memory.py [--conversations 2000] [--messages 10] [--formats csv,json]
Seeds a fresh database in a temporary folder (N conversations with M messages each, created through plain SQL
so the search triggers run as in production), then runs the export job (``domain.exports.run``, what the Huey task
calls) with messages for each format while a thread samples the process's resident memory every 10 ms. Prints per
format: conversations, seconds, conversations/s, file size, and peak RSS growth over the RSS just before the
export. Flat means the growth does not scale with N: compare a run at 2,000 with one at 100,000.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chatsupport.config import Settings
from chatsupport.domain import exports
from chatsupport.domain.audit import Actor
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate
from chatsupport.store.presence import stamp
from quick import add_quick_flag, write_results

CHUNK = 2000


@dataclass
class BenchContext:
    db: Database
    settings: Settings
    secret_key: str = ""


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def seed(db: Database, conversations: int, messages: int) -> Actor:
    workspace, user, bot = "ws_bench", "u_bench", "bot_bench"

    def base(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute("INSERT INTO workspaces(id, name, slug) VALUES (?, 'Bench', 'bench')", (workspace,))
        conn.execute("INSERT INTO users(id, workspace_id, email, role, display_name) VALUES (?, ?,"
                     " 'owner@bench.example', 'owner', 'Owner')", (user, workspace))
        conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret)"
                     " VALUES (?, ?, 'Bench Bot', 'pk_bench', 'secret')", (bot, workspace))

    db.write(base)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    for first in range(0, conversations, CHUNK):
        def chunk(conn, first: int = first) -> None:  # type: ignore[no-untyped-def]
            for i in range(first, min(first + CHUNK, conversations)):
                created, conv, customer = start + timedelta(seconds=i), str(uuid.uuid4()), str(uuid.uuid4())
                conn.execute("INSERT INTO customers(id, workspace_id, name, email) VALUES (?, ?, ?, ?)",
                             (customer, workspace, f"Customer {i}", f"c{i}@example.com"))
                conn.execute("INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, tags,"
                             " message_count, created_at, updated_at) VALUES (?, ?, ?, ?, 'resolved', '[\"bench\"]',"
                             " ?, ?, ?)", (conv, workspace, bot, customer, messages, stamp(created), stamp(created)))
                for n in range(messages):
                    kind = "customer" if n % 2 == 0 else "bot"
                    conn.execute("INSERT INTO messages(id, conversation_id, sender_type, content, ai_metadata,"
                                 " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                                 (str(uuid.uuid4()), conv, kind, f"Message {n} of conversation {i}. " * 4,
                                  json.dumps({"sources": [{"title": "Guide", "url": "https://x.example"}]})
                                  if kind == "bot" else None, stamp(created + timedelta(milliseconds=n))))

        db.write(chunk)
    return Actor(user_id=user, workspace_id=workspace, role="owner", email="owner@bench.example",
                 display_name="Owner")


def measure(ctx: BenchContext, actor: Actor, root: Path, fmt: str) -> dict[str, float]:
    accepted = exports.request_export(ctx, actor, filters={"status": ["resolved"]}, fmt=fmt, fields=None,
                                      include_messages=True)
    gc.collect()
    baseline, peak, running = rss_kib(), [0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], rss_kib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    exports.run(ctx.db, root, accepted["export_id"])
    elapsed = time.perf_counter() - began
    running[0] = False
    sampler.join()
    row = ctx.db.query_one("SELECT status, done, size, error FROM exports WHERE id = ?", (accepted["export_id"],))
    if row is None or row["status"] != "completed":
        raise SystemExit(f"export did not complete: {row}")
    return {"rows": row["done"], "seconds": elapsed, "per_s": row["done"] / elapsed, "mib": row["size"] / 2**20,
            "growth_mib": max(0, peak[0] - baseline) / 1024, "baseline_mib": baseline / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--formats", default="csv,json")
    add_quick_flag(parser, "2,000 conversations x 10 messages")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.messages = 2000, 10
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        migrate(path)
        db = Database(path, synchronous="NORMAL")
        try:
            began = time.perf_counter()
            actor = seed(db, args.conversations, args.messages)
            print(f"seeded {args.conversations} conversations x {args.messages} messages"
                  f" in {time.perf_counter() - began:.1f} s")
            ctx = BenchContext(db, Settings())
            print(f"{'format':<8}{'conversations':>14}{'seconds':>9}{'conv/s':>9}{'file MiB':>10}"
                  f"{'RSS before MiB':>16}{'peak growth MiB':>17}")
            for fmt in args.formats.split(","):
                r = rows[fmt] = measure(ctx, actor, Path(tmp) / "exports", fmt)
                print(f"{fmt:<8}{r['rows']:>14.0f}{r['seconds']:>9.2f}{r['per_s']:>9.0f}{r['mib']:>10.1f}"
                      f"{r['baseline_mib']:>16.1f}{r['growth_mib']:>17.1f}")
        finally:
            db.close()
    write_results("export_memory", args, {"conversations": args.conversations, "messages": args.messages,
                                          "formats": rows})


if __name__ == "__main__":
    main()
