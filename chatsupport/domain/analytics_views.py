"""The dashboard (PRD §5.6.1) and per-chatbot analytics (PRD §5.2.3), read from the rollups only.

Rates are fractions 0–1 (the PRD mixes percentages and fractions; we do not), averages are ``null`` when there
is nothing to average, and ``nps_score`` is ``null`` because no NPS question is asked. Day and hour breakdowns are
in the workspace time zone. See ``domain.analytics`` for what each count means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chatsupport.domain import question_clusters
from chatsupport.domain.analytics_periods import Period, resolve, workspace_zone
from chatsupport.domain.presence import effective
from chatsupport.errors import AppError
from chatsupport.store import analytics as store
from chatsupport.store.db import Database, Row

QUESTION_SAMPLE = 500
AI_RESOLVED = ("ai_resolved_confirmed", "ai_resolved_assumed")


@dataclass(frozen=True)
class Scope:
    workspace_id: str
    chatbot_id: str | None
    period: Period


def scope(db: Database, workspace_id: str, chatbot_id: str | None = None, period: str | None = None,
          start_date: str | None = None, end_date: str | None = None, now: datetime | None = None) -> Scope:
    """Check the chatbot belongs to the workspace (else 404) and resolve the period in the workspace's zone."""
    conn = db.reader()
    workspace = store.workspace_settings(conn, workspace_id)
    if workspace is None:
        raise AppError("not_found", "Workspace not found.")
    if chatbot_id and chatbot_id not in {bot["id"] for bot in store.chatbots(conn, workspace_id)}:
        raise AppError("not_found", "Chatbot not found.")
    zone = workspace_zone(workspace["settings"])
    return Scope(workspace_id, chatbot_id or None, resolve(zone, period, start_date, end_date, now))


def ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def _sum(rows: list[Row]) -> dict[str, float]:
    totals = {column: 0.0 for column in store.BUCKET_COLUMNS}
    for row in rows:
        for column in store.BUCKET_COLUMNS:
            totals[column] += row[column] or 0
    return totals


def _minutes(seconds_sum: float, count: float) -> float | None:
    return round(seconds_sum / count / 60, 2) if count else None


def conversation_metrics(t: dict[str, float], customers: Row, open_now: int, today: int) -> dict[str, Any]:
    n = t["conversations"]
    messages = t["customer_messages"] + t["bot_messages"] + t["agent_messages"]
    ai = t["ai_resolved_confirmed"] + t["ai_resolved_assumed"]
    return {
        "total_conversations": int(n), "new_conversations_today": today, "active_conversations": open_now,
        "ai_resolved": int(ai), "ai_resolved_confirmed": int(t["ai_resolved_confirmed"]),
        "ai_resolved_assumed": int(t["ai_resolved_assumed"]), "ai_resolution_rate": ratio(ai, n),
        "ai_resolved_confirmed_rate": ratio(t["ai_resolved_confirmed"], n),
        "ai_resolved_assumed_rate": ratio(t["ai_resolved_assumed"], n),
        "human_escalated": int(t["escalated"]), "escalation_rate": ratio(t["escalated"], n),
        "resolved_conversations": int(t["resolved"]), "abandoned_conversations": int(t["abandoned"]),
        "avg_response_time_seconds": ratio(t["response_seconds_sum"], t["responses"], 2),
        "avg_first_response_time_seconds": ratio(t["first_response_seconds_sum"], t["first_responses"], 2),
        "avg_conversation_length_messages": ratio(messages, n, 2),
        "avg_resolution_time_minutes": _minutes(t["resolution_seconds_sum"], t["resolutions"]),
        "avg_satisfaction_rating": ratio(t["csat_sum"], t["csat_count"], 2),
        "total_satisfaction_responses": int(t["csat_count"]),
        "satisfaction_response_rate": ratio(t["csat_count"], n),
        "satisfaction_distribution": {str(score): int(t[f"csat_{score}"]) for score in range(1, 6)},
        "nps_score": None,
        "returning_customers": int(customers["repeat_customers"] or 0),
        "returning_customer_rate": ratio(customers["repeat_customers"] or 0, customers["customers"] or 0),
        "avg_messages_per_conversation": ratio(messages, n, 2),
        "total_messages": int(messages),
        "positive_feedback_count": int(t["feedback_up"]), "negative_feedback_count": int(t["feedback_down"]),
    }


HOURLY_COLUMNS = ("conversations", "ai_resolved_confirmed", "ai_resolved_assumed")


