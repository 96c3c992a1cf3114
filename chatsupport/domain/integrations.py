"""Integration settings (Settings → Integrations): the instance's SMTP server, each workspace's transcript email
and Slack incoming webhook, and what those two send.

SMTP is instance-wide (one company per appliance): what an owner or admin saves here replaces the environment
defaults (``CHATSUPPORT_SMTP_HOST`` …) for every email the instance sends (``net.mail.mail_settings``). Secrets
(the SMTP password, the Slack URL, which is a credential) are stored encrypted with the instance secret and never
shown back: the console sees whether one is set and a short hint.
"""

from __future__ import annotations

import json
import smtplib
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from chatsupport import __version__
from chatsupport.domain import transcripts
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key, encrypt_key
from chatsupport.net.errors import OutboundError, OutboundRefused
from chatsupport.net.mail import PASSWORD_SCOPE, mail_settings, send_mail
from chatsupport.net.outbound import OutboundResponse, client_for
from chatsupport.store import integrations as store
from chatsupport.store.db import Database

SLACK_SCOPE = "slack_webhook"
POST_TIMEOUT = 10.0
USER_AGENT = f"ChatSupport-Hooks/{__version__}"
EVENT_TITLES = {"conversation.created": "New conversation", "conversation.escalated": "Conversation escalated"}


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


# --- view ------------------------------------------------------------------------------------------------------
def view(ctx: Context, actor: Actor) -> dict[str, Any]:
    conn = ctx.db.reader()
    saved = store.smtp(conn)
    mail = mail_settings(ctx.db, ctx.settings)
    workspace = store.workspace(conn, actor.workspace_id)
    smtp = {"source": mail.source if mail else "none", "host": mail.host if mail else "",
            "port": mail.port if mail else 587, "username": mail.username if mail else "",
            "sender": mail.sender if mail else "", "starttls": mail.starttls if mail else True,
            "password_set": bool(saved["password_enc"]) if saved else bool(ctx.settings.SMTP_PASSWORD),
            "updated_at": saved["updated_at"] if saved else None}
    return {"smtp": smtp, "transcript_email": workspace["transcript_email"],
            "slack": {"configured": workspace["slack_webhook_enc"] is not None, "hint": workspace["slack_hint"]}}


# --- SMTP ------------------------------------------------------------------------------------------------------
def _check_smtp(host: str, port: int, username: str, sender: str) -> None:
    problems = []
    if not host or len(host) > 253 or any(c.isspace() or c in "/@:" for c in host):
        problems.append({"field": "host", "message": "A host name or IP address, e.g. smtp.example.com."})
    if not 1 <= port <= 65535:
        problems.append({"field": "port", "message": "A port between 1 and 65535 (587 or 465 usually)."})
    if len(username) > 200:
        problems.append({"field": "username", "message": "At most 200 characters."})
    if sender and (len(sender) > 200 or "@" not in parseaddr(sender)[1]):
        problems.append({"field": "sender", "message": "An address, e.g. Acme Support <help@acme.example>."})
    if problems:
        raise AppError("validation_error", details=problems)


def save_smtp(ctx: Context, actor: Actor, *, host: str, port: int, username: str, password: str | None,
              sender: str, starttls: bool) -> dict[str, Any]:
    """``password``: None keeps the saved one, ``""`` removes it."""
    host, username, sender = host.strip(), username.strip(), sender.strip()
    _check_smtp(host, port, username, sender)

    def write(conn: Any) -> None:
        previous = store.smtp(conn)
        blob = previous["password_enc"] if previous and password is None else None
        if password:
            blob = encrypt_key(ctx.secret_key, *PASSWORD_SCOPE, password)
        store.save_smtp(conn, host=host, port=port, username=username, password_enc=blob, sender=sender,
                        starttls=starttls, user_id=actor.user_id)
        record(conn, "integrations.smtp_updated", actor=actor, resource_type="smtp_settings",
               changes={"host": host, "port": port, "username": username, "sender": sender, "starttls": starttls,
                        "password": "changed" if password else "removed" if password == "" else "kept"})

    ctx.db.write(write)
    return view(ctx, actor)


