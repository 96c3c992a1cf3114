"""Backup archives: a consistent online snapshot of the database plus uploads and the instance secret.

Archive layout (tar.gz): ``manifest.json`` first (so listing reads only the head), then ``chatsupport.db``,
``secret_key`` and ``uploads/…``. An encrypted archive (``*.enc.tar``) is a plain tar of a short public
``manifest.json`` (time, schema version, kind, encryption parameters; no file names) and ``payload``: the
tar.gz above, encrypted with a passphrase (``backup_crypto``). ``kind`` tells manual, scheduled and pre-migration
archives apart; retention only ever deletes scheduled ones.

The database is copied with SQLite's backup API in a single step, which holds one read transaction for the whole
copy: the snapshot is exactly the database at one commit, while the server keeps writing. Archives are written to
``*.partial`` and renamed, so a crash never leaves a half archive listed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

import apsw

from chatsupport import __version__
from chatsupport.config import Settings
from chatsupport.domain import backup_crypto
from chatsupport.errors import AppError
from chatsupport.store.db import connect
from chatsupport.store.lock import DataDirLock
from chatsupport.store.migrations import LATEST_VERSION, BeforeMigrating, Migration, current_version

Progress = Callable[[str], None]
FORMAT = "chatsupport-backup/1"
DB_NAME = "chatsupport.db"
SECRET_NAME = "secret_key"
UPLOADS = "uploads"
PAYLOAD = "payload"
KINDS = ("manual", "scheduled", "pre-migration")
LEFTOVER_IDLE_SECONDS = 3600
PATTERNS = ("*.tar.gz", "*.enc.tar")  # never ``*.partial``: an archive is listed only once it is complete


def _quiet(_: str) -> None:
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def snapshot_database(source: Path, dest: Path) -> int:
    """Copy the live database into ``dest`` with the backup API in one step; return its schema version."""
    src = connect(source, readonly=True)
    try:
        out = apsw.Connection(str(dest))
        try:
            with out.backup("main", src, "main") as backup:
                backup.step(-1)
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
        finally:
            out.close()
    finally:
        src.close()
    check = connect(dest)
    try:
        return current_version(check)
    finally:
        check.close()


def _upload_files(root: Path) -> Iterator[Path]:
    if root.exists():
        yield from sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def archive_name(kind: str = "manual", encrypted: bool = False, suffix: str = "") -> str:
    label = "" if kind == "manual" else f"-{kind}"
    return f"chatsupport-{_timestamp()}{label}{suffix}" + (".enc.tar" if encrypted else ".tar.gz")


def _free_name(folder: Path, name: str) -> Path:
    """Two backups within the same second (the CLI and the schedule) must not replace one another."""
    stem, dot, extension = name.partition(".")
    candidate, number = folder / name, 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{dot}{extension}"
    return candidate


def _collect(settings: Settings, tmp: Path, progress: Progress) -> tuple[int, list[tuple[str, Path]]]:
    layout = settings.data
    snapshot = tmp / DB_NAME
    progress(f"snapshotting database {layout.database}")
    schema = snapshot_database(layout.database, snapshot)
    members: list[tuple[str, Path]] = [(DB_NAME, snapshot)]
    if layout.secret_file.exists():
        members.append((SECRET_NAME, layout.secret_file))
    members += [(f"{UPLOADS}/{p.relative_to(layout.uploads).as_posix()}", p) for p in _upload_files(layout.uploads)]
    return schema, members


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o600
    tar.addfile(info, io.BytesIO(data))


def _write_archive(path: Path, manifest: dict, members: list[tuple[str, Path]], progress: Progress) -> None:
    # gzip level 6, not tarfile's 9: about twice as fast for a few percent more bytes, and a backup taken while
    # the server runs competes with it for the CPU
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
        for index, (name, source) in enumerate(members, 1):
            if index % 100 == 0 or index == len(members):
                progress(f"archiving {index}/{len(members)} files")
            tar.add(source, arcname=name, recursive=False)


def _write_encrypted(path: Path, inner: Path, manifest: dict, passphrase: str) -> None:
    public = {key: manifest[key] for key in ("format", "app_version", "schema_version", "created_at", "kind")}
    public["encryption"] = backup_crypto.new_parameters(passphrase)
    header = json.dumps(public, indent=2).encode()
    with tarfile.open(path, "w") as tar, inner.open("rb") as source:
        _add_bytes(tar, "manifest.json", header)
        reader = backup_crypto.EncryptingReader(source, inner.stat().st_size, passphrase, public["encryption"], header)
        info = tarfile.TarInfo(PAYLOAD)
        info.size, info.mtime, info.mode = reader.size, int(datetime.now().timestamp()), 0o600
        tar.addfile(info, reader)  # type: ignore[arg-type]


def create_backup(settings: Settings, dest: Path | None = None, progress: Progress = _quiet, *,
                  kind: str = "manual", passphrase: str | None = None, name_suffix: str = "") -> Path:
    """Write a backup archive to ``dest`` (default: the data dir's backups folder) and return its path."""
    layout = settings.data
    if not layout.database.exists():
        raise AppError("not_found", f"no database at {layout.database}: nothing to back up")
    dest = (dest or _free_name(layout.backups, archive_name(kind, passphrase is not None, name_suffix))).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=dest.parent) as tmp:
        schema, members = _collect(settings, Path(tmp), progress)
        progress(f"hashing {len(members)} files")
        manifest = {
            "format": FORMAT,
            "app_version": __version__,
            "schema_version": schema,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "kind": kind,
            "files": {name: {"sha256": _sha256(path), "size": path.stat().st_size} for name, path in members},
        }
        partial = dest.with_name(dest.name + ".partial")
        # the archive holds the instance secret: 0600 from its first byte, not only once complete
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        if passphrase is None:
            _write_archive(partial, manifest, members, progress)
        else:
            inner = Path(tmp) / "inner.tar.gz"
            _write_archive(inner, manifest, members, progress)
            progress("encrypting")
            _write_encrypted(partial, inner, manifest, passphrase)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, dest)
    return dest


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created_at: str
    size: int
    schema_version: int | None
    app_version: str | None
    kind: str = "manual"
    encrypted: bool = False
    readable: bool = True

    @property
    def created(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))
        except ValueError:
            return None

    def age_seconds(self, now: datetime | None = None) -> float | None:
        created = self.created
        return None if created is None else ((now or datetime.now(timezone.utc)) - created).total_seconds()


