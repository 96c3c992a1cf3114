"""The agent copilot (``POST …/suggest-reply``) on the real app with its real answer engine and embedder, over a
small help-center corpus: a grounded draft with its sources from the built-in extractive provider, the
conversation as context, and nothing stored or changed."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from accounts_support import error_code, open_client
from answer_support import index_pages
from chatsupport.domain import conversations as states
from chatsupport.store import conversations as store
from conversation_support import Team
from widget_support import widget_settings


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with open_client(widget_settings(tmp_path_factory.mktemp("copilot") / "data")) as client:
        team = Team(client)
        services = client.app.state.services
        index_pages(services.db, services.embedder, team.bot, urls={"billing.md": "https://acme.example/billing"})
        yield team


def suggest(team: Team, conv: str, headers: dict[str, str] | None = None) -> Any:
    return team.client.post(f"/api/v1/conversations/{conv}/suggest-reply", headers=headers or team.agent_h)


def snapshot(team: Team, conv: str) -> dict[str, Any]:
    db = team.db
    return {"conversation": team.status(conv),
            "messages": db.query("SELECT id FROM messages WHERE conversation_id = ?", (conv,)),
            "events": db.query("SELECT id FROM conversation_events WHERE conversation_id = ?", (conv,)),
            "audit": db.query_one("SELECT count(*) AS n FROM audit_logs")["n"]}


def test_a_grounded_draft_from_the_knowledge_base_that_stores_nothing(team: Team) -> None:
    conv = team.conversation(status="escalated", text="How long do refunds take to arrive?")
    before = snapshot(team, conv)
    response = suggest(team, conv)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["conversation_id"] == conv and body["provider"] == "extractive"
    assert "14 days" in body["draft"]
    assert body["sources"] and body["sources"][0] == {"title": "Billing", "url": "https://acme.example/billing"}
    assert 0.0 < body["confidence"] <= 1.0
    customer = team.db.query_one("SELECT id FROM messages WHERE conversation_id = ? AND sender_type = 'customer'",
                                 (conv,))
    assert body["reply_to"] == customer["id"]
    assert snapshot(team, conv) == before        # no message, no status change, no event, no escalation, no audit


def test_the_draft_answers_the_latest_customer_message_in_context(team: Team) -> None:
    conv = team.conversation(status="active", text="How much does the Pro plan cost?")

    def more(conn: Any) -> None:
        store.add_message(conn, conv, "bot", "The Pro plan costs $9 per month.", sender_name="Acme Bot")
        store.add_message(conn, conv, "customer", "and what about for teams?")

    team.db.write(more)
    body = suggest(team, conv).json()
    assert "$20" in body["draft"], body                   # the follow-up was read with the earlier question
    assert team.status(conv)["status"] == "active"


def test_nothing_in_the_knowledge_base_gives_an_empty_draft(team: Team) -> None:
    conv = team.conversation(text="Can you recommend a good pizza place in Naples?")
    body = suggest(team, conv).json()
    assert body["draft"] == "" and body["sources"] == [] and body["confidence"] == 0.0
    assert team.status(conv)["status"] == "active"


def test_no_customer_message_yet_is_409_and_viewers_cannot_draft(team: Team) -> None:
    empty = team.db.write(lambda conn: states.start(conn, team.ws, team.bot))
    response = suggest(team, empty)
    assert response.status_code == 409 and error_code(response) == "conflict"
    conv = team.conversation()
    assert suggest(team, conv, team.viewer_h).status_code == 403
    assert suggest(team, "missing").status_code == 404


def test_drafting_on_another_agents_conversation_is_allowed(team: Team) -> None:
    conv = team.conversation(status="escalated", text="Where can I download my invoices?")
    assert team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.other_h,
                            json={}).status_code == 200
    body = suggest(team, conv).json()
    assert "Settings > Billing > Invoices" in body["draft"]