def clear_smtp(ctx: Context, actor: Actor) -> dict[str, Any]:
    """Back to the environment's SMTP settings (if any)."""

    def write(conn: Any) -> None:
        if store.clear_smtp(conn):
            record(conn, "integrations.smtp_cleared", actor=actor, resource_type="smtp_settings")

    ctx.db.write(write)
    return view(ctx, actor)


def test_smtp(ctx: Context, actor: Actor, to: str) -> dict[str, Any]:
    """Send a short message now (not through the queue), so the console can say at once whether it works."""
    to = to.strip() or actor.email
    if "@" not in parseaddr(to)[1]:
        raise _invalid("to", "An email address.")
    mail = mail_settings(ctx.db, ctx.settings)
    if mail is None:
        raise AppError("mail_not_configured")
    try:
        send_mail(mail, to, "ChatSupport test email",
                  f"This test was sent by {actor.email} from Settings → Integrations.\n\n"
                  f"Mail server: {mail.host}:{mail.port} ({'console' if mail.source == 'console' else 'environment'}"
                  " settings). If you can read this, ChatSupport can send email.\n")
    except (smtplib.SMTPException, OSError) as exc:
        raise AppError("integration_failed", f"The mail server said: {_smtp_error(exc)}") from exc
    return {"sent_to": to, "host": mail.host, "source": mail.source}


