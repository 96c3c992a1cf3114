"""The console's knowledge-gaps page as a browser sees it (HTML parsed): the empty state, groups of unanswered
questions with counts, samples and the suggested action from the real answer pipeline, the period filter, and the
"Add an FAQ" link that opens the FAQ form with the question filled in; roles and workspace scope."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from accounts_support import Page, add_user, bearer, login, open_client
from answer_support import PAGES, index_pages, new_conversation
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import conversations as store
from knowledge_support import kb_settings
from test_knowledge_console import Elements, console_login

HTMX = {"HX-Request": "true"}
QUESTIONS = ["do you have a mobile app for iphone?", "is there an android app?", "is there a mobile app",
             "how much does the pro plan cost per month?"]


def test_gaps_page_groups_questions_and_links_to_a_prefilled_faq(tmp_path: Path) -> None:
    with open_client(kb_settings(tmp_path / "data")) as client:
        add_user(client, "Gap Co", "owner@gap.example", "owner")
        add_user(client, "Gap Co", "viewer@gap.example", "viewer")
        add_user(client, "Other Co", "owner@other.example", "owner")
        owner = bearer(login(client, "owner@gap.example"))
        bot = client.post("/api/v1/chatbots", json={"name": "Gap Bot", "behavior_settings": {"response_delay": 0}},
                          headers=owner).json()
        other = client.post("/api/v1/chatbots", json={"name": "Other"},
                            headers=bearer(login(client, "owner@other.example"))).json()
        base = f"/chatbots/{bot['id']}/knowledge/gaps"
        console_login(client, "owner@gap.example")

        empty = Page(client.get(base).text)
        assert "No gaps in this period" in empty.texts["gaps-empty"]
        assert empty.inline_styles == 0 and all(script.get("src") for script in empty.scripts)
        assert empty.form("period-form")["method"] == "get"

        services = client.app.state.services
        index_pages(services.db, services.embedder, bot["id"], {"plans.md": PAGES["plans.md"]})
        engine = AnswerEngine(services.db, services.embedder)
        ids = []
        for question in QUESTIONS:
            conversation = new_conversation(services.db, bot["workspace_id"], bot["id"])
            ids.append(asyncio.run(engine.ask(bot["workspace_id"], conversation, question)).message_id)
        services.db.write(lambda conn: store.set_feedback(conn, ids[-1], "down"))

        response = client.get(base, params={"period": "7d"})
        assert response.status_code == 200
        page, elements = Page(response.text), Elements(response.text)
        assert elements.attrs["tab-gaps"]["aria-current"] == "page"
        assert elements.attrs["tab-review"]["href"] == f"/chatbots/{bot['id']}/review"  # the learning loop's queue
        assert "Last 7 days" in page.texts["gaps-heading"]
        assert "4" in page.texts["gap-totals"]
        top = page.texts["gap-1"]
        assert "3 questions" in top and "app" in top and "Suggested: Add an FAQ" in top
        assert any(f"“{q}”" in top for q in QUESTIONS[:3])
        groups = [page.texts[k] for k in page.texts if re.fullmatch(r"gap-\d+", k)]  # the articles, not their titles
        pro = next(text for text in groups if "pro plan" in text)
        assert "1 thumbs down" in pro and "Suggested: Review" in pro

        link = urlsplit(elements.attrs["add-faq-1"]["href"])
        assert link.path == f"/chatbots/{bot['id']}/knowledge"
        asked = parse_qs(link.query)["faq_question"][0]
        assert asked in QUESTIONS[:3]
        faq_page = Page(client.get(f"{link.path}?{link.query}").text)
        assert faq_page.form("faq-form")["fields"]["question"] == asked

        fragment = client.get(base, params={"period": "90d"}, headers=HTMX)
        assert Elements(fragment.text).attrs["gaps"]["tag"] == "section"  # htmx gets the fragment only
        assert "Last 90 days" in Page(fragment.text).texts["gaps-heading"]

        console_login(client, "viewer@gap.example")
        viewer = Elements(client.get(base).text)
        assert "gap-1" in viewer.attrs and "add-faq-1" not in viewer.attrs
        assert client.get(f"/chatbots/{other['id']}/knowledge/gaps").status_code == 404
