"""Email delivery as a job: a slow or briefly unreachable mail server never holds up a request."""

from __future__ import annotations

import logging

from chatsupport.net.mail import mail_settings, send_mail
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current

log = logging.getLogger(__name__)


@huey.task(retries=3, retry_delay=30)
def send_email(to: str, subject: str, body: str) -> None:
    """Uses the mail server in force when the job runs (the console's settings, else the environment's)."""
    runtime = current()
    mail = mail_settings(runtime.db, runtime.settings)
    if mail is None:
        log.warning("an email to %s was dropped: no mail server is configured any more", to)
        return
    send_mail(mail, to, subject, body)
