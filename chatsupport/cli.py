"""``chatsupport`` — a thin shell over the library: serve, worker, migrate, doctor, backup, restore, and the
account commands create-admin, create-user and reset-link.

Results go to stdout (``backup`` prints only the archive path, so scripts can capture it); progress and errors
go to stderr as ``error [code]: message`` with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
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
    logging.getLogger("chatsupport").info("ChatSupport %s starting on http://%s:%s (data in %s)", __version__,
                                          settings.HOST, settings.PORT, settings.data.root)
    uvicorn.run(create_app(settings), host=settings.HOST, port=settings.PORT, log_config=None,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
                access_log=False,  # chatsupport.access writes the line, with the request id and the route
                # off: compression more than doubles the memory each widget connection holds
                ws_per_message_deflate=False)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.logs import configure_logging
    from chatsupport.services import requeue_interrupted_jobs, start_services
    from chatsupport.tasks.queue import huey

    configure_logging(settings)
    services = start_services(settings, run_worker=False, hold_lock=False, load_embedder=False)
    requeue_interrupted_jobs(services.db)  # this process owns the consumer, so it recovers what a crash left
    try:
        huey.create_consumer(workers=settings.WORKER_THREADS, worker_type="thread", max_delay=0.5).run()
    finally:
        services.stop()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.backups import backup_before_migrating
    from chatsupport.store.migrations import LATEST_VERSION, migrate

    applied = migrate(settings.data.database, before=backup_before_migrating(settings, _progress))
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


def _passphrase(args: argparse.Namespace, settings: Settings) -> str | None:
    from chatsupport.domain.backup_crypto import read_passphrase
    from chatsupport.domain.backups import instance_passphrase

    return read_passphrase(Path(args.passphrase_file)) if args.passphrase_file else instance_passphrase(settings)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.backups import create_backup, list_backups

    if args.list:
        for info in list_backups(settings):
            schema = "?" if info.schema_version is None else info.schema_version
            state = "unreadable" if not info.readable else ("encrypted" if info.encrypted else "plain")
            print(f"{info.path}\t{info.created_at}\t{info.size}\tschema {schema}\t{state}\t{info.kind}")
        return 0
    path = create_backup(settings, Path(args.to) if args.to else None, progress=_progress,
                         passphrase=_passphrase(args, settings))
    print(path)
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.backups import restore_backup

    aside = restore_backup(settings, Path(args.file).resolve(), force=args.force, progress=_progress,
                           passphrase=_passphrase(args, settings))
    if aside:
        print(f"previous data kept in {aside}", file=sys.stderr)
    print(f"restored {args.file} into {settings.data.root}")
    return 0


class _Accounts:
    """What the account functions need (``chatsupport.domain.auth.Context``), opened on the data dir. Safe
    while a server runs: writes wait their turn on SQLite's lock."""

    def __init__(self, settings: Settings):
        from chatsupport.config import ensure_secret_key
        from chatsupport.store.db import Database
        from chatsupport.store.migrations import migrate

        settings.data.root.mkdir(parents=True, exist_ok=True)
        migrate(settings.data.database)
        self.settings = settings
        self.secret_key = ensure_secret_key(settings)
        self.db = Database(settings.data.database)


def _password(args: argparse.Namespace) -> str:
    return sys.stdin.read().rstrip("\r\n") if args.password_stdin else args.password


def _add_user(args: argparse.Namespace, settings: Settings, role: str) -> int:
    from chatsupport.domain.accounts import create_user

    ctx = _Accounts(settings)
    try:
        user, new_workspace = create_user(ctx, workspace=args.workspace, email=args.email, password=_password(args),
                                          role=role, display_name=args.name)
    finally:
        ctx.db.close()
    where = "new workspace" if new_workspace else "workspace"
    print(f"created {role} {user['email']} ({user['id']}) in {where} {args.workspace!r}")
    return 0


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    return _add_user(args, settings, "owner")


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    return _add_user(args, settings, args.role)