def _trends(conn: Any, s: Scope) -> tuple[dict[str, float], list[dict[str, Any]], list[dict[str, Any]]]:
    """The period's totals, and its counters per local day and per local hour of day."""
    by_day = {row["day"]: row for row in store.bucket_sums(conn, s.workspace_id, s.chatbot_id, s.period.windows,
                                                           "day")}
    by_hour = {row["hour"]: row for row in store.bucket_sums(conn, s.workspace_id, s.chatbot_id, s.period.windows,
                                                             "hour", HOURLY_COLUMNS)}
    empty = {column: 0 for column in store.BUCKET_COLUMNS}
    daily = []
    for day in s.period.days:
        v = by_day.get(day.isoformat(), empty)
        ai = v["ai_resolved_confirmed"] + v["ai_resolved_assumed"]
        daily.append({"date": day.isoformat(), "conversations": int(v["conversations"]), "ai_resolved": int(ai),
                      "ai_resolution_rate": ratio(ai, v["conversations"]), "escalated": int(v["escalated"]),
                      "avg_satisfaction": ratio(v["csat_sum"], v["csat_count"], 2)})
    hourly = []
    for hour in range(24):
        v = by_hour.get(hour, empty)
        hourly.append({"hour": hour, "conversations": int(v["conversations"]), "ai_resolution_rate": ratio(
            v["ai_resolved_confirmed"] + v["ai_resolved_assumed"], v["conversations"])})
    return _sum(list(by_day.values())), daily, hourly


def _sentiment_trend(conn: Any, s: Scope) -> list[dict[str, Any]]:
    days: dict[str, dict[str, int]] = {d.isoformat(): {"positive": 0, "neutral": 0, "negative": 0}
                                       for d in s.period.days}
    for row in store.dimension_by_day(conn, s.workspace_id, "sentiment", s.chatbot_id, s.period.windows):
        days[row["day"]][row["key"]] += int(row["count"])
    return [{"date": day, **counts} for day, counts in days.items()]


def _intents(conn: Any, s: Scope, total: float, limit: int = 10) -> list[dict[str, Any]]:
    rows = store.dimension_totals(conn, s.workspace_id, "intent", s.chatbot_id, *s.period.buckets)[:limit]
    return [{"intent": r["key"], "count": int(r["count"]), "percentage": ratio(r["count"], total),
             "avg_confidence": ratio(r["confidence_sum"], r["confidence_count"], 3),
             "avg_resolution_time": _minutes(r["resolution_seconds_sum"], r["resolutions"])} for r in rows]


def _reasons(conn: Any, s: Scope) -> list[dict[str, Any]]:
    rows = store.dimension_totals(conn, s.workspace_id, "escalation_reason", s.chatbot_id, *s.period.buckets)
    return [{"reason": r["key"], "count": int(r["count"])} for r in rows]


