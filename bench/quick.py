"""What every benchmark shares: the ``--quick`` flag and its JSON result in docs/bench-results/<name>.json.

``--quick`` runs the same measurement at a size that finishes in minutes on the 2-core reference box; the full
run's figures in docs/benchmarks.md stay the reference, the JSON is for comparing one machine or commit with the
next. Each file records when, where and with what arguments it was made.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "bench-results"


def add_quick_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--quick", action="store_true", help=f"minutes, not the full run: {what}")


def write_results(name: str, args: argparse.Namespace, results: Any) -> Path:
    """Write ``results`` (plain JSON data) with the run's context; returns the path written. Every run writes,
    quick or full; the record says which."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "quick": bool(getattr(args, "quick", False)),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": " ".join([Path(sys.argv[0]).as_posix().split("/")[-1], *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average": list(os.getloadavg())},
        "results": _plain(results),
    }
    path.write_text(json.dumps(record, indent=2, default=str, allow_nan=False) + "\n")
    print(f"results written to {path}", file=sys.stderr)
    return path


def _plain(value: Any) -> Any:
    """NaN (a percentile of nothing) becomes null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
