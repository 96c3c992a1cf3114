"""Outgoing email over the SMTP server the operator configured (SMTP_* settings). Nothing is sent without one."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from chatsupport.config import Settings

TIMEOUT_S = 20


def mail_configured(settings: Settings) -> bool:
    return bool(settings.SMTP_HOST)


def build_message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.SMTP_FROM or f"ChatSupport <no-reply@{settings.SMTP_HOST}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="chatsupport.local")
    message.set_content(body)
    return message


def send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send one plain-text message; raises ``smtplib.SMTPException`` or ``OSError`` so the job can retry.

    Port 465 speaks TLS from the first byte; any other port upgrades with STARTTLS when SMTP_STARTTLS is on.
    """
    message = build_message(settings, to, subject, body)
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
