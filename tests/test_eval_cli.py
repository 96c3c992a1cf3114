"""``chatsupport eval retrieval`` end to end through the real CLI on a small generated corpus."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

PAGES = {
    "docs/billing.md": "---\ntitle: Billing\n---\n\nSubscriptions renew on the 1st of each month.\n\n## Invoices\n\n"
                       "Download past invoices from the billing settings.",
    "docs/limits/rate-limits.mdx": "import X from 'y'\n\n# Rate limits\n\n<Tip>Too many requests return HTTP 429."
                                   "</Tip>\n\nWait a minute, then retry.",
    "docs/security.html": "<html><head><title>Account security</title></head><body><h1>Account security</h1>"
                          "<p>Turn on two-factor authentication in your profile settings.</p></body></html>",
    "notes/gpus.txt": "GPU hardware\n============\n\nA T4 GPU for a Space costs $0.40 per hour.",
    "docs/refunds.md": "# Refunds\n\nRefunds are issued within 14 days of a charge.",
}
QUESTIONS = [
    {"id": "q1", "question": "when does my plan renew", "kind": "answerable", "expected_sources": ["docs/billing.md"]},
    {"id": "q2", "question": "i keep getting error 429", "kind": "answerable",
     "expected_sources": ["docs/limits/rate-limits.mdx"]},
    {"id": "q3", "question": "how do I enable 2fa", "kind": "answerable", "expected_sources": ["docs/security.html"]},
    {"id": "q4", "question": "price of a t4 per hour", "kind": "answerable", "expected_sources": ["notes/gpus.txt"]},
    {"id": "q5", "question": "do you sell t-shirts", "kind": "unanswerable", "expected_sources": []},
]


def test_eval_retrieval_prints_the_table_and_writes_jsonl(tmp_path: Path, model_cache: Path, embedder) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    for name, text in PAGES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    (corpus / "LICENSE").write_text("Apache License 2.0 billing renew 429 " * 20)
    (corpus / "SOURCE.txt").write_text("repository billing renew 429")
    (corpus / "docs/broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "out.jsonl"

    result = run_cli(tmp_path / "data", "eval", "retrieval", str(corpus), str(questions), "--out", str(out),
                     MODEL_CACHE_DIR=str(model_cache))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "5 documents" in lines[0] and "1 skipped" in lines[0]
    assert lines[1].split() == ["config", "recall@5", "MRR@10", "p50", "ms", "p95", "ms"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == {"keyword", "vector", "hybrid"}
    assert float(rows["hybrid"][0]) == 1.0 and float(rows["vector"][0]) == 1.0

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(QUESTIONS) * 3
    assert {(r["id"], r["config"]) for r in records} == {(q["id"], c) for q in QUESTIONS
                                                          for c in ("keyword", "vector", "hybrid")}
    for record in records:
        assert set(record) == {"id", "config", "sources", "scores", "ms"}
        assert len(record["sources"]) == len(set(record["sources"])) == len(record["scores"]) <= 10
        assert set(record["sources"]) <= set(PAGES)  # relative paths; LICENSE and SOURCE.txt never indexed
        assert record["scores"] == sorted(record["scores"], reverse=True)
        assert all(0 <= s <= 1 for s in record["scores"]) and record["ms"] >= 0
    hybrid_q1 = next(r for r in records if r["id"] == "q1" and r["config"] == "hybrid")
    assert hybrid_q1["sources"][0] == "docs/billing.md"
    assert not (tmp_path / "data" / "chatsupport.db").exists()  # a throw-away instance, not the data dir


def test_eval_requires_its_arguments(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "eval", "retrieval")
    assert result.returncode == 2 and "CORPUS_DIR" in result.stderr
