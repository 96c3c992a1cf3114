"""Instance & backups (owners of the instance's first workspace): versions, disk use, models, the last backup with
a warning when it is old, the archives with downloads, and "Back up now" as a job whose progress the page polls.

A download names the archive by its file name as a query parameter and is served only when the backups listing
holds that name, so no path outside the backups folder (nor a ``*.partial`` file) can be asked for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import File

from chatsupport.domain import audit, instance
from chatsupport.domain.backups import find_backup
from chatsupport.errors import AppError
from chatsupport.tasks import backups as backup_jobs
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, is_htmx, redirect, render, words
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
PERMISSION = "instance.settings"
NOTICES = {"started": "Backup started. This page shows its progress."}


def _owner_only(request: Request[Any, Any, Any]) -> None:
    instance.require_instance_owner(services_of(request).db, actor_of(request))


def _job(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    return backup_jobs.job_state(services_of(request).db)


def _job_fragment(request: Request[Any, Any, Any], job: dict[str, Any] | None, error: str | None = None) -> Any:
    return render(request, "settings/_backup_job.html", {"job": job, "error": error})


@get("/settings/instance", **PAGE, **console_requires(PERMISSION))
async def instance_page(request: Request[Any, Any, Any], notice: str = "") -> Response[Any]:
    services = services_of(request)

    def gather() -> dict[str, Any]:
        _owner_only(request)
        return {"info": instance.overview(services.db, services.settings, services.embedder), "job": _job(request)}

    context = await asyncio.to_thread(gather)
    return render(request, "settings/instance.html", {**context, "notice": NOTICES.get(notice), "error": None,
                                                       "stale_hours": instance.STALE_BACKUP_HOURS})


@get("/settings/instance/backup-job", **PAGE, **console_requires(PERMISSION))
async def backup_job(request: Request[Any, Any, Any]) -> Any:
    """The job panel alone, polled by htmx while a backup runs."""
    job = await asyncio.to_thread(lambda: (_owner_only(request), _job(request))[1])
    return _job_fragment(request, job)


@post("/settings/instance/backups", status_code=200, **PAGE, **console_requires(PERMISSION))
async def back_up_now(request: Request[Any, Any, Any]) -> Any:
    await checked_form(request)
    services, actor = services_of(request), actor_of(request)

    def start() -> dict[str, Any]:
        _owner_only(request)
        job = backup_jobs.request_backup(services.db, actor.email)
        services.db.write(lambda conn: audit.record(conn, "instance.backup_requested", actor=actor,
                                                    resource_type="instance"))
        return job

    try:
        job = await asyncio.to_thread(start)
    except AppError as exc:
        if exc.code != "backup_running" or not is_htmx(request):
            raise
        return _job_fragment(request, await asyncio.to_thread(_job, request), error=words(exc))
    if is_htmx(request):
        return _job_fragment(request, job)
    return redirect("/settings/instance?notice=started")


@get("/settings/instance/backups/download", **PAGE, **console_requires(PERMISSION))
async def download_backup(request: Request[Any, Any, Any], name: str) -> File:
    services, actor = services_of(request), actor_of(request)

    def locate() -> Any:
        _owner_only(request)
        found = find_backup(services.settings, name)
        if found is None:
            raise AppError("not_found", "No backup archive with that name.")
        services.db.write(lambda conn: audit.record(conn, "instance.backup_downloaded", actor=actor,
                                                    resource_type="backup", resource_id=found.path.name))
        return found

    found = await asyncio.to_thread(locate)
    media_type = "application/x-tar" if found.encrypted else "application/gzip"
    return File(found.path, filename=found.path.name, media_type=media_type, content_disposition_type="attachment",
                headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


ROUTES = [instance_page, backup_job, back_up_now, download_backup]
