"""Backup archives: a consistent online snapshot of the database plus uploads and the instance secret.

Archive layout (tar.gz): ``manifest.json`` first (so listing reads only the head), then ``chatsupport.db``,
``secret_key`` and ``uploads/…``. The database is copied with SQLite's backup API in a single step, which holds
one read transaction for the whole copy: the snapshot is exactly the database at one commit, while the server
keeps writing. Archives are written to ``*.partial`` and renamed, so a crash never leaves a half archive listed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import apsw

from chatsupport import __version__
from chatsupport.config import Settings
from chatsupport.errors import AppError
from chatsupport.store.db import connect
from chatsupport.store.lock import DataDirLock
from chatsupport.store.migrations import LATEST_VERSION, current_version

Progress = Callable[[str], None]
FORMAT = "chatsupport-backup/1"
DB_NAME = "chatsupport.db"
SECRET_NAME = "secret_key"
UPLOADS = "uploads"


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


def create_backup(settings: Settings, dest: Path | None = None, progress: Progress = _quiet) -> Path:
    """Write a backup archive to ``dest`` (default: the data dir's backups folder) and return its path."""
    layout = settings.data
    if not layout.database.exists():
        raise AppError("not_found", f"no database at {layout.database}: nothing to back up")
    dest = (dest or layout.backups / f"chatsupport-{_timestamp()}.tar.gz").resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=dest.parent) as tmp:
        snapshot = Path(tmp) / DB_NAME
        progress(f"snapshotting database {layout.database}")
        schema = snapshot_database(layout.database, snapshot)
        members: list[tuple[str, Path]] = [(DB_NAME, snapshot)]
        if layout.secret_file.exists():
            members.append((SECRET_NAME, layout.secret_file))
        members += [(f"{UPLOADS}/{p.relative_to(layout.uploads).as_posix()}", p)
                    for p in _upload_files(layout.uploads)]
        progress(f"hashing {len(members)} files")
        manifest = {
            "format": FORMAT,
            "app_version": __version__,
            "schema_version": schema,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "files": {name: {"sha256": _sha256(path), "size": path.stat().st_size} for name, path in members},
        }
        partial = dest.with_name(dest.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for index, (name, path) in enumerate(members, 1):
                if index % 100 == 0 or index == len(members):
                    progress(f"archiving {index}/{len(members)} files")
                tar.add(path, arcname=name, recursive=False)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, dest)
    os.chmod(dest, 0o600)
    return dest


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created_at: str
    size: int
    schema_version: int | None
    app_version: str | None


def read_manifest(archive: Path) -> dict:
    """The manifest of an archive, or AppError(backup_invalid / backup_corrupt)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != "manifest.json" or not first.isfile():
                raise AppError("backup_invalid", f"{archive}: no manifest.json at the start of the archive")
            handle = tar.extractfile(first)
            manifest = json.loads(handle.read() if handle else b"")
    except (tarfile.ReadError, zlib.error, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AppError("backup_invalid", f"{archive}: not a readable ChatSupport backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise AppError("backup_invalid", f"{archive}: manifest is not a ChatSupport backup manifest")
    return manifest


def list_backups(settings: Settings) -> list[BackupInfo]:
    found = []
    for path in sorted(settings.data.backups.glob("*.tar.gz")):
        try:
            manifest = read_manifest(path)
        except AppError:
            manifest = {}
        found.append(BackupInfo(path, manifest.get("created_at", "?"), path.stat().st_size,
                                manifest.get("schema_version"), manifest.get("app_version")))
    return found


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


def verify_backup(archive: Path, staging: Path, progress: Progress = _quiet) -> dict:
    """Extract into ``staging`` and check every checksum, the schema version and ``integrity_check``."""
    manifest = read_manifest(archive)
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise AppError("backup_invalid", f"{archive}: manifest has no schema version")
    if version > LATEST_VERSION:
        raise AppError("backup_too_new", f"{archive}: schema {version} is newer than this version supports "
                       f"({LATEST_VERSION})")
    progress(f"verifying {len(manifest['files'])} files")
    _extract_verified(archive, manifest, staging, progress)
    progress("running integrity_check on the restored database")
    _check_database(staging / DB_NAME)
    return manifest


def restore_backup(settings: Settings, archive: Path, force: bool = False, progress: Progress = _quiet) -> Path | None:
    """Replace the data dir's database, uploads and secret with the archive's; return where the old ones went."""
    layout = settings.data
    if not archive.is_file():
        raise AppError("not_found", f"{archive}: no such file")
    layout.root.mkdir(parents=True, exist_ok=True)
    with DataDirLock(layout.server_lock):
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=layout.root))
        try:
            verify_backup(archive, staging, progress)
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
