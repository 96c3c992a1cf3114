"""Analytics jobs: the rollup of dirty buckets every minute, and scheduled PDF reports by email."""

from __future__ import annotations

from huey import crontab

from chatsupport.domain import analytics, reports
from chatsupport.net.mail import mail_configured, mail_settings, send_mail
from chatsupport.store import analytics as store
from chatsupport.tasks.queue import huey
from chatsupport.tasks.runtime import current


@huey.periodic_task(crontab(minute="*"))
def roll_up_analytics() -> dict[str, int]:
    """Keeps the dashboard at most about a minute behind; a backlog (an upgrade's backfill) drains in 40-second
    slices so the next minute's run does not pile onto this one."""
    return analytics.roll_up(current().db, budget_seconds=40)


@huey.periodic_task(crontab(minute="5"))
def deliver_scheduled_reports() -> int:
    runtime = current()
    if not mail_configured(runtime.db, runtime.settings):
        return 0
    due = reports.due_reports(runtime.db)
    for item in due:
        for recipient in item["recipients"]:
            send_analytics_report(item["workspace_id"], item["first_day"], item["last_day"], recipient)
    return len(due)


@huey.task(retries=3, retry_delay=60)
def send_analytics_report(workspace_id: str, first_day: str, last_day: str, recipient: str) -> None:
    """One recipient per job, so a retry never mails the others twice. Rolls up first, so the report counts
    everything up to the moment it is written."""
    runtime = current()
    analytics.roll_up(runtime.db, budget_seconds=60)
    filename, pdf, report = reports.build(runtime.db, workspace_id, first_day, last_day)
    workspace = store.workspace_settings(runtime.db.reader(), workspace_id)
    name = workspace["name"] if workspace else "ChatSupport"
    body = reports.email_body(name, report)
    mail = mail_settings(runtime.db, runtime.settings)
    if mail is None:
        return
    send_mail(mail, recipient, f"{name}: support report {first_day} to {last_day}", body,
              [(filename, "application/pdf", pdf)])
