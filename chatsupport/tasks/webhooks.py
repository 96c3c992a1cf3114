"""Integration jobs: webhook deliveries with retries, Slack posts, the transcript email on resolve, and the daily
trim of the delivery log. ``domain.events`` hands work to ``dispatch`` (registered when this module is imported).

Retries are scheduled by the jobs themselves rather than by Huey's fixed ``retry_delay``: the pause grows
(``webhooks.RETRY_FACTORS`` times the ``WEBHOOK_RETRY_BASE`` setting) and every try is logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from huey import crontab

from chatsupport.config import Settings, ensure_secret_key
from chatsupport.domain import events, integrations, webhooks
from chatsupport.net.errors import OutboundError
from chatsupport.net.mail import mail_settings, send_mail
from chatsupport.store import webhooks as store
from chatsupport.store.db import Database
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What domain functions taking a ``Context`` need, inside a job."""

    db: Database
    settings: Settings
    secret_key: str


def dispatch(outbox: events.Outbox) -> None:
    for delivery_id in outbox.delivery_ids:
        deliver_webhook(delivery_id)
    if outbox.slack:
        post_to_slack(outbox.workspace_id, outbox.event, outbox.data)
    if outbox.transcript_conversation_id:
        send_transcript(outbox.workspace_id, outbox.transcript_conversation_id)


events.use_dispatcher(dispatch)


@huey.task()
def deliver_webhook(delivery_id: str) -> None:
    runtime = current()
    attempt = webhooks.attempt_delivery(runtime.db, runtime.settings, ensure_secret_key(runtime.settings),
                                        delivery_id)
    if attempt is not None and attempt.retry_in is not None:
        deliver_webhook.schedule(args=(delivery_id,), delay=attempt.retry_in)


@huey.task()
def post_to_slack(workspace_id: str, event: str, data: dict[str, Any], attempt: int = 1) -> None:
    runtime = current()
    url = integrations.slack_url(runtime.db, ensure_secret_key(runtime.settings), workspace_id)
    if url is None:
        return
    message = integrations.slack_message(event, data, runtime.settings.base_url)
    try:
        response = integrations.post_json(runtime.settings, url, json.dumps(message).encode(), {})
        problem = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except OutboundError as exc:
        problem = str(exc)
    if problem is None:
        return
    if attempt >= webhooks.MAX_ATTEMPTS:
        log.warning("Slack post for %s of workspace %s given up after %d tries: %s", event, workspace_id, attempt,
                    problem)
        return
    delay = runtime.settings.WEBHOOK_RETRY_BASE * webhooks.RETRY_FACTORS[attempt - 1]
    post_to_slack.schedule(args=(workspace_id, event, data, attempt + 1), delay=delay)


@huey.task(retries=3, retry_delay=60)
def send_transcript(workspace_id: str, conversation_id: str) -> None:
    runtime = current()
    mail = mail_settings(runtime.db, runtime.settings)
    if mail is None:
        log.info("no transcript for conversation %s: no mail server is configured", conversation_id)
        return
    context = JobContext(runtime.db, runtime.settings, ensure_secret_key(runtime.settings))
    message = integrations.transcript_email(context, workspace_id, conversation_id)
    if message is not None:
        send_mail(mail, *message)


@huey.periodic_task(crontab(minute="17", hour="3"))
def trim_delivery_log() -> tuple[int, int]:
    """Payload bodies go after ``PAYLOAD_DAYS`` (they may hold customer data), log rows after ``LOG_DAYS``."""
    return current().db.write(lambda conn: store.purge(conn, webhooks.PAYLOAD_DAYS, webhooks.LOG_DAYS))
