"""``chatsupport`` — a thin shell over the library: serve, worker, migrate, doctor, backup, restore.

Results go to stdout (``backup`` prints only the archive path, so scripts can capture it); progress and errors
go to stderr as ``error [code]: message`` with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from chatsupport import __version__
from chatsupport.config import Settings, SettingsError, load_settings
from chatsupport.errors import AppError

Command = Callable[[argparse.Namespace, Settings], int]


def _progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from chatsupport.app import create_app
    from chatsupport.logs import configure_logging

    settings = settings.replace(**{k: v for k, v in (("HOST", args.host), ("PORT", args.port)) if v is not None})
    configure_logging(settings)
    print(f"ChatSupport {__version__} starting on http://{settings.HOST}:{settings.PORT} "
          f"(data in {settings.data.root})", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=settings.HOST, port=settings.PORT, log_config=None,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.logs import configure_logging
    from chatsupport.services import start_services
    from chatsupport.tasks.queue import huey

    configure_logging(settings)
    services = start_services(settings, run_worker=False, hold_lock=False, load_embedder=False)
    try:
        huey.create_consumer(workers=settings.WORKER_THREADS, worker_type="thread", max_delay=0.5).run()
    finally:
        services.stop()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.store.migrations import LATEST_VERSION, migrate

    applied = migrate(settings.data.database)
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    print(f"schema at version {LATEST_VERSION}" + ("" if applied else " (nothing to do)"))
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.doctor import run_doctor

    report = run_doctor(settings)
    print(f"ChatSupport {__version__}\n\nSettings:")
    for name, value, source in report.facts["settings"]:
        print(f"  {name} = {value}  ({source})")
    print("\nVersions:")
    for name, version in report.facts["versions"].items():
        print(f"  {name}: {version}")
    print("\nChecks:")
    for check in report.checks:
        mark = "ok  " if check.ok else ("warn" if check.warning else "FAIL")
        print(f"  [{mark}] {check.name}: {check.detail}")
    print("\n" + ("healthy" if report.healthy else "UNHEALTHY"))
    return 0 if report.healthy else 1


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.backups import create_backup, list_backups

    if args.list:
        for info in list_backups(settings):
            schema = "?" if info.schema_version is None else info.schema_version
            print(f"{info.path}\t{info.created_at}\t{info.size}\tschema {schema}")
        return 0
    path = create_backup(settings, Path(args.to) if args.to else None, progress=_progress)
    print(path)
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.backups import restore_backup

    aside = restore_backup(settings, Path(args.file).resolve(), force=args.force, progress=_progress)
    if aside:
        print(f"previous data kept in {aside}", file=sys.stderr)
    print(f"restored {args.file} into {settings.data.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatsupport", description="Self-hosted AI customer support.")
    parser.add_argument("--version", action="version", version=f"chatsupport {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web server (and the job consumer)")
    serve.add_argument("--host", help="listen address (default: CHATSUPPORT_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: CHATSUPPORT_PORT)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run the background job consumer alone").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("doctor", help="check the installation; exit 1 when unhealthy").set_defaults(func=cmd_doctor)

    backup = sub.add_parser("backup", help="write a consistent backup archive (safe while serving)")
    backup.add_argument("--to", metavar="FILE", help="archive path (default: DATA_DIR/backups/chatsupport-<UTC>.tar.gz)")
    backup.add_argument("--list", action="store_true", help="list archives in DATA_DIR/backups")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="verify a backup archive and restore it into the data dir")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--force", action="store_true", help="replace existing data (kept aside, not deleted)")
    restore.set_defaults(func=cmd_restore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except SettingsError as exc:
        print(f"error [invalid_setting]: {exc}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
