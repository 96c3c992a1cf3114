"""Bulk conversation exports (PRD §5.6.3) through the real app and the real job: request (owners and admins
only, validated, audited), the Huey task run on the real database over generated conversations with filters,
status and progress, download and parse, expiry and interrupted jobs cleaned up by housekeeping."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from accounts_support import audit_rows, error_code
from chatsupport.domain import exports
from chatsupport.store.presence import stamp
from chatsupport.tasks.exports import export_conversations
from chatsupport.tasks.housekeeping import expire_exports
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures

BASE = datetime(2025, 10, 1, tzinfo=timezone.utc)


def generate(team: Team, count: int, bots: list[str]) -> None:
    """``count`` conversations, one a minute from BASE, with a customer and three messages each. Conversation i
    is resolved when i % 4 < 2 (rated i % 5 + 1, tagged "billing" when i % 3 == 0, assigned to the agent when
    i % 2 == 0), else active; its bot is bots[i % len(bots)]."""

    def write(conn: Any) -> None:
        for i in range(count):
            created = BASE + timedelta(minutes=i)
            conv, customer = f"c{i:05d}-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
            resolved = i % 4 < 2
            conn.execute("INSERT INTO customers(id, workspace_id, name, email) VALUES (?, ?, ?, ?)",
                         (customer, team.ws, f"Customer {i}", f"customer{i}@example.com"))
            conn.execute(
                "INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, tags, message_count,"
                " satisfaction_rating, assigned_agent_id, created_at, updated_at, resolved_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 3, ?, ?, ?, ?, ?)",
                (conv, team.ws, bots[i % len(bots)], customer, "resolved" if resolved else "active",
                 json.dumps(["billing"] if i % 3 == 0 else []), i % 5 + 1 if resolved else None,
                 team.agent["id"] if resolved and i % 2 == 0 else None, stamp(created),
                 stamp(created + timedelta(minutes=30)), stamp(created + timedelta(minutes=45)) if resolved else None))
            for n, (kind, text) in enumerate((("customer", f"Question {i}: où est ma commande?"),
                                              ("bot", f"Answer {i}"), ("customer", f"=Thanks {i}"))):
                conn.execute(
                    "INSERT INTO messages(id, conversation_id, sender_type, content, ai_metadata, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (str(uuid.uuid4()), conv, kind, text,
                     json.dumps({"sources": [{"title": "Shipping", "url": "https://help.example/ship"}]})
                     if kind == "bot" else None, stamp(created + timedelta(seconds=n))))

    team.db.write(write)


def request(team: Team, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return team.client.post("/api/v1/exports/conversations", json=body, headers=headers or team.owner_h)


def start(team: Team, body: dict[str, Any]) -> str:
    response = request(team, body)
    assert response.status_code == 202, response.text
    return response.json()["export_id"]


def run_job(export_id: str) -> None:
    """The task the API queued, run here on the test's database (these tests start the app without a worker)."""
    export_conversations.call_local(export_id)


def status(team: Team, export_id: str) -> dict[str, Any]:
    response = team.client.get(f"/api/v1/exports/{export_id}", headers=team.owner_h)
    assert response.status_code == 200, response.text
    return response.json()


def download(team: Team, export_id: str) -> Any:
    response = team.client.get(f"/api/v1/exports/{export_id}/download", headers=team.owner_h)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith('attachment; filename="conversations-')
    assert response.headers["x-content-type-options"] == "nosniff"
    return response


def exports_dir(team: Team) -> Path:
    return team.client.app.state.services.settings.data.exports / team.ws


def test_only_owners_and_admins_export_in_bulk(team: Team) -> None:
    for headers in (team.agent_h, team.viewer_h):
        refused = request(team, {"format": "csv"}, headers)
        assert refused.status_code == 403 and error_code(refused) == "forbidden"
    assert team.client.get("/api/v1/exports", headers=team.agent_h).status_code == 403
    accepted = request(team, {"format": "csv"})
    assert accepted.status_code == 202
    body = accepted.json()
    assert set(body) == {"export_id", "status", "estimated_completion"} and body["status"] == "processing"
    assert body["estimated_completion"] > datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    for path in (f"/api/v1/exports/{body['export_id']}", f"/api/v1/exports/{body['export_id']}/download"):
        assert team.client.get(path, headers=team.agent_h).status_code == 403


def test_the_request_is_validated_and_audited(team: Team) -> None:
    xlsx = request(team, {"format": "xlsx"})
    assert xlsx.status_code == 422
    assert xlsx.json()["error"]["details"] == [{"field": "format", "message": (
        "XLSX is not offered; choose csv or json (both open in a spreadsheet).")}]
    for body, field in (({"format": "pdf"}, "format"), ({"fields": ["id", "password_hash"]}, "fields"),
                        ({"fields": []}, "fields"), ({"filters": {"status": ["lost"]}}, "filters.status"),
                        ({"filters": {"colour": "red"}}, "filters.colour"),
                        ({"filters": {"date_range": {"start": "yesterday"}}}, "filters.date_range.start")):
        response = request(team, body)
        assert response.status_code == 422, body
        assert response.json()["error"]["details"][0]["field"] == field, body
    assert request(team, {"format": "csv", "surprise": 1}).status_code in (400, 422)
    export_id = start(team, {"format": "json", "filters": {"status": ["resolved"]}, "fields": ["id", "status"]})
    [row] = audit_rows(team.client, "export.requested")
    assert row["resource_id"] == export_id and row["user_id"] == team.owner["id"]
    assert json.loads(row["metadata"])["filters"] == {"status": ["resolved"]}


