"""Generate an inbox history for the inbox benchmarks: N conversations with M messages over about a year.

Usage: PYTHONPATH=. .venv/bin/python bench/inbox_history.py DATA_DIR [--conversations 100000] [--messages 1000000] [--seed 7]

Writes DATA_DIR/chatsupport.db through the real migrations, then inserts rows with plain SQL in a few big
transactions (the search triggers index them as they go, exactly as in production). Message text is sentences
cut from the Markdown corpora in /work/shared/corpora, so word frequencies are realistic: "the" is in most
messages, a product name in a handful. Conversations are created in time order (FTS rowids follow time, as they
do live); older ones are mostly resolved or archived, recent ones active, waiting, escalated or with an agent.
Prints what it made and how long it took.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from chatsupport.store.db import connect
from chatsupport.store.migrations import migrate
from quick import add_quick_flag, write_results

CORPORA = Path("/work/shared/corpora")
WORKSPACE = "bench-workspace"
TAGS = ("billing", "refund", "bug", "vip", "urgent", "login", "shipping", "api", "feedback", "cancel")
FIRST = ("Ann", "Bob", "Chloé", "Dev", "Eva", "Farid", "Gus", "Hana", "Ivo", "Jana", "Kofi", "Lena", "Mateo", "Noor")
LAST = ("Smith", "Garcia", "Müller", "Okafor", "Tanaka", "Rossi", "Novak", "Silva", "Haddad", "Kim", "Larsen")
SENDERS = ("customer", "bot", "customer", "bot", "agent")
BATCH = 20_000


def sentences() -> list[str]:
    """Plain sentences of 4-40 words from the corpora (Markdown syntax and code blocks dropped)."""
    found: list[str] = []
    for path in sorted(CORPORA.rglob("*.md")):
        text = re.sub(r"```.*?```", " ", path.read_text(errors="ignore"), flags=re.S)
        text = re.sub(r"[#*_`>\[\]()|]|https?://\S+", " ", text)
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            if 4 <= len(sentence.split()) <= 40:
                found.append(sentence)
    if not found:
        raise SystemExit(f"no text found under {CORPORA}")
    return found


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def status_for(age_days: float, rng: random.Random) -> str:
    if age_days > 30:
        return rng.choices(("resolved", "archived", "abandoned"), (5, 4, 1))[0]
    if age_days > 2:
        return rng.choices(("resolved", "abandoned", "waiting", "escalated"), (7, 1, 1, 1))[0]
    return rng.choices(("active", "waiting", "escalated", "agent_handling", "resolved"), (4, 2, 1, 1, 2))[0]


def setup(conn: Any, agents: int, bots: int) -> tuple[list[str], list[str]]:
    conn.execute("INSERT INTO workspaces(id, name, slug) VALUES (?, 'Bench', 'bench')", (WORKSPACE,))
    agent_ids = [f"bench-agent-{i}" for i in range(agents)]
    for i, agent_id in enumerate(agent_ids):
        conn.execute("INSERT INTO users(id, workspace_id, email, password_hash, role, display_name)"
                     " VALUES (?, ?, ?, 'x', 'agent', ?)", (agent_id, WORKSPACE, f"agent{i}@bench.example",
                                                            f"Agent {i}"))
    bot_ids = [f"bench-bot-{i}" for i in range(bots)]
    for i, bot_id in enumerate(bot_ids):
        conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret)"
                     " VALUES (?, ?, ?, ?, 'x')", (bot_id, WORKSPACE, f"Bot {i}", f"pk_bench_{i}"))
    return agent_ids, bot_ids


def generate(conn: Any, conversations: int, messages: int, seed: int) -> Iterator[int]:
    """Insert everything; yields the number of conversations written after each batch."""
    rng = random.Random(seed)
    text = sentences()
    agent_ids, bot_ids = setup(conn, agents=8, bots=3)
    now = datetime.now(timezone.utc)
    starts = sorted(now - timedelta(days=365 * rng.random() ** 1.5) for _ in range(conversations))
    per = max(1, messages // conversations)
    customers: list[str] = []
    rows: dict[str, list[tuple[Any, ...]]] = {"customers": [], "conversations": [], "messages": [], "notes": []}
    for index, created in enumerate(starts):
        if not customers or rng.random() < 0.7:
            customer_id = str(uuid.uuid4())
            first, last = rng.choice(FIRST), rng.choice(LAST)
            rows["customers"].append((customer_id, WORKSPACE, f"{first} {last}",
                                      f"{first.lower()}.{last.lower()}{len(customers)}@mail.example", stamp(created)))
            customers.append(customer_id)
        else:
            customer_id = rng.choice(customers)
        count = max(1, min(4 * per, round(rng.expovariate(1 / per))))
        moment, conversation_id = created, str(uuid.uuid4())
        counts = {"customer": 0, "bot": 0, "agent": 0}
        for _ in range(count):
            sender = rng.choice(SENDERS)
            counts[sender] += 1
            body = " ".join(rng.choice(text) for _ in range(rng.randint(1, 3)))
            rows["messages"].append((str(uuid.uuid4()), conversation_id, sender, body, stamp(moment)))
            moment += timedelta(seconds=rng.randint(5, 600))
        status = status_for((now - created).total_seconds() / 86400, rng)
        agent = rng.choice(agent_ids) if status == "agent_handling" or rng.random() < 0.3 else None
        rating = rng.choice((1, 2, 3, 4, 4, 5, 5, 5)) if status in ("resolved", "archived") and rng.random() < 0.4 \
            else None
        tags = json.dumps(rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2))))
        closed = stamp(moment) if status in ("resolved", "archived") else None
        rows["conversations"].append((conversation_id, WORKSPACE, rng.choice(bot_ids), customer_id, status, agent,
                                      tags, count, counts["bot"], counts["agent"], counts["customer"], rating,
                                      stamp(created), stamp(moment), stamp(moment), closed))
        if rng.random() < 0.05:
            rows["notes"].append((str(uuid.uuid4()), conversation_id, rng.choice(text), rng.choice(agent_ids),
                                  stamp(moment)))
        if len(rows["messages"]) >= BATCH or index == conversations - 1:
            flush(conn, rows)
            yield index + 1


def flush(conn: Any, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    with conn:
        conn.executemany("INSERT INTO customers(id, workspace_id, name, email, first_seen_at) VALUES (?, ?, ?, ?, ?)",
                         rows["customers"])
        conn.executemany(
            "INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, assigned_agent_id, tags,"
            " message_count, ai_message_count, agent_message_count, customer_message_count, satisfaction_rating,"
            " created_at, updated_at, last_message_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?)", rows["conversations"])
        conn.executemany("INSERT INTO messages(id, conversation_id, sender_type, content, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", rows["messages"])
        conn.executemany("INSERT INTO internal_notes(id, conversation_id, content, author_id, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", rows["notes"])
    for batch in rows.values():
        batch.clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    add_quick_flag(parser, "5,000 conversations, 50,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.messages = 5000, 50_000
    path = args.data_dir / "chatsupport.db"
    if path.exists():
        raise SystemExit(f"{path} exists; give an empty data dir")
    began = time.perf_counter()
    migrate(path)
    conn = connect(path, synchronous="NORMAL")
    for done in generate(conn, args.conversations, args.messages, args.seed):
        print(f"\r{done:,} conversations", end="", flush=True)
    conn.execute("PRAGMA optimize")
    made = conn.execute("SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m,"
                        " (SELECT count(*) FROM internal_notes) AS n").fetchone()
    conn.close()
    print(f"\n{made['c']:,} conversations, {made['m']:,} messages, {made['n']:,} notes in {path}"
          f" ({time.perf_counter() - began:.1f} s, {path.stat().st_size / 1e6:.0f} MB)")
    write_results("inbox_history", args, {"conversations": made["c"], "messages": made["m"], "notes": made["n"],
                                          "seconds": time.perf_counter() - began, "mb": path.stat().st_size / 1e6})


if __name__ == "__main__":
    main()
