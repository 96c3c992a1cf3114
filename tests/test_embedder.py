"""The ONNX embedder: same vectors as sentence-transformers, served without torch, model recorded and checked."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chatsupport.retrieval.embedder import Embedder, bundled_model_path, resolve_model_path
from chatsupport.retrieval.indexing import ModelMismatchError, check_model
from chatsupport.store import knowledge_index
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "just subscribed to pro a few days ago and got charged AGAIN, why?",
    "All subscriptions renew on the 1st of each month.",
    "getting 429 errors when my script downloads models",
    "Wie kann ich mein Passwort zurücksetzen?",
    "ok",
    "word " * 400,  # longer than the model reads: both sides cut at 256 word pieces
]


def test_onnx_vectors_match_sentence_transformers(embedder: Embedder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(bundled_model_path()), device="cpu")
    theirs = reference.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    ours = embedder.encode(SENTENCES)
    assert embedder.backend == "onnx"
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= 0.999, cosines
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batches_keep_input_order(embedder: Embedder) -> None:
    texts = [f"sentence number {i} " * (1 + i % 7) for i in range(70)]
    together = embedder.encode(texts, batch_size=32)
    alone = np.vstack([embedder.encode([t]) for t in texts[:5]])
    assert np.allclose(together[:5], alone, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_metadata_and_token_counts(embedder: Embedder) -> None:
    assert embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dimension == 384 and embedder.max_tokens == 256
    counts = embedder.count_tokens(["hello world", "word " * 400])
    assert counts[0] == 4  # [CLS] hello world [SEP]
    assert counts[1] > 256  # counting never truncates


def test_server_process_never_imports_torch(model_cache: Path, embedder: Embedder) -> None:
    code = ("import sys, time; from pathlib import Path; from chatsupport.retrieval.embedder import Embedder; "
            f"e = Embedder(cache_dir=Path({str(model_cache)!r})); e.start_loading()\n"
            "while e.state == 'loading': time.sleep(0.05)\n"
            "print(e.state, e.backend, e.encode(['hi']).shape, 'torch' in sys.modules, "
            "'sentence_transformers' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.split() == ["ready", "onnx", "(1,", "384)", "False", "False"], proc.stderr


def test_relative_model_names_resolve_under_models_dir(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "minilm").symlink_to(bundled_model_path())
    assert resolve_model_path("minilm", models) == models / "minilm"
    assert resolve_model_path("", models) == bundled_model_path()
    assert resolve_model_path("missing", models) is None


def test_missing_model_fails_readiness(tmp_path: Path) -> None:
    broken = Embedder(str(tmp_path / "nope"), cache_dir=tmp_path / "cache")
    broken.start_loading()
    deadline = time.monotonic() + 30
    while broken.state == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broken.state == "failed" and "not found" in (broken.error or "")
    with pytest.raises(RuntimeError):
        broken.encode(["x"])


def test_model_is_recorded_and_a_change_detected(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    migrate(path)
    db = Database(path)
    try:
        db.write(lambda conn: check_model(conn, "sentence-transformers/all-MiniLM-L6-v2", 384))
        assert db.write(knowledge_index.recorded_model) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
        db.write(lambda conn: check_model(conn, "sentence-transformers/all-MiniLM-L6-v2", 384))
        with pytest.raises(ModelMismatchError, match="reindex"):
            db.write(lambda conn: check_model(conn, "other-model", 384))
        with pytest.raises(ModelMismatchError, match="dimensions"):
            db.write(lambda conn: check_model(conn, "big-model", 768))
    finally:
        db.close()