def test_csv_export_with_messages_end_to_end(team: Team) -> None:
    second = team.client.post("/api/v1/chatbots", json={"name": "Second"}, headers=team.owner_h).json()["id"]
    generate(team, 2400, [team.bot, second])
    # resolved (i % 4 < 2) on the first bot (i even) → i % 4 == 0: 600 conversations, more than one batch
    export_id = start(team, {"format": "csv", "include_messages": True,
                             "filters": {"status": ["resolved"], "chatbot_id": team.bot},
                             "fields": ["id", "created_at", "customer_email", "status", "message_count",
                                        "resolution_time_minutes", "satisfaction_rating", "assigned_agent",
                                        "chatbot", "tags"]})
    assert exports.BATCH < 600
    before = status(team, export_id)
    assert before["status"] == "processing" and before["progress"]["total"] == 600
    assert before["download_url"] is None and before["row_count"] is None
    waiting = team.client.get(f"/api/v1/exports/{export_id}/download", headers=team.owner_h)
    assert waiting.status_code == 409 and error_code(waiting) == "export_not_ready"

    run_job(export_id)

    after = status(team, export_id)
    assert after["status"] == "completed" and after["row_count"] == 600
    assert after["progress"] == {"done": 600, "total": 600, "percent": 100}
    assert after["completed_at"] >= after["created_at"] and after["expires_at"] > after["completed_at"]
    response = download(team, export_id)
    assert response.headers["content-type"].startswith("text/csv")
    assert after["size_bytes"] == len(response.content)
    assert after["download_url"] == f"/api/v1/exports/{export_id}/download"
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    assert list(rows[0]) == ["id", "created_at", "customer_email", "status", "message_count",
                             "resolution_time_minutes", "satisfaction_rating", "assigned_agent", "chatbot", "tags",
                             "message_timestamp", "message_sender_type", "message_sender_name", "message_content"]
    assert len(rows) == 600 * 3
    ids = list(dict.fromkeys(row["id"] for row in rows))
    assert len(ids) == 600 and ids == sorted(ids)              # oldest first, each conversation once
    numbers = [int(i[1:6]) for i in ids]
    assert all(n % 4 == 0 for n in numbers)
    first = [row for row in rows if row["id"] == ids[0]]
    assert [r["message_sender_type"] for r in first] == ["customer", "bot", "customer"]
    assert first[0]["message_content"] == "Question 0: où est ma commande?"
    assert first[1]["message_sender_name"] == "Acme Bot"
    assert first[2]["message_content"] == "'=Thanks 0"                 # formula defused
    assert first[0]["customer_email"] == "customer0@example.com" and first[0]["status"] == "resolved"
    assert first[0]["resolution_time_minutes"] == "45.0" and first[0]["satisfaction_rating"] == "1"
    assert first[0]["assigned_agent"] == team.agent["email"] and first[0]["chatbot"] == "Acme Bot"
    assert first[0]["tags"] == "billing" and first[0]["message_count"] == "3"
    assert not list(exports_dir(team).glob("*.part"))


def test_json_export_of_conversations_only(team: Team) -> None:
    generate(team, 60, [team.bot])
    export_id = start(team, {"format": "json", "fields": ["id", "assigned_agent", "chatbot", "tags",
                                                          "resolved_at", "customer_name"],
                             "filters": {"tags": ["billing"], "satisfaction_rating": {"min": 2},
                                         "date_range": {"start": "2025-10-01T00:10:00Z"}}})
    run_job(export_id)
    assert status(team, export_id)["status"] == "completed"
    response = download(team, export_id)
    assert response.headers["content-type"] == "application/json"
    items = response.json()
    # billing (i % 3 == 0), rated ≥ 2 (so resolved, i % 5 + 1 ≥ 2), created from minute 10
    expected = [i for i in range(10, 60) if i % 3 == 0 and i % 4 < 2 and i % 5 + 1 >= 2]
    assert [int(item["id"][1:6]) for item in items] == expected
    assert all(set(item) == {"id", "assigned_agent", "chatbot", "tags", "resolved_at", "customer_name"}
               for item in items)
    even = next(item for item in items if int(item["id"][1:6]) % 2 == 0)
    assert even["assigned_agent"] == {"id": team.agent["id"], "name": "Sarah Johnson", "email": team.agent["email"]}
    assert even["chatbot"] == {"id": team.bot, "name": "Acme Bot"} and even["tags"] == ["billing"]


