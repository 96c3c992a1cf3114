"""Password-reset email through a real SMTP server on 127.0.0.1 (aiosmtpd), sent by the in-process job queue."""

from __future__ import annotations

import json
import re
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller

from accounts_support import account_settings, add_user, audit_rows, login, open_client
from conftest import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.raw: list[Message] = []  # whole messages, for attachments

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # aiosmtpd's hook
        parsed = message_from_bytes(envelope.content)
        self.raw.append(parsed)
        body = parsed.get_payload(decode=True) if not parsed.is_multipart() else b""
        self.messages.append({"to": ",".join(envelope.rcpt_tos), "from": parsed["From"],
                              "subject": parsed["Subject"], "body": body.decode()})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_forgot_password_emails_a_working_link(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = account_settings(tmp_path / "data", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                                SMTP_STARTTLS="false", SMTP_FROM="Acme Support <help@acme.example>",
                                RUN_WORKER="true")  # the email goes out through the job queue
    with open_client(settings) as client:
        user = add_user(client, "Acme", "mila@acme.example", "agent")
        for email in ("mila@acme.example", "nobody@acme.example"):
            response = client.post("/api/v1/auth/forgot-password", json={"email": email})
            assert response.status_code == 200 and response.json() == {"status": "ok"}

        deadline = time.monotonic() + 30
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a mail for the unknown address would have arrived by now too
        assert len(inbox.messages) == 1, "only the existing account gets mail"
        [mail] = inbox.messages
        assert mail["to"] == "mila@acme.example"
        assert mail["from"] == "Acme Support <help@acme.example>"
        assert mail["subject"] == "Reset your ChatSupport password"
        url = re.search(r"https?://\S+", mail["body"]).group(0)  # type: ignore[union-attr]
        token = url.split("token=", 1)[1]

        done = client.post("/api/v1/auth/reset-password", json={"token": token, "password": "Mailed#7890"})
        assert done.status_code == 200
        login(client, "mila@acme.example", "Mailed#7890")
        requested = [r for r in audit_rows(client, "user.password_reset_requested") if r["user_id"] == user["id"]]
        assert [json.loads(r["metadata"]) for r in requested] == [{"mailed": True}]
