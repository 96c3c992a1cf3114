"""Settings: one declared table, read from ``CHATSUPPORT_*`` environment variables.

Every knob the appliance has is a row in ``SETTINGS``; nothing else in the package reads the environment for
configuration. The README's configuration reference is checked against this table by the test suite.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ENV_PREFIX = "CHATSUPPORT_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true/false")


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 < port < 65536:
        raise ValueError("expected a port between 1 and 65535")
    return port


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected 0 or a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a positive number")
    return value


def _argon2_memory(raw: str) -> int:
    value = int(raw)
    if value < 1024:
        raise ValueError("expected at least 1024 (KiB)")
    return value


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _host_list(raw: str) -> tuple[str, ...]:
    """Hosts, IPs or CIDRs; validated loosely here, matched by the outbound guard."""
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError("expected 'text' or 'json'")
    return value


def _hour(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 23:
        raise ValueError("expected an hour between 0 and 23")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return value


def _public_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("DATA_DIR", "./data", "Folder holding the database, job queue, uploads, backups and instance secret."),
    Setting("HOST", "127.0.0.1", "Address `chatsupport serve` listens on (the Docker image uses 0.0.0.0)."),
    Setting("PORT", "8000", "TCP port `chatsupport serve` listens on.", _port),
    Setting("SECRET_KEY", "", "Signs sessions and tokens. Empty: generated on first start and kept in "
            "DATA_DIR/secret_key (mode 0600).", secret=True),
    Setting("PUBLIC_URL", "", "External base URL (https://support.example.com) used in embed codes and emailed "
            "links. Empty: derived from HOST and PORT.", _public_url),
    Setting("OPEN_SIGNUP", "false", "Allow anyone to register a new workspace through the API.", _bool),
    Setting("ARGON2_MEMORY_KIB", "65536", "Memory cost of each argon2id password hash, in KiB. Lower it only for "
            "test runs or very small machines; existing hashes keep their own cost.", _argon2_memory),
    Setting("MODELS_DIR", "./models", "Folder searched for local GGUF language models (the image mounts /models)."),
    Setting("EMBEDDING_MODEL", "", "Path of a sentence-transformers model folder (relative paths are looked up "
            "under MODELS_DIR). Empty: the bundled all-MiniLM-L6-v2."),
    Setting("MODEL_CACHE_DIR", "", "Folder for the one-time ONNX export of the embedding model (made with torch on "
            "first start; later starts load it without torch). Empty: DATA_DIR/model-cache."),
    Setting("LLM_MODEL", "", "Local GGUF model for answers: a file path (relative paths are looked up under "
            "MODELS_DIR). Empty: the first *.gguf in MODELS_DIR, if any."),
    Setting("LLM_CONTEXT", "4096", "Context size (n_ctx, tokens) of the local GGUF model.", _positive_int),
    Setting("LLM_THREADS", "1", "CPU threads generating tokens with the local model. 1 is fastest on a 2-core box "
            "under load (2 collapse to ~4 tokens/s there; see docs/benchmarks.md).", _positive_int),
    Setting("LLM_BATCH_THREADS", "1", "CPU threads reading the prompt (prefill) with the local model. 2 prefill "
            "~1.7x faster on an idle 2-core box but 2x slower when other work shares the cores (see "
            "docs/benchmarks.md).", _positive_int),
    Setting("LLM_FIRST_TOKEN_TIMEOUT", "20", "Seconds a provider may take to its first answer token before the "
            "chain falls back to the next one (a provider's own setting overrides it).", _positive_float),
    Setting("LLM_TOTAL_TIMEOUT", "90", "Seconds a provider may take for a whole answer before the chain falls "
            "back (a provider's own setting overrides it).", _positive_float),
    Setting("LLM_BREAKER_FAILURES", "3", "Consecutive failures after which a provider is skipped (circuit open) "
            "until LLM_BREAKER_COOLDOWN has passed.", _positive_int),
    Setting("LLM_BREAKER_COOLDOWN", "60", "Seconds an open circuit waits before letting one trial request through "
            "to the provider again.", _positive_float),
    Setting("LLM_MASK_PII", "true", "Mask e-mails, phone numbers, card numbers and IBANs in customer text before "
            "any cloud model call.", _bool),
    Setting("LLM_DAILY_TOKEN_CAP", "200000", "Default daily cap of cloud-model tokens (in + out, UTC day) per "
            "workspace; past it the chain falls back to the next provider. 0: no cap. A workspace may set its own.",
            _non_negative_int),
    Setting("OUTBOUND_ALLOWLIST", "", "Comma-separated hosts, IPs or CIDRs that outbound fetches may reach even "
            "when they are private or loopback addresses (any port).", _host_list),
    Setting("TRUSTED_PROXIES", "", "Comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto headers are believed.", _networks),
    Setting("SMTP_HOST", "", "SMTP server for outgoing mail. Empty: no mail is sent; links are shown instead. "
            "A server saved in the console (Settings → Integrations) replaces all SMTP_* settings."),
    Setting("SMTP_PORT", "587", "SMTP server port (587 for STARTTLS, 465 for TLS).", _port),
    Setting("SMTP_USER", "", "User name for SMTP authentication (empty: no login)."),
    Setting("SMTP_PASSWORD", "", "Password for SMTP authentication.", secret=True),
    Setting("SMTP_FROM", "", "Sender address of outgoing mail, e.g. ChatSupport <support@example.com>."),
    Setting("SMTP_STARTTLS", "true", "Upgrade the SMTP connection with STARTTLS.", _bool),
    Setting("WEBHOOK_RETRY_BASE", "10", "Seconds before the first retry of a failed webhook or Slack delivery; "
            "later retries wait 6x, 30x, 180x and 720x as long (10 s, 1 min, 5 min, 30 min, 2 h).",
            _positive_float),
    Setting("METRICS_TOKEN", "", "Bearer token that non-loopback clients present to read /metrics.", secret=True),
    Setting("LOG_FORMAT", "text", "Log line format: text or json.", _log_format),
    Setting("LOG_LEVEL", "INFO", "Lowest level logged: DEBUG, INFO, WARNING or ERROR.", _log_level),
    Setting("RUN_WORKER", "true", "Run the background job consumer inside the server process. Set false when "
            "`chatsupport worker` runs separately.", _bool),
    Setting("WORKER_THREADS", "2", "Threads that run background jobs (ingestion, crawls, webhooks).", _positive_int),
    Setting("WIDGET_MAX_CONNECTIONS", "1000", "Open chat-widget connections (WebSocket or event stream) allowed per "
            "workspace; past it a widget is told to retry later.", _positive_int),
    Setting("WIDGET_IP_LIMIT", "30", "New widget conversations per hour from one client IP (behind TRUSTED_PROXIES "
            "the forwarded address counts). 0: no per-IP cap (load benchmarks from one machine).", _non_negative_int),
    Setting("ARCHIVE_AFTER_DAYS", "90", "Days after which resolved and abandoned conversations are archived "
            "(hidden from the inbox unless asked for; nothing is deleted).", _positive_int),
    Setting("BACKUP_ENABLED", "true", "Make a scheduled backup every day into DATA_DIR/backups.", _bool),
    Setting("BACKUP_HOUR", "3", "UTC hour (0-23) after which the daily scheduled backup is made (a missed one is "
            "made as soon as the server runs again).", _hour),
    Setting("BACKUP_KEEP", "7", "Scheduled backups kept; older ones are deleted. Manual and pre-migration backups "
            "are never deleted automatically.", _positive_int),
    Setting("BACKUP_PASSPHRASE_FILE", "", "File whose first line is the passphrase that encrypts the backups the "
            "instance makes itself (scheduled, \"Back up now\", pre-migration) and that `chatsupport backup` and "
            "`restore` use by default. Empty: those backups are not encrypted."),
    Setting("MAX_BODY_BYTES", "1048576", "Largest JSON request body accepted by the API, in bytes (uploads have "
            "their own limits).", _positive_int),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class DataLayout:
    """Where each kind of runtime file lives inside the data dir."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "chatsupport.db"

    @property
    def queue(self) -> Path:
        return self.root / "queue.db"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def exports(self) -> Path:
        """Bulk export files, one folder per workspace, deleted after seven days."""
        return self.root / "exports"

    @property
    def secret_file(self) -> Path:
        return self.root / "secret_key"

    @property
    def server_lock(self) -> Path:
        return self.root / ".server.lock"


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any] = field(default_factory=dict)
    from_env: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data(self) -> DataLayout:
        return DataLayout(Path(self.values["DATA_DIR"]).resolve())

    @property
    def model_cache_path(self) -> Path:
        configured = self.values["MODEL_CACHE_DIR"]
        return Path(configured).resolve() if configured else self.data.root / "model-cache"

    @property
    def models_path(self) -> Path:
        return Path(self.values["MODELS_DIR"]).resolve()

    @property
    def base_url(self) -> str:
        if self.values["PUBLIC_URL"]:
            return self.values["PUBLIC_URL"]
        host = self.values["HOST"]
        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        return f"http://{shown}:{self.values['PORT']}"

    def replace(self, **overrides: Any) -> "Settings":
        values = dict(self.values)
        values.update({k.upper(): v for k, v in overrides.items()})
        return Settings(values, self.from_env | {k.upper() for k in overrides})

    def effective(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, source) rows with secrets masked, for `doctor`."""
        rows = []
        for s in SETTINGS:
            value = self.values[s.name]
            shown = _show(value)
            if s.secret and shown:
                shown = "********"
            rows.append((ENV_PREFIX + s.name, shown, "env" if s.name in self.from_env else "default"))
        return rows


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every declared setting from ``env`` (default: the process environment); raise SettingsError."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw = env.get(ENV_PREFIX + s.name, s.default)
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{s.name}={raw!r}: {exc}") from None
    values.update({k.upper(): v for k, v in overrides.items()})
    from_env = {s.name for s in SETTINGS if ENV_PREFIX + s.name in env} | {k.upper() for k in overrides}
    return Settings(values, frozenset(from_env))


def ensure_secret_key(settings: Settings) -> str:
    """The configured secret, or the instance secret kept in the data dir (created 0600 on first use)."""
    if settings.SECRET_KEY:
        return settings.SECRET_KEY
    path = settings.data.secret_file
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
