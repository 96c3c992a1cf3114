"""A customer's export and erasure through the API: everything held is in the export; after a delete nothing in
any table of the database names them (a sweep of sqlite_master's tables, not a hand list) and the search index
finds nothing; anonymise keeps the rows and counts; files are gone; the other customer is untouched."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from accounts_support import audit_rows, error_code
from conversation_support import Team, client, team  # noqa: F401
from privacy_support import CARL, ZELDA, Person, fts_hits, seed_person, sweep


def folder(team: Team) -> Path:
    return team.client.app.state.services.settings.data.uploads / "attachments"


def seeded(team: Team) -> tuple[Person, Person]:
    return seed_person(team, folder(team), ZELDA), seed_person(team, folder(team), CARL)


def search(team: Team, word: str) -> int:
    response = team.client.post("/api/v1/conversations/search", json={"query": word}, headers=team.owner_h)
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


def places(team: Team, person: Person) -> set[tuple[str, str, str]]:
    """Where the sweep finds a person, leaving out the search index's segments (rewritten by an erasure)."""
    return {hit for hit in sweep(team.db, person.needles + [person.word]) if not hit[0].endswith("_text_data")}


def counts(team: Team) -> dict[str, Any]:
    one = team.db.query_one
    return {"conversations": one("SELECT count(*) AS n FROM conversations WHERE workspace_id = ?", (team.ws,))["n"],
            "messages": one("SELECT count(*) AS n FROM messages")["n"],
            "customers": one("SELECT count(*) AS n FROM customers")["n"],
            "rolled_up": one("SELECT sum(conversations) AS n, sum(csat_count) AS c, sum(feedback_down) AS d"
                             " FROM analytics_buckets WHERE workspace_id = ?", (team.ws,))}


def test_export_holds_everything_about_the_customer_and_nothing_else(team: Team) -> None:
    zelda, carl = seeded(team)
    response = team.client.get(f"/api/v1/customers/{zelda.customer_id}/export", headers=team.owner_h)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    data = response.json()
    assert data["customer"]["email"] == zelda.email and data["customer"]["phone"] == zelda.phone
    assert data["customer"]["custom_fields"] == {"order_ref": "ORD-xylophonic"}
    assert [c["id"] for c in data["conversations"]] == zelda.conversations
    first = data["conversations"][0]
    assert [m["sender_type"] for m in first["messages"]] == ["customer", "bot"]
    assert zelda.word in first["messages"][0]["content"]
    assert "VIP" in first["notes"][0]["content"]
    assert "csat" in [e["event_type"] for e in first["events"]]
    assert {a["id"] for a in data["attachments"]} == set(zelda.attachments)
    assert all(a["download_path"] == f"/api/v1/attachments/{a['id']}" for a in data["attachments"])
    assert [c["rating"] for c in data["csat"]] == [2, 2]
    assert [f["feedback"] for f in data["message_feedback"]] == ["down", "down"]
    assert len(data["answer_reviews"]) == 2
    assert data["webhook_deliveries"][0]["payload"] == {"customer": {"email": zelda.email}}
    assert data["audit_entries"] == []
    text = response.text
    for needle in carl.needles:
        assert needle not in text
    entry = audit_rows(team.client, "customer.exported")[-1]
    assert entry["resource_id"] == zelda.customer_id and entry["user_id"] == team.owner["id"]
    again = team.client.get(f"/api/v1/customers/{zelda.customer_id}/export", headers=team.owner_h).json()
    assert [e["action"] for e in again["audit_entries"]] == ["customer.exported"]


def test_find_by_email_lists_the_rows_of_that_address(team: Team) -> None:
    zelda, _ = seeded(team)
    response = team.client.get("/api/v1/customers", params={"email": zelda.email.upper()}, headers=team.owner_h)
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    assert [(r["id"], r["conversations"]) for r in rows] == [(zelda.customer_id, 2)]
    empty = team.client.get("/api/v1/customers", params={"email": "nobody@example.org"}, headers=team.owner_h)
    assert empty.json()["data"] == []
    bad = team.client.get("/api/v1/customers", params={"email": "nope"}, headers=team.owner_h)
    assert bad.status_code == 422 and error_code(bad) == "validation_error"


def test_delete_leaves_no_trace_in_any_table_nor_the_search_index(team: Team) -> None:
    zelda, carl = seeded(team)
    assert search(team, zelda.word) == 2 and fts_hits(team.db, "zelda") > 0
    assert sweep(team.db, zelda.needles + [zelda.word])  # the sweep does see the seeded data
    team.client.get(f"/api/v1/customers/{zelda.customer_id}/export", headers=team.owner_h)
    carl_before = places(team, carl)

    response = team.client.delete(f"/api/v1/customers/{zelda.customer_id}", params={"mode": "delete"},
                                  headers=team.owner_h)
    assert response.status_code == 200, response.text
    touched = response.json()["touched"]
    assert response.json()["mode"] == "delete"
    assert touched["conversations"] == 2 and touched["messages"] == 4 and touched["notes"] == 2
    assert touched["attachments"] == 3 and touched["webhook_deliveries"] == 1 and touched["audit_entries"] == 1
    assert touched["analytics_buckets"] >= 1

    assert sweep(team.db, zelda.needles + [zelda.word]) == []
    for word in (zelda.word, "zelda", "quixote", "zelda.quixote@example.org"):
        assert fts_hits(team.db, word) == 0
        assert search(team, word) == 0
    assert not any((folder(team) / name).exists() for name in zelda.attachments)
    # the other customer keeps everything
    assert places(team, carl) == carl_before
    assert search(team, carl.word) == 2
    assert all((folder(team) / name).exists() for name in carl.attachments)
    # the rollups count what is left: Carl's two conversations
    rolled = counts(team)["rolled_up"]
    assert (rolled["n"], rolled["c"], rolled["d"]) == (2, 2, 2)
    entry = audit_rows(team.client, "customer.deleted")[-1]
    assert entry["resource_id"] is None and zelda.customer_id not in (entry["metadata"] or "")
    again = team.client.delete(f"/api/v1/customers/{zelda.customer_id}", params={"mode": "delete"},
                               headers=team.owner_h)
    assert again.status_code == 404