def common_questions(conn: Any, s: Scope, limit: int) -> dict[str, Any]:
    sample = store.question_sample(conn, s.workspace_id, s.chatbot_id, *s.period.buckets, QUESTION_SAMPLE)
    groups = []
    for group in question_clusters.cluster(sample)[:limit]:
        confidences = [r["first_answer_confidence"] for r in group.rows if r["first_answer_confidence"] is not None]
        success = ratio(sum(1 for r in group.rows if r["outcome"] in AI_RESOLVED), len(group.rows))
        groups.append({"question": group.question, "count": len(group.rows), "ai_success_rate": success,
                       "resolution_rate": success,
                       "avg_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None})
    return {"groups": groups, "sample_size": len(sample)}


def agent_metrics(conn: Any, s: Scope, now: datetime) -> list[dict[str, Any]]:
    totals = store.agent_totals(conn, s.workspace_id, s.chatbot_id, *s.period.buckets)
    load = store.agents_open_load(conn, s.workspace_id)
    agents = []
    for user in store.staff(conn, s.workspace_id, sorted(totals)):
        t = totals.get(user["id"]) or {c: 0 for c in store.AGENT_COLUMNS}
        hours = (t["active_seconds"] or 0) / 3600
        agents.append({
            "agent_id": user["id"], "agent_name": user["display_name"] or user["email"],
            "conversations_handled": int(t["conversations_handled"] or 0), "resolved": int(t["resolved"] or 0),
            "messages_sent": int(t["messages_sent"] or 0), "active_time_minutes": round(hours * 60, 1),
            "avg_response_time_seconds": ratio(t["response_seconds_sum"] or 0, t["responses"] or 0, 2),
            "avg_resolution_time_minutes": _minutes(t["resolution_seconds_sum"] or 0, t["resolutions"] or 0),
            "conversations_per_hour": ratio(t["conversations_handled"] or 0, hours, 2),
            "avg_satisfaction_rating": ratio(t["csat_sum"] or 0, t["csat_count"] or 0, 2),
            "positive_feedback_count": int(t["feedback_up"] or 0),
            "negative_feedback_count": int(t["feedback_down"] or 0),
            "current_status": effective(user["reported_status"], user["last_heartbeat_at"], now),
            "active_conversations": load.get(user["id"], 0),
            "max_concurrent_conversations": user["max_concurrent_conversations"],
        })
    agents.sort(key=lambda a: (-a["conversations_handled"], a["agent_name"]))
    return agents


def dashboard(db: Database, s: Scope, now: datetime | None = None) -> dict[str, Any]:
    """``GET /api/v1/analytics/dashboard``."""
    at = now or datetime.now(timezone.utc)
    conn = db.reader()
    totals, daily, hourly = _trends(conn, s)
    today = resolve(s.period.zone, "today", now=at)
    today_count = sum(int(row["conversations"]) for row in store.bucket_sums(
        conn, s.workspace_id, s.chatbot_id, today.windows, "day", ("conversations",)))
    customers = store.customer_counts(conn, s.workspace_id, s.chatbot_id, *s.period.buckets)
    questions = common_questions(conn, s, 20)
    return {
        "period": s.period.as_json(), "chatbot_id": s.chatbot_id,
        "conversation_metrics": conversation_metrics(totals, customers,
                                                     store.open_conversations(conn, s.workspace_id, s.chatbot_id),
                                                     today_count),
        "agent_metrics": agent_metrics(conn, s, at),
        "trends": {"daily": daily, "hourly": hourly, "sentiment": _sentiment_trend(conn, s)},
        "top_intents": _intents(conn, s, totals["conversations"]),
        "common_questions": questions["groups"], "common_questions_sample_size": questions["sample_size"],
        "escalation_reasons": _reasons(conn, s),
        "rollup_pending_buckets": store.pending(conn, s.workspace_id),
    }


def chatbot_analytics(db: Database, s: Scope) -> dict[str, Any]:
    """``GET /api/v1/chatbots/{id}/analytics`` (PRD §5.2.3's shape, rates as fractions)."""
    conn = db.reader()
    t, daily, hourly = _trends(conn, s)
    n = t["conversations"]
    customers = store.customer_counts(conn, s.workspace_id, s.chatbot_id, *s.period.buckets)
    full = conversation_metrics(t, customers, 0, 0)
    questions = common_questions(conn, s, 10)
    return {
        "chatbot_id": s.chatbot_id, "period": s.period.as_json(),
        "metrics": {
            "total_conversations": int(n), "total_messages": full["total_messages"],
            "ai_resolved": full["ai_resolved"], "ai_resolved_confirmed": full["ai_resolved_confirmed"],
            "ai_resolved_assumed": full["ai_resolved_assumed"], "ai_resolution_rate": full["ai_resolution_rate"],
            "human_escalated": full["human_escalated"], "escalation_rate": full["escalation_rate"],
            "avg_response_time_ms": round(t["response_seconds_sum"] / t["responses"] * 1000) if t["responses"]
            else None,
            "avg_first_response_time_ms": round(t["first_response_seconds_sum"] / t["first_responses"] * 1000)
            if t["first_responses"] else None,
            "avg_conversation_length": full["avg_conversation_length_messages"],
            "avg_resolution_time_minutes": full["avg_resolution_time_minutes"],
            "satisfaction_score": full["avg_satisfaction_rating"],
            "total_satisfaction_responses": full["total_satisfaction_responses"],
            "satisfaction_distribution": full["satisfaction_distribution"], "nps_score": None,
            "returning_customers": full["returning_customers"],
            "returning_customer_rate": full["returning_customer_rate"],
        },
        "top_intents": _intents(conn, s, n),
        "hourly_distribution": [{"hour": h["hour"], "conversations": h["conversations"]} for h in hourly],
        "daily_trend": [{"date": d["date"], "conversations": d["conversations"],
                         "ai_resolution_rate": d["ai_resolution_rate"]} for d in daily],
        "sentiment_trend": _sentiment_trend(conn, s),
        "common_questions": questions["groups"], "common_questions_sample_size": questions["sample_size"],
        "escalation_reasons": _reasons(conn, s),
    }
