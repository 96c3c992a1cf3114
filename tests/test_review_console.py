"""The console's review queue as a browser sees it (HTML parsed): tabs with counts, answers with their question,
sources and confidence — customer and AI text escaped —, Correct / Incorrect and "Write a better answer" by htmx
with inline errors and a link to the saved FAQ, empty states, the link to knowledge gaps; roles and scope."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Page, add_user, bearer, login, open_client
from knowledge_support import kb_settings
from test_answer_reviews import minutes_ago, seed_answer
from test_knowledge_console import Elements, console_login

HTMX = {"HX-Request": "true"}
EVIL_QUESTION = '<script>alert("q")</script> Can I get a refund?'
EVIL_ANSWER = '<img src=x onerror=alert(1)> Refunds take 14 days.\n\nSource: Billing'


class World:
    def __init__(self, client: TestClient):
        self.client = client
        add_user(client, "Queue Co", "owner@queue.example", "owner")
        add_user(client, "Queue Co", "viewer@queue.example", "viewer")
        add_user(client, "Elsewhere", "owner@elsewhere.example", "owner")
        owner = bearer(login(client, "owner@queue.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Queue Bot"}, headers=owner).json()
        ws, bot = self.bot["workspace_id"], self.bot["id"]
        self.evil = seed_answer(client, ws, bot, EVIL_QUESTION, EVIL_ANSWER, confidence=0.42,
                                created_at=minutes_ago(30), sources=[
                                    {"source_type": "url", "source_id": "d1", "title": "Evil",
                                     "url": "javascript:alert(1)", "score": 0.5},
                                    {"source_type": "faq", "source_id": "f1", "title": "Refunds?", "url": None,
                                     "score": 0.4}])
        self.good = seed_answer(client, ws, bot, "How much is Pro?", "The Pro plan costs $9 per month.",
                                confidence=0.95, feedback="up", created_at=minutes_ago(20))
        self.handed = seed_answer(client, ws, bot, "I want a person", "Connecting you.", confidence=None,
                                  outcome="escalated", created_at=minutes_ago(10))

    def csrf(self, path: str, form_id: str) -> str:
        return Page(self.client.get(path).text).form(form_id)["fields"]["csrf_token"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(kb_settings(tmp_path_factory.mktemp("review-console") / "data")) as client:
        yield World(client)


def test_the_queue_shows_tabs_counts_and_escaped_answers(world: World) -> None:
    console_login(world.client, "owner@queue.example")
    response = world.client.get("/review")
    assert response.status_code == 200
    page, elements, html = Page(response.text), Elements(response.text), response.text
    assert elements.attrs["tab-low_confidence"]["aria-current"] == "page"  # the default tab
    assert page.texts["tab-low_confidence"] == "Low confidence 1" and page.texts["tab-all"] == "All 3"
    assert page.texts["tab-escalated"] == "Escalated 1" and page.texts["tab-unreviewed"] == "Unreviewed 3"
    assert page.inline_styles == 0 and all(script.get("src") for script in page.scripts)

    evil = world.evil
    assert page.texts[f"question-{evil}"] == EVIL_QUESTION  # shown as text ...
    assert page.texts[f"text-{evil}"].startswith("<img src=x onerror=alert(1)> Refunds")
    assert "<script>alert" not in html and "<img src=x" not in html  # ... never as markup
    assert "&lt;script&gt;" in html
    confidence = elements.attrs[f"conf-{evil}"]
    assert "conf-low" in confidence["class"] and page.texts[f"conf-{evil}"] == \
        "42% confidence, below the 70% threshold"
    links = _links(html)
    assert not [href for href in links if href.lower().startswith("javascript:")]  # that URL is not a link
    assert f"/chatbots/{world.bot['id']}/knowledge#faq-f1" in links
    assert "Evil" in page.texts[f"sources-{evil}"]

    editor = page.form(f"faq-form-{evil}")
    assert editor["fields"]["question"] == EVIL_QUESTION
    assert page.texts[f"fa-{evil}"] == "<img src=x onerror=alert(1)> Refunds take 14 days."  # no Source line
    assert elements.attrs[f"editor-{evil}"]["tag"] == "details" and "open" not in elements.attrs[f"editor-{evil}"]
    assert elements.attrs["gaps-link-1"]["href"] == f"/chatbots/{world.bot['id']}/knowledge/gaps"

    all_html = world.client.get("/review", params={"reason": "all"}).text
    everything = Page(all_html)
    assert {f"answer-{i}" for i in (world.evil, world.good, world.handed)} <= set(Elements(all_html).attrs)
    assert everything.texts[f"conf-{world.good}"] == "95% confidence"
    assert everything.texts[f"feedback-{world.good}"] == "Customer: helpful"
    assert everything.texts[f"outcome-{world.handed}"] == "Handed over: user request"

    empty = Page(world.client.get("/review", params={"reason": "thumbs_down"}).text)
    assert empty.texts["answers-empty"] == "No answers marked unhelpful by a customer in last 30 days."
    per_bot = world.client.get(f"/chatbots/{world.bot['id']}/review", params={"reason": "all", "period": "7d"})
    bot_page = Elements(per_bot.text)
    assert bot_page.attrs["gaps-link"]["href"] == f"/chatbots/{world.bot['id']}/knowledge/gaps"
    assert f"answer-{world.good}" in bot_page.attrs and "review-bot" not in bot_page.attrs


def test_verdicts_and_a_better_answer_by_htmx(world: World) -> None:
    console_login(world.client, "owner@queue.example")
    token = world.csrf("/review", f"verdict-form-{world.evil}")
    marked = world.client.post(f"/review/{world.evil}/verdict", data={"csrf_token": token, "verdict": "incorrect"},
                               headers=HTMX)
    assert marked.status_code == 200
    fragment, attrs = Page(marked.text), Elements(marked.text).attrs
    assert attrs[f"answer-{world.evil}"]["tag"] == "article"  # the fragment only
    assert attrs[f"incorrect-{world.evil}"]["aria-pressed"] == "true"
    assert attrs[f"correct-{world.evil}"]["aria-pressed"] == "false"
    assert fragment.texts[f"verdict-{world.evil}"] == "Marked incorrect."
    assert "Unreviewed 2" in Page(world.client.get("/review").text).texts["tab-unreviewed"]
    without_token = world.client.post(f"/review/{world.evil}/verdict", data={"verdict": "correct"}, headers=HTMX)
    assert without_token.status_code == 403

    save = f"/review/{world.evil}/faq"
    blank = Page(world.client.post(save, data={"csrf_token": token, "question": "Can I get a refund?", "answer": " "},
                                   headers=HTMX).text)
    assert blank.field_errors[f"fa-{world.evil}"] == "Required."
    blank_html = world.client.post(save, data={"csrf_token": token, "question": "", "answer": "x"}, headers=HTMX).text
    assert "open" in Elements(blank_html).attrs[f"editor-{world.evil}"]  # the editor stays open on an error
    assert Page(blank_html).texts[f"fa-{world.evil}"] == "x"  # the draft is kept

    saved = world.client.post(save, data={"csrf_token": token, "question": "Can I get a refund?",
                                          "answer": "Yes, within 30 days, to the original payment method."},
                              headers=HTMX)
    saved_page, saved_attrs = Page(saved.text), Elements(saved.text).attrs
    faq = world.client.app.state.services.db.query_one(
        "SELECT id FROM knowledge_faqs WHERE chatbot_id = ? AND question = ?", (world.bot["id"], "Can I get a refund?"))
    link = saved_attrs[f"saved-link-{world.evil}"]["href"]
    assert link == f"/chatbots/{world.bot['id']}/knowledge#faq-{faq['id']}"
    assert saved_page.alerts[0].startswith("Saved as an FAQ: the bot answers this question with it from now on.")
    assert saved_page.texts[f"verdict-{world.evil}"].startswith("Corrected")
    knowledge = Elements(world.client.get(link.split("#")[0]).text)
    assert f"faq-{faq['id']}" in knowledge.attrs  # the link's target exists

    again = world.client.post(f"/review/{world.good}/faq", data={"csrf_token": token, "question": "can i get a REFUND",
                                                                 "answer": "Yes."}, headers=HTMX)
    duplicate = Elements(again.text).attrs
    assert duplicate[f"existing-faq-{world.good}"]["href"].endswith(f"#faq-{faq['id']}")

    plain = world.client.post(f"/review/{world.good}/verdict", data={"csrf_token": token, "verdict": "correct"})
    assert plain.status_code == 200 and "review-answer-page" in Elements(plain.text).attrs  # the answer's page
    assert Page(plain.text).texts[f"verdict-{world.good}"] == "Marked correct."


def test_viewers_see_and_cannot_act_and_other_workspaces_see_nothing(world: World) -> None:
    console_login(world.client, "viewer@queue.example")
    page = Elements(world.client.get("/review", params={"reason": "all"}).text).attrs
    assert f"answer-{world.good}" in page
    assert f"verdict-form-{world.good}" not in page and f"editor-{world.good}" not in page
    assert world.client.post(f"/review/{world.good}/verdict", data={"verdict": "correct"}).status_code == 403
    assert world.client.post(f"/review/{world.good}/faq", data={"question": "Q", "answer": "A"}).status_code == 403

    console_login(world.client, "owner@elsewhere.example")
    assert world.client.get(f"/review/{world.good}").status_code == 404
    assert world.client.post(f"/review/{world.good}/verdict", data={"verdict": "correct"}).status_code == 404
    assert world.client.get(f"/chatbots/{world.bot['id']}/review").status_code == 404
    theirs_html = world.client.get("/review", params={"reason": "all"}).text
    theirs = Page(theirs_html)
    assert theirs.texts["answers-empty"] == "The AI has not answered anything in last 30 days."
    assert not any(key.startswith("answer-") for key in Elements(theirs_html).attrs)


def _links(html: str) -> list[str]:
    class Links(Elements):
        def __init__(self, text: str):
            self.hrefs: list[str] = []
            super().__init__(text)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
            if tag == "a" and dict(attrs).get("href"):
                self.hrefs.append(dict(attrs)["href"])

    return Links(html).hrefs
