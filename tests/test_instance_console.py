"""Settings → Instance & backups as the owner sees it (HTML parsed): facts about the instance, the "no backup yet"
warning, "Back up now" as a job whose panel polls until done, the archive listed and downloaded as an attachment,
downloads that cannot reach outside the backups folder or a partial archive, and who may open the page."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from accounts_support import Page, account_settings, add_user, audit_rows, open_client
from chatsupport import __version__
from chatsupport.store import instance_state
from chatsupport.store.migrations import LATEST_VERSION
from chatsupport.tasks import backups as backup_jobs
from test_knowledge_console import console_login

HTMX = {"HX-Request": "true"}


def job_text(panel: Page) -> str:
    """The job line (shown as an alert once done or failed)."""
    return panel.texts.get("backup-job-state") or " ".join(panel.alerts)


def back_up_now(client: TestClient, page: Page) -> Any:
    form = page.form("backup-now-form")
    return client.post(form["action"], data=form["fields"], headers=HTMX)


def test_owner_backs_up_now_and_downloads_the_archive(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        owner = add_user(client, "First Co", "owner@first.example", "owner")
        console_login(client, owner["email"])
        response = client.get("/settings/instance")
        assert response.status_code == 200, response.text
        page = Page(response.text)
        assert page.inline_styles == 0 and all(script.get("src") for script in page.scripts)
        assert page.texts["fact-version"] == f"ChatSupport {__version__}"
        assert page.texts["fact-schema"] == f"{LATEST_VERSION} (up to date)"
        facts = page.texts["fact-data-dir"]
        assert str(tmp_path / "data") in facts and "free on the disk" in facts
        assert any("There is no backup yet" in alert for alert in page.alerts)
        assert "No archives" in page.texts["archives-empty"]
        assert "daily after 03:00 UTC, the newest 7 kept" in page.texts["backup-schedule"]

        started = back_up_now(client, page)
        assert started.status_code == 200, started.text
        panel = Page(started.text)
        assert "Waiting for a worker" in job_text(panel)
        assert 'hx-trigger="every 2s"' in started.text  # polls while queued
        again = back_up_now(client, page)
        assert "A backup is already running" in " ".join(Page(again.text).alerts)

        backup_jobs.back_up_now.call_local()  # what the worker does with the queued job
        done = client.get("/settings/instance/backup-job", headers=HTMX)
        panel = Page(done.text)
        assert job_text(panel).startswith("Backup complete. chatsupport-")
        assert "every 2s" not in done.text
        assert [row["user_email"] for row in audit_rows(client, "instance.backup_requested")] == [owner["email"]]

        page = Page(client.get("/settings/instance").text)
        assert not any("no backup" in alert or "hours old" in alert for alert in page.alerts)
        assert "manual" in page.texts["last-backup-summary"] and "0 hours ago" in page.texts["last-backup-summary"]
        [archive] = (tmp_path / "data" / "backups").glob("*.tar.gz")
        download = client.get("/settings/instance/backups/download", params={"name": archive.name})
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment")
        assert archive.name in download.headers["content-disposition"]
        assert download.content == archive.read_bytes()
        assert audit_rows(client, "instance.backup_downloaded")[0]["resource_id"] == archive.name


def test_downloads_reach_only_listed_archives(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        owner = add_user(client, "First Co", "owner@first.example", "owner")
        console_login(client, owner["email"])
        backups = tmp_path / "data" / "backups"
        backups.mkdir(parents=True)
        (backups / "chatsupport-20260101T000000Z.tar.gz.partial").write_bytes(b"half an archive")
        (tmp_path / "data" / "outside.tar.gz").write_bytes(b"not in the backups folder")
        page = Page(client.get("/settings/instance").text)
        assert "No archives" in page.texts["archives-empty"]  # the partial file is not listed
        for name in ("chatsupport-20260101T000000Z.tar.gz.partial", "../outside.tar.gz", "../chatsupport.db",
                     "/etc/passwd", "..%2Fchatsupport.db", "missing.tar.gz", ""):
            response = client.get("/settings/instance/backups/download", params={"name": name})
            assert response.status_code in (400, 404), (name, response.status_code)
            assert b"not in the backups folder" not in response.content and b"SQLite" not in response.content


def test_only_owners_of_the_first_workspace_manage_the_instance(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        add_user(client, "First Co", "owner@first.example", "owner")
        add_user(client, "First Co", "admin@first.example", "admin")
        add_user(client, "Later Co", "owner@later.example", "owner")  # e.g. through open sign-up
        client.cookies.clear()
        anonymous = client.get("/settings/instance", follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        for email in ("admin@first.example", "owner@later.example"):
            console_login(client, email)
            assert client.get("/settings/instance").status_code == 403, email
            assert client.get("/settings/instance/backups/download", params={"name": "x.tar.gz"}).status_code == 403
            assert client.get("/settings/instance/backup-job").status_code == 403
            form = Page(client.get("/settings/workspace").text).forms[0]["fields"]
            assert client.post("/settings/instance/backups", data=form).status_code == 403
            assert "tab-instance" not in Page(client.get("/settings/workspace").text).texts, email
        console_login(client, "owner@first.example")
        assert "tab-instance" in Page(client.get("/settings/workspace").text).texts
        assert backup_jobs.job_state(client.app.state.services.db) is None


def test_a_job_killed_half_way_reads_as_interrupted(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        db = client.app.state.services.db
        backup_jobs.request_backup(db, "owner@first.example")
        assert backup_jobs.job_state(db)["state"] == "queued"
        later = datetime.now(timezone.utc) + backup_jobs.STALE_AFTER + timedelta(minutes=1)
        state = backup_jobs.job_state(db, now=later)
        assert state["state"] == "interrupted" and "restarted" in state["message"]


def test_a_job_whose_process_died_reads_as_interrupted_at_once(tmp_path: Path) -> None:
    """A server SIGKILLed during "Back up now" leaves the state "running": the next start must not refuse a new
    backup for half an hour."""
    with open_client(account_settings(tmp_path / "data")) as client:
        db = client.app.state.services.db
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        mark = backup_jobs.process_mark(child.pid)
        running = {"state": "running", "message": "Archiving", "runner": mark, "updated_at": instance_state.utc_now()}
        db.write(lambda conn: instance_state.put(conn, backup_jobs.JOB_KEY, json.dumps(running)))
        assert backup_jobs.job_state(db)["state"] == "running"   # its process is alive: still running
        child.kill()
        child.wait()
        assert backup_jobs.job_state(db)["state"] == "interrupted"
        assert backup_jobs.request_backup(db, "owner@first.example")["state"] == "queued"
