"""What each analytics metric means, and the rollup job that keeps the 15-minute buckets current.

A conversation is counted in the bucket it STARTED in, with its outcome as it stands now: when it is resolved
two days later, its start bucket is recomputed (triggers mark it dirty). Definitions, per conversation:

- ``escalated`` (human_escalated): a person was involved — ever escalated or taken over (status events), assigned
  an agent, given an escalation reason, or sent an agent message. Its escalation reason is the stored one, else
  ``agent_takeover``.
- ``ai_resolved_confirmed``: no person involved, the conversation ended (resolved, abandoned, or archived after
  either) and the customer said it helped: thumbs up on the last AI answer, or a CSAT rating of 4 or 5.
- ``ai_resolved_assumed``: no person involved, ended, without that confirmation (the customer left quietly).
- ``ai_resolved`` = confirmed + assumed (what vendors quote as their headline rate); everything else is ``open``.
- ``resolved`` / ``abandoned``: the status (an archived one counts as resolved when it has ``resolved_at``).
- response time: for every bot or agent reply, the seconds since the oldest customer message it answered;
  first response time: the first such reply of the conversation.
- resolution time: ``resolved_at - created_at`` of resolved conversations.
- CSAT: ``satisfaction_rating`` (1–5); feedback: thumbs on bot messages (and on each agent's own messages).
- intent: the first customer message with a classified intent; sentiment: every customer message, folded into
  positive / neutral / negative.
- returning customer: a known customer whose first conversation in the workspace started before this one.
- agent metrics: an agent handled a conversation when assigned to it or when they sent a message in it; their
  active time is the span from their first to their last message in each conversation.
Rates everywhere are fractions 0–1 of the period's conversations.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import apsw

from chatsupport.store import analytics as store
from chatsupport.store.console_schema import bucket_sql
from chatsupport.store.db import Database, Row

BUCKET_MINUTES = 15
OUTCOMES = ("open", "escalated", "ai_resolved_confirmed", "ai_resolved_assumed")
SENTIMENT_GROUPS = {"very_positive": "positive", "positive": "positive", "neutral": "neutral",
                    "negative": "negative", "very_negative": "negative"}


def parse_stamp(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def bucket_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:") + f"{moment.minute // BUCKET_MINUTES * BUCKET_MINUTES:02d}"


def next_bucket(bucket: str) -> str:
    return bucket_of(datetime.fromisoformat(bucket) + timedelta(minutes=BUCKET_MINUTES))


def _seconds(later: str, earlier: str) -> float:
    return max(0.0, (parse_stamp(later) - parse_stamp(earlier)).total_seconds())


@dataclass
class Facts:
    """One conversation, measured."""
    outcome: str
    resolved: bool
    abandoned: bool
    counts: dict[str, int]
    replies: list[tuple[str, str | None, float]]   # (sender_type, sender_id, seconds)
    resolution_seconds: float | None
    csat: int | None
    feedback: dict[str, int]
    intent: tuple[str, float | None] | None
    sentiments: dict[str, int]
    escalation_reason: str | None
    first_question: str | None
    first_answer_confidence: float | None
    agents: dict[str, dict[str, float]] = field(default_factory=dict)


def measure(conversation: Row, messages: list[Row], handed_over: bool) -> Facts:
    counts = {"customer": 0, "bot": 0, "agent": 0}
    replies: list[tuple[str, str | None, float]] = []
    waiting_since: str | None = None
    sentiments: dict[str, int] = defaultdict(int)
    intent = None
    for message in messages:
        sender = message["sender_type"]
        counts[sender] += 1
        if sender == "customer":
            waiting_since = waiting_since or message["created_at"]
            if intent is None and message["intent"]:
                intent = (message["intent"], message["intent_confidence"])
            if message["sentiment"] in SENTIMENT_GROUPS:
                sentiments[SENTIMENT_GROUPS[message["sentiment"]]] += 1
        elif waiting_since is not None:
            replies.append((sender, message["sender_id"], _seconds(message["created_at"], waiting_since)))
            waiting_since = None
    bots = [m for m in messages if m["sender_type"] == "bot"]
    human = handed_over or counts["agent"] > 0 or bool(conversation["assigned_agent_id"]) \
        or bool(conversation["escalation_reason"])
    status, resolved_at = conversation["status"], conversation["resolved_at"]
    resolved = status == "resolved" or (status == "archived" and resolved_at is not None)
    abandoned = status == "abandoned" or (status == "archived" and resolved_at is None)
    csat = conversation["satisfaction_rating"]
    helped = (bool(bots) and bots[-1]["feedback"] == "up") or (csat is not None and csat >= 4)
    outcome = "escalated" if human else "open" if not (resolved or abandoned) else \
        "ai_resolved_confirmed" if helped else "ai_resolved_assumed"
    first_customer = next((m for m in messages if m["sender_type"] == "customer"), None)
    return Facts(
        outcome=outcome, resolved=resolved, abandoned=abandoned, counts=counts, replies=replies,
        resolution_seconds=_seconds(resolved_at, conversation["created_at"]) if resolved and resolved_at else None,
        csat=csat, intent=intent, sentiments=dict(sentiments),
        feedback={vote: sum(1 for m in bots if m["feedback"] == vote) for vote in ("up", "down")},
        escalation_reason=(conversation["escalation_reason"] or "agent_takeover") if human else None,
        first_question=first_customer["content"].strip() if first_customer else None,
        first_answer_confidence=bots[0]["confidence"] if bots else None,
        agents=_agent_facts(conversation, messages, replies))


def _agent_facts(conversation: Row, messages: list[Row], replies: list[tuple[str, str | None, float]]
                 ) -> dict[str, dict[str, float]]:
    per: dict[str, dict[str, float]] = {}
    handlers = [m["sender_id"] for m in messages if m["sender_type"] == "agent" and m["sender_id"]]
    for agent_id in dict.fromkeys([*handlers, *([conversation["assigned_agent_id"]]
                                                if conversation["assigned_agent_id"] else [])]):
        own = [m for m in messages if m["sender_type"] == "agent" and m["sender_id"] == agent_id]
        delays = [seconds for sender, sid, seconds in replies if sender == "agent" and sid == agent_id]
        resolved_by_them = conversation["resolved_by"] == agent_id and conversation["resolved_at"] is not None
        csat = conversation["satisfaction_rating"]
        per[agent_id] = {
            "conversations_handled": 1, "resolved": int(resolved_by_them), "messages_sent": len(own),
            "response_seconds_sum": sum(delays), "responses": len(delays),
            "resolution_seconds_sum": _seconds(conversation["resolved_at"], conversation["created_at"])
            if resolved_by_them else 0.0, "resolutions": int(resolved_by_them),
            "csat_sum": csat or 0, "csat_count": int(csat is not None),
            "feedback_up": sum(1 for m in own if m["feedback"] == "up"),
            "feedback_down": sum(1 for m in own if m["feedback"] == "down"),
            "active_seconds": _seconds(own[-1]["created_at"], own[0]["created_at"]) if own else 0.0,
        }
    return per


# --- folding facts into bucket rows ---------------------------------------------------------------------------
def _empty_bucket() -> dict[str, float]:
    return {column: 0 for column in store.BUCKET_COLUMNS}


def _add(bucket: dict[str, float], facts: Facts) -> None:
    bucket["conversations"] += 1
    bucket["resolved"] += facts.resolved
    bucket["abandoned"] += facts.abandoned
    if facts.outcome != "open":
        bucket[facts.outcome] += 1
    for sender in ("customer", "bot", "agent"):
        bucket[f"{sender}_messages"] += facts.counts[sender]
    bucket["response_seconds_sum"] += sum(seconds for _, _, seconds in facts.replies)
    bucket["responses"] += len(facts.replies)
    if facts.replies:
        bucket["first_response_seconds_sum"] += facts.replies[0][2]
        bucket["first_responses"] += 1
    if facts.resolution_seconds is not None:
        bucket["resolution_seconds_sum"] += facts.resolution_seconds
        bucket["resolutions"] += 1
    if facts.csat is not None:
        bucket["csat_sum"] += facts.csat
        bucket["csat_count"] += 1
        bucket[f"csat_{facts.csat}"] += 1
    bucket["feedback_up"] += facts.feedback["up"]
    bucket["feedback_down"] += facts.feedback["down"]


def _add_dimension(dims: dict[tuple[str, str], dict[str, float]], dimension: str, key: str, count: int = 1,
                   confidence: float | None = None, resolution_seconds: float | None = None) -> None:
    row = dims.setdefault((dimension, key), {c: 0 for c in store.DIMENSION_COLUMNS})
    row["count"] += count
    if confidence is not None:
        row["confidence_sum"] += confidence
        row["confidence_count"] += 1
    if resolution_seconds is not None:
        row["resolution_seconds_sum"] += resolution_seconds
        row["resolutions"] += 1


def recompute(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str) -> int:
    """Rebuild every rollup row of one chatbot's buckets in ``[start, end)`` from the source rows; returns how
    many conversations were measured. Runs on the writer connection, so nothing changes underneath it."""
    conversations = store.source_conversations(conn, workspace_id, chatbot_id, start, end)
    by_conversation: dict[str, list[Row]] = defaultdict(list)
    for message in store.source_messages(conn, workspace_id, chatbot_id, start, end):
        by_conversation[message["conversation_id"]].append(message)
    handed_over = store.handover_events(conn, workspace_id, chatbot_id, start, end)
    first = store.first_seen(conn, workspace_id, sorted({c["customer_id"] for c in conversations
                                                          if c["customer_id"]}))
    buckets: dict[str, dict[str, float]] = {}
    dims: dict[str, dict[tuple[str, str], dict[str, float]]] = defaultdict(dict)
    agents: dict[tuple[str, str], dict[str, float]] = {}
    facts_rows = []
    for conversation in conversations:
        bucket = bucket_of(parse_stamp(conversation["created_at"]))
        facts = measure(conversation, by_conversation.get(conversation["id"], []),
                        conversation["id"] in handed_over)
        _add(buckets.setdefault(bucket, _empty_bucket()), facts)
        if facts.intent:
            _add_dimension(dims[bucket], "intent", facts.intent[0], confidence=facts.intent[1],
                           resolution_seconds=facts.resolution_seconds)
        if facts.escalation_reason:
            _add_dimension(dims[bucket], "escalation_reason", facts.escalation_reason)
        for label, count in facts.sentiments.items():
            _add_dimension(dims[bucket], "sentiment", label, count=count)
        for agent_id, values in facts.agents.items():
            row = agents.setdefault((bucket, agent_id), {c: 0 for c in store.AGENT_COLUMNS})
            for column, value in values.items():
                row[column] += value
        customer = conversation["customer_id"]
        facts_rows.append({
            "conversation_id": conversation["id"], "workspace_id": workspace_id, "chatbot_id": chatbot_id,
            "bucket": bucket, "customer_id": customer,
            "repeat_customer": int(bool(customer) and first.get(customer, conversation["created_at"])
                             < conversation["created_at"]),
            "outcome": facts.outcome, "first_question": facts.first_question,
            "first_answer_confidence": facts.first_answer_confidence})
    scope = {"workspace_id": workspace_id, "chatbot_id": chatbot_id}
    store.replace_range(
        conn, workspace_id, chatbot_id, start, end,
        [{**scope, "bucket": b, **row} for b, row in buckets.items()],
        [{**scope, "bucket": b, "dimension": d, "key": k, **row}
         for b, rows in dims.items() for (d, k), row in rows.items()],
        [{**scope, "bucket": b, "agent_id": a, **row} for (b, a), row in agents.items()],
        facts_rows)
    store.clear_dirty(conn, workspace_id, chatbot_id, start, end)
    return len(conversations)


def _ranges(dirty: list[Row]) -> list[tuple[str, str, str, str]]:
    """Dirty buckets (sorted) folded into ranges of at most a day per chatbot: (workspace_id, chatbot_id, start,
    end). Clean buckets inside a range are recomputed too: cheaper than one transaction per scattered bucket."""
    runs: list[tuple[tuple[str, str], str, str, str]] = []
    for row in dirty:
        key = (row["workspace_id"], row["chatbot_id"])
        if runs and runs[-1][0] == key and row["bucket"] < runs[-1][3]:
            runs[-1] = (key, runs[-1][1], next_bucket(row["bucket"]), runs[-1][3])
        else:
            horizon = bucket_of(datetime.fromisoformat(row["bucket"]) + timedelta(days=1))
            runs.append((key, row["bucket"], next_bucket(row["bucket"]), horizon))
    return [(key[0], key[1], start, end) for key, start, end, _ in runs]


def roll_up(db: Database, budget_seconds: float = 20.0, batch: int = 2000) -> dict[str, int]:
    """Recompute dirty buckets, one range per write transaction, until none are left or the time budget is
    spent (the next run carries on). Idempotent: a range recomputed twice gives the same rows."""
    started, ranges_done, measured = time.monotonic(), 0, 0
    while time.monotonic() - started < budget_seconds:
        dirty = store.dirty(db.reader(), batch)
        if not dirty:
            break
        for workspace_id, chatbot_id, start, end in _ranges(dirty):
            measured += db.write(lambda conn, w=workspace_id, c=chatbot_id, s=start, e=end:
                                 recompute(conn, w, c, s, e))
            ranges_done += 1
            if time.monotonic() - started >= budget_seconds:
                break
    return {"ranges": ranges_done, "conversations": measured, "pending": store.pending(db.reader())}


def backfill(db: Database) -> dict[str, int]:
    """Mark the whole history dirty and roll it all up (after a restore, or to rebuild the rollups)."""
    db.write(lambda conn: store.mark_all(conn, bucket_sql("created_at")))
    totals = {"ranges": 0, "conversations": 0, "pending": 1}
    while totals["pending"]:
        result = roll_up(db, budget_seconds=3600)
        totals = {"ranges": totals["ranges"] + result["ranges"],
                  "conversations": totals["conversations"] + result["conversations"], "pending": result["pending"]}
    return totals
