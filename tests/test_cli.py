"""The `chatsupport` command through its real entry points, and a real server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from chatsupport import __version__
from chatsupport.store.migrations import LATEST_VERSION
from conftest import ROOT, LiveServer, make_env, run_cli


def test_console_script_is_installed_and_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "chatsupport"
    assert script.exists(), "pip install . provides the `chatsupport` console script"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=make_env(tmp_path / "d"),
                            cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"chatsupport {__version__}"


def test_installed_package_carries_templates_widget_and_static_files(tmp_path: Path) -> None:
    """Run from outside the checkout so the installed copy (not the source tree) is imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import chatsupport.resources as r, sys; "
            "print(r.PACKAGE); print(r.templates_dir()); print(r.widget_dir()); "
            "print(int((r.templates_dir() / 'base.html').is_file())); "
            "print(int((r.static_dir() / 'vendor' / 'htmx-2.0.11.min.js').is_file())); "
            "print(int((r.widget_dir() / 'README.md').is_file()))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    package, templates, widget, has_base, has_htmx, has_widget = result.stdout.split()
    assert "site-packages" in package, "imported the installed copy"
    assert templates.startswith(package) and widget.startswith(package)
    assert (has_base, has_htmx, has_widget) == ("1", "1", "1")


def test_migrate_applies_then_has_nothing_to_do(tmp_path: Path) -> None:
    first = run_cli(tmp_path / "d", "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied 0001 initial schema" in first.stdout
    again = run_cli(tmp_path / "d", "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_doctor_reports_a_healthy_install_with_secrets_masked(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run_cli(data, "migrate").returncode == 0
    result = run_cli(data, "doctor", SMTP_PASSWORD="hunter2", METRICS_TOKEN="tok-123")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "hunter2" not in out and "tok-123" not in out
    assert "CHATSUPPORT_SMTP_PASSWORD = ********  (env)" in out
    assert f"[ok  ] schema: version {LATEST_VERSION}, up to date" in out
    assert "[ok  ] fts5: available" in out
    assert "[ok  ] sqlite_vec: v" in out
    assert "[ok  ] embedding_model:" in out
    assert "[ok  ] disk_space:" in out
    assert "sentence-transformers:" in out and "llama-cpp-python: 0.3.36" in out
    assert out.rstrip().endswith("healthy")


def test_doctor_on_a_fresh_data_dir_warns_but_passes(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "never-started", "doctor")
    assert result.returncode == 0, result.stdout
    assert "[warn] schema: no database yet" in result.stdout
    assert not (tmp_path / "never-started" / "chatsupport.db").exists(), "doctor is read-only"


def test_doctor_exits_non_zero_when_unhealthy(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "d", "doctor", EMBEDDING_MODEL=str(tmp_path / "no-such-model"))
    assert result.returncode == 1
    assert "[FAIL] embedding_model: not found" in result.stdout
    assert result.stdout.rstrip().endswith("UNHEALTHY")


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "d", "doctor", PORT="eighty")
    assert result.returncode == 2
    assert "error [invalid_setting]: CHATSUPPORT_PORT='eighty'" in result.stderr


def test_serve_answers_over_real_http_and_stops_on_sigterm(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "d")
    try:
        server.wait("/healthz")
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        server.wait("/readyz", 200, timeout=180)
        second = LiveServer(tmp_path / "d")  # a second server on the same data dir is refused, clearly
        assert second.process.wait(timeout=60) != 0
        second.stop()
        assert "server_running" in second.log.read_text()
    finally:
        code = server.stop()
    log = server.log.read_text()
    # SIGTERM reached uvicorn (Huey did not take the signal): graceful shutdown, then uvicorn re-raises it
    assert code in (0, -15), log
    assert "Application shutdown complete" in log


def test_every_python_package_is_listed_for_installation() -> None:
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "chatsupport").rglob("*.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages so `pip install .` ships them"
