"""``chatsupport eval answers`` end to end through the real CLI on a small generated corpus and question file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

PAGES = {
    "docs/billing.md": "# Billing\n\nSubscriptions renew automatically on the 1st of each month.\n\n## Invoices\n\n"
                       "Download past invoices from Settings > Billing > Invoices.",
    "docs/security.md": "# Security\n\nTurn on two-factor authentication in Settings > Security with an "
                        "authenticator app.",
    "docs/gpus.md": "# GPU hardware\n\nA T4 GPU for a Space costs $0.40 per hour.",
}
QUESTIONS = [
    {"id": "a1", "question": "when does my plan renew?", "kind": "answerable",
     "expected_sources": ["docs/billing.md"], "answer_facts": ["1st of each month"]},
    {"id": "a2", "question": "price of a T4 gpu per hour", "kind": "answerable", "expected_sources": ["docs/gpus.md"],
     "answer_facts": ["$0.40"]},
    {"id": "u1", "question": "do you sell branded t-shirts in Lisbon?", "kind": "unanswerable",
     "expected_sources": [], "answer_facts": []},
    {"id": "e1", "question": "I want to talk to a human right now", "kind": "escalate", "expected_sources": [],
     "answer_facts": []},
    {"id": "e2", "question": "my account was hacked, someone changed my email", "kind": "escalate",
     "expected_sources": [], "answer_facts": []},
]


def test_eval_answers_prints_shares_per_kind_and_writes_jsonl(tmp_path: Path, model_cache: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    for name, text in PAGES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "out.jsonl"

    result = run_cli(tmp_path / "data", "eval", "answers", str(corpus), str(questions), "--provider", "extractive",
                     "--out", str(out), MODEL_CACHE_DIR=str(model_cache))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "3 documents" in lines[0] and "provider extractive" in lines[0]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == {"answerable", "unanswerable", "escalate"}
    assert float(rows["escalate"][0]) == 1.0 and float(rows["unanswerable"][0]) == 1.0
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {q["id"] for q in QUESTIONS}
    for record in records.values():
        assert set(record) == {"id", "outcome", "answer", "sources", "confidence", "escalated", "reason", "provider",
                               "ms"}
        assert record["outcome"] in ("answered", "declined", "escalated") and record["ms"] >= 0
        assert set(record["sources"]) <= set(PAGES)
    assert records["a1"]["sources"][:1] == ["docs/billing.md"] and "1st of each month" in records["a1"]["answer"]
    assert records["e1"]["escalated"] and records["e1"]["reason"] == "user_request"
    assert records["e2"]["reason"] == "security_incident"
    assert records["u1"]["outcome"] in ("declined", "escalated") and records["u1"]["reason"] != "user_request"
    assert not (tmp_path / "data" / "chatsupport.db").exists()


def test_eval_answers_requires_its_arguments(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "eval", "answers")
    assert result.returncode == 2 and "CORPUS_DIR" in result.stderr
