"""Knowledge gaps (PRD §5.4.4): what customers asked that the knowledge base could not answer well — declined,
under the confidence threshold, or thumbed down — grouped by meaning so the owner sees "12 people asked about
the mobile app" instead of 12 rows.

Grouping is a greedy single pass in embedding space (a question joins the first group whose leader it is close
to): a few thousand questions at most, so no clustering library is needed and the groups are stable in order.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from chatsupport.llm.providers.extractive import STOPWORDS
from chatsupport.store import conversations as store
from chatsupport.store.db import Database

SIMILAR = 0.6
LOW_CONFIDENCE = 0.7
SAMPLES = 3
PERIODS = {"7d": 7, "30d": 30, "90d": 90}


def report(db: Database, embedder: Any, workspace_id: str, chatbot_id: str, period: str = "30d",
           now: datetime | None = None) -> dict[str, Any]:
    """The PRD shape. The caller has checked that ``chatbot_id`` belongs to ``workspace_id``."""
    end = now or datetime.now(timezone.utc)
    start = end - timedelta(days=PERIODS.get(period, 30))
    since = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    conn = db.reader()
    rows = store.gap_candidates(conn, workspace_id, chatbot_id, since, below=LOW_CONFIDENCE)
    groups = group([r for r in rows if r["question"].strip()], embedder)
    return {"period": {"start": _iso(start), "end": _iso(end)},
            "total_queries": store.count_bot_replies(conn, workspace_id, chatbot_id, since),
            "low_confidence_queries": sum(1 for r in rows if r["outcome"] == "answered"
                                          and (r["confidence"] or 0) < LOW_CONFIDENCE),
            "no_result_queries": sum(1 for r in rows if r["outcome"] == "declined"),
            "thumbs_down": sum(1 for r in rows if r["feedback"] == "down"),
            "gaps": [describe(g) for g in groups]}


def group(rows: list[dict[str, Any]], embedder: Any) -> list[list[dict[str, Any]]]:
    if not rows:
        return []
    vectors = np.asarray(embedder.encode([r["question"] for r in rows]), dtype=np.float32)
    leaders: list[int] = []
    members: list[list[int]] = []
    for i, vector in enumerate(vectors):
        sims = [float(vectors[j] @ vector) for j in leaders]
        best = int(np.argmax(sims)) if sims else -1
        if best >= 0 and sims[best] >= SIMILAR:
            members[best].append(i)
        else:
            leaders.append(i)
            members.append([i])
    groups = [[rows[i] for i in m] for m in members]
    return sorted(groups, key=lambda g: -len(g))


def describe(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pattern = query_pattern([r["question"] for r in rows])
    confidences = [float(r["confidence"] or 0.0) for r in rows]
    down = sum(1 for r in rows if r["feedback"] == "down")
    samples = list(dict.fromkeys(r["question"].strip() for r in rows))[:SAMPLES]
    if down > len(rows) / 2:
        action = f"Review the answers about {pattern}: customers marked them unhelpful"
    else:
        action = f"Add an FAQ or documentation about {pattern}"
    return {"query_pattern": pattern, "count": len(rows), "avg_confidence": round(sum(confidences) / len(rows), 3),
            "declined": sum(1 for r in rows if r["outcome"] == "declined"), "thumbs_down": down,
            "sample_queries": samples, "suggested_action": action}


def query_pattern(questions: list[str]) -> str:
    """The two words the group's questions share most (ties: first seen), e.g. "mobile app"."""
    counts: Counter[str] = Counter()
    for question in questions:
        # dict.fromkeys, not set: ties go to the first word seen, the same on every run (set order is hashed)
        counts.update(list(dict.fromkeys(w for w in re.findall(r"[a-z0-9][a-z0-9'-]+", question.lower())
                                         if w not in STOPWORDS and len(w) > 2)))
    top = [w for w, _ in counts.most_common(2)]
    return " ".join(top) if top else questions[0][:40]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