def _smtp_error(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "the user name or password was refused."
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')[:200]}"
    return f"{type(exc).__name__}: {exc}"[:300]


# --- transcript email ------------------------------------------------------------------------------------------
def set_transcript_email(ctx: Context, actor: Actor, enabled: bool) -> dict[str, Any]:
    def write(conn: Any) -> None:
        store.update_workspace(conn, actor.workspace_id, transcript_email=int(enabled))
        record(conn, "integrations.transcript_email_updated", actor=actor, resource_type="workspace",
               resource_id=actor.workspace_id, changes={"transcript_email": enabled})

    ctx.db.write(write)
    return view(ctx, actor)


def transcript_email(ctx: Context, workspace_id: str, conversation_id: str) -> tuple[str, str, str] | None:
    """(to, subject, body) of the copy a customer gets when their conversation is resolved, or None when there is
    nobody to send it to. Staff notes, tags and agents' addresses stay out: this one leaves the company."""
    # The job acts for the workspace, not for a person: an actor that only carries the scope.
    actor = Actor(user_id="", workspace_id=workspace_id, role="owner", email="", display_name="ChatSupport")
    try:
        document = transcripts.transcript_document(ctx, actor, conversation_id, include_notes=False)
    except AppError:
        return None
    conversation = document["conversation"]
    customer = conversation["customer"] or {}
    if not customer.get("email"):
        return None
    bot = conversation["chatbot"]["name"] or "our support team"
    lines = [f"Hello {customer.get('name') or 'there'},", "",
             f"Here is a copy of your conversation with {bot}, resolved on "
             f"{transcripts.human_time(conversation['resolved_at'])}.", ""]
    for message in document["messages"]:
        sender = {"customer": "You"}.get(message["sender"]["type"]) or message["sender"]["name"] or \
            message["sender"]["type"].capitalize()
        lines.append(f"[{transcripts.human_time(message['timestamp'])}] {sender}:")
        lines += [f"    {line}" for line in message["content"].splitlines() or [""]]
        lines.append("")
    lines += ["Reply in the chat on our website if you need anything else.", ""]
    return customer["email"], f"Your conversation with {bot}", "\n".join(lines)


# --- Slack -----------------------------------------------------------------------------------------------------
def check_hook_url(ctx: Context, url: str, field: str) -> str:
    """http(s) only, and not a private or loopback address unless the allow-list names it (checked again, with
    DNS, when something is sent)."""
    url = url.strip()
    if not url or len(url) > 2000 or urlsplit(url).scheme.lower() not in ("http", "https"):
        raise _invalid(field, "An http:// or https:// URL.")
    guard = client_for(ctx.settings)
    try:
        guard.check_url(url)
    except OutboundRefused as exc:
        raise AppError("url_not_allowed", details=[{"field": field, "message": str(exc)}]) from exc
    finally:
        guard.close()
    return url


def save_slack(ctx: Context, actor: Actor, url: str) -> dict[str, Any]:
    url = check_hook_url(ctx, url, "webhook_url")
    hint = f"{urlsplit(url).hostname} …{url[-4:]}"

    def write(conn: Any) -> None:
        store.update_workspace(conn, actor.workspace_id, slack_hint=hint,
                               slack_webhook_enc=encrypt_key(ctx.secret_key, actor.workspace_id, SLACK_SCOPE, url))
        record(conn, "integrations.slack_connected", actor=actor, resource_type="workspace",
               resource_id=actor.workspace_id, changes={"hint": hint})

    ctx.db.write(write)
    return view(ctx, actor)


def remove_slack(ctx: Context, actor: Actor) -> dict[str, Any]:
    def write(conn: Any) -> None:
        store.update_workspace(conn, actor.workspace_id, slack_webhook_enc=None, slack_hint=None)
        record(conn, "integrations.slack_disconnected", actor=actor, resource_type="workspace",
               resource_id=actor.workspace_id)

    ctx.db.write(write)
    return view(ctx, actor)


def slack_url(db: Database, secret_key: str, workspace_id: str) -> str | None:
    blob = store.workspace(db.reader(), workspace_id)["slack_webhook_enc"]
    if blob is None:
        return None
    try:
        return decrypt_key(secret_key, workspace_id, SLACK_SCOPE, blob)
    except KeyUnreadable:
        return None


def slack_message(event: str, data: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Slack's mrkdwn: the title, who, why, and a link to the conversation in the console's inbox."""
    conversation = data["conversation"]
    customer = conversation.get("customer") or {}
    who = customer.get("name") or customer.get("email") or "A visitor"
    link = f"{base_url}/inbox/{conversation['id']}"
    text = f"*{EVENT_TITLES[event]}* — {_slack_escape(who)} on {_slack_escape(conversation['chatbot']['name'])}"
    if event == "conversation.escalated" and conversation.get("escalation_reason"):
        text += f" (reason: {_slack_escape(conversation['escalation_reason'])})"
    return {"text": f"{text}\n<{link}|Open in the ChatSupport inbox>"}


def _slack_escape(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_slack(ctx: Context, actor: Actor) -> dict[str, Any]:
    url = slack_url(ctx.db, ctx.secret_key, actor.workspace_id)
    if url is None:
        raise AppError("conflict", "Connect Slack first (or enter the webhook URL again).")
    message = {"text": f"ChatSupport is connected: new and escalated conversations will be posted here "
                       f"(test sent by {_slack_escape(actor.email)})."}
    try:
        response = post_json(ctx.settings, url, json.dumps(message).encode(), {})
    except OutboundError as exc:
        raise AppError("integration_failed", f"Slack could not be reached: {exc}") from exc
    if not 200 <= response.status < 300:
        raise AppError("integration_failed", f"Slack answered HTTP {response.status}: "
                                             f"{response.content[:200].decode(errors='replace')}")
    return {"status": response.status}


def post_json(settings: Any, url: str, content: bytes, headers: dict[str, str]) -> OutboundResponse:
    """POST through the SSRF guard (no redirects: a hook that moves is a misconfiguration, and following it
    would re-send the body somewhere nobody chose)."""
    with client_for(settings, timeout=POST_TIMEOUT, max_bytes=64 * 1024, max_redirects=0,
                    user_agent=USER_AGENT) as client:
        return client.request("POST", url, content=content, headers={"Content-Type": "application/json", **headers})
