"""Scheduled backups: due once a day after BACKUP_HOUR (a missed day catches up), off with BACKUP_ENABLED=false,
retention that deletes only the oldest scheduled archives, encryption by the instance passphrase, the periodic
Huey task, ``last_backup`` for the console and the backup-age metric, and the stale warning's threshold."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path


from accounts_support import account_settings, open_client
from chatsupport.config import Settings, load_settings
from chatsupport.domain import backups, instance
from chatsupport.store.migrations import migrate
from chatsupport.tasks import backups as backup_jobs
from chatsupport.tasks.queue import huey
from conftest import make_env, run_cli


def instance_settings(data: Path, **extra: str) -> Settings:
    settings = load_settings(env=make_env(data, **extra))
    migrate(settings.data.database)
    return settings


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=timezone.utc)


def backdate(archive: Path, when: datetime) -> None:
    """Rewrite only the time in an archive's manifest (the listing reads the time from there)."""
    import io
    import tarfile

    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    manifest = json.loads(members[0][1])
    manifest["created_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    members[0] = (members[0][0], json.dumps(manifest).encode())
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_due_once_a_day_after_the_hour_and_a_missed_day_catches_up(tmp_path: Path) -> None:
    settings = instance_settings(tmp_path / "data", BACKUP_HOUR="3")
    assert backups.latest_slot(settings, at(10, 2, 59)) == at(9, 3)
    assert backups.latest_slot(settings, at(10, 3)) == at(10, 3)
    assert backups.scheduled_backup_due(settings, at(10, 2))  # nothing yet: the slot of the 9th is missed
    made = backups.run_scheduled_backup(settings, at(10, 2))
    assert made is not None and made.name.endswith("-scheduled.tar.gz")
    backdate(made, at(10, 2))
    assert not backups.scheduled_backup_due(settings, at(10, 2, 50))
    assert backups.run_scheduled_backup(settings, at(10, 2, 50)) is None
    assert backups.scheduled_backup_due(settings, at(10, 3, 10))  # the 10th's slot has come
    assert backups.scheduled_backup_due(settings, at(12, 9))  # the server was down for a day


def test_off_switch_and_no_database(tmp_path: Path) -> None:
    off = instance_settings(tmp_path / "off", BACKUP_ENABLED="false")
    assert not backups.scheduled_backup_due(off, at(10, 12))
    empty = load_settings(env=make_env(tmp_path / "empty"))
    assert not backups.scheduled_backup_due(empty, at(10, 12))


def test_retention_keeps_the_newest_scheduled_and_every_other_kind(tmp_path: Path) -> None:
    settings = instance_settings(tmp_path / "data", BACKUP_KEEP="2")
    folder = settings.data.backups
    manual = backups.create_backup(settings)
    backdate(manual, at(1, 12))
    pre = backups.create_backup(settings, kind="pre-migration", name_suffix="-v11-to-v12")
    backdate(pre, at(1, 13))
    for day in (2, 3, 4):
        path = backups.create_backup(settings, folder / f"chatsupport-202603{day:02d}T030000Z-scheduled.tar.gz",
                                     kind="scheduled")
        backdate(path, at(day, 3))
    made = backups.run_scheduled_backup(settings, at(5, 4))
    assert made is not None
    left = {info.path.name: info.kind for info in backups.list_backups(settings)}
    assert sorted(left.values()) == ["manual", "pre-migration", "scheduled", "scheduled"]
    assert "chatsupport-20260304T030000Z-scheduled.tar.gz" in left and made.name in left
    assert not list(folder.glob("*.partial")) and not list(folder.glob(".backup-*"))


def test_scheduled_backups_are_encrypted_with_the_instance_passphrase(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("instance passphrase 1\n")
    settings = instance_settings(tmp_path / "data", BACKUP_PASSPHRASE_FILE=str(secret))
    made = backups.run_scheduled_backup(settings, at(10, 4))
    assert made is not None and made.name.endswith("-scheduled.enc.tar")
    info = backups.last_backup(settings)
    assert info is not None and info.encrypted and info.kind == "scheduled" and info.path == made
    restored = run_cli(tmp_path / "restored", "restore", str(made), BACKUP_PASSPHRASE_FILE=str(secret))
    assert restored.returncode == 0, restored.stderr

    secret.write_text("short\n")
    failed = run_cli(tmp_path / "data", "backup", BACKUP_PASSPHRASE_FILE=str(secret))
    assert failed.returncode == 1 and "error [backup_passphrase]" in failed.stderr


def test_last_backup_and_the_stale_warning(tmp_path: Path) -> None:
    settings = instance_settings(tmp_path / "data")
    assert backups.last_backup(settings) is None
    assert instance.backup_status(settings).stale
    first = backups.create_backup(settings)
    backdate(first, at(1, 12))
    second = backups.create_backup(settings, kind="scheduled")
    backdate(second, at(2, 3))
    (settings.data.backups / "zzz.tar.gz").write_bytes(b"unreadable")
    last = backups.last_backup(settings)
    assert last is not None and last.path == second and last.age_seconds(at(2, 4)) == 3600
    assert not instance.backup_status(settings, at(3, 3)).stale
    assert instance.backup_status(settings, at(2, 3) + timedelta(hours=instance.STALE_BACKUP_HOURS + 1)).stale


def test_the_periodic_task_makes_the_days_backup_in_a_running_instance(tmp_path: Path) -> None:
    assert backup_jobs.scheduled_backup.task_class in huey._registry._periodic_tasks  # noqa: SLF001
    with open_client(account_settings(tmp_path / "data", BACKUP_HOUR="0")) as client:
        settings = client.app.state.services.settings
        name = backup_jobs.scheduled_backup.call_local()
        assert name and (settings.data.backups / name).is_file()
        assert backup_jobs.scheduled_backup.call_local() is None  # done for today
        assert oct(os.stat(settings.data.backups / name).st_mode & 0o777) == "0o600"


def test_leftovers_of_a_killed_backup_are_swept_once_idle(tmp_path: Path) -> None:
    settings = instance_settings(tmp_path / "data")
    folder = settings.data.backups
    (folder / ".backup-abc").mkdir(parents=True)
    (folder / ".backup-abc" / "chatsupport.db").write_bytes(b"half a snapshot")
    (folder / "chatsupport-20260101T000000Z.tar.gz.partial").write_bytes(b"half an archive")
    kept = backups.create_backup(settings)
    now = datetime.now(timezone.utc).timestamp()
    assert backups.sweep_leftovers(settings, now) == []  # still being written, as far as anyone can tell
    removed = backups.sweep_leftovers(settings, now + backups.LEFTOVER_IDLE_SECONDS + 1)
    assert sorted(p.name for p in removed) == [".backup-abc", "chatsupport-20260101T000000Z.tar.gz.partial"]
    assert [p.name for p in folder.iterdir()] == [kept.name]


def test_two_backups_in_the_same_second_keep_both(tmp_path: Path) -> None:
    settings = instance_settings(tmp_path / "data")
    made = [backups.create_backup(settings) for _ in range(3)]
    assert len(set(made)) == 3 and all(path.is_file() for path in made)
    assert len(backups.list_backups(settings)) == 3
