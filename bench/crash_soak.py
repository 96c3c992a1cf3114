"""Crash soak: SIGKILL the real server (and ``chatsupport backup``) at seeded random moments, many times.

Usage:
  PYTHONPATH=. .venv/bin/python bench/crash_soak.py [--runs 20] [--seed 1] [--quick]

The same scenarios as tests/test_crash_safety.py (tests/crash_support.py), run --runs times each on one data dir
that keeps growing: (a) a burst of widget messages from 8 visitors over the WebSocket, killed at a random moment;
after the restart every acknowledged message must be in the database, and after the visitors resend what was not
acknowledged (same client ids) every message exactly once; (b) a document killed at a random point of its
ingestion: no half-indexed document at the kill or after the restart, no duplicate chunk, and it ends completed;
(c) ``chatsupport backup`` killed while archiving, or the server killed during the console's "Back up now"
(alternately): the previous archive verifies, nothing partial is listed, and whatever is listed verifies.
Target: zero acknowledged messages lost across 20 runs. --quick: 3 runs each (about two minutes).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from crash_support import (Instance, backup_run, cli, fill_uploads, ingest_run, server_backup_run,  # noqa: E402
                           widget_run)
from quick import add_quick_flag, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="kills per scenario")
    parser.add_argument("--seed", type=int, default=1)
    add_quick_flag(parser, "3 kills per scenario")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    rng = random.Random(args.seed)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-soak-") as tmp:
        box = Instance(Path(tmp) / "data")
        try:
            results = {"runs": runs, "seed": args.seed, "widget": soak_widget(box, rng, runs),
                       "ingestion": soak_ingestion(box, rng, runs), "backup": soak_backup(box, rng, runs)}
        finally:
            box.server.stop()
    results["seconds"] = round(time.monotonic() - began, 1)
    failed = (results["widget"]["lost"] or results["widget"]["duplicated"] or results["ingestion"]["problems"]
              or results["backup"]["problems"])
    results["passed"] = not failed
    print(f"\n{'PASS' if not failed else 'FAIL'}: {runs} SIGKILLs per scenario in {results['seconds']} s")
    write_results("crash_soak", args, results)
    return 1 if failed else 0


def soak_widget(box: Instance, rng: random.Random, runs: int) -> dict:
    sent = acked = 0
    lost: list[str] = []
    duplicated: list[str] = []
    for number in range(runs):
        run = widget_run(box, rng)
        sent, acked = sent + run.sent, acked + run.acked_before_kill
        lost += run.lost
        duplicated += run.duplicated
        print(f"widget {number + 1}/{runs}: killed at {run.kill_after:.2f}s; sent {run.sent}, acked before the "
              f"kill {run.acked_before_kill}, lost {len(run.lost)}, duplicated {len(run.duplicated)}", flush=True)
    return {"sent": sent, "acked_before_kill": acked, "lost": lost, "duplicated": duplicated}


def soak_ingestion(box: Instance, rng: random.Random, runs: int) -> dict:
    box.login()
    at_kill: dict[str, int] = {}
    final: dict[str, int] = {}
    problems: list[str] = []
    for number in range(runs):
        run = ingest_run(box, rng)
        at_kill[run.status_at_kill] = at_kill.get(run.status_at_kill, 0) + 1
        final[run.final_status] = final.get(run.final_status, 0) + 1
        problems += run.problems + ([] if run.final_status == "completed" else [f"ended {run.final_status}"])
        print(f"ingestion {number + 1}/{runs}: killed {run.kill_after:.2f}s after upload while "
              f"{run.status_at_kill}; ended {run.final_status}; problems {run.problems}", flush=True)
    return {"status_at_kill": at_kill, "final_status": final, "problems": problems}


def soak_backup(box: Instance, rng: random.Random, runs: int) -> dict:
    fill_uploads(box.data_dir, 16, seed=rng.randrange(10**6))
    began = time.monotonic()
    first = cli(box.data_dir, "backup")
    assert first.returncode == 0, first.stderr
    previous, typical = Path(first.stdout.strip()), time.monotonic() - began
    killed_mid_write = 0
    problems: list[str] = []
    for number in range(runs):
        server = number % 2 == 1  # every other run kills the server during the console's "Back up now"
        run = (server_backup_run if server else backup_run)(box, rng, previous, typical)
        killed_mid_write += not run.completed
        problems += run.problems
        print(f"{'server' if server else 'CLI'} backup {number + 1}/{runs}: killed at {run.kill_after:.2f}s ({'after' if run.completed else 'before'}"
              f" it finished); {len(run.listed)} archives listed; problems {run.problems}", flush=True)
    leftovers = sorted(p.name for p in (box.data_dir / "backups").iterdir() if not p.name.endswith(".tar.gz"))
    return {"killed_mid_write": killed_mid_write, "problems": problems, "leftover_entries": leftovers}


if __name__ == "__main__":
    sys.exit(main())
