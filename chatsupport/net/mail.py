"""Outgoing email over the instance's SMTP server. Nothing is sent without one.

The server comes from ONE place, ``mail_settings``: the settings an owner or admin saved in the console
(Settings → Integrations) when there are any, else the environment defaults (``CHATSUPPORT_SMTP_HOST`` and its
siblings). Every sender (jobs, "is mail set up?" checks, the console's test button) asks it, so a change in the
console applies to the next message everywhere.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Sequence

from chatsupport.config import Settings, ensure_secret_key
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key
from chatsupport.store import integrations as store
from chatsupport.store.db import Database

TIMEOUT_S = 20
# Where the console's SMTP password is bound in its encrypted blob (instance-wide, not a workspace's).
PASSWORD_SCOPE = ("instance", "smtp_password")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    username: str
    password: str
    sender: str
    starttls: bool
    source: str  # "console" or "environment"


def mail_settings(db: Database, settings: Settings) -> MailSettings | None:
    """The SMTP server to use now, or None when neither the console nor the environment names one."""
    row = store.smtp(db.reader())
    if row is not None:
        return MailSettings(row["host"], row["port"], row["username"], _password(settings, row["password_enc"]),
                            row["sender"], bool(row["starttls"]), "console")
    if not settings.SMTP_HOST:
        return None
    return MailSettings(settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_USER, settings.SMTP_PASSWORD,
                        settings.SMTP_FROM, settings.SMTP_STARTTLS, "environment")


def mail_configured(db: Database, settings: Settings) -> bool:
    """Whether mail can be sent: the same answer as ``mail_settings``, without decrypting the password (pages and
    request handlers ask this; only a sender needs the password)."""
    return bool(settings.SMTP_HOST) or store.smtp(db.reader()) is not None


def _password(settings: Settings, blob: bytes | None) -> str:
    if not blob:
        return ""
    try:
        return decrypt_key(ensure_secret_key(settings), *PASSWORD_SCOPE, blob)
    except KeyUnreadable:
        # The instance secret changed since it was saved: the server will refuse the login, the console says why.
        log.warning("the saved SMTP password cannot be read with this instance secret; re-enter it in the console")
        return ""


# An attachment: (file name, MIME type "maintype/subtype", content).
Attachment = tuple[str, str, bytes]


def build_message(mail: MailSettings, to: str, subject: str, body: str,
                  attachments: Sequence[Attachment] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail.sender or f"ChatSupport <no-reply@{mail.host}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="chatsupport.local")
    message.set_content(body)
    for filename, mime_type, content in attachments:
        maintype, _, subtype = mime_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def send_mail(mail: MailSettings, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None:
    """Send one plain-text message (with attachments, if any); raises ``smtplib.SMTPException`` or ``OSError``
    so the job can retry.

    Port 465 speaks TLS from the first byte; any other port upgrades with STARTTLS when ``starttls`` is on.
    """
    message = build_message(mail, to, subject, body, attachments)
    context = ssl.create_default_context()
    if mail.port == 465:
        client: smtplib.SMTP = smtplib.SMTP_SSL(mail.host, mail.port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(mail.host, mail.port, timeout=TIMEOUT_S)
    with client:
        if mail.port != 465 and mail.starttls:
            client.starttls(context=context)
        if mail.username:
            client.login(mail.username, mail.password)
        client.send_message(message)
