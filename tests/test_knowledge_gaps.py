"""GET /api/v1/knowledge-base/gaps (PRD §5.4.4): declined, low-confidence and thumbed-down questions grouped by
meaning, through the real app and the real answer pipeline; workspace-scoped."""

from __future__ import annotations

import asyncio
from pathlib import Path

from accounts_support import add_user, bearer, error_code, login, open_client
from answer_support import PAGES, index_pages, new_conversation
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import conversations as store
from knowledge_support import kb_settings

GAPS = "/api/v1/knowledge-base/gaps"


def test_gaps_group_similar_unanswered_questions(tmp_path: Path) -> None:
    with open_client(kb_settings(tmp_path / "data")) as client:
        add_user(client, "Gap Co", "owner@gap.example", "owner")
        add_user(client, "Gap Co", "viewer@gap.example", "viewer")
        add_user(client, "Other Co", "owner@other.example", "owner")
        owner, viewer = bearer(login(client, "owner@gap.example")), bearer(login(client, "viewer@gap.example"))
        other = bearer(login(client, "owner@other.example"))
        bot = client.post("/api/v1/chatbots", json={"name": "Gap Bot", "behavior_settings": {"response_delay": 0}},
                          headers=owner).json()
        services = client.app.state.services
        index_pages(services.db, services.embedder, bot["id"], {"plans.md": PAGES["plans.md"]})
        engine = AnswerEngine(services.db, services.embedder)
        questions = ["do you have a mobile app for iphone?", "is there an android app?", "is there a mobile app",
                     "how much does the pro plan cost per month?"]
        ids = []
        for question in questions:
            conversation = new_conversation(services.db, bot["workspace_id"], bot["id"])
            ids.append(asyncio.run(engine.ask(bot["workspace_id"], conversation, question)).message_id)
        services.db.write(lambda conn: store.set_feedback(conn, ids[-1], "down"))

        response = client.get(GAPS, params={"chatbot_id": bot["id"]}, headers=viewer)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["total_queries"] == 4 and report["no_result_queries"] >= 2
        top = report["gaps"][0]
        assert top["count"] == 3 and "app" in top["query_pattern"]
        assert set(top["sample_queries"]) <= set(questions[:3]) and top["suggested_action"].startswith("Add")
        pro = [g for g in report["gaps"] if "how much does the pro plan cost per month?" in g["sample_queries"]]
        assert pro and pro[0]["thumbs_down"] == 1 and pro[0]["suggested_action"].startswith("Review")

        assert error_code(client.get(GAPS, params={"chatbot_id": bot["id"]}, headers=other)) == "not_found"
        assert client.get(GAPS, params={"chatbot_id": bot["id"]}).status_code == 401