def test_anonymize_keeps_rows_and_counts_but_nothing_that_names_them(team: Team) -> None:
    zelda, carl = seeded(team)
    before = counts(team)
    response = team.client.delete(f"/api/v1/customers/{zelda.customer_id}", params={"mode": "anonymize"},
                                  headers=team.owner_h)
    assert response.status_code == 200, response.text
    touched = response.json()["touched"]
    assert touched["conversations"] == 2 and touched["messages"] == 4 and touched["attachments"] == 3
    assert counts(team) == before

    pii = [zelda.email, "Zelda", "Quixote", zelda.phone, zelda.visitor_id, "ORD-xylophonic", "crm-xylophonic"]
    assert sweep(team.db, pii) == []
    for word in ("zelda", "quixote", "zelda.quixote@example.org"):
        assert fts_hits(team.db, word) == 0
        assert search(team, word) == 0
    row = team.db.query_one("SELECT * FROM customers WHERE id = ?", (zelda.customer_id,))
    assert row["anonymized_at"] and row["email"] is None and row["name"] is None
    messages = team.db.query("SELECT content, sender_name, attachments FROM messages WHERE conversation_id = ?"
                             " ORDER BY created_at, rowid", (zelda.conversations[0],))
    assert messages[0]["content"] == "Hi, I am [name], my xylophonic order failed. Mail me at [email] or call [phone]."
    assert messages[0]["sender_name"] is None and messages[0]["attachments"] == "[]"
    assert messages[1]["content"] == "Sorry [name], let me check."
    for conversation_id in zelda.conversations:
        context = json.loads(team.db.query_one("SELECT context FROM conversations WHERE id = ?",
                                               (conversation_id,))["context"])
        assert context == {"page_url": "https://shop.example/cart", "referrer": "https://mail.example/",
                           "device": "desktop"}
    assert not any((folder(team) / name).exists() for name in zelda.attachments)
    delivery = team.db.query_one("SELECT payload, status FROM webhook_deliveries WHERE customer_id = ?",
                                 (zelda.customer_id,))
    assert delivery["payload"] is None and delivery["status"] == "pending"
    assert sweep(team.db, carl.needles)  # untouched
    assert search(team, carl.word) == 2


def test_knowledge_gaps_no_longer_quote_the_customer(team: Team) -> None:
    zelda, _ = seeded(team)
    params = {"chatbot_id": team.bot}
    gaps = team.client.get("/api/v1/knowledge-base/gaps", params=params, headers=team.owner_h)
    assert gaps.status_code == 200, gaps.text
    assert zelda.email in gaps.text
    team.client.delete(f"/api/v1/customers/{zelda.customer_id}", params={"mode": "anonymize"}, headers=team.owner_h)
    after = team.client.get("/api/v1/knowledge-base/gaps", params=params, headers=team.owner_h)
    assert after.status_code == 200 and zelda.email not in after.text and "Zelda" not in after.text


def test_roles_unknown_ids_and_missing_mode(team: Team) -> None:
    zelda, _ = seeded(team)
    path = f"/api/v1/customers/{zelda.customer_id}"
    assert team.client.get(f"{path}/export").status_code == 401
    assert team.client.delete(path, params={"mode": "delete"}).status_code == 401
    for headers in (team.agent_h, team.viewer_h):
        assert team.client.get(f"{path}/export", headers=headers).status_code == 403
        assert team.client.delete(path, params={"mode": "delete"}, headers=headers).status_code == 403
        assert team.client.get("/api/v1/customers", params={"email": zelda.email}, headers=headers).status_code == 403
    other = Team(team.client, "Globex")
    assert team.client.get(f"{path}/export", headers=other.owner_h).status_code == 404
    assert team.client.delete(path, params={"mode": "delete"}, headers=other.owner_h).status_code == 404
    assert team.client.get(f"/api/v1/customers/{uuid.uuid4()}/export", headers=team.owner_h).status_code == 404
    missing = team.client.delete(path, headers=team.owner_h)
    assert missing.status_code == 422 and error_code(missing) == "validation_error"
    wrong = team.client.delete(path, params={"mode": "shred"}, headers=team.owner_h)
    assert wrong.status_code == 422
    assert team.db.query_one("SELECT email FROM customers WHERE id = ?", (zelda.customer_id,))["email"] == zelda.email
