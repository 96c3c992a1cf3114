"""Outgoing email over the SMTP server the operator configured (SMTP_* settings). Nothing is sent without one."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Sequence

from chatsupport.config import Settings

TIMEOUT_S = 20


def mail_configured(settings: Settings) -> bool:
    return bool(settings.SMTP_HOST)


# An attachment: (file name, MIME type "maintype/subtype", content).
Attachment = tuple[str, str, bytes]


def build_message(settings: Settings, to: str, subject: str, body: str,
                  attachments: Sequence[Attachment] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.SMTP_FROM or f"ChatSupport <no-reply@{settings.SMTP_HOST}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="chatsupport.local")
    message.set_content(body)
    for filename, mime_type, content in attachments:
        maintype, _, subtype = mime_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def send_mail(settings: Settings, to: str, subject: str, body: str,
              attachments: Sequence[Attachment] = ()) -> None:
    """Send one plain-text message (with attachments, if any); raises ``smtplib.SMTPException`` or ``OSError``
    so the job can retry.

    Port 465 speaks TLS from the first byte; any other port upgrades with STARTTLS when SMTP_STARTTLS is on.
    """
    message = build_message(settings, to, subject, body, attachments)
    context = ssl.create_default_context()
    if settings.SMTP_PORT == 465:
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.SMTP_HOST, settings.SMTP_PORT, timeout=TIMEOUT_S,
                                                context=context)
    else:
        client = smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=TIMEOUT_S)
    with client:
        if settings.SMTP_PORT != 465 and settings.SMTP_STARTTLS:
            client.starttls(context=context)
        if settings.SMTP_USER:
            client.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
        client.send_message(message)
