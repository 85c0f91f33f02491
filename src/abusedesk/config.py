"""One Settings object: environment ``ABUSEDESK_*`` (nesting with ``__``), a TOML file, and defaults.

Built once by the CLI or the app factory and passed down; nothing else reads ``os.environ``. The TOML file is
``$ABUSEDESK_CONFIG`` if set, else ``<data_dir>/abusedesk.toml`` when it exists. A bad value fails fast naming
the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from abusedesk.domain.errors import ConfigError

#: the settings file abusedesk looks for in the data directory
TOML_NAME = "abusedesk.toml"

#: a JetStream stream name: letters, digits, ``-`` and ``_`` (no ``.``, ``*``, ``>``, space or path separator)
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
#: a NATS subject prefix: one or more dot-separated tokens of letters, digits, ``-`` and ``_`` (no wildcard)
_SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = 10.0
    #: CA bundle that verifies the server's STARTTLS certificate (default: the system's CAs)
    cafile: Path | None = None

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> SmtpSettings:
        if self.username and not self.starttls:
            raise ValueError(
                "username is set but starttls is off: abusedesk does not send a password over a connection that is "
                "not encrypted and verified; set smtp.starttls = true"
            )
        return self


class ImapSettings(BaseModel):
    """The abuse mailbox ``abusedesk intake imap`` polls; its command-line options override these."""

    model_config = ConfigDict(extra="forbid")
    host: str | None = None
    port: int = Field(default=0, ge=0, le=65535)  # 0: 143, or 993 with tls
    user: str | None = None
    password: SecretStr | None = None
    mailbox: str = "INBOX"
    tls: bool = False
    starttls: bool = False
    processed_folder: str | None = None
    #: CA bundle that verifies the server's certificate with tls or starttls (default: the system's CAs)
    cafile: Path | None = None


class WebhookSettings(BaseModel):
    url: str | None = None
    secret: SecretStr = SecretStr("")
    #: further secrets each request is also signed with (one more ``v1``) while receivers move to a new secret
    rotating_secrets: list[SecretStr] = []
    timeout: float = 10.0
    max_attempts: int = 5
    backoff_base: float = 0.5


class AuditSettings(BaseModel):
    """Where the audit log's signing key and its signed checkpoints live: files, never the database (issue 10)."""

    model_config = ConfigDict(extra="forbid")
    #: the Ed25519 private key (``abusedesk audit keygen``); default ``<data_dir>/audit-signing-key.pem``
    signing_key: Path | None = None
    #: the public key ``audit verify`` trusts; default the one beside the signing key (pin a copy kept elsewhere)
    public_key: Path | None = None
    #: the append-only log of signed checkpoints; default ``<data_dir>/audit-checkpoints.jsonl``
    checkpoint_log: Path | None = None
    #: at most one checkpoint per this many seconds per process (0: after every commit that appended)
    checkpoint_interval: float = Field(default=0.0, ge=0)


class RobotsSettings(BaseModel):
    """How abusedesk fetches the robots.txt its crawler detectors judge by (docs/admin/weblogs.md)."""

    user_agent: str = "abusedesk-robots/0.1 (+https://provider.example/abuse; abuse@provider.example)"
    cache_hours: float = Field(default=24.0, gt=0, description="A fetched robots.txt is used this long (RFC 9309 2.4).")
    timeout: float = Field(default=10.0, gt=0, description="Seconds for one robots.txt fetch.")


class ParserHintSettings(BaseModel):
    """Where a channel knows the format of what it receives: the parser to use, without sniffing (issue 9).

    Each maps a place to a parser ``name``: ``recipients`` an envelope recipient address of the SMTP/LMTP
    listener (a feedback-loop mailbox such as ``fbl@desk.example``), ``mailboxes`` an IMAP mailbox name,
    ``folders`` a drop-folder path. ``intake.hints.ParserHints`` checks the names when the intake is built.
    """

    model_config = ConfigDict(extra="forbid")

    recipients: dict[str, str] = {}
    mailboxes: dict[str, str] = {}
    folders: dict[str, str] = {}


