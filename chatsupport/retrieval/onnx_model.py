"""Sentence vectors from an exported transformer: ``tokenizers`` + onnxruntime + numpy pooling, no torch.

Texts are tokenized in one call (the Rust tokenizer parallelises), sorted by length and run in batches padded
only to the longest text of their batch, cut where padding would waste more than 10% (``batching``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from chatsupport.retrieval.batching import length_batches


class OnnxModel:
    def __init__(self, folder: Path, threads: int | None = None):
        self.folder = folder
        self.meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        self.name: str = self.meta["name"]
        self.dimension: int = int(self.meta["dimension"])
        self.max_tokens: int = int(self.meta["max_tokens"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: on a 2-core box a spinning pool takes the CPU the event
        # loop and the other answers need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # onnxruntime's memory arena keeps the most it ever grew to: that is bounded because batches are capped in
        # word pieces (retrieval/batching.py); without the arena ingestion ran ~8 % slower (bench/embed_memory.py).
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self.session.get_inputs()]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text including the special tokens, without truncation (for sizing chunks)."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, in input order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        for rows in length_batches([len(e.ids) for e in encodings], batch_size):
            out[rows] = self._run([encodings[i] for i in rows])
        return out

    def _run(self, batch: list[Encoding]) -> np.ndarray:
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self.meta.get("pad_id", 0), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            ids[row, :len(enc.ids)] = enc.ids
            mask[row, :len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {name: feeds[name] for name in self._inputs})[0]
        if self.meta.get("pooling") == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
