"""``/api/v1/integrations``: the SMTP server (instance-wide), the transcript email on resolve and the Slack
incoming webhook, each with a test (owners and admins: ``integrations.manage``).

Secrets go in and never come out: answers say ``password_set`` and show a Slack hint (host and last four
characters). SMTP saved here replaces the environment's (``CHATSUPPORT_SMTP_HOST`` and its siblings) for every
email the instance sends; ``DELETE …/smtp`` goes back to it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post, put
from msgspec import Meta, Struct

from chatsupport.domain import integrations
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

BASE = "/api/v1/integrations"
PERMISSION = "integrations.manage"


class SmtpIn(Struct, forbid_unknown_fields=True):
    host: Annotated[str, Meta(min_length=1, max_length=253)]
    port: Annotated[int, Meta(ge=1, le=65535)] = 587
    username: Annotated[str, Meta(max_length=200)] = ""
    password: Annotated[str, Meta(max_length=500)] | None = None  # omit: keep; "": remove
    sender: Annotated[str, Meta(max_length=200)] = ""
    starttls: bool = True


class SmtpOut(Struct):
    source: Literal["console", "environment", "none"]
    host: str
    port: int
    username: str
    sender: str
    starttls: bool
    password_set: bool
    updated_at: str | None


class SlackOut(Struct):
    configured: bool
    hint: str | None


class IntegrationsOut(Struct):
    smtp: SmtpOut
    transcript_email: bool
    slack: SlackOut


class IntegrationsPatch(Struct, forbid_unknown_fields=True):
    transcript_email: bool


class SmtpTestIn(Struct, forbid_unknown_fields=True):
    to: Annotated[str, Meta(max_length=254)] = ""


class SmtpTestOut(Struct):
    sent_to: str
    host: str
    source: str


class SlackIn(Struct, forbid_unknown_fields=True):
    webhook_url: Annotated[str, Meta(min_length=1, max_length=2000)]


class SlackTestOut(Struct):
    status: int


def _out(result: dict[str, Any]) -> IntegrationsOut:
    return msgspec.convert(result, IntegrationsOut)


@get(BASE, **requires(PERMISSION))
async def get_integrations(request: Request[Any, Any, Any]) -> IntegrationsOut:
    """``smtp.source``: ``console`` (saved here), ``environment`` (CHATSUPPORT_SMTP_HOST) or ``none``."""
    return _out(await asyncio.to_thread(integrations.view, services_of(request), actor_of(request)))


@patch(BASE, **requires(PERMISSION))
async def patch_integrations(request: Request[Any, Any, Any], data: IntegrationsPatch) -> IntegrationsOut:
    """``transcript_email``: email customers who left an address a copy of their conversation when it is
    resolved (needs a mail server)."""
    return _out(await asyncio.to_thread(integrations.set_transcript_email, services_of(request), actor_of(request),
                                        data.transcript_email))


@put(f"{BASE}/smtp", **requires(PERMISSION))
async def put_smtp(request: Request[Any, Any, Any], data: SmtpIn) -> IntegrationsOut:
    result = await asyncio.to_thread(integrations.save_smtp, services_of(request), actor_of(request),
                                     host=data.host, port=data.port, username=data.username, password=data.password,
                                     sender=data.sender, starttls=data.starttls)
    return _out(result)


@delete(f"{BASE}/smtp", status_code=200, **requires(PERMISSION))
async def delete_smtp(request: Request[Any, Any, Any]) -> IntegrationsOut:
    return _out(await asyncio.to_thread(integrations.clear_smtp, services_of(request), actor_of(request)))


@post(f"{BASE}/smtp/test", status_code=200, **requires(PERMISSION))
async def test_smtp(request: Request[Any, Any, Any], data: SmtpTestIn) -> SmtpTestOut:
    """Sends now (to ``to``, or to the caller). 409 ``mail_not_configured``; 502 ``integration_failed`` with the
    server's answer."""
    result = await asyncio.to_thread(integrations.test_smtp, services_of(request), actor_of(request), data.to)
    return msgspec.convert(result, SmtpTestOut)


@put(f"{BASE}/slack", **requires(PERMISSION))
async def put_slack(request: Request[Any, Any, Any], data: SlackIn) -> IntegrationsOut:
    """A Slack incoming-webhook URL (https://hooks.slack.com/services/…): new and escalated conversations are
    posted there with a link to the inbox."""
    return _out(await asyncio.to_thread(integrations.save_slack, services_of(request), actor_of(request),
                                        data.webhook_url))


@delete(f"{BASE}/slack", status_code=200, **requires(PERMISSION))
async def delete_slack(request: Request[Any, Any, Any]) -> IntegrationsOut:
    return _out(await asyncio.to_thread(integrations.remove_slack, services_of(request), actor_of(request)))


@post(f"{BASE}/slack/test", status_code=200, **requires(PERMISSION))
async def test_slack(request: Request[Any, Any, Any]) -> SlackTestOut:
    result = await asyncio.to_thread(integrations.test_slack, services_of(request), actor_of(request))
    return msgspec.convert(result, SlackTestOut)


ROUTES = [get_integrations, patch_integrations, put_smtp, delete_smtp, test_smtp, put_slack, delete_slack,
          test_slack]
