"""Settings: one declared table, every row documented, bad values named, the instance secret kept safely."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from chatsupport.config import ENV_PREFIX, SETTINGS, SETTINGS_BY_NAME, SettingsError, ensure_secret_key, load_settings

ROOT = Path(__file__).resolve().parents[1]


def readme_configuration_rows() -> dict[str, str]:
    """The README's configuration reference table: variable → its row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): line for line in section.splitlines() if (m := re.match(r"\|\s*`(CHATSUPPORT_\w+)`", line))}


def test_every_setting_is_documented_in_the_readme() -> None:
    rows = readme_configuration_rows()
    missing = [ENV_PREFIX + s.name for s in SETTINGS if ENV_PREFIX + s.name not in rows]
    assert missing == [], f"undocumented settings: {missing}"
    unknown = [name for name in rows if name[len(ENV_PREFIX):] not in SETTINGS_BY_NAME]
    assert unknown == [], f"README documents settings that do not exist: {unknown}"


def test_every_setting_has_help_and_a_parseable_default() -> None:
    for setting in SETTINGS:
        assert len(setting.help) > 20, setting.name
        setting.parse(setting.default)


def test_code_reads_no_undeclared_setting() -> None:
    used = set()
    for path in (ROOT / "chatsupport").rglob("*.py"):
        used |= set(re.findall(r"CHATSUPPORT_([A-Z][A-Z0-9_]+)", path.read_text()))
    assert used - set(SETTINGS_BY_NAME) == set()


def test_required_settings_are_declared() -> None:
    required = {"DATA_DIR", "HOST", "PORT", "SECRET_KEY", "PUBLIC_URL", "OPEN_SIGNUP", "MODELS_DIR",
                "OUTBOUND_ALLOWLIST", "TRUSTED_PROXIES", "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD",
                "SMTP_FROM", "SMTP_STARTTLS", "METRICS_TOKEN", "LOG_FORMAT"}
    assert required <= set(SETTINGS_BY_NAME)


def test_values_are_parsed_from_the_environment() -> None:
    settings = load_settings(env={"CHATSUPPORT_PORT": "9000", "CHATSUPPORT_OPEN_SIGNUP": "yes",
                                  "CHATSUPPORT_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
                                  "CHATSUPPORT_PUBLIC_URL": "https://help.example.com/"})
    assert settings.PORT == 9000
    assert settings.OPEN_SIGNUP is True
    assert [str(n) for n in settings.TRUSTED_PROXIES] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.base_url == "https://help.example.com"


@pytest.mark.parametrize("name,value", [("PORT", "eighty"), ("PORT", "70000"), ("OPEN_SIGNUP", "maybe"),
                                        ("TRUSTED_PROXIES", "not-an-ip"), ("LOG_FORMAT", "xml"),
                                        ("PUBLIC_URL", "ftp://x")])
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"CHATSUPPORT_{name}"):
        load_settings(env={f"CHATSUPPORT_{name}": value})


def test_instance_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings(env={"CHATSUPPORT_DATA_DIR": str(tmp_path / "d")})
    first = ensure_secret_key(settings)
    assert len(first) >= 40
    mode = stat.S_IMODE(settings.data.secret_file.stat().st_mode)
    assert mode == 0o600
    assert ensure_secret_key(settings) == first
    configured = load_settings(env={"CHATSUPPORT_DATA_DIR": str(tmp_path / "d"), "CHATSUPPORT_SECRET_KEY": "s3cret"})
    assert ensure_secret_key(configured) == "s3cret"


def test_effective_settings_mask_secrets() -> None:
    settings = load_settings(env={"CHATSUPPORT_SMTP_PASSWORD": "hunter2", "CHATSUPPORT_SMTP_HOST": "mail"})
    shown = {name: (value, source) for name, value, source in settings.effective()}
    assert shown["CHATSUPPORT_SMTP_PASSWORD"] == ("********", "env")
    assert shown["CHATSUPPORT_SMTP_HOST"] == ("mail", "env")
    assert shown["CHATSUPPORT_PORT"] == ("8000", "default")
