"""/api/v1/answer-reviews (PRD §4.4 Story 4.3, the learning loop): the queue's reasons against seeded answers with
known confidences, feedback and outcomes; dates and keyset pages; verdicts and roles; 404 for another workspace;
a correction saved as an FAQ — and, with the real answer engine, the same question answered from that FAQ."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import add_user, audit_rows, bearer, error_code, login, open_client
from answer_support import PAGES, index_pages, new_conversation
from chatsupport.domain import conversations as states
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import conversations as store
from knowledge_support import kb_settings

QUEUE = "/api/v1/answer-reviews"


def minutes_ago(minutes: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed_answer(client: TestClient, workspace_id: str, chatbot_id: str, question: str, answer: str, *,
                confidence: float | None, outcome: str = "answered", feedback: str | None = None,
                created_at: str | None = None, sources: list[dict[str, Any]] | None = None) -> str:
    """A customer question and the bot's reply as the answer pipeline stores them; the reply's id."""
    def write(conn: Any) -> str:
        conversation_id = states.start(conn, workspace_id, chatbot_id)
        asked = store.add_message(conn, conversation_id, "customer", question)
        meta = {"outcome": outcome, "provider": "extractive" if outcome == "answered" else None,
                "confidence": confidence, "sources": sources or [], "failed": False, "reply_to": asked,
                "escalated": outcome == "escalated",
                **({"escalation_reason": "user_request"} if outcome == "escalated" else {})}
        message_id = store.add_message(conn, conversation_id, "bot", answer, ai_metadata=meta)
        if outcome == "escalated":
            states.transition(conn, workspace_id, conversation_id, "escalate", reason="user_request")
        if feedback:
            store.set_feedback(conn, message_id, feedback)
        if created_at:
            conn.execute("UPDATE messages SET created_at = ? WHERE id IN (?, ?)", (created_at, asked, message_id))
        return message_id

    return client.app.state.services.db.write(write)


class World:
    def __init__(self, client: TestClient):
        self.client = client
        for email, role in (("owner", "owner"), ("agent", "agent"), ("viewer", "viewer")):
            add_user(client, "Review Co", f"{email}@review.example", role)
        add_user(client, "Other Co", "owner@other-review.example", "owner")
        self.owner = bearer(login(client, "owner@review.example"))
        self.agent = bearer(login(client, "agent@review.example"))
        self.viewer = bearer(login(client, "viewer@review.example"))
        self.stranger = bearer(login(client, "owner@other-review.example"))
        self.bot = self.new_bot("Review Bot", self.owner)
        # a stricter bot: its own threshold decides what counts as low confidence
        self.strict = self.new_bot("Strict Bot", self.owner, ai_settings={
            "escalation_triggers": {"low_confidence_threshold": 0.9}})
        self.other_bot = self.new_bot("Other Bot", self.stranger)
        ws, bot = self.bot["workspace_id"], self.bot["id"]
        self.ids = {
            "old": seed_answer(client, ws, bot, "Where is the old office?", "It moved.", confidence=0.3,
                               created_at="2020-01-01T10:00:00.000Z"),
            "high": seed_answer(client, ws, bot, "How much is Pro?", "The Pro plan costs $9 per month.",
                                confidence=0.92, feedback="up", created_at=minutes_ago(60),
                                sources=[{"source_type": "url", "source_id": "d1", "title": "Plans",
                                          "url": "https://help.example/plans", "score": 0.8}]),
            "low": seed_answer(client, ws, bot, "Do you ship to Mars?", "Shipping takes 3 days.", confidence=0.41,
                               created_at=minutes_ago(59)),
            "declined": seed_answer(client, ws, bot, "Is there an app?", "Sorry, I don't know.", confidence=0.0,
                                    outcome="declined", created_at=minutes_ago(58)),
            "down": seed_answer(client, ws, bot, "Can I get a refund?", "Refunds take 14 days.", confidence=0.85,
                                feedback="down", created_at=minutes_ago(57)),
            "escalated": seed_answer(client, ws, bot, "I want a human", "Connecting you to the team.",
                                     confidence=None, outcome="escalated", created_at=minutes_ago(56)),
            "strict": seed_answer(client, ws, self.strict["id"], "How do I reset 2FA?", "Use recovery codes.",
                                  confidence=0.85, created_at=minutes_ago(55)),
        }
        self.other_answer = seed_answer(client, self.other_bot["workspace_id"], self.other_bot["id"], "Secret?",
                                        "Other workspace answer.", confidence=0.2)

    def new_bot(self, name: str, headers: dict[str, str], **settings: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/chatbots", headers=headers,
                                    json={"name": name, "behavior_settings": {"response_delay": 0}, **settings})
        assert response.status_code == 201, response.text
        return response.json()

    def queue(self, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(QUEUE, params=params, headers=headers or self.viewer)

    def listed(self, **params: Any) -> list[str]:
        response = self.queue(**params)
        assert response.status_code == 200, response.text
        names = {v: k for k, v in self.ids.items()}
        return [names.get(a["message_id"], a["message_id"]) for a in response.json()["data"]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(kb_settings(tmp_path_factory.mktemp("answer-reviews") / "data")) as client:
        yield World(client)


def test_the_queue_filters_by_reason_bot_and_dates(world: World) -> None:
    newest_first = ["strict", "escalated", "down", "declined", "low", "high", "old"]
    assert world.listed() == newest_first
    assert world.listed(reason="low_confidence") == ["strict", "declined", "low", "old"]
    assert world.listed(reason="thumbs_down") == ["down"]
    assert world.listed(reason="escalated") == ["escalated"]
    assert world.listed(reason="low_confidence", chatbot_id=world.bot["id"]) == ["declined", "low", "old"]
    assert world.listed(chatbot_id=world.strict["id"]) == ["strict"]
    assert world.listed(start="2021-01-01") == newest_first[:-1]
    assert world.listed(end="2020-01-01") == ["old"]  # a bare end date is the whole day

    body = world.queue(chatbot_id=world.bot["id"]).json()
    assert body["counts"] == {"low_confidence": 3, "thumbs_down": 1, "escalated": 1, "unreviewed": 6, "all": 6}
    high = next(a for a in body["data"] if a["message_id"] == world.ids["high"])
    assert high["question"] == "How much is Pro?" and high["answer"] == "The Pro plan costs $9 per month."
    assert high["confidence"] == 0.92 and high["threshold"] == 0.7 and high["below_threshold"] is False
    assert high["feedback"] == "up" and high["provider"] == "extractive" and high["outcome"] == "answered"
    assert high["sources"] == [{"source_type": "url", "source_id": "d1", "title": "Plans",
                                "url": "https://help.example/plans", "score": 0.8}]
    assert high["chatbot_name"] == "Review Bot" and high["review"] is None
    escalated = next(a for a in body["data"] if a["message_id"] == world.ids["escalated"])
    assert escalated["conversation_status"] == "escalated" and escalated["conversation_escalated"] is True
    assert escalated["escalation_reason"] == "user_request" and escalated["confidence"] is None
    strict = world.queue(chatbot_id=world.strict["id"]).json()["data"][0]
    assert strict["threshold"] == 0.9 and strict["below_threshold"] is True


def test_keyset_pages_walk_the_whole_queue_once(world: World) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = world.queue(**params).json()
        seen.extend(a["message_id"] for a in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["message_id"] for a in world.queue(limit=100).json()["data"]] and len(seen) == 7
    bad = world.queue(cursor="not-a-cursor")
    assert bad.status_code == 422 and error_code(bad) == "validation_error"
    assert world.queue(reason="everything").status_code == 422
    assert world.queue(start="yesterday").status_code == 422


def test_the_queue_is_scoped_to_the_workspace(world: World) -> None:
    assert world.other_answer not in world.listed()
    theirs = world.queue(headers=world.stranger).json()["data"]
    assert [a["message_id"] for a in theirs] == [world.other_answer]
    hidden = world.queue(chatbot_id=world.other_bot["id"])
    assert hidden.status_code == 404 and error_code(hidden) == "not_found"


def test_verdicts_roles_and_unknown_answers(world: World) -> None:
    item = f"{QUEUE}/{world.ids['low']}"
    marked = world.client.post(item, json={"verdict": "incorrect", "note": "Mars is not served."},
                               headers=world.agent)
    assert marked.status_code == 200, marked.text
    review = marked.json()["review"]
    assert review["verdict"] == "incorrect" and review["note"] == "Mars is not served." and review["faq_id"] is None
    again = world.client.post(item, json={"verdict": "correct"}, headers=world.owner).json()["review"]
    assert again["verdict"] == "correct" and again["note"] == "Mars is not served."  # a note not given is kept
    assert audit_rows(world.client, "answer.reviewed")[-1]["resource_id"] == world.ids["low"]
    counts = world.queue(chatbot_id=world.bot["id"]).json()["counts"]
    assert counts["unreviewed"] == 5 and world.ids["low"] not in [
        a["message_id"] for a in world.queue(reason="unreviewed").json()["data"]]

    assert world.client.post(item, json={"verdict": "correct"}, headers=world.viewer).status_code == 403
    assert world.client.post(item, json={"verdict": "maybe"}, headers=world.owner).status_code == 422
    too_long = world.client.post(item, json={"verdict": "correct", "note": "x" * 2001}, headers=world.owner)
    assert too_long.status_code == 422
    for target in (world.other_answer, "0b9e5c1e-0000-4000-8000-000000000000", "not-an-id'--"):
        stranger = world.client.post(f"{QUEUE}/{target}", headers=world.owner)  # no body: 404 comes first
        assert stranger.status_code == 404 and error_code(stranger) == "not_found"
    customer_message = world.client.app.state.services.db.query_one(
        "SELECT id FROM messages WHERE sender_type = 'customer' LIMIT 1")["id"]
    assert world.client.post(f"{QUEUE}/{customer_message}", json={"verdict": "correct"},
                             headers=world.owner).status_code == 404
    other = world.client.app.state.services.db.query_one("SELECT * FROM answer_reviews WHERE message_id = ?",
                                                         (world.other_answer,))
    assert other is None


def test_a_correction_becomes_an_indexed_faq(world: World) -> None:
    item = f"{QUEUE}/{world.ids['declined']}/faq"
    empty = world.client.post(item, json={"question": "Is there an app?", "answer": "  "}, headers=world.agent)
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["field"] == "answer"
    assert world.client.post(item, json={"question": "Q", "answer": "A"}, headers=world.viewer).status_code == 403

    saved = world.client.post(item, json={"question": "Is there an app?",
                                          "answer": "Yes: Acme Go for iPhone and Android."}, headers=world.agent)
    assert saved.status_code == 201, saved.text
    faq, review = saved.json()["faq"], saved.json()["review"]
    assert faq["chatbot_id"] == world.bot["id"] and faq["embedding_generated"] is True
    assert faq["metadata"] == {"corrects_message_id": world.ids["declined"]}
    assert review["review"]["verdict"] == "corrected" and review["review"]["faq_id"] == faq["id"]
    chunks = world.client.app.state.services.db.query("SELECT title, content FROM knowledge_chunks WHERE faq_id = ?",
                                                      (faq["id"],))
    assert chunks == [{"title": "Is there an app?", "content": "Yes: Acme Go for iPhone and Android."}]
    listed = world.client.get("/api/v1/knowledge-base/faqs", params={"chatbot_id": world.bot["id"]},
                              headers=world.viewer).json()["data"]
    assert faq["id"] in [f["id"] for f in listed]
    assert audit_rows(world.client, "answer.corrected")[-1]["resource_id"] == world.ids["declined"]

    duplicate = world.client.post(f"{QUEUE}/{world.ids['low']}/faq", json={"question": "is there an APP",
                                                                             "answer": "Yes."}, headers=world.owner)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["details"][0]["faq_id"] == faq["id"]
    assert world.queue(reason="unreviewed", chatbot_id=world.bot["id"]).json()["counts"]["unreviewed"] == 4


QUESTION = "Do you have a mobile app for my phone?"
BETTER = "Yes. Our mobile app Acme Go runs on iPhone and Android; download it from the App Store or Google Play."


def test_a_corrected_answer_saved_as_faq_is_used_for_the_same_question_afterwards(world: World) -> None:
    """The real pipeline end to end: the help center does not cover the question, so the bot declines or answers
    with low confidence; the owner saves a better answer from the review queue; a new customer asking the same
    question gets the FAQ's answer, cited, above the threshold."""
    services = world.client.app.state.services
    bot = world.new_bot("Learning Bot", world.owner)
    index_pages(services.db, services.embedder, bot["id"], PAGES)
    engine = AnswerEngine(services.db, services.embedder)
    try:
        before = asyncio.run(engine.ask(bot["workspace_id"], new_conversation(services.db, bot["workspace_id"],
                                                                              bot["id"]), QUESTION))
        assert before.outcome in ("declined", "escalated") or (before.confidence or 0) < 0.7, before
        assert "Acme Go" not in before.answer

        queued = world.queue(world.owner, chatbot_id=bot["id"], reason="low_confidence").json()["data"]
        assert [(a["message_id"], a["question"]) for a in queued] == [(before.message_id, QUESTION)]
        saved = world.client.post(f"{QUEUE}/{before.message_id}/faq", json={"question": QUESTION, "answer": BETTER},
                                  headers=world.owner)
        assert saved.status_code == 201, saved.text
        faq_id = saved.json()["faq"]["id"]

        after = asyncio.run(engine.ask(bot["workspace_id"], new_conversation(services.db, bot["workspace_id"],
                                                                             bot["id"]), QUESTION))
    finally:
        engine.close()
    assert after.outcome == "answered", after
    assert "Acme Go runs on iPhone and Android" in after.answer
    assert after.sources[0]["source_type"] == "faq" and after.sources[0]["source_id"] == faq_id
    assert after.sources[0]["title"] == QUESTION and after.confidence >= 0.7
    stored = world.queue(world.owner, chatbot_id=bot["id"]).json()["data"][0]
    assert stored["message_id"] == after.message_id and stored["below_threshold"] is False
    assert stored["sources"][0]["source_id"] == faq_id


def test_openapi_describes_the_review_types(world: World) -> None:
    spec = world.client.get("/schema/openapi.json").json()
    listing = spec["paths"]["/api/v1/answer-reviews"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"chatbot_id", "reason", "start", "end", "cursor", "limit"}
    verdict = spec["paths"]["/api/v1/answer-reviews/{message_id}"]["post"]
    correction = spec["paths"]["/api/v1/answer-reviews/{message_id}/faq"]["post"]
    assert "requestBody" in verdict and "200" in verdict["responses"]
    assert "requestBody" in correction and "201" in correction["responses"]
    assert {"AnswerPage", "AnswerOut", "VerdictRequest", "CorrectionRequest"} <= set(spec["components"]["schemas"])
