"""Backups through the real CLI: an online snapshot while another process writes, restored elsewhere; and every
kind of bad archive refused with a stable code, leaving the data dir as it was."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from chatsupport.config import ensure_secret_key, load_settings
from chatsupport.store.db import connect
from chatsupport.store.lock import DataDirLock
from chatsupport.store.migrations import LATEST_VERSION
from conftest import ROOT, make_env, run_cli

WRITER = """
import sys, time
from pathlib import Path
from chatsupport.store.db import Database
db = Database(Path(sys.argv[1]))
acked = open(sys.argv[2], "a", buffering=1)
n = 0
while not Path(sys.argv[3]).exists():
    n += 1
    db.execute_write("INSERT INTO instance_state(key, value) VALUES (?, ?)", (f"row:{n:06d}", str(n)))
    acked.write(f"{n}\\n")  # written only after the commit returned
    time.sleep(0.002)
db.close()
"""


def rows(db_path: Path) -> list[int]:
    conn = connect(db_path)
    try:
        return [int(r["value"]) for r in conn.execute("SELECT value FROM instance_state WHERE key LIKE 'row:%' "
                                                       "ORDER BY key")]
    finally:
        conn.close()


def integrity(db_path: Path) -> list[str]:
    conn = connect(db_path)
    try:
        return [r["integrity_check"] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def last_acked(path: Path) -> int:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return int(lines[-1]) if lines else 0


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A migrated data dir with an upload and some rows."""
    data = tmp_path / "data"
    assert run_cli(data, "migrate").returncode == 0
    (data / "uploads" / "bot1").mkdir(parents=True)
    (data / "uploads" / "bot1" / "guide.pdf").write_bytes(b"%PDF-1.7 pretend " * 100)
    ensure_secret_key(load_settings(env=make_env(data)))
    conn = connect(data / "chatsupport.db")
    conn.execute("INSERT INTO instance_state(key, value) VALUES ('row:000000', '0')")
    conn.close()
    return data


