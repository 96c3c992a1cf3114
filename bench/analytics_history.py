"""Benchmark helper and script: a generated conversation history for analytics, then the rollup backfill.

Usage: PYTHONPATH=. .venv/bin/python bench/analytics_history.py [--messages 1000000] [--days 90] [--bots 3]
Writes a fresh database in a temporary folder with plain SQL (the analytics triggers run as in production):
conversations spread over ``--days`` with a daily and hourly rhythm, ~8 messages each (customer, bot and agent),
intents, sentiment, thumbs, ratings, escalations and returning customers. Then runs the rollup backfill
(``domain.analytics.backfill``, what the Huey job does after an upgrade) and prints both times and the row counts.
``bench/analytics_latency.py`` reuses ``generate`` to measure the endpoints over the same kind of history.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from chatsupport.domain import analytics
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate

INTENTS = ["billing_question", "technical_support", "account", "shipping", "returns", "pricing", "hours", "other"]
QUESTIONS = ["How do I reset my password?", "Where is my order?", "Can I get a refund?", "What are your opening hours?",
             "Do you ship to Canada?", "How much is the pro plan?", "My invoice is wrong", "The app keeps crashing"]
SENTIMENTS = ["very_positive", "positive", "neutral", "neutral", "negative", "very_negative"]
REASONS = ["low_confidence", "user_request", "frustration_detected", "max_failed_responses"]
BATCH = 2000


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _conversation(rng: random.Random, start: datetime, workspace_id: str, chatbot_id: str, customer: str,
                  agents: Sequence[str]) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    conversation_id = str(uuid.uuid4())
    escalated = rng.random() < 0.2
    agent = rng.choice(agents) if escalated and agents else None
    status = rng.choices(["resolved", "abandoned", "active", "escalated"], [70, 20, 5, 5])[0]
    turns = max(1, int(rng.gauss(4, 1.5)))
    rows, at = [], start
    for turn in range(turns):
        text = rng.choice(QUESTIONS) if turn == 0 else "and another thing"
        rows.append((str(uuid.uuid4()), conversation_id, "customer", customer, text, None,
                     rng.choice(INTENTS) if turn == 0 else None, rng.random() if turn == 0 else None,
                     rng.choice(SENTIMENTS), None, stamp(at)))
        at += timedelta(seconds=rng.uniform(0.5, 4))
        sender = "agent" if agent and turn > 0 else "bot"
        rows.append((str(uuid.uuid4()), conversation_id, sender, agent if sender == "agent" else None, "An answer.",
                     json.dumps({"confidence": round(rng.random(), 3)}) if sender == "bot" else None, None, None,
                     None, rng.choices([None, "up", "down"], [80, 15, 5])[0], stamp(at)))
        at += timedelta(seconds=rng.uniform(5, 120))
    resolved = status == "resolved"
    conversation = (conversation_id, workspace_id, chatbot_id, customer, status, agent,
                    rng.choice([None, None, 3, 4, 5, 5, 1, 2]) if resolved else None,
                    rng.choice(REASONS) if escalated else None, agent if resolved else None,
                    stamp(at) if resolved else None, len(rows), stamp(start), stamp(at))
    return conversation, rows


def generate(db: Database, workspace_id: str, chatbot_ids: Sequence[str], agent_ids: Sequence[str], messages: int,
             days: int, seed: int = 11) -> dict[str, int]:
    """Write about ``messages`` messages of history ending now; returns the conversation and message counts."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    customers = [str(uuid.uuid4()) for _ in range(max(1, messages // 40))]
    db.write(lambda conn: conn.executemany("INSERT INTO customers(id, workspace_id) VALUES (?, ?)",
                                           [(c, workspace_id) for c in customers]))
    written = conversations = 0
    while written < messages:
        batch_conversations, batch_messages = [], []
        while len(batch_messages) < BATCH and written + len(batch_messages) < messages:
            day = rng.random() ** 1.3 * days      # more recent days are busier
            hour = rng.choices(range(24), [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 12, 13, 14, 13, 12, 10, 8, 6, 4,
                                           3, 2, 1])[0]
            start = (now - timedelta(days=day)).replace(hour=hour, minute=rng.randint(0, 59))
            if start > now:
                start -= timedelta(days=1)
            conversation, rows = _conversation(rng, start, workspace_id, rng.choice(chatbot_ids),
                                               rng.choice(customers), agent_ids)
            batch_conversations.append(conversation)
            batch_messages.extend(rows)

        def write(conn: Any, cs: list[tuple[Any, ...]] = batch_conversations,
                  ms: list[tuple[Any, ...]] = batch_messages) -> None:
            conn.executemany(
                "INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, assigned_agent_id,"
                " satisfaction_rating, escalation_reason, resolved_by, resolved_at, message_count, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cs)
            conn.executemany(
                "INSERT INTO messages(id, conversation_id, sender_type, sender_id, content, ai_metadata, intent,"
                " intent_confidence, sentiment, feedback, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ms)

        db.write(write)
        written += len(batch_messages)
        conversations += len(batch_conversations)
    return {"conversations": conversations, "messages": written}


def base_rows(db: Database) -> tuple[str, list[str], list[str]]:
    """A workspace with three agents and three chatbots, straight into the tables."""
    workspace = "ws_bench"
    agents = [f"agent_{n}" for n in range(3)]
    bots = [f"bot_{n}" for n in range(3)]

    def write(conn: Any) -> None:
        conn.execute("INSERT INTO workspaces(id, name, slug) VALUES (?, 'Bench', 'bench')", (workspace,))
        for agent in agents:
            conn.execute("INSERT INTO users(id, workspace_id, email, role, display_name) VALUES (?, ?, ?, 'agent', ?)",
                         (agent, workspace, f"{agent}@bench.example", agent))
        for bot in bots:
            conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret)"
                         " VALUES (?, ?, ?, ?, 'secret')", (bot, workspace, bot, f"pk_{bot}"))

    db.write(write)
    return workspace, bots, agents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        migrate(path)
        db = Database(path, synchronous="NORMAL")
        workspace, bots, agents = base_rows(db)
        started = time.perf_counter()
        counts = generate(db, workspace, bots, agents, args.messages, args.days)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        result = analytics.roll_up(db, budget_seconds=24 * 3600)
        backfill = time.perf_counter() - started
        rows = {table: db.query_one(f"SELECT count(*) AS n FROM {table}")["n"] for table in
                ("analytics_buckets", "analytics_dimensions", "analytics_agents", "analytics_conversations")}
        print(f"history: {counts['conversations']:,} conversations, {counts['messages']:,} messages over "
              f"{args.days} days, generated in {generated:.1f} s")
        print(f"rollup backfill: {result['ranges']:,} ranges, {result['conversations']:,} conversations in "
              f"{backfill:.1f} s ({result['conversations'] / backfill:,.0f} conversations/s); pending "
              f"{result['pending']}")
        print("rollup rows: " + ", ".join(f"{table} {n:,}" for table, n in rows.items()))
        db.close()


if __name__ == "__main__":
    main()
