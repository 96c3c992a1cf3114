"""``pipeline.embed``: texts go to the model in length order and in low-padding batches (the ingestion job holds
one document, so it cannot lean on a corpus-wide sort), yet vectors come back in input order, equal to the
model's own, with progress reported up to the total."""

from __future__ import annotations

import random

import numpy as np

from chatsupport.ingest import pipeline
from chatsupport.retrieval.batching import length_batches


def test_batches_cover_every_text_once_with_little_padding() -> None:
    rng = random.Random(7)
    lengths = [rng.choice([8, 12, 40, 120, 200, 256, 256]) + rng.randint(0, 5) for _ in range(300)]
    batches = list(length_batches(lengths, 32, slack=0.10))
    assert sorted(i for batch in batches for i in batch) == list(range(300))
    for batch in batches:
        assert 1 <= len(batch) <= 32
        widths = [lengths[i] for i in batch]
        assert widths == sorted(widths)
        assert max(widths) * len(batch) <= 1.10 * sum(widths) or len(batch) == 1


def test_batches_stay_under_the_word_piece_cap() -> None:
    lengths = [256] * 40 + [60] * 50 + [1500]  # the last one alone is over the cap: it still goes, by itself
    batches = list(length_batches(lengths, 32, pieces=1024))
    assert sorted(i for batch in batches for i in batch) == list(range(91))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert width * len(batch) <= 1024 or len(batch) == 1
    assert [len(b) for b in batches if lengths[b[0]] == 256] == [4] * 10
    assert [90] in batches


def test_vectors_come_back_in_input_order_and_match_the_model(embedder) -> None:  # noqa: ANN001
    texts = ["Refunds", "How do I reset my password? " * 20, "Pricing", "Invoices are emailed monthly. " * 8,
             "Teams"] * 9
    seen: list[tuple[int, int]] = []
    blobs = pipeline.embed(embedder, texts, lambda done, total: seen.append((done, total)), batch=8)
    vectors = np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])
    expected = embedder.encode(texts, batch_size=32)
    assert vectors.shape == expected.shape
    assert float(np.min(np.sum(vectors * expected, axis=1))) > 0.9999
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (len(texts), len(texts))