def cmd_reset_link(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.domain.accounts import issue_link

    ctx = _Accounts(settings)
    try:
        link = issue_link(ctx, args.email, "verify_email" if args.verify else "reset_password")
    finally:
        ctx.db.close()
    print(link["url"])
    print(f"valid until {link['expires_at']}", file=sys.stderr)
    return 0


def cmd_eval_retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.retrieval.embedder import shared_embedder
    from chatsupport.retrieval.evaluation import evaluate

    embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
    evaluate(Path(args.corpus), Path(args.questions), embedder, Path(args.out) if args.out else None,
             progress=_progress)
    return 0


def cmd_eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.llm.evaluation import evaluate, make_provider
    from chatsupport.retrieval.embedder import shared_embedder

    key = os.environ.get("ANTHROPIC_API_KEY" if args.provider == "anthropic" else "OPENAI_API_KEY", "")
    provider = make_provider(args.provider, args.model or "", args.base_url or "", key)
    embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
    evaluate(Path(args.corpus), Path(args.questions), embedder, provider, Path(args.out) if args.out else None,
             progress=_progress)
    return 0


def _eval_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    evaluation = sub.add_parser("eval", help="measure retrieval quality on a corpus and question set")
    kinds = evaluation.add_subparsers(dest="eval_command", required=True, metavar="KIND")
    retrieval = kinds.add_parser("retrieval", help="recall@5, MRR@10 and latency of keyword, vector and hybrid")
    retrieval.add_argument("corpus", metavar="CORPUS_DIR")
    retrieval.add_argument("questions", metavar="QUESTIONS.jsonl")
    retrieval.add_argument("--out", metavar="FILE", help="write one JSON line per question and configuration")
    retrieval.set_defaults(func=cmd_eval_retrieval)
    answers = kinds.add_parser("answers", help="answered / declined / escalated shares through the answer pipeline")
    answers.add_argument("corpus", metavar="CORPUS_DIR")
    answers.add_argument("questions", metavar="QUESTIONS.jsonl")
    answers.add_argument("--provider", choices=("extractive", "local", "openai", "anthropic"), default="extractive")
    answers.add_argument("--model", metavar="PATH_OR_NAME", help="GGUF path (local) or model name (cloud)")
    answers.add_argument("--base-url", metavar="URL", help="API base URL for openai/anthropic-compatible servers")
    answers.add_argument("--out", metavar="FILE", help="write one JSON line per question")
    answers.set_defaults(func=cmd_eval_answers)


def _user_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)
    parser.add_argument("--workspace", required=True, metavar="NAME", help="workspace name (created if new)")
    parser.add_argument("--name", metavar="DISPLAY", help="display name (default: the part of the email before @)")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password", metavar="P", help="the password (visible in the process list; prefer stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks", end=end, file=sys.stderr, flush=True)


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from chatsupport.retrieval.embedder import shared_embedder
    from chatsupport.retrieval.indexing import reindex
    from chatsupport.store.db import Database
    from chatsupport.store.lock import DataDirLock
    from chatsupport.store.migrations import migrate

    with DataDirLock(settings.data.server_lock):  # vectors of two models must never serve side by side
        migrate(settings.data.database)
        embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
        db = Database(settings.data.database)
        try:
            count = reindex(db, embedder, progress=_progress_bar)
        finally:
            db.close()
    print(f"re-embedded {count} chunks with {embedder.name} ({embedder.dimension} dimensions)")
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
    sub.add_parser("reindex", help="re-embed every chunk after changing the embedding model (server stopped)"
                   ).set_defaults(func=cmd_reindex)
    sub.add_parser("doctor", help="check the installation; exit 1 when unhealthy").set_defaults(func=cmd_doctor)

    backup = sub.add_parser("backup", help="write a consistent backup archive (safe while serving)")
    backup.add_argument("--to", metavar="FILE",
                        help="archive path (default: DATA_DIR/backups/chatsupport-<UTC>.tar.gz)")
    backup.add_argument("--list", action="store_true", help="list archives in DATA_DIR/backups, one a line: path, "
                        "time, size, schema version, plain/encrypted, kind")
    backup.add_argument("--passphrase-file", metavar="F", help="encrypt with the passphrase on F's first line "
                        "(default: CHATSUPPORT_BACKUP_PASSPHRASE_FILE, if set)")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="verify a backup archive and restore it into the data dir")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--passphrase-file", metavar="F", help="passphrase of an encrypted archive (default: "
                         "CHATSUPPORT_BACKUP_PASSPHRASE_FILE)")
    restore.add_argument("--force", action="store_true", help="replace existing data (kept aside, not deleted)")
    restore.set_defaults(func=cmd_restore)

    admin = sub.add_parser("create-admin", help="create a workspace owner (the workspace too, if new)")
    _user_arguments(admin)
    admin.set_defaults(func=cmd_create_admin)

    user = sub.add_parser("create-user", help="add a user of any role (the workspace too, if new)")
    _user_arguments(user)
    user.add_argument("--role", required=True, choices=["owner", "admin", "agent", "viewer"])
    user.set_defaults(func=cmd_create_user)

    reset = sub.add_parser("reset-link", help="print a one-hour password-reset link for a user")
    reset.add_argument("--email", required=True)
    reset.add_argument("--verify", action="store_true", help="print an email-verification link instead")
    reset.set_defaults(func=cmd_reset_link)

    _eval_parser(sub)
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
