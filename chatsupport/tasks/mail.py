"""Email delivery as a job: a slow or briefly unreachable mail server never holds up a request."""

from __future__ import annotations

from chatsupport.net.mail import send_mail
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current


@huey.task(retries=3, retry_delay=30)
def send_email(to: str, subject: str, body: str) -> None:
    send_mail(current().settings, to, subject, body)