def read_manifest(archive: Path) -> dict:
    """The manifest of an archive (for an encrypted one, its public part), or AppError(backup_invalid)."""
    try:
        with archive.open("rb") as fh:
            mode = "r:gz" if fh.read(2) == b"\x1f\x8b" else "r:"  # plain archives are gzipped, encrypted ones not
        with tarfile.open(archive, mode) as tar:
            first = tar.next()
            if first is None or first.name != "manifest.json" or not first.isfile():
                raise AppError("backup_invalid", f"{archive}: no manifest.json at the start of the archive")
            handle = tar.extractfile(first)
            manifest = json.loads(handle.read() if handle else b"")
    except (tarfile.TarError, zlib.error, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AppError("backup_invalid", f"{archive}: not a readable ChatSupport backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not (
            isinstance(manifest.get("files"), dict) or isinstance(manifest.get("encryption"), dict)):
        raise AppError("backup_invalid", f"{archive}: manifest is not a ChatSupport backup manifest")
    return manifest


def describe(path: Path) -> BackupInfo:
    try:
        manifest = read_manifest(path)
    except AppError:
        return BackupInfo(path, "?", path.stat().st_size, None, None, "?", False, readable=False)
    return BackupInfo(path, str(manifest.get("created_at", "?")), path.stat().st_size, manifest.get("schema_version"),
                      manifest.get("app_version"), str(manifest.get("kind", "manual")), "encryption" in manifest)


def list_backups(settings: Settings) -> list[BackupInfo]:
    """Complete archives in the backups folder, oldest first (by creation time, then name)."""
    folder = settings.data.backups
    paths = {p for pattern in PATTERNS for p in folder.glob(pattern) if p.is_file() and not p.is_symlink()}
    found = []
    for path in paths:
        try:
            found.append(describe(path))
        except FileNotFoundError:  # pruned while we looked
            continue
    return sorted(found, key=lambda info: (info.created_at, info.path.name))


def last_backup(settings: Settings) -> BackupInfo | None:
    """The newest readable archive in the backups folder (for the console and the backup-age metric)."""
    readable = [info for info in list_backups(settings) if info.readable and info.created is not None]
    return max(readable, key=lambda info: info.created_at, default=None)


def find_backup(settings: Settings, name: str) -> BackupInfo | None:
    """The listed archive called ``name``, or None: only names the listing holds, so no path escapes."""
    return next((info for info in list_backups(settings) if info.path.name == name), None)


def prune_scheduled(settings: Settings, keep: int) -> list[Path]:
    """Delete the oldest scheduled archives beyond ``keep``; manual and pre-migration ones stay."""
    scheduled = [info for info in list_backups(settings) if info.kind == "scheduled"]
    doomed = scheduled[:max(0, len(scheduled) - keep)]
    for info in doomed:
        info.path.unlink(missing_ok=True)
    return [info.path for info in doomed]


def instance_passphrase(settings: Settings) -> str | None:
    """The passphrase the instance encrypts its own backups with (BACKUP_PASSPHRASE_FILE), if set."""
    configured = settings.BACKUP_PASSPHRASE_FILE
    return backup_crypto.read_passphrase(Path(configured)) if configured else None


# One backup at a time in this process: the scheduled one and "Back up now" would otherwise race for the disk.
_one_at_a_time = threading.Lock()


def make_instance_backup(settings: Settings, kind: str, progress: Progress = _quiet) -> Path:
    """A backup the instance makes itself (encrypted when BACKUP_PASSPHRASE_FILE is set); raises
    AppError(backup_running) when another one is under way in this process."""
    if not _one_at_a_time.acquire(blocking=False):
        raise AppError("backup_running", "another backup is being written right now")
    try:
        return create_backup(settings, kind=kind, passphrase=instance_passphrase(settings), progress=progress)
    finally:
        _one_at_a_time.release()


def latest_slot(settings: Settings, now: datetime) -> datetime:
    """The most recent BACKUP_HOUR:00 UTC at or before ``now``."""
    slot = now.astimezone(timezone.utc).replace(hour=settings.BACKUP_HOUR, minute=0, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def scheduled_backup_due(settings: Settings, now: datetime) -> bool:
    """Due when enabled and no scheduled archive was made since the latest slot (a missed day catches up)."""
    if not settings.BACKUP_ENABLED or not settings.data.database.exists():
        return False
    slot = latest_slot(settings, now)
    made = [info.created for info in list_backups(settings) if info.kind == "scheduled" and info.created]
    return not any(created >= slot for created in made)


def sweep_leftovers(settings: Settings, now: float, idle_seconds: float = LEFTOVER_IDLE_SECONDS) -> list[Path]:
    """Remove what a killed backup left (``*.partial`` files, ``.backup-*`` staging folders) once nothing has
    written to it for ``idle_seconds``: a backup in progress writes to both all the time."""
    removed = []
    folder = settings.data.backups
    for path in [*folder.glob("*.partial"), *folder.glob(".backup-*")]:
        stamps = [path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))]
        if now - max(stamps) <= idle_seconds:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


