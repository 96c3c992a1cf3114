"""Privacy (PRD §6.5), owners and admins (``privacy.manage``): a customer's data export and erasure, the
workspace's retention policy, and whole-workspace exports.

``customer_id`` is a ``customers.id`` of the caller's workspace (``GET /api/v1/customers?email=`` finds the rows
an address is known by); any other id, another workspace's included, is 404 before anything is read.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import Parameter
from litestar.response import File
from msgspec import Meta, Struct

from chatsupport.domain import customer_data, retention, workspace_export
from chatsupport.tasks.retention import export_workspace
from chatsupport.web.api.exports import DOWNLOAD_HEADERS
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

CUSTOMER = "/api/v1/customers/{customer_id:str}"
WORKSPACE_EXPORT = "/api/v1/privacy/workspace-exports/{export_id:str}"
NO_STORE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def _customer_found() -> dict[str, Any]:
    return requires_found("privacy.manage", found("customer_id", customer_data.exists, "Customer not found."))


def _export_found() -> dict[str, Any]:
    return requires_found("privacy.manage", found("export_id", workspace_export.exists, "Export not found."))


class RetentionIn(Struct, forbid_unknown_fields=True):
    action: Annotated[str, Meta(max_length=20, description="off, anonymize or delete")]
    after_days: Annotated[int, Meta(description="1-3650; required unless action is off")] | None = None


class RetentionOut(Struct):
    action: Literal["off", "anonymize", "delete"]
    after_days: int | None
    updated_at: str | None
    last_run_at: str | None
    last_run_conversations: int


class CustomerOut(Struct):
    id: str
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    visitor_id: str | None
    external_id: str | None
    custom_fields: dict[str, Any] | None
    metadata: dict[str, Any] | None
    first_seen_at: str | None
    last_seen_at: str | None
    created_at: str
    anonymized_at: str | None
    conversations: int


class CustomerList(Struct):
    data: list[CustomerOut]


class ErasureCounts(Struct):
    conversations: int
    messages: int
    notes: int
    events: int
    notifications: int
    answer_reviews: int
    attachments: int
    analytics_buckets: int
    webhook_deliveries: int
    audit_entries: int


class ErasureOut(Struct):
    customer_id: str
    mode: Literal["anonymize", "delete"]
    touched: ErasureCounts


class WorkspaceExportProgress(Struct):
    done: int
    total: int
    percent: int


class WorkspaceExportOut(Struct):
    export_id: str
    status: Literal["processing", "completed", "failed"]
    progress: WorkspaceExportProgress
    size_bytes: int | None
    error: str | None
    created_at: str
    completed_at: str | None
    expires_at: str
    download_url: str | None


class WorkspaceExportList(Struct):
    data: list[WorkspaceExportOut]


@get("/api/v1/customers", **requires("privacy.manage"))
async def find_customers(request: Request[Any, Any, Any],
                         email: Annotated[str, Parameter(max_length=254, description="Exact address")],
                         ) -> CustomerList:
    """The customer rows this address is known by (one person may have several), with their conversation counts."""
    rows = await asyncio.to_thread(customer_data.find_by_email, services_of(request), actor_of(request), email)
    return msgspec.convert({"data": rows}, CustomerList)


@get(f"{CUSTOMER}/export", **_customer_found())
async def export_customer(request: Request[Any, Any, Any], customer_id: str) -> Response[dict[str, Any]]:
    """Everything held about the customer: profile, conversations with messages, notes and events, CSAT,
    message feedback, attachments (with download paths), answer reviews, webhook deliveries that name them and
    audit entries about them. Audited."""
    document = await asyncio.to_thread(customer_data.export, services_of(request), actor_of(request), customer_id)
    return Response(document, headers={**NO_STORE, "Content-Disposition":
                                       f'attachment; filename="customer-{customer_id[:8]}.json"'})


@delete(CUSTOMER, status_code=200, **_customer_found())
async def erase_customer(request: Request[Any, Any, Any], customer_id: str,
                         mode: Annotated[str | None, Parameter(max_length=20, description=(
                             "anonymize (keep the conversations and counts, remove what identifies the person) or "
                             "delete (remove the conversations and the customer)"))] = None) -> ErasureOut:
    """Erase one customer; ``mode`` is required. Returns how many rows of each kind were touched. Audited."""
    result = await asyncio.to_thread(customer_data.erase, services_of(request), actor_of(request), customer_id,
                                     mode or "")
    return msgspec.convert(result, ErasureOut)


@get("/api/v1/privacy/retention", **requires("privacy.manage"))
async def get_retention(request: Request[Any, Any, Any]) -> RetentionOut:
    row = await asyncio.to_thread(retention.view, services_of(request), actor_of(request))
    return RetentionOut(**row)


@put("/api/v1/privacy/retention", **requires("privacy.manage"))
async def set_retention(request: Request[Any, Any, Any], data: RetentionIn) -> RetentionOut:
    """Closed conversations whose last activity is older than ``after_days`` are anonymised or deleted by a daily
    job. ``off`` (the default) keeps everything."""
    row = await asyncio.to_thread(retention.update, services_of(request), actor_of(request), data.action,
                                  data.after_days)
    return RetentionOut(**row)


@post("/api/v1/privacy/workspace-exports", status_code=202, **requires("privacy.manage"))
async def request_workspace_export(request: Request[Any, Any, Any]) -> WorkspaceExportOut:
    """Starts a zip of the whole workspace (a JSON array per table); follow the export until ``completed``."""
    result = await asyncio.to_thread(workspace_export.request, services_of(request), actor_of(request))
    await asyncio.to_thread(export_workspace, result["export_id"])
    return msgspec.convert(result, WorkspaceExportOut)


@get("/api/v1/privacy/workspace-exports", **requires("privacy.manage"))
async def list_workspace_exports(request: Request[Any, Any, Any]) -> WorkspaceExportList:
    rows = await asyncio.to_thread(workspace_export.listing, services_of(request), actor_of(request))
    return msgspec.convert({"data": rows}, WorkspaceExportList)


@get(WORKSPACE_EXPORT, **_export_found())
async def get_workspace_export(request: Request[Any, Any, Any], export_id: str) -> WorkspaceExportOut:
    result = await asyncio.to_thread(workspace_export.get, services_of(request), actor_of(request), export_id)
    return msgspec.convert(result, WorkspaceExportOut)


@get(f"{WORKSPACE_EXPORT}/download", **_export_found())
async def download_workspace_export(request: Request[Any, Any, Any], export_id: str) -> File:
    """409 ``export_not_ready`` while it is written, 409 ``export_failed`` after a failure."""
    path, filename = await asyncio.to_thread(workspace_export.file, services_of(request), actor_of(request),
                                             export_id)
    return File(path, filename=filename, media_type="application/zip", content_disposition_type="attachment",
                headers=DOWNLOAD_HEADERS)


ROUTES = [find_customers, export_customer, erase_customer, get_retention, set_retention, request_workspace_export,
          list_workspace_exports, get_workspace_export, download_workspace_export]