def test_online_backup_while_another_process_writes_restores_every_acknowledged_row(populated: Path,
                                                                                    tmp_path: Path) -> None:
    acked, stop = tmp_path / "acked.txt", tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(populated / "chatsupport.db"), str(acked), str(stop)],
                              env=make_env(populated), cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while (not acked.exists() or last_acked(acked) < 100) and time.monotonic() < deadline:
            time.sleep(0.05)
        acked_before_backup = last_acked(acked)
        assert acked_before_backup >= 100

        archive = tmp_path / "exact" / "name.tar.gz"
        result = run_cli(populated, "backup", "--to", str(archive))
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{archive}\n"  # only the path on stdout
        time.sleep(0.3)
    finally:
        stop.touch()
        writer.wait(timeout=30)
    total_written = last_acked(acked)
    assert writer.returncode == 0

    fresh = tmp_path / "restored"
    restored = run_cli(fresh, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    got = rows(fresh / "chatsupport.db")
    assert got == list(range(0, len(got)))  # a consistent prefix: one moment in time, no gaps
    assert got[-1] >= acked_before_backup  # everything acknowledged before the backup began is there
    assert got[-1] < total_written  # and the writer kept going during and after the snapshot
    assert integrity(fresh / "chatsupport.db") == ["ok"]
    assert (fresh / "uploads" / "bot1" / "guide.pdf").read_bytes() == b"%PDF-1.7 pretend " * 100
    assert (fresh / "secret_key").read_text() == (populated / "secret_key").read_text()


def test_backup_default_path_and_list(populated: Path) -> None:
    made = run_cli(populated, "backup")
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path.parent == populated / "backups" and path.name.startswith("chatsupport-")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    listing = run_cli(populated, "backup", "--list")
    assert listing.returncode == 0
    [line] = listing.stdout.splitlines()
    archive, created_at, size, schema = line.split("\t")
    assert archive == str(path) and created_at.endswith("Z") and int(size) == path.stat().st_size
    assert schema == f"schema {LATEST_VERSION}"
    assert not list(populated.glob("backups/*.partial"))


def _archive(tmp_path: Path, populated: Path) -> Path:
    result = run_cli(populated, "backup", "--to", str(tmp_path / "good.tar.gz"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "good.tar.gz"


def _rewrite(source: Path, dest: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """Copy an archive member by member, letting ``edit(name, data, manifest)`` change contents."""
    with tarfile.open(source, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]  # type: ignore[union-attr]
    manifest = json.loads(members[0][1])
    out = []
    for member, data in members:
        out.append((member.name, edit(member.name, data, manifest)))
    with tarfile.open(dest, "w:gz") as tar:
        for name, data in out:
            if name == "manifest.json":
                data = json.dumps(manifest).encode()
            if data is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def bad_archives(tmp_path: Path, good: Path) -> dict[str, tuple[Path, set[str]]]:
    raw = good.read_bytes()
    corrupted = bytearray(raw)
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        corrupted[i] ^= 0xFF
    (tmp_path / "corrupted.tar.gz").write_bytes(bytes(corrupted))
    (tmp_path / "truncated.tar.gz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "notes.txt").write_text("these are not the droids\n")
    with tarfile.open(tmp_path / "foreign.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))

    def tamper(name: str, data: bytes, manifest: dict) -> bytes:
        return data.replace(b"SQLite format 3", b"SQLite format 4") if name == "chatsupport.db" else data

    def future(name: str, data: bytes, manifest: dict) -> bytes:
        manifest["schema_version"] = 999
        return data

    def traversal(name: str, data: bytes, manifest: dict) -> bytes:
        return data

    _rewrite(good, tmp_path / "tampered.tar.gz", tamper)
    _rewrite(good, tmp_path / "future.tar.gz", future)
    escape = _rewrite(good, tmp_path / "escape.tar.gz", traversal)
    with tarfile.open(escape, "a:") if False else tarfile.open(tmp_path / "escape.tar.gz", "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    with tarfile.open(tmp_path / "escape.tar.gz", "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))

    def drop_db(name: str, data: bytes, manifest: dict) -> bytes | None:
        return None if name == "chatsupport.db" else data

    _rewrite(good, tmp_path / "missing.tar.gz", drop_db)
    return {
        "corrupted": (tmp_path / "corrupted.tar.gz", {"backup_corrupt", "backup_invalid"}),
        "truncated": (tmp_path / "truncated.tar.gz", {"backup_corrupt"}),
        "not_an_archive": (tmp_path / "notes.txt", {"backup_invalid"}),
        "foreign": (tmp_path / "foreign.tar.gz", {"backup_invalid"}),
        "tampered": (tmp_path / "tampered.tar.gz", {"backup_corrupt"}),
        "too_new": (tmp_path / "future.tar.gz", {"backup_too_new"}),
        "path_escape": (tmp_path / "escape.tar.gz", {"backup_invalid"}),
        "missing_file": (tmp_path / "missing.tar.gz", {"backup_corrupt"}),
    }


def test_bad_archives_are_refused_and_change_nothing(populated: Path, tmp_path: Path) -> None:
    good = _archive(tmp_path, populated)
    conn = connect(populated / "chatsupport.db")
    conn.execute("INSERT INTO instance_state(key, value) VALUES ('row:000001', '1')")
    conn.close()
    before = rows(populated / "chatsupport.db")
    def listing() -> list[str]:
        return sorted(p.name for p in populated.iterdir() if p.name != ".server.lock")

    listing_before = listing()

    for label, (archive, codes) in bad_archives(tmp_path, good).items():
        result = run_cli(populated, "restore", str(archive), "--force")
        assert result.returncode == 1, (label, result.stdout, result.stderr)
        code = result.stderr.strip().splitlines()[-1].split("]")[0].removeprefix("error [")
        assert code in codes, (label, result.stderr)
        assert rows(populated / "chatsupport.db") == before, label
        assert listing() == listing_before, label  # no staging left behind
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_restore_into_existing_data_needs_force_and_keeps_the_old_data_aside(populated: Path, tmp_path: Path) -> None:
    good = _archive(tmp_path, populated)
    conn = connect(populated / "chatsupport.db")
    conn.execute("INSERT INTO instance_state(key, value) VALUES ('row:000001', '1')")
    conn.close()

    refused = run_cli(populated, "restore", str(good))
    assert refused.returncode == 1 and "error [data_dir_not_empty]" in refused.stderr
    assert rows(populated / "chatsupport.db") == [0, 1]

    forced = run_cli(populated, "restore", str(good), "--force")
    assert forced.returncode == 0, forced.stderr
    assert rows(populated / "chatsupport.db") == [0]
    [aside] = populated.glob("pre-restore-*")
    assert rows(aside / "chatsupport.db") == [0, 1]
    assert (aside / "uploads" / "bot1" / "guide.pdf").exists()


def test_restore_is_refused_while_a_server_uses_the_data_dir(populated: Path, tmp_path: Path) -> None:
    good = _archive(tmp_path, populated)
    with DataDirLock(populated / ".server.lock"):
        result = run_cli(populated, "restore", str(good), "--force")
    assert result.returncode == 1 and "error [server_running]" in result.stderr
    assert rows(populated / "chatsupport.db") == [0]


def test_restore_of_a_missing_file_and_backup_of_nothing(tmp_path: Path) -> None:
    missing = run_cli(tmp_path / "d", "restore", str(tmp_path / "nope.tar.gz"))
    assert missing.returncode == 1 and "error [not_found]" in missing.stderr
    nothing = run_cli(tmp_path / "empty", "backup")
    assert nothing.returncode == 1 and "error [not_found]" in nothing.stderr
    assert nothing.stdout == ""