def test_json_export_with_messages_and_an_empty_result(team: Team) -> None:
    generate(team, 5, [team.bot])
    export_id = start(team, {"format": "json", "include_messages": True, "fields": ["id"],
                             "filters": {"status": ["active"]}})
    run_job(export_id)
    items = download(team, export_id).json()
    assert [int(item["id"][1:6]) for item in items] == [2, 3]
    messages = items[0]["messages"]
    assert [(m["sender_type"], m["sender_name"], m["content"]) for m in messages] == [
        ("customer", "Customer 2", "Question 2: où est ma commande?"), ("bot", "Acme Bot", "Answer 2"),
        ("customer", "Customer 2", "=Thanks 2")]                     # JSON is not a spreadsheet: no quoting
    assert messages[1]["sources"] == [{"title": "Shipping", "url": "https://help.example/ship"}]
    nothing = start(team, {"format": "json", "filters": {"customer_email": "nobody@example.com"}})
    run_job(nothing)
    assert status(team, nothing)["progress"] == {"done": 0, "total": 0, "percent": 100}
    assert download(team, nothing).json() == []


def test_a_failed_job_says_why_and_leaves_no_file(team: Team) -> None:
    generate(team, 3, [team.bot])
    exports_dir(team).parent.mkdir(parents=True, exist_ok=True)
    exports_dir(team).write_text("not a folder")       # the job cannot create its folder
    export_id = start(team, {"format": "csv"})
    run_job(export_id)
    body = status(team, export_id)
    assert body["status"] == "failed" and body["error"].startswith("The file could not be written")
    refused = team.client.get(f"/api/v1/exports/{export_id}/download", headers=team.owner_h)
    assert refused.status_code == 409 and error_code(refused) == "export_failed"
    assert refused.json()["error"]["message"] == body["error"]
    run_job(export_id)                                  # a repeated job leaves a finished export alone
    assert status(team, export_id)["status"] == "failed"


def test_exports_expire_after_seven_days_and_dead_jobs_fail(team: Team) -> None:
    generate(team, 3, [team.bot])
    old, dead, fresh = (start(team, {"format": fmt}) for fmt in ("csv", "json", "csv"))
    for export_id in (old, fresh):
        run_job(export_id)
    old_file = exports_dir(team) / f"{old}.csv"
    assert old_file.is_file()
    long_ago = stamp(datetime.now(timezone.utc) - timedelta(days=8))
    team.db.write(lambda conn: conn.execute("UPDATE exports SET expires_at = ? WHERE id = ?", (long_ago, old)))
    # the dead job started an hour ago and wrote nothing since (its process was killed)
    hour_ago = stamp(datetime.now(timezone.utc) - timedelta(hours=1))
    team.db.write(lambda conn: conn.execute("UPDATE exports SET started_at = ?, updated_at = ? WHERE id = ?",
                                            (hour_ago, hour_ago, dead)))
    (exports_dir(team) / f"{dead}.json.part").write_text("[")
    expired = team.client.get(f"/api/v1/exports/{old}", headers=team.owner_h)
    assert expired.status_code == 404 and "seven days" in expired.json()["error"]["message"]

    assert expire_exports.call_local() == {"expired_exports": 1, "interrupted_exports": 1}

    assert not old_file.exists() and not (exports_dir(team) / f"{dead}.json.part").exists()
    assert team.db.query_one("SELECT id FROM exports WHERE id = ?", (old,)) is None
    assert status(team, dead)["status"] == "failed" and "interrupted" in status(team, dead)["error"]
    assert status(team, fresh)["status"] == "completed" and download(team, fresh).content
    listed = team.client.get("/api/v1/exports", headers=team.owner_h).json()["data"]
    assert [item["export_id"] for item in listed] == [fresh, dead]
    assert expire_exports.call_local() == {"expired_exports": 0, "interrupted_exports": 0}


def test_exports_belong_to_their_workspace(team: Team) -> None:
    generate(team, 3, [team.bot])
    export_id = start(team, {"format": "csv"})
    run_job(export_id)
    stranger = Team(team.client, "Globex")
    for path in (f"/api/v1/exports/{export_id}", f"/api/v1/exports/{export_id}/download"):
        response = team.client.get(path, headers=stranger.owner_h)
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert team.client.get("/api/v1/exports", headers=stranger.owner_h).json()["data"] == []
    theirs = start(stranger, {"format": "csv"})
    run_job(theirs)
    assert download(stranger, theirs).content.decode().splitlines() == [",".join(exports.FIELDS)]


def test_at_most_three_exports_run_at_once_per_workspace(team: Team) -> None:
    running = [start(team, {"format": "csv"}) for _ in range(exports.MAX_RUNNING)]
    refused = request(team, {"format": "json"})
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert start(Team(team.client, "Globex"), {"format": "csv"})          # another workspace is not held up
    run_job(running[0])
    assert start(team, {"format": "json"})
