"""Retention: the policy API, and the job (run on demand, as the daily Huey task runs it) anonymising or deleting
only closed conversations older than the limit, in batches. Whole-workspace export: the job's zip and its
contents, download, and who may ask."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from accounts_support import audit_rows, error_code
from chatsupport.domain import analytics, retention, workspace_export
from conversation_support import Team, client, team  # noqa: F401
from privacy_support import CARL, ZELDA, fts_hits, seed_person, stamp, sweep


def folder(team: Team) -> Path:
    return team.client.app.state.services.settings.data.uploads / "attachments"


def run_job(team: Team) -> dict[str, int]:
    return retention.apply(team.db, folder(team), datetime.now(timezone.utc))


def set_policy(team: Team, action: str, days: int | None) -> dict:
    response = team.client.put("/api/v1/privacy/retention", json={"action": action, "after_days": days},
                               headers=team.owner_h)
    assert response.status_code == 200, response.text
    return response.json()


def test_policy_is_off_by_default_validated_audited_and_managers_only(team: Team) -> None:
    got = team.client.get("/api/v1/privacy/retention", headers=team.owner_h)
    assert got.json()["action"] == "off" and got.json()["after_days"] is None
    assert run_job(team) == {}
    assert set_policy(team, "anonymize", 90)["after_days"] == 90
    entry = audit_rows(team.client, "retention.updated")[-1]
    assert json.loads(entry["changes"])["after"] == {"action": "anonymize", "after_days": 90}
    for body in ({"action": "delete"}, {"action": "delete", "after_days": 0}, {"action": "shred", "after_days": 5},
                 {"action": "delete", "after_days": 4000}):
        bad = team.client.put("/api/v1/privacy/retention", json=body, headers=team.owner_h)
        assert bad.status_code == 422 and error_code(bad) == "validation_error", body
    off = set_policy(team, "off", None)
    assert (off["action"], off["after_days"]) == ("off", None)
    assert run_job(team) == {}
    for headers in (team.agent_h, team.viewer_h):
        assert team.client.get("/api/v1/privacy/retention", headers=headers).status_code == 403
        assert team.client.put("/api/v1/privacy/retention", json={"action": "off"}, headers=headers).status_code == 403


def test_delete_policy_removes_only_old_closed_conversations(team: Team) -> None:
    old = seed_person(team, folder(team), ZELDA, created_at=stamp(200), updated_at=stamp(100))
    young = seed_person(team, folder(team), CARL)
    open_old = team.conversation(status="escalated", text="still waiting quokkaberry")
    team.db.write(lambda conn: conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                                            (stamp(300), open_old)))
    set_policy(team, "delete", 30)
    assert run_job(team) == {team.ws: 2}
    left = {row["id"] for row in team.db.query("SELECT id FROM conversations WHERE workspace_id = ?", (team.ws,))}
    assert left == {*young.conversations, open_old}
    assert [hit for hit in sweep(team.db, old.needles + [old.word])] == []
    assert fts_hits(team.db, old.word) == 0 and fts_hits(team.db, young.word) > 0
    assert not any((folder(team) / name).exists() for name in old.attachments)
    assert all((folder(team) / name).exists() for name in young.attachments)
    analytics.roll_up(team.db, budget_seconds=30)
    rolled = team.db.query_one("SELECT sum(conversations) AS n FROM analytics_buckets WHERE workspace_id = ?",
                               (team.ws,))
    assert rolled["n"] == 3
    policy = team.client.get("/api/v1/privacy/retention", headers=team.owner_h).json()
    assert policy["last_run_conversations"] == 2 and policy["last_run_at"]
    assert audit_rows(team.client, "retention.applied")[-1]["workspace_id"] == team.ws
    assert run_job(team) == {team.ws: 0}  # idempotent


def test_anonymize_policy_keeps_counts_and_works_in_batches(team: Team) -> None:
    old = seed_person(team, folder(team), ZELDA, created_at=stamp(200), updated_at=stamp(100))
    young = seed_person(team, folder(team), CARL)
    before = team.db.query_one("SELECT count(*) AS n, sum(message_count) AS m FROM conversations")
    set_policy(team, "anonymize", 30)
    # one conversation per write transaction: the customer is anonymised only once both are done
    assert retention.apply(team.db, folder(team), datetime.now(timezone.utc), batch=1) == {team.ws: 2}
    assert team.db.query_one("SELECT count(*) AS n, sum(message_count) AS m FROM conversations") == before
    assert sweep(team.db, [old.email, "Zelda", "Quixote", old.phone, old.visitor_id]) == []
    assert fts_hits(team.db, "zelda") == 0
    customer = team.db.query_one("SELECT anonymized_at, email FROM customers WHERE id = ?", (old.customer_id,))
    assert customer["anonymized_at"] and customer["email"] is None
    assert team.db.query_one("SELECT email FROM customers WHERE id = ?", (young.customer_id,))["email"] == young.email
    rolled = team.db.query_one("SELECT sum(conversations) AS n FROM analytics_buckets WHERE workspace_id = ?",
                               (team.ws,))
    assert rolled["n"] == 4
    assert run_job(team) == {team.ws: 0}  # anonymised conversations are not done twice


def test_workspace_export_zip_holds_every_table_without_secrets(team: Team) -> None:
    person = seed_person(team, folder(team), ZELDA)
    started = team.client.post("/api/v1/privacy/workspace-exports", headers=team.owner_h)
    assert started.status_code == 202, started.text
    export_id = started.json()["export_id"]
    status = team.client.get(f"/api/v1/privacy/workspace-exports/{export_id}", headers=team.owner_h).json()
    assert status["status"] == "processing" and status["download_url"] is None
    early = team.client.get(f"/api/v1/privacy/workspace-exports/{export_id}/download", headers=team.owner_h)
    assert early.status_code == 409 and error_code(early) == "export_not_ready"

    services = team.client.app.state.services
    workspace_export.run(services.db, services.settings.data.exports, export_id)
    status = team.client.get(f"/api/v1/privacy/workspace-exports/{export_id}", headers=team.owner_h).json()
    assert status["status"] == "completed" and status["progress"]["percent"] == 100
    response = team.client.get(status["download_url"], headers=team.owner_h)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert names == {"workspace.json", "manifest.json", *(f"{t.name}.json" for t in workspace_export.TABLES)}
    tables = {name[:-5]: json.loads(archive.read(name)) for name in names}
    assert tables["workspace"]["id"] == team.ws
    assert {u["email"] for u in tables["users"]} == {team.owner["email"], team.agent["email"], team.other["email"],
                                                     team.viewer["email"]}
    assert all("password_hash" not in u and "mfa_secret" not in u for u in tables["users"])
    assert all("identity_secret" not in b for b in tables["chatbots"])
    assert [c["email"] for c in tables["customers"]] == [person.email]
    assert {c["id"] for c in tables["conversations"]} == set(person.conversations)
    assert len(tables["messages"]) == 4 and len(tables["internal_notes"]) == 2
    assert sum(row["conversations"] for row in tables["analytics"]) == 2
    assert tables["manifest"]["rows"]["messages"] == 4
    raw = response.content + b"".join(archive.read(name) for name in names)
    hashes = [row["password_hash"] for row in team.db.query("SELECT password_hash FROM users WHERE workspace_id = ?",
                                                            (team.ws,))]
    assert not any(h.encode() in raw for h in hashes)
    listed = team.client.get("/api/v1/privacy/workspace-exports", headers=team.owner_h).json()["data"]
    assert [item["export_id"] for item in listed] == [export_id]
    # conversation exports and workspace exports do not see each other
    assert team.client.get(f"/api/v1/exports/{export_id}", headers=team.owner_h).status_code == 404
    assert export_id not in team.client.get("/api/v1/exports", headers=team.owner_h).text
    for headers in (team.agent_h, team.viewer_h):
        assert team.client.post("/api/v1/privacy/workspace-exports", headers=headers).status_code == 403
        assert team.client.get(status["download_url"], headers=headers).status_code == 403
    other = Team(team.client, "Globex")
    assert team.client.get(status["download_url"], headers=other.owner_h).status_code == 404
