"""``/api/v1/webhooks``: outgoing webhooks and their delivery log (owners and admins: ``integrations.manage``).

The secret is in the creation answer and, on request, from ``GET …/secret`` (audited); never in a listing. An
unknown id (another workspace's included) answers 404 before the body is looked at. A URL on a private, loopback
or link-local address is refused with 422 ``url_not_allowed`` unless the instance's outbound allow-list names it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import Parameter
from msgspec import Meta, Struct

from chatsupport.domain import webhooks
from chatsupport.domain.events import EVENTS
from chatsupport.tasks.webhooks import deliver_webhook
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

COLLECTION = "/api/v1/webhooks"
ITEM = f"{COLLECTION}/{{webhook_id:str}}"
PERMISSION = "integrations.manage"

Event = Literal[EVENTS]  # type: ignore[valid-type]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]
Events = Annotated[list[Event], Meta(min_length=1, max_length=6)]
Description = Annotated[str, Meta(max_length=200)]


class WebhookCreate(Struct, forbid_unknown_fields=True):
    url: Url
    events: Events
    description: Description = ""
    enabled: bool = True


class WebhookUpdate(Struct, forbid_unknown_fields=True):
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class WebhookOut(Struct):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    last_delivery_status: str | None = None


class WebhookCreated(WebhookOut):
    secret: str = ""


class WebhookList(Struct):
    data: list[WebhookOut]
    events: list[str]


class WebhookSecret(Struct):
    secret: str


class DeliveryOut(Struct):
    delivery_id: str
    event: str
    attempt: int | None
    status: str
    delivery_status: str
    response_code: int | None
    error: str | None
    duration_ms: int | None
    created_at: str
    redeliverable: bool


class Pagination(Struct):
    page: int
    limit: int
    total: int


class DeliveryList(Struct):
    data: list[DeliveryOut]
    pagination: Pagination


class Redelivery(Struct):
    delivery_id: str
    status: str


def _exists(services: Any, actor: Any, webhook_id: str) -> bool:
    return webhooks.exists(services, actor, webhook_id)


def manages() -> dict[str, Any]:
    return requires_found(PERMISSION, found("webhook_id", _exists, "Webhook not found."))


@get(COLLECTION, **requires(PERMISSION))
async def list_webhooks(request: Request[Any, Any, Any]) -> WebhookList:
    """Oldest first, with each webhook's latest delivery outcome, and the events one can subscribe to."""
    result = await asyncio.to_thread(webhooks.listing, services_of(request), actor_of(request))
    return msgspec.convert(result, WebhookList)


@post(COLLECTION, status_code=201, **requires(PERMISSION))
async def create_webhook(request: Request[Any, Any, Any], data: WebhookCreate) -> WebhookCreated:
    """The answer carries ``secret`` (``whsec_…``): receivers check ``X-ChatSupport-Signature`` with it."""
    result = await asyncio.to_thread(webhooks.create, services_of(request), actor_of(request), url=data.url,
                                     events=list(data.events), description=data.description, enabled=data.enabled)
    return msgspec.convert(result, WebhookCreated)


@get(ITEM, **manages())
async def get_webhook(request: Request[Any, Any, Any], webhook_id: str) -> WebhookOut:
    result = await asyncio.to_thread(webhooks.get, services_of(request), actor_of(request), webhook_id)
    return msgspec.convert(result, WebhookOut)


@patch(ITEM, **manages())
async def update_webhook(request: Request[Any, Any, Any], webhook_id: str, data: WebhookUpdate) -> WebhookOut:
    """Only the fields given change."""
    result = await asyncio.to_thread(webhooks.update, services_of(request), actor_of(request), webhook_id,
                                     url=data.url, events=None if data.events is None else list(data.events),
                                     description=data.description, enabled=data.enabled)
    return msgspec.convert(result, WebhookOut)


@delete(ITEM, status_code=204, **manages())
async def delete_webhook(request: Request[Any, Any, Any], webhook_id: str) -> None:
    """Its delivery log goes with it."""
    await asyncio.to_thread(webhooks.delete, services_of(request), actor_of(request), webhook_id)


@get(f"{ITEM}/secret", **manages())
async def webhook_secret(request: Request[Any, Any, Any], webhook_id: str) -> WebhookSecret:
    """Audited (``webhook.secret_revealed``)."""
    result = await asyncio.to_thread(webhooks.reveal_secret, services_of(request), actor_of(request), webhook_id)
    return msgspec.convert(result, WebhookSecret)


@get(f"{ITEM}/deliveries", **manages())
async def list_deliveries(request: Request[Any, Any, Any], webhook_id: str,
                          page: Annotated[int, Parameter(ge=1)] = 1,
                          limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> DeliveryList:
    """Every try, newest first: event, outcome, response code, attempt number, error, duration and time. A
    delivery not tried yet shows once, with ``attempt`` null and status ``pending``."""
    result = await asyncio.to_thread(webhooks.deliveries, services_of(request), actor_of(request), webhook_id,
                                     page, limit)
    return msgspec.convert(result, DeliveryList)


@post(f"{ITEM}/deliveries/{{delivery_id:str}}/redeliver", status_code=202, **manages())
async def redeliver(request: Request[Any, Any, Any], webhook_id: str, delivery_id: str) -> Redelivery:
    """The same body and ``delivery_id`` again. 409 while it is still being tried, or once its body was deleted
    (30 days)."""
    result = await asyncio.to_thread(webhooks.redeliver, services_of(request), actor_of(request), webhook_id,
                                     delivery_id)
    deliver_webhook(delivery_id)
    return msgspec.convert(result, Redelivery)


ROUTES = [list_webhooks, create_webhook, get_webhook, update_webhook, delete_webhook, webhook_secret,
          list_deliveries, redeliver]
