"""Transcripts and bulk exports: ``GET /api/v1/conversations/{id}/transcript`` (staff) and ``/api/v1/exports``
(PRD §5.6.3, owners and admins).

Both answer with downloads only: ``Content-Disposition: attachment``, ``nosniff`` and a sandboxing CSP, so a
browser never renders customer text as a page. Bulk exports run as Huey jobs, queued here after the export's row
is committed so the job always finds it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import Parameter
from litestar.response import File
from msgspec import Meta, Struct

from chatsupport.domain import exports, transcripts
from chatsupport.tasks.exports import export_conversations
from chatsupport.web.api.conversations import ITEM, acts
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'"}
EXPORT_ITEM = "/api/v1/exports/{export_id:str}"


class ExportRequest(Struct, forbid_unknown_fields=True):
    filters: dict[str, Any] | None = None
    format: Annotated[str, Meta(max_length=10, description="csv or json (xlsx is not offered)")] = "csv"
    fields: Annotated[list[Annotated[str, Meta(max_length=50)]], Meta(max_length=50, description=(
        f"Any of {', '.join(exports.FIELDS)}; all of them when left out."))] | None = None
    include_messages: bool = False


class ExportAccepted(Struct):
    export_id: str
    status: Literal["processing"]
    estimated_completion: str


class ExportProgress(Struct):
    done: int
    total: int | None
    percent: int


class ExportOut(Struct):
    export_id: str
    status: Literal["processing", "completed", "failed"]
    format: Literal["csv", "json"]
    progress: ExportProgress
    row_count: int | None
    size_bytes: int | None
    error: str | None
    filters: dict[str, Any]
    fields: list[str]
    include_messages: bool
    created_at: str
    completed_at: str | None
    expires_at: str
    download_url: str | None


class ExportList(Struct):
    data: list[ExportOut]


@get(f"{ITEM}/transcript", **acts("export.transcript"))
async def transcript(request: Request[Any, Any, Any], conversation_id: str,
                     fmt: Annotated[str, Parameter(query="format", max_length=10,
                                                   description="pdf, json, csv or txt")] = "pdf",
                     include_notes: Annotated[bool, Parameter(description=(
                         "Internal notes in their own staff-only section; false for a transcript meant for the "
                         "customer."))] = True) -> Response[bytes]:
    """The whole conversation as a file: header, every message with its time and sender, the bot's sources."""
    result = await asyncio.to_thread(transcripts.transcript, services_of(request), actor_of(request),
                                     conversation_id, fmt, include_notes)
    return Response(result.content, media_type=result.media_type, headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{result.filename}"'})


@post("/api/v1/exports/conversations", status_code=202, **requires("export.bulk"))
async def request_export(request: Request[Any, Any, Any], data: ExportRequest) -> ExportAccepted:
    """Starts an export job; follow ``GET /api/v1/exports/{export_id}`` until ``status`` is ``completed``.
    ``filters`` are the inbox's (PRD §5.3.4). CSV has one row per conversation, or per message with
    ``include_messages``; JSON is one array of conversations. 429 ``rate_limited`` while three exports of the
    workspace are still being written."""
    result = await asyncio.to_thread(exports.request_export, services_of(request), actor_of(request),
                                     filters=data.filters, fmt=data.format, fields=data.fields,
                                     include_messages=data.include_messages)
    await asyncio.to_thread(export_conversations, result["export_id"])
    return msgspec.convert(result, ExportAccepted)


@get("/api/v1/exports", **requires("export.bulk"))
async def list_exports(request: Request[Any, Any, Any]) -> ExportList:
    """The workspace's exports of the last seven days, newest first (at most 50)."""
    result = await asyncio.to_thread(exports.list_exports, services_of(request), actor_of(request))
    return msgspec.convert(result, ExportList)


@get(EXPORT_ITEM, **requires("export.bulk"))
async def get_export(request: Request[Any, Any, Any], export_id: str) -> ExportOut:
    """Status and progress. Exports are deleted seven days after the request: then 404."""
    result = await asyncio.to_thread(exports.get_export, services_of(request), actor_of(request), export_id)
    return msgspec.convert(result, ExportOut)


@get(f"{EXPORT_ITEM}/download", **requires("export.bulk"))
async def download_export(request: Request[Any, Any, Any], export_id: str) -> File:
    """The file, once ``status`` is ``completed``: 409 ``export_not_ready`` while it is written, 409
    ``export_failed`` after a failure, 404 after the seven days."""
    path, filename, media_type = await asyncio.to_thread(exports.export_file, services_of(request),
                                                         actor_of(request), export_id)
    return File(path, filename=filename, media_type=media_type, content_disposition_type="attachment",
                headers=DOWNLOAD_HEADERS)


ROUTES = [transcript, request_export, list_exports, get_export, download_export]