class IntakeSettings(BaseModel):
    max_input_bytes: int = 25 * 1024 * 1024
    # a feed file imported from disk (intake file) is streamed into the raw store, never held whole
    max_file_bytes: int = 4 * 1024 * 1024 * 1024
    max_unpacked_bytes: int = 64 * 1024 * 1024
    max_unpack_ratio: int = 200
    max_mime_depth: int = 32
    max_parse_seconds: float = 300.0
    ack_per_reporter_per_hour: int = 20
    #: replies an hour to all addresses of one domain together (a forged From rotates the local part)
    ack_per_domain_per_hour: int = 100
    #: authserv-ids of our own MTA whose Authentication-Results headers verify a sender (intake/senders.py)
    authserv_ids: list[str] = []
    #: reporters whose replies may quote what they wrote without DKIM/SPF: addresses or "@domain"
    known_reporters: list[str] = []
    #: senders in these domains (and their subdomains) get no reply: feedback loops and SpamCop
    no_reply_domains: list[str] = ["spamcop.net"]
    ack_from: str = "abuse@provider.example"
    send_acks: bool = True
    reply_not_ours: bool = False
    drop_folder: Path | None = None
    api_submissions_per_minute: int = 60
    api_submissions_burst: int = 20
    api_trusted_proxies: list[str] = []
    #: where the per-client buckets live: the database (shared by every serve process), Redis, or this process
    api_rate_limit_store: Literal["database", "redis", "memory"] = "database"
    api_rate_limit_redis_url: str = "redis://127.0.0.1:6379/0"
    #: the keys' prefix in Redis: two desks (or test runs) sharing one Redis keep apart by it
    api_rate_limit_redis_prefix: str = "abusedesk:ratelimit:"
    parser_hints: ParserHintSettings = ParserHintSettings()


class NoticeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # reporters who agreed to be named to customers in notices: addresses, or "@domain" for a whole domain
    disclose_reporters: list[str] = []


class TelemetrySettings(BaseModel):
    """Flow collection and the telemetry raw store (docs/admin/telemetry.md)."""

    listen: str = "127.0.0.1:2055"
    rotate_seconds: float = Field(default=60.0, gt=0)
    rotate_rows: int = Field(default=1_000_000, gt=0)
    retention_hours: float = Field(default=168.0, gt=0)
    socket_buffer_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    #: exporter/ifindex → service id: who sent a flow whose source address is not allocated to anyone
    interfaces: dict[str, str] = {}
    #: rows of one closed file handed to the detectors at a time
    detect_chunk_rows: int = Field(default=2_000_000, gt=0)


class ScreeningSettings(BaseModel):
    """Signup screening (policy section 2, issue 14): the operator's lists and MX intelligence."""

    model_config = ConfigDict(extra="forbid")

    allow_domains: list[str] = []
    deny_domains: list[str] = []
    review_domains: list[str] = []
    allow_file: Path | None = None
    deny_file: Path | None = None
    review_file: Path | None = None
    mx_check: bool = False
    #: DNS servers for MX look-ups, ``host`` or ``host:port``; empty: the system's resolver configuration
    nameservers: list[str] = []
    dns_timeout: float = Field(default=2.0, gt=0)
    mx_verdict: Literal["review", "disposable"] = "review"
    disposable_mx_hosts: list[str] = []
    mx_min_domains: int = Field(default=2, ge=1)


class WebSettings(BaseModel):
    """The console and the customer portal: sign-in sessions, second factor, sign-in rate (docs/admin/web.md)."""

    model_config = ConfigDict(extra="forbid")

    #: a session unused this long is over (the next page asks to sign in again)
    session_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    #: a session is over this long after sign-in, however busy
    session_absolute_hours: float = Field(default=12.0, gt=0, le=24 * 14)
    #: roles that must give a TOTP code after the password (a user of another role may enrol too)
    totp_roles: list[str] = ["approver", "admin"]
    #: sign-in attempts per client address (and per user name) at once, then per minute
    signin_burst: int = Field(default=10, ge=1)
    signin_per_minute: float = Field(default=6.0, ge=0)
    #: the Secure flag of the session cookie: None sets it when the request came over TLS (https)
    cookie_secure: bool | None = None

    @field_validator("totp_roles")
    @classmethod
    def _check_roles(cls, value: list[str]) -> list[str]:
        known = ("analyst", "approver", "admin", "auditor", "customer")
        bad = [r for r in value if r not in known]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} are not roles of people; the roles are {', '.join(known)}")
        return value


