"""Analytics through the real app: a seeded history whose numbers are worked out by hand below, the per-bot shape,
local-day boundaries in three time zones, rollups following later changes, and the rollups against a direct
computation over a random history."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from accounts_support import add_user, bearer, error_code, login
from analytics_support import Conv, Msg, known_history, seed
from chatsupport.domain import analytics
from chatsupport.domain.analytics_periods import resolve
from chatsupport.store import analytics as analytics_store
from chatsupport.store import conversations as conversation_store
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures

RANGE = {"start_date": "2025-03-10", "end_date": "2025-03-11"}


def history(team: Team) -> list[str]:
    ids = seed(team.db, team.ws, team.bot, known_history(team.agent["id"]))
    analytics.roll_up(team.db)
    return ids


def dashboard(team: Team, **params: str) -> dict[str, Any]:
    response = team.client.get("/api/v1/analytics/dashboard", params=params, headers=team.viewer_h)
    assert response.status_code == 200, response.text
    return response.json()


def set_zone(team: Team, zone: str) -> None:
    team.db.execute_write("UPDATE workspaces SET settings = json_set(settings, '$.timezone', ?) WHERE id = ?",
                          (zone, team.ws))


def test_dashboard_numbers_match_the_hand_computed_history(team: Team) -> None:
    history(team)
    body = dashboard(team, **RANGE)
    assert body["period"]["start"] == "2025-03-10T00:00:00Z" and body["period"]["end"] == "2025-03-11T23:59:59Z"
    m = body["conversation_metrics"]
    # c1..c10 fall in the range; c0 (a second before) and c11 (midnight after) do not
    assert m["total_conversations"] == 10 and m["total_messages"] == 21
    # confirmed: c1 (thumbs up), c8 (CSAT 4); assumed: c2, c3, c6 (thumbs down is no confirmation), c9, c10
    assert (m["ai_resolved_confirmed"], m["ai_resolved_assumed"], m["ai_resolved"]) == (2, 5, 7)
    assert m["ai_resolution_rate"] == 0.7 and m["ai_resolved_confirmed_rate"] == 0.2
    # escalated: c4 (low confidence, agent resolved it), c7 (asked for a human)
    assert m["human_escalated"] == 2 and m["escalation_rate"] == 0.2
    assert m["resolved_conversations"] == 6 and m["abandoned_conversations"] == 2   # c9 archived after resolving
    # replies: 2+4+6+2+32(agent)+3+2+1+5+2 = 59 s over 10; first replies 2+4+6+2+3+2+1+5+2 = 27 s over 9
    assert m["avg_response_time_seconds"] == 5.9 and m["avg_first_response_time_seconds"] == 3.0
    # resolution: 600+300+1200+120+240+1800 = 4260 s over 6 = 11.83 min
    assert m["avg_resolution_time_minutes"] == 11.83
    assert m["avg_conversation_length_messages"] == 2.1 == m["avg_messages_per_conversation"]
    # ratings 5, 2, 3, 4
    assert m["avg_satisfaction_rating"] == 3.5 and m["total_satisfaction_responses"] == 4
    assert m["satisfaction_response_rate"] == 0.4
    assert m["satisfaction_distribution"] == {"1": 0, "2": 1, "3": 1, "4": 1, "5": 1}
    assert m["nps_score"] is None
    # 8 known customers; X came back (c1 → c8), Y had come before the range (c0 → c2)
    assert m["returning_customers"] == 2 and m["returning_customer_rate"] == 0.25
    assert m["positive_feedback_count"] == 1 and m["negative_feedback_count"] == 1
    assert m["active_conversations"] == 2   # open right now: c5 active, c7 escalated

    daily = body["trends"]["daily"]
    assert [(d["date"], d["conversations"], d["ai_resolution_rate"]) for d in daily] == [
        ("2025-03-10", 5, 0.6), ("2025-03-11", 5, 0.8)]
    assert daily[0]["avg_satisfaction"] == 3.5 and daily[1]["avg_satisfaction"] == 3.5
    hourly = {h["hour"]: h["conversations"] for h in body["trends"]["hourly"]}
    assert len(body["trends"]["hourly"]) == 24 and hourly[9] == 2 and hourly[23] == 1 and hourly[1] == 0
    assert body["trends"]["sentiment"][0] == {"date": "2025-03-10", "positive": 1, "neutral": 0, "negative": 2}

    assert body["top_intents"][0] == {"intent": "account", "count": 3, "percentage": 0.3, "avg_confidence": 0.8,
                                      "avg_resolution_time": 5.67}   # (600+300+120)/3 s
    assert [(i["intent"], i["count"]) for i in body["top_intents"]] == [("account", 3), ("hours", 2), ("billing", 1)]
    assert body["escalation_reasons"] == [{"reason": "low_confidence", "count": 1},
                                          {"reason": "user_request", "count": 1}]
    questions = {q["question"].lower().rstrip("?"): q for q in body["common_questions"]}
    password = next(q for q in body["common_questions"] if "password" in q["question"].lower())
    assert password["count"] == 3 and password["ai_success_rate"] == 1.0   # three wordings, one group
    assert questions["do you ship to canada"]["count"] == 2 and questions["do you ship to canada"]["ai_success_rate"] \
        == 0.5
    sarah = next(a for a in body["agent_metrics"] if a["agent_id"] == team.agent["id"])
    assert sarah["agent_name"] == "Sarah Johnson" and sarah["conversations_handled"] == 1 and sarah["resolved"] == 1
    assert sarah["messages_sent"] == 1 and sarah["avg_response_time_seconds"] == 32.0
    assert sarah["avg_resolution_time_minutes"] == 20.0 and sarah["avg_satisfaction_rating"] == 2.0
    assert sarah["current_status"] == "offline"
    assert body["agent_metrics"][0]["agent_id"] == team.agent["id"]   # busiest first


def test_chatbot_analytics_has_the_prd_shape_and_stays_in_its_workspace(team: Team) -> None:
    history(team)
    other_bot = team.client.post("/api/v1/chatbots", json={"name": "Quiet"}, headers=team.owner_h).json()["id"]
    response = team.client.get(f"/api/v1/chatbots/{team.bot}/analytics", params=RANGE, headers=team.viewer_h)
    assert response.status_code == 200
    body = response.json()
    assert body["chatbot_id"] == team.bot and body["period"]["first_day"] == "2025-03-10"
    assert body["metrics"]["total_conversations"] == 10 and body["metrics"]["avg_response_time_ms"] == 5900
    assert body["metrics"]["ai_resolved"] == 7 and body["metrics"]["satisfaction_score"] == 3.5
    assert len(body["hourly_distribution"]) == 24 and len(body["daily_trend"]) == 2
    assert body["daily_trend"][1] == {"date": "2025-03-11", "conversations": 5, "ai_resolution_rate": 0.8}
    assert {"reason": "user_request", "count": 1} in body["escalation_reasons"]
    quiet = team.client.get(f"/api/v1/chatbots/{other_bot}/analytics", params=RANGE, headers=team.viewer_h).json()
    assert quiet["metrics"]["total_conversations"] == 0 and quiet["metrics"]["ai_resolution_rate"] is None
    filtered = dashboard(team, chatbot_id=other_bot, **RANGE)
    assert filtered["conversation_metrics"]["total_conversations"] == 0

    stranger = Team(team.client, "Globex")
    foreign = team.client.get(f"/api/v1/chatbots/{stranger.bot}/analytics", headers=team.viewer_h)
    assert foreign.status_code == 404
    assert team.client.get("/api/v1/analytics/dashboard", params={"chatbot_id": stranger.bot},
                           headers=team.owner_h).status_code == 404
    assert dashboard(stranger, **RANGE)["conversation_metrics"]["total_conversations"] == 0
    assert team.client.get("/api/v1/analytics/dashboard").status_code == 401
    assert team.client.get(f"/api/v1/chatbots/{team.bot}/analytics").status_code == 401


def test_bad_periods_are_validation_errors(team: Team) -> None:
    for params in ({"period": "fortnight"}, {"start_date": "2025-03-10"}, {"start_date": "2025-03-11",
                   "end_date": "2025-03-10"}, {"start_date": "10/03/2025", "end_date": "2025-03-11"},
                   {"start_date": "2024-01-01", "end_date": "2025-03-11"}):
        response = team.client.get("/api/v1/analytics/dashboard", params=params, headers=team.viewer_h)
        assert response.status_code == 422 and error_code(response) == "validation_error", params


def test_local_days_follow_the_workspace_time_zone(team: Team) -> None:
    history(team)
    set_zone(team, "America/New_York")   # UTC-4 after 9 March 2025
    body = dashboard(team, **RANGE)
    assert body["period"]["start"] == "2025-03-10T04:00:00Z" and body["period"]["timezone"] == "America/New_York"
    # c6 (00:10 UTC on the 11th) is still the 10th in New York; c11 (midnight UTC on the 12th) is the 11th
    assert [(d["date"], d["conversations"]) for d in body["trends"]["daily"]] == [("2025-03-10", 6),
                                                                                   ("2025-03-11", 5)]
    assert body["conversation_metrics"]["total_conversations"] == 11
    hourly = {h["hour"]: h["conversations"] for h in body["trends"]["hourly"]}
    assert hourly[5] == 2 and hourly[20] == 2   # 09:00/09:20 UTC; 00:10 and 00:00 UTC

    set_zone(team, "Asia/Kolkata")   # UTC+5:30: a day starts at 18:30 UTC
    day = dashboard(team, start_date="2025-03-11", end_date="2025-03-11")
    assert day["period"]["start"] == "2025-03-10T18:30:00Z"
    assert day["conversation_metrics"]["total_conversations"] == 6   # c5 (23:50 UTC on the 10th) … c10
    assert {h["hour"]: h["conversations"] for h in day["trends"]["hourly"]}[5] == 2   # c5 05:20, c6 05:40

    set_zone(team, "Not/AZone")   # unknown names fall back to UTC
    assert dashboard(team, **RANGE)["period"]["timezone"] == "UTC"


def test_presets_in_a_zone() -> None:
    zone = ZoneInfo("Australia/Sydney")
    now = datetime(2025, 3, 1, 2, 0, tzinfo=timezone.utc)   # 13:00 on 1 March in Sydney
    assert resolve(zone, "today", now=now).first_day == date(2025, 3, 1)
    assert resolve(zone, "yesterday", now=now).last_day == date(2025, 2, 28)
    last_month = resolve(zone, "last_month", now=now)
    assert (last_month.first_day, last_month.last_day) == (date(2025, 2, 1), date(2025, 2, 28))
    assert resolve(zone, "this_month", now=now).days == [date(2025, 3, 1)]
    week = resolve(zone, "last_7_days", now=now)
    assert len(week.days) == 7 and week.start == datetime(2025, 2, 22, 13, 0, tzinfo=timezone.utc)
    assert resolve(zone, "30d", now=now).preset == "last_30_days"


def test_rollups_follow_later_changes(team: Team) -> None:
    ids = history(team)
    before = dashboard(team, **RANGE)["conversation_metrics"]
    # c2's customer now gives the answer a thumbs up: assumed → confirmed
    bot_message = team.db.query_one("SELECT id FROM messages WHERE conversation_id = ? AND sender_type = 'bot'",
                                    (ids[2],))
    team.db.write(lambda conn: conversation_store.set_feedback(conn, bot_message["id"], "up"))
    assert dashboard(team, **RANGE)["conversation_metrics"] == before   # read from rollups: not yet recounted
    assert analytics.roll_up(team.db)["pending"] == 0
    after = dashboard(team, **RANGE)["conversation_metrics"]
    assert (after["ai_resolved_confirmed"], after["ai_resolved_assumed"]) == (3, 4)
    # c5 (open) is resolved now: it becomes an assumed AI resolution of the day it started
    team.db.execute_write("UPDATE conversations SET status = 'resolved', resolved_at = '2025-03-11T00:20:00.000Z'"
                          " WHERE id = ?", (ids[5],))
    team.db.execute_write("DELETE FROM conversations WHERE id = ?", (ids[10],))
    analytics.roll_up(team.db)
    later = dashboard(team, **RANGE)
    assert later["conversation_metrics"]["total_conversations"] == 9
    assert later["conversation_metrics"]["ai_resolved_assumed"] == 4   # +c5, -c10
    assert later["trends"]["daily"][0]["ai_resolution_rate"] == 0.8   # c1, c2, c3, c5 of 5
    incremental = rollup_tables(team)
    analytics.backfill(team.db)
    assert rollup_tables(team) == incremental   # recomputing everything gives the same rows


def rollup_tables(team: Team) -> dict[str, list[dict[str, Any]]]:
    return {table: team.db.query(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4") for table in
            ("analytics_buckets", "analytics_dimensions", "analytics_agents", "analytics_conversations")}


def random_history(rng: random.Random, count: int = 300) -> list[Conv]:
    statuses = ["active", "waiting", "resolved", "resolved", "abandoned", "escalated", "agent_handling"]
    history_rows = []
    for _ in range(count):
        status = rng.choice(statuses)
        created = f"2025-04-{rng.randint(1, 9):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
        messages = [Msg(0, "customer", f"question {rng.randint(1, 20)}")]
        for k in range(rng.randint(0, 5)):
            messages.append(Msg(5 * (k + 1), rng.choice(["customer", "bot", "bot"]), confidence=rng.random(),
                                feedback=rng.choice([None, None, "up", "down"])))
        history_rows.append(Conv(created, status, messages, customer=f"c{rng.randint(1, 80)}",
                                 resolved_after=rng.randint(10, 5000) if status == "resolved" else None,
                                 rating=rng.choice([None, 1, 2, 3, 4, 5]) if status == "resolved" else None,
                                 reason="user_request" if status in ("escalated", "agent_handling") else None))
    return history_rows


def test_rollups_match_a_direct_computation_over_a_random_history(team: Team) -> None:
    seed(team.db, team.ws, team.bot, random_history(random.Random(8)))
    analytics.roll_up(team.db)
    m = dashboard(team, start_date="2025-04-01", end_date="2025-04-09")["conversation_metrics"]
    direct = team.db.query_one(
        "SELECT count(*) AS n, sum(status = 'resolved') AS resolved, sum(status = 'abandoned') AS abandoned,"
        " sum(escalation_reason IS NOT NULL) AS escalated, avg(satisfaction_rating) AS csat,"
        " count(satisfaction_rating) AS ratings, count(DISTINCT customer_id) AS customers,"
        " avg((julianday(resolved_at) - julianday(created_at)) * 1440) AS resolution_minutes"
        " FROM conversations WHERE workspace_id = ?", (team.ws,))
    messages = team.db.query_one(
        "SELECT count(*) AS n, sum(feedback = 'up' AND sender_type = 'bot') AS up FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id WHERE c.workspace_id = ?", (team.ws,))
    assert m["total_conversations"] == direct["n"] == 300
    assert m["resolved_conversations"] == direct["resolved"] and m["abandoned_conversations"] == direct["abandoned"]
    assert m["human_escalated"] == direct["escalated"]
    assert m["avg_satisfaction_rating"] == round(direct["csat"], 2) and m["total_satisfaction_responses"] == \
        direct["ratings"]
    assert m["avg_resolution_time_minutes"] == pytest.approx(direct["resolution_minutes"], abs=0.01)
    assert m["total_messages"] == messages["n"] and m["positive_feedback_count"] == messages["up"]
    daily = {d["date"]: d["conversations"] for d in
             dashboard(team, start_date="2025-04-01", end_date="2025-04-09")["trends"]["daily"]}
    by_day = {r["day"]: r["n"] for r in team.db.query("SELECT substr(created_at, 1, 10) AS day, count(*) AS n FROM"
                                                      " conversations WHERE workspace_id = ? GROUP BY day", (team.ws,))}
    assert daily == by_day


def test_hourly_copies_and_both_customer_count_plans_agree_with_the_source(team: Team) -> None:
    """Long periods read whole hours from the hourly tables and count customers in customer order; short ones read
    15-minute rows and sort. Both must give what the conversations table says, in zones with odd offsets too."""
    seed(team.db, team.ws, team.bot, random_history(random.Random(21)))
    analytics.roll_up(team.db)
    for table, keys in (("analytics_buckets", "workspace_id, chatbot_id"),
                        ("analytics_dimensions", "workspace_id, dimension, chatbot_id, key")):
        summed = team.db.query(f"SELECT {keys}, substr(bucket, 1, 14) || '00' AS bucket, sum(count_col) AS n FROM"
                               f" (SELECT *, {'conversations' if table == 'analytics_buckets' else 'count'} AS"
                               f" count_col FROM {table}) GROUP BY {keys}, substr(bucket, 1, 14) ORDER BY 1, 2, 3, 4")
        column = "conversations" if table == "analytics_buckets" else "count"
        hourly = team.db.query(f"SELECT {keys}, bucket, {column} AS n FROM {table}_hourly ORDER BY 1, 2, 3, 4")
        assert summed == hourly and hourly
    for zone, offset in (("UTC", "+00:00"), ("Asia/Kolkata", "+05:30"), ("America/New_York", "-04:00")):
        set_zone(team, zone)
        for start, end in (("2025-04-01", "2025-04-09"), ("2025-04-04", "2025-04-04"), ("2025-03-20", "2025-04-30")):
            body = dashboard(team, start_date=start, end_date=end)
            local = f"datetime(created_at, '{offset}')"
            inside = f"workspace_id = ? AND date({local}) BETWEEN ? AND ?"
            direct = team.db.query_one(
                f"SELECT count(DISTINCT customer_id) AS customers FROM conversations WHERE {inside}",
                (team.ws, start, end))
            hours = {r["h"]: r["n"] for r in team.db.query(
                f"SELECT CAST(strftime('%H', {local}) AS INTEGER) AS h, count(*) AS n FROM conversations"
                f" WHERE {inside} GROUP BY h", (team.ws, start, end))}
            days = {r["d"]: r["n"] for r in team.db.query(
                f"SELECT date({local}) AS d, count(*) AS n FROM conversations WHERE {inside} GROUP BY d",
                (team.ws, start, end))}
            m = body["conversation_metrics"]
            assert m["total_conversations"] == sum(days.values()), (zone, start, end)
            assert {h["hour"]: h["conversations"] for h in body["trends"]["hourly"] if h["conversations"]} == hours
            assert {d["date"]: d["conversations"] for d in body["trends"]["daily"] if d["conversations"]} == days
            first = body["period"]["start"][:16]
            stop = (datetime.fromisoformat(body["period"]["end"].replace("Z", "+00:00")) + timedelta(seconds=1))
            counted = analytics_store.customer_counts(team.db.reader(), team.ws, None, first,
                                                      stop.strftime("%Y-%m-%dT%H:%M"))
            assert counted["customers"] == direct["customers"], (zone, start, end)
            assert counted["repeat_customers"] == m["returning_customers"]


def test_a_viewer_sees_analytics_but_a_stranger_cannot(client: TestClient) -> None:
    add_user(client, "Solo", "viewer@solo.example", "viewer")
    viewer = bearer(login(client, "viewer@solo.example"))
    fresh = client.get("/api/v1/analytics/dashboard", params={"period": "today"}, headers=viewer)
    assert fresh.status_code == 200
    body = fresh.json()
    assert body["conversation_metrics"]["total_conversations"] == 0
    assert body["conversation_metrics"]["ai_resolution_rate"] is None and body["common_questions"] == []
    assert len(body["trends"]["daily"]) == 1 and len(body["trends"]["hourly"]) == 24