def run_scheduled_backup(settings: Settings, now: datetime) -> Path | None:
    """Make the daily backup if it is due, then keep only the newest BACKUP_KEEP scheduled archives."""
    if not scheduled_backup_due(settings, now):
        return None
    sweep_leftovers(settings, time.time())
    path = make_instance_backup(settings, "scheduled")
    prune_scheduled(settings, settings.BACKUP_KEEP)
    return path


def backup_before_migrating(settings: Settings, progress: Progress = _quiet) -> BeforeMigrating:
    """The ``migrate(before=…)`` hook: a database that already has a schema (so, data) is backed up before its
    first pending migration. The archive is kept, never pruned: the way back if an upgrade goes wrong. A backup
    that fails stops the migration."""

    def backup(version: int, todo: list[Migration]) -> None:
        if version == 0:
            return
        progress(f"backing up before migrating schema {version} to {todo[-1].version}")
        path = create_backup(settings, kind="pre-migration", passphrase=instance_passphrase(settings),
                             name_suffix=f"-v{version}-to-v{todo[-1].version}")
        progress(f"pre-migration backup: {path}")

    return backup


def _safe_member_name(name: str) -> bool:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return False
    return name in {"manifest.json", DB_NAME, SECRET_NAME} or pure.parts[0] == UPLOADS and len(pure.parts) > 1


def _extract_verified(archive: Path, manifest: dict, staging: Path, progress: Progress) -> None:
    expected: dict[str, dict] = manifest["files"]
    if DB_NAME not in expected:
        raise AppError("backup_invalid", f"{archive}: the archive holds no database")
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name == "manifest.json" or member.isdir():
                    continue
                if not member.isfile() or not _safe_member_name(member.name) or member.name not in expected:
                    raise AppError("backup_invalid", f"{archive}: unexpected entry {member.name!r}")
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                assert source is not None
                with target.open("wb") as out:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != expected[member.name].get("sha256"):
                    raise AppError("backup_corrupt", f"{archive}: checksum mismatch for {member.name}")
                seen.add(member.name)
                if len(seen) % 100 == 0:
                    progress(f"verified {len(seen)}/{len(expected)} files")
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise AppError("backup_corrupt", f"{archive}: the archive is truncated or damaged ({exc})") from None
    missing = set(expected) - seen
    if missing:
        raise AppError("backup_corrupt", f"{archive}: files missing from the archive: {', '.join(sorted(missing))}")