class Settings(BaseSettings):
    """Every setting of abusedesk; see docs/admin/settings.md for each one."""

    model_config = SettingsConfigDict(env_prefix="ABUSEDESK_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default=Path("./abusedesk-data"), description="Where SQLite, raw inputs and evidence live.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    policy_file: Path | None = Field(default=None, description="The AUP policy file; default the shipped one.")
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    bus: Literal["inprocess", "nats"] = "inprocess"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = Field(default="ABUSEDESK", description="The JetStream stream of this deployment.")
    nats_subject_prefix: str = Field(default="abusedesk", description="The first subject token(s) of its messages.")
    nats_ack_wait: float = Field(
        default=300.0, gt=0, description="Seconds before a message a worker took and did not ack goes to another."
    )
    notify_backend: Literal["smtp", "console", "null"] = "smtp"
    notify_from: str = "abuse@provider.example"
    notices: NoticeSettings = NoticeSettings()
    control_backend: Literal["webhook", "console", "null"] = "webhook"
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    webhook: WebhookSettings = WebhookSettings()
    audit: AuditSettings = AuditSettings()
    intake: IntakeSettings = IntakeSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    screening: ScreeningSettings = ScreeningSettings()
    auth_key: SecretStr | None = Field(
        default=None,
        description="Key of the API tokens' HMAC; default the file auth.key in data_dir (made on first use).",
    )
    token: SecretStr | None = Field(
        default=None, description="The API token the CLI acts with (ABUSEDESK_TOKEN), as a Bearer token does."
    )
    token_lifetime_days: int = Field(default=90, ge=1, le=3650, description="How long a new API token is valid.")
    token_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="How long a process trusts a token it checked (0: check every time)."
    )
    robots: RobotsSettings = RobotsSettings()
    web: WebSettings = WebSettings()
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_workers: int = Field(
        default=1, ge=1, le=64, description="API processes `serve` runs on the port (about one per core)."
    )
    parsers: dict[str, dict[str, Any]] = Field(
        default={}, description="Parser parameters, one table per parser name: [parsers.xarf] mode = ..."
    )
    detectors: dict[str, dict[str, Any]] = Field(
        default={}, description="Detector parameters, one table per detector name: [detectors.<name>] ..."
    )

    @field_validator("nats_stream")
    @classmethod
    def _check_stream(cls, value: str) -> str:
        if not _STREAM_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a JetStream stream name: 1 to 32 letters, digits, '-' or '_' "
                "(no '.', '*', '>', white space or path separator)"
            )
        return value

    @field_validator("nats_subject_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        tokens = value.split(".")
        if len(value) > 64 or not all(_SUBJECT_TOKEN.match(t) for t in tokens):
            raise ValueError(
                f"{value!r} is not a NATS subject prefix: dot-separated tokens of letters, digits, '-' or '_', "
                "at most 64 characters (no wildcard '*' or '>', no empty token, no white space)"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _TomlSource(settings_cls, init_settings, env_settings))

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'abusedesk.sqlite3').resolve()}"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"


class _TomlSource(PydanticBaseSettingsSource):
    """Values from the TOML file, below the environment in precedence.

    The file is ``$ABUSEDESK_CONFIG``, else ``abusedesk.toml`` in the data directory the higher sources name: the
    ``data_dir`` given to Settings (the CLI's ``--data-dir``), else ``ABUSEDESK_DATA_DIR``, else the default.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init_settings = init_settings
        self._env_settings = env_settings

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def _data_dir(self) -> Path:
        for source in (self._init_settings, self._env_settings):
            value = source().get("data_dir")
            if value is not None:
                return Path(value)
        default = self.settings_cls.model_fields["data_dir"].default
        return Path(default)

    def __call__(self) -> dict[str, Any]:
        path_text = os.environ.get("ABUSEDESK_CONFIG")
        if path_text:
            path = Path(path_text)
            if not path.is_file():
                raise ConfigError(f"config file {path} named by ABUSEDESK_CONFIG does not exist")
        else:
            path = self._data_dir() / TOML_NAME
            if not path.is_file():
                return {}
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{exc}", file=str(path)) from None
        if not path_text and "data_dir" in values:
            raise ConfigError(
                f"{path} sets data_dir, but it was found through the data directory it is in; remove the key "
                "(or name the file with ABUSEDESK_CONFIG)",
                file=str(path),
                field="data_dir",
            )
        return values


#: environment variables that were read outside Settings once, and their names now
_RENAMED_ENV = {"ABUSEDESK_IMAP_PASSWORD": "ABUSEDESK_IMAP__PASSWORD"}


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's error into a ConfigError that names the bad key."""
    for old, new in _RENAMED_ENV.items():
        if old in os.environ:
            raise ConfigError(f"environment variable {old} is no longer read; set {new} instead", field=new)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "__".join(str(p) for p in first["loc"])
        raise ConfigError(f"setting {key!r} (env ABUSEDESK_{key.upper()}): {first['msg']}", field=key) from None
