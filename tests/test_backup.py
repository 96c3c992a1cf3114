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
    archive, created_at, size, schema, state, kind = line.split("\t")
    assert archive == str(path) and created_at.endswith("Z") and int(size) == path.stat().st_size
    assert (schema, state, kind) == (f"schema {LATEST_VERSION}", "plain", "manual")
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


PASSPHRASE = "correct horse battery staple"


def test_encrypted_backup_lists_without_the_passphrase_and_restores_only_with_it(populated: Path,
                                                                                 tmp_path: Path) -> None:
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    made = run_cli(populated, "backup", "--passphrase-file", str(secret))
    assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.strip())
    assert archive.name.endswith(".enc.tar")
    raw = archive.read_bytes()
    assert b"SQLite format 3" not in raw and b"%PDF-1.7 pretend" not in raw and b"guide.pdf" not in raw
    [line] = run_cli(populated, "backup", "--list").stdout.splitlines()
    assert line.split("\t")[3:] == [f"schema {LATEST_VERSION}", "encrypted", "manual"]

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    for extra, code in ((), "backup_passphrase"), (("--passphrase-file", str(wrong)), "backup_passphrase"):
        refused = run_cli(tmp_path / "elsewhere", "restore", str(archive), *extra)
        assert refused.returncode == 1 and f"error [{code}]" in refused.stderr, refused.stderr
        assert not (tmp_path / "elsewhere" / "chatsupport.db").exists()

    tampered = bytearray(raw)
    tampered[len(raw) // 2] ^= 0x01
    (tmp_path / "tampered.enc.tar").write_bytes(bytes(tampered))
    broken = run_cli(tmp_path / "elsewhere", "restore", str(tmp_path / "tampered.enc.tar"), "--passphrase-file",
                     str(secret))
    assert broken.returncode == 1 and "error [backup_corrupt]" in broken.stderr, broken.stderr

    restored = run_cli(tmp_path / "elsewhere", "restore", str(archive), "--passphrase-file", str(secret))
    assert restored.returncode == 0, restored.stderr
    assert rows(tmp_path / "elsewhere" / "chatsupport.db") == [0]
    assert (tmp_path / "elsewhere" / "uploads" / "bot1" / "guide.pdf").read_bytes() == b"%PDF-1.7 pretend " * 100
    # the instance setting is the default passphrase for both commands
    by_setting = run_cli(tmp_path / "third", "restore", str(archive), BACKUP_PASSPHRASE_FILE=str(secret))
    assert by_setting.returncode == 0, by_setting.stderr


def test_partial_and_foreign_files_are_not_listed_as_archives(populated: Path) -> None:
    backups = populated / "backups"
    backups.mkdir()
    (backups / "chatsupport-20260101T000000Z.tar.gz.partial").write_bytes(b"half")
    (backups / "notes.txt").write_text("hello")
    (backups / "junk.tar.gz").write_bytes(b"not gzip")
    lines = run_cli(populated, "backup", "--list").stdout.splitlines()
    assert [line.split("\t")[0].rsplit("/", 1)[1] for line in lines] == ["junk.tar.gz"]
    assert lines[0].split("\t")[3:5] == ["schema ?", "unreadable"]


def test_encryption_streams_many_chunks_and_detects_truncation_and_reordering(tmp_path: Path) -> None:
    from chatsupport.domain import backup_crypto
    from chatsupport.errors import AppError

    source = tmp_path / "inner.bin"
    source.write_bytes(os.urandom(backup_crypto.CHUNK * 2 + 12345))
    params, header = backup_crypto.new_parameters(PASSPHRASE), b'{"manifest": 1}'
    with source.open("rb") as fh:
        reader = backup_crypto.EncryptingReader(fh, source.stat().st_size, PASSPHRASE, params, header)
        sealed = b"".join(iter(lambda: reader.read(10240), b""))
    assert len(sealed) == reader.size == source.stat().st_size + 3 * backup_crypto.TAG
    out = tmp_path / "out.bin"
    backup_crypto.decrypt_stream(io.BytesIO(sealed), out, PASSPHRASE, params, header)
    assert out.read_bytes() == source.read_bytes()

    block = backup_crypto.CHUNK + backup_crypto.TAG
    variants = {"truncated": sealed[:2 * block], "other header": sealed,
                "reordered": sealed[block:2 * block] + sealed[:block] + sealed[2 * block:]}
    for label, data in variants.items():
        with pytest.raises(AppError) as caught:
            backup_crypto.decrypt_stream(io.BytesIO(data), out, PASSPHRASE, params,
                                         b"{}" if label == "other header" else header)
        assert caught.value.code == "backup_corrupt", label
    with pytest.raises(AppError) as wrong:
        backup_crypto.decrypt_stream(io.BytesIO(sealed), out, "another passphrase", params, header)
    assert wrong.value.code == "backup_passphrase"


def test_restore_on_another_data_dir_brings_back_the_whole_instance(tmp_path: Path) -> None:
    """Users, chatbots, documents with their vectors, conversations and uploaded files: an encrypted backup taken
    while the server runs, restored on a fresh data dir, and served by a new instance from there."""
    from accounts_support import bearer, login, open_client
    from conversation_support import Team
    from knowledge_support import DOCS, index_counts, kb_settings, pdf_bytes, upload, wait_settled

    source, target = tmp_path / "source", tmp_path / "target"
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE)
    question = "how long does the warranty last"
    with open_client(kb_settings(source)) as client:
        team = Team(client, "Restore")
        sent = upload(client, team.owner_h, team.bot, "warranty.pdf", pdf_bytes([
            "Warranty\nEvery kettle carries a two-year warranty covering the heating element and the lid."]))
        document = wait_settled(client, team.owner_h, sent.json()["id"])
        assert document["status"] == "completed", document
        counts = index_counts(client, document["id"])
        conversation = team.conversation(status="escalated", text="My kettle stopped heating")
        ask = {"chatbot_id": team.bot, "query": question, "top_k": 3}
        before = client.post("/api/v1/knowledge-base/test", json=ask, headers=team.owner_h).json()
        made = run_cli(source, "backup", "--passphrase-file", str(secret))  # while the server runs
        assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.strip())
    files = {p.relative_to(source / "uploads"): p.read_bytes() for p in (source / "uploads").rglob("*") if p.is_file()}
    assert files, "the document upload is kept under uploads/"

    restored = run_cli(target, "restore", str(archive), "--passphrase-file", str(secret))
    assert restored.returncode == 0, restored.stderr
    assert {p.relative_to(target / "uploads"): p.read_bytes()
            for p in (target / "uploads").rglob("*") if p.is_file()} == files
    with open_client(kb_settings(target)) as client:
        owner = bearer(login(client, team.owner["email"]))
        assert [bot["id"] for bot in client.get("/api/v1/chatbots", headers=owner).json()["data"]] == [team.bot]
        docs = client.get(DOCS, params={"chatbot_id": team.bot}, headers=owner).json()["data"]
        assert [(d["id"], d["status"]) for d in docs] == [(document["id"], "completed")]
        assert index_counts(client, document["id"]) == counts  # chunks, FTS, vectors and bits all came back
        after = client.post("/api/v1/knowledge-base/test", json=ask, headers=owner).json()
        assert after["results"] and after["results"][0]["source_id"] == document["id"]
        ranked = [(r["content"], r["score"]) for r in after["results"]]
        assert ranked == [(r["content"], r["score"]) for r in before["results"]]
        shown = client.get(f"/api/v1/conversations/{conversation}", headers=owner)
        assert shown.status_code == 200, shown.text
        assert "My kettle stopped heating" in shown.text
        assert bearer(login(client, team.agent["email"]))  # every user, not only the owner