def _check_database(path: Path) -> None:
    try:
        conn = connect(path)
        try:
            result = [row["integrity_check"] for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except apsw.Error as exc:
        raise AppError("backup_corrupt", f"the database in the archive cannot be opened ({exc})") from None
    if result != ["ok"]:
        raise AppError("backup_corrupt", f"the database in the archive failed integrity_check: {result[:3]}")


def _data_dir_has_data(settings: Settings) -> bool:
    layout = settings.data
    return layout.database.exists() or any(_upload_files(layout.uploads))


def _decrypt_payload(archive: Path, manifest: dict, passphrase: str | None, dest: Path) -> None:
    if passphrase is None:
        raise AppError("backup_passphrase", f"{archive} is encrypted: give its passphrase (--passphrase-file, or "
                       "CHATSUPPORT_BACKUP_PASSPHRASE_FILE)")
    header = b""
    try:
        with tarfile.open(archive, "r:") as tar:
            first = tar.next()
            assert first is not None
            handle: BinaryIO | None = tar.extractfile(first)
            header = handle.read() if handle else b""
            payload = tar.next()
            if payload is None or payload.name != PAYLOAD or not payload.isfile():
                raise AppError("backup_invalid", f"{archive}: the encrypted archive holds no payload")
            source = tar.extractfile(payload)
            assert source is not None
            backup_crypto.decrypt_stream(source, dest, passphrase, manifest["encryption"], header)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AppError("backup_corrupt", f"{archive}: the archive is truncated or damaged ({exc})") from None


def verify_backup(archive: Path, staging: Path, progress: Progress = _quiet, passphrase: str | None = None) -> dict:
    """Extract into ``staging`` and check every checksum, the schema version and ``integrity_check``."""
    manifest = read_manifest(archive)
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise AppError("backup_invalid", f"{archive}: manifest has no schema version")
    if version > LATEST_VERSION:
        raise AppError("backup_too_new", f"{archive}: schema {version} is newer than this version supports "
                       f"({LATEST_VERSION})")
    if "encryption" in manifest:
        progress("decrypting")
        inner = staging.parent / f"{staging.name}.payload"
        try:
            _decrypt_payload(archive, manifest, passphrase, inner)
            return verify_backup(inner, staging, progress)
        finally:
            inner.unlink(missing_ok=True)
    progress(f"verifying {len(manifest['files'])} files")
    _extract_verified(archive, manifest, staging, progress)
    progress("running integrity_check on the restored database")
    _check_database(staging / DB_NAME)
    return manifest


def restore_backup(settings: Settings, archive: Path, force: bool = False, progress: Progress = _quiet,
                   passphrase: str | None = None) -> Path | None:
    """Replace the data dir's database, uploads and secret with the archive's; return where the old ones went."""
    layout = settings.data
    if not archive.is_file():
        raise AppError("not_found", f"{archive}: no such file")
    layout.root.mkdir(parents=True, exist_ok=True)
    with DataDirLock(layout.server_lock):
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=layout.root))
        try:
            verify_backup(archive, staging, progress, passphrase)
            if _data_dir_has_data(settings) and not force:
                raise AppError("data_dir_not_empty", f"{layout.root} already holds data; pass --force to replace "
                               "it (the current files are kept aside)")
            aside = _move_current_aside(settings) if _data_dir_has_data(settings) else None
            os.replace(staging / DB_NAME, layout.database)
            if (staging / SECRET_NAME).exists():
                os.replace(staging / SECRET_NAME, layout.secret_file)
                os.chmod(layout.secret_file, 0o600)
            if (staging / UPLOADS).exists():
                os.replace(staging / UPLOADS, layout.uploads)
            progress("restore complete")
            return aside
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _move_current_aside(settings: Settings) -> Path:
    layout = settings.data
    aside = layout.root / f"pre-restore-{_timestamp()}"
    aside.mkdir()
    for suffix in ("", "-wal", "-shm"):
        current = Path(str(layout.database) + suffix)
        if current.exists():
            os.replace(current, aside / current.name)
    for path in (layout.uploads, layout.secret_file):
        if path.exists():
            os.replace(path, aside / path.name)
    return aside
