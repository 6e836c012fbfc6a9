"""Where `mutate notify` sends: flags over `[tool.mutator.notify]` (pyproject.toml) or `[notify]`
(mutator.toml), over $MUTATOR_WEBHOOK_URL, over defaults. No secret is a setting: the SMTP password
is read from the environment only when sending (mutator.publish.notify)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mutator.errors import UsageError
from mutator.search.config import parse_duration

WEBHOOK_ENV = "MUTATOR_WEBHOOK_URL"
SECURITIES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class NotifySettings:
    """Where to send, from flags over `[tool.mutator.notify]` / `[notify]`. No secrets here."""

    email_to: tuple[str, ...] = ()
    email_from: str | None = None  # None: mutator@<this host>
    smtp_host: str | None = None
    smtp_port: int | None = None  # None: 587 starttls, 465 ssl, 25 none
    smtp_security: str = "starttls"
    smtp_user: str | None = None  # the password comes from $MUTATOR_SMTP_PASSWORD
    smtp_ca_cert: str | None = None  # a CA bundle to trust besides the system's
    webhook_url: str | None = None
    report_url: str | None = None  # e.g. the Jenkins BUILD_URL; default: report.html's path
    timeout: float = 30.0  # seconds, per channel operation

    @property
    def port(self) -> int:
        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    @property
    def smtp_address(self) -> str:
        return f"{self.smtp_host}:{self.port}"

    @property
    def anything_to_send(self) -> bool:
        return bool(self.email_to or self.webhook_url)


# The NotifySettings fields `mutate notify` has flags for (argparse dests of the same names).
FLAGS = (
    "email_to",
    "email_from",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_user",
    "smtp_ca_cert",
    "webhook_url",
    "report_url",
)

NOTHING_CONFIGURED = (
    "nothing to notify: give --email ADDR with --smtp-host HOST, or --webhook URL; or set "
    "email_to and smtp_host, or webhook_url, in [tool.mutator.notify] (pyproject.toml) or "
    f"[notify] (mutator.toml); or set {WEBHOOK_ENV}"
)


def notify_settings(
    table: dict[str, Any],
    overrides: dict[str, Any],
    source: str = "config",
    environ: dict[str, str] | None = None,
    base_dir: Path | None = None,
) -> NotifySettings:
    """Defaults, then the config table, then $MUTATOR_WEBHOOK_URL, then flags (None: not given).

    A relative `smtp_ca_cert` in the config is relative to the config file's folder (`base_dir`).
    """
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    known = {f.name for f in fields(NotifySettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise UsageError(
                f"{source}: unknown notify setting {key!r}; known: {', '.join(sorted(known))}"
            )
        values[name] = value
    if values.get("smtp_ca_cert") and base_dir is not None:
        values["smtp_ca_cert"] = str(base_dir / Path(values["smtp_ca_cert"]).expanduser())
    if environ.get(WEBHOOK_ENV):
        values["webhook_url"] = environ[WEBHOOK_ENV]
    values.update({k: v for k, v in overrides.items() if v is not None and v != []})
    if isinstance(values.get("email_to"), str):
        values["email_to"] = [a.strip() for a in values["email_to"].split(",") if a.strip()]
    values["email_to"] = tuple(values.get("email_to") or ())
    if "timeout" in values:
        values["timeout"] = parse_duration(values["timeout"])
    settings = NotifySettings(**values)
    _check(settings, source)
    return settings


def _check(settings: NotifySettings, source: str) -> None:
    if settings.smtp_security not in SECURITIES:
        raise UsageError(
            f"smtp_security must be starttls, ssl or none, not {settings.smtp_security!r}"
        )
    if settings.timeout <= 0:
        raise UsageError(f"{source}: timeout must be positive, not {settings.timeout!r}")
    if settings.smtp_port is not None and not (
        isinstance(settings.smtp_port, int) and 0 < settings.smtp_port < 65536
    ):
        raise UsageError(f"{source}: smtp_port must be a port number, not {settings.smtp_port!r}")
    if settings.email_to and not settings.smtp_host:
        raise UsageError(
            "email needs an SMTP server: give --smtp-host HOST or set smtp_host in the config"
        )
    if settings.webhook_url and urlsplit(settings.webhook_url).scheme not in ("http", "https"):
        raise UsageError("the webhook URL must start with https:// or http://")
    if settings.smtp_ca_cert and not Path(settings.smtp_ca_cert).is_file():
        raise UsageError(f"smtp_ca_cert {settings.smtp_ca_cert}: no such file")
