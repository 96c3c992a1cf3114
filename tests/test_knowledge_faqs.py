"""/api/v1/knowledge-base/faqs (PRD §5.4.3): CRUD, duplicate questions, CSV import report, FAQs as retrieval
items in "Test your bot"."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import add_user, bearer, error_code, login, open_client
from knowledge_support import FAQS, kb_settings, wait_until

TEST = "/api/v1/knowledge-base/test"


class World:
    def __init__(self, client: TestClient):
        self.client = client
        add_user(client, "FAQ Co", "owner@faq.example", "owner")
        add_user(client, "FAQ Co", "viewer@faq.example", "viewer")
        self.owner = bearer(login(client, "owner@faq.example"))
        self.viewer = bearer(login(client, "viewer@faq.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "FAQ Bot"}, headers=self.owner).json()

    def faq(self, **fields: Any) -> Any:
        return self.client.post(FAQS, json={"chatbot_id": self.bot["id"], **fields}, headers=self.owner)

    def chunks(self, faq_id: str) -> list[dict[str, Any]]:
        return self.client.app.state.services.db.query(
            "SELECT title, content FROM knowledge_chunks WHERE faq_id = ?", (faq_id,))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(kb_settings(tmp_path_factory.mktemp("kb-faqs") / "data")) as client:
        yield World(client)


def test_create_read_update_delete(world: World) -> None:
    created = world.faq(question="How do I reset my password?", answer="Go to the login page and click "
                        "'Forgot password'.", category="account", tags=["password", "security"], priority="high",
                        metadata={"related_urls": ["https://example.com/reset"]})
    assert created.status_code == 201, created.text
    faq = created.json()
    assert faq["embedding_generated"] is True and faq["status"] == "active" and faq["usage_count"] == 0
    assert faq["tags"] == ["password", "security"] and faq["priority"] == "high"
    assert world.chunks(faq["id"]) == [{"title": "How do I reset my password?",
                                        "content": "Go to the login page and click 'Forgot password'."}]
    assert world.client.get(f"{FAQS}/{faq['id']}", headers=world.viewer).json() == faq

    changed = world.client.patch(f"{FAQS}/{faq['id']}", json={"answer": "Use the reset link on the login page."},
                                 headers=world.owner)
    assert changed.status_code == 200 and changed.json()["answer"] == "Use the reset link on the login page."
    assert world.chunks(faq["id"])[0]["content"] == "Use the reset link on the login page."
    hidden = world.client.patch(f"{FAQS}/{faq['id']}", json={"status": "inactive"}, headers=world.owner)
    assert hidden.json()["embedding_generated"] is False and world.chunks(faq["id"]) == []

    listing = world.client.get(FAQS, params={"chatbot_id": world.bot["id"]}, headers=world.viewer).json()
    assert faq["id"] in [f["id"] for f in listing["data"]]
    assert world.client.delete(f"{FAQS}/{faq['id']}", headers=world.owner).status_code == 204
    assert world.client.get(f"{FAQS}/{faq['id']}", headers=world.owner).status_code == 404


def test_validation_duplicates_and_roles(world: World) -> None:
    assert world.faq(question="", answer="x").status_code == 422
    bad = world.faq(question="Q?", answer="A", priority="urgent")
    assert bad.status_code == 422 and error_code(bad) == "validation_error"
    assert world.faq(question="Do you ship abroad?", answer="Yes, to the EU.").status_code == 201
    again = world.faq(question="do you ship ABROAD", answer="Yes.")
    assert again.status_code == 409 and error_code(again) == "already_exists"
    viewer = world.client.post(FAQS, json={"chatbot_id": world.bot["id"], "question": "Q", "answer": "A"},
                               headers=world.viewer)
    assert viewer.status_code == 403


CSV = (
    "question,answer,category,tags\n"
    '"What is your refund policy?","We refund within 30 days of purchase.",billing,"refund,policy"\n'
    '"How long does delivery take?","Delivery takes three to five working days.",shipping,delivery\n'
    '"what is your refund policy","Duplicate of row 2.",billing,\n'
    ',"An answer without a question",misc,\n'
    '"Do you ship abroad?","Already exists in the FAQ list.",shipping,\n'
    '"Can I pay by invoice?","Yes, businesses can pay by invoice within 14 days.",billing,"payment; invoice"\n'
)


def test_csv_import_reports_rows_and_indexes_in_the_background(world: World) -> None:
    world.faq(question="Do you ship abroad?", answer="Yes, to the EU.")  # may already exist from another test
    response = world.client.post(f"{FAQS}/import", data={"chatbot_id": world.bot["id"]},
                                 files={"file": ("faqs.csv", CSV.encode(), "text/csv")}, headers=world.owner)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 3 and report["skipped"] == 3
    assert {e["row"]: e["error"] for e in report["errors"]}.keys() == {4, 5, 6}
    assert report["errors"][0] == {"row": 4, "error": "Duplicate question found"}
    assert "question" in report["errors"][1]["error"]
    faqs = world.client.get(FAQS, params={"chatbot_id": world.bot["id"]}, headers=world.owner).json()["data"]
    invoice = next(f for f in faqs if f["question"] == "Can I pay by invoice?")
    assert invoice["tags"] == ["payment", "invoice"] and invoice["category"] == "billing"

    def indexed() -> bool:
        rows = world.client.get(FAQS, params={"chatbot_id": world.bot["id"]}, headers=world.owner).json()["data"]
        return all(f["embedding_generated"] for f in rows if f["status"] == "active")

    wait_until(indexed)
    answer = world.client.post(TEST, json={"chatbot_id": world.bot["id"], "query": "can I get my money back?",
                                           "top_k": 3}, headers=world.viewer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    top = body["results"][0]
    assert body["query"] == "can I get my money back?" and body["confidence_score"] == top["score"]
    assert top["source_type"] == "faq" and top["rank"] == 1 and 0 < top["score"] <= 1
    assert "refund within 30 days" in top["content"] and top["metadata"]["category"] == "billing"
    assert top["metadata"]["tags"] == ["refund", "policy"]
    assert [r["rank"] for r in body["results"]] == list(range(1, len(body["results"]) + 1))

    overwrite = world.client.post(f"{FAQS}/import", files={"file": ("faqs.csv", CSV.encode())},
                                  data={"chatbot_id": world.bot["id"], "overwrite_existing": "true"},
                                  headers=world.owner)
    assert overwrite.json()["skipped"] == 1  # only the row without a question


def test_import_rejects_bad_files(world: World) -> None:
    no_header = world.client.post(f"{FAQS}/import", data={"chatbot_id": world.bot["id"]},
                                  files={"file": ("faqs.csv", b"foo,bar\n1,2\n")}, headers=world.owner)
    assert no_header.status_code == 422
    pdf = world.client.post(f"{FAQS}/import", data={"chatbot_id": world.bot["id"]},
                            files={"file": ("faqs.csv", b"%PDF-1.7\n" + b"x" * 100)}, headers=world.owner)
    assert pdf.status_code == 415
    too_big = world.client.post(f"{FAQS}/import", data={"chatbot_id": world.bot["id"]},
                                files={"file": ("faqs.csv", b"question,answer\n" + b"q,a\n" * (6 * 1024 * 1024 // 4))},
                                headers=world.owner)
    assert too_big.status_code == 413 and error_code(too_big) == "too_large"


def test_test_endpoint_checks_input_and_scope(world: World) -> None:
    empty = world.client.post(TEST, json={"chatbot_id": world.bot["id"], "query": ""}, headers=world.owner)
    assert empty.status_code in (400, 422)
    unknown = world.client.post(TEST, json={"chatbot_id": "nope", "query": "hi"}, headers=world.owner)
    assert unknown.status_code == 404
