"""Telling people how a tuning run ended: an email (SMTP) and/or a Slack-compatible JSON webhook.

Both channels are always attempted; each returns a `Delivery` instead of raising, so a broken
mail relay never hides the webhook (or the run's results: the run directory is only read).
Secrets never come from flags or config files: the SMTP password is read from
`MUTATOR_SMTP_PASSWORD`, and a webhook URL (whose path is its token) is never printed, only its
host.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mutator.publish import notify_message
from mutator.publish.notify_config import (
    FLAGS,
    NOTHING_CONFIGURED,
    WEBHOOK_ENV,
    NotifySettings,
    notify_settings,
)
from mutator.publish.run_summary import RunSummary, summarise_run

__all__ = [
    "FLAGS",
    "NOTHING_CONFIGURED",
    "PASSWORD_ENV",
    "WEBHOOK_ENV",
    "Delivery",
    "NotifySettings",
    "notify_run",
    "notify_settings",
    "preview",
    "send",
]

PASSWORD_ENV = "MUTATOR_SMTP_PASSWORD"


@dataclass(frozen=True)
class Delivery:
    """One channel's result: `target` names where it went without any secret in it."""

    channel: str  # email | webhook
    target: str
    ok: bool
    error: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"notified: {self.channel} {self.target}"
        return f"{self.channel} {self.target} failed: {self.error}"


# -- sending ----------------------------------------------------------------------------------
def notify_run(run_dir: Path, settings: NotifySettings) -> list[Delivery]:
    """Summarise the run and send it to every configured channel; never raises for a channel."""
    summary = summarise_run(run_dir, settings.report_url)
    return send(summary, settings)


def send(summary: RunSummary, settings: NotifySettings) -> list[Delivery]:
    deliveries = []
    if settings.email_to:
        deliveries.append(send_email(compose_email(summary, settings), settings))
    if settings.webhook_url:
        deliveries.append(post_webhook(notify_message.webhook_payload(summary), settings))
    return deliveries


def preview(summary: RunSummary, settings: NotifySettings) -> str:
    """What `--dry-run` prints: the email as text and the webhook JSON, with nothing sent."""
    message = compose_email(summary, settings)
    if settings.email_to:
        where = f"to {message['To']} via {settings.smtp_address}"
    else:
        where = "(no recipients configured)"
    host = f"to {_host(settings.webhook_url)}" if settings.webhook_url else "(none configured)"
    headers = "".join(f"{name}: {message[name]}\n" for name in ("Subject", "From", "To"))
    payload = json.dumps(notify_message.webhook_payload(summary), indent=2)
    return (
        f"== email {where}: not sent\n{headers}\n{notify_message.text_body(summary)}\n"
        f"== webhook {host}: not sent\n{payload}\n"
    )


def compose_email(summary: RunSummary, settings: NotifySettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notify_message.subject(summary)
    message["From"] = settings.email_from or f"mutator@{socket.gethostname()}"
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="mutator.local")
    message["X-Mutator-Outcome"] = summary.outcome
    message.set_content(notify_message.text_body(summary))
    message.add_alternative(notify_message.html_body(summary), subtype="html")
    return message


def send_email(message: EmailMessage, settings: NotifySettings) -> Delivery:
    """One attempt through the configured relay; any failure becomes one line (no password)."""
    target = f"via {settings.smtp_address}"
    password = os.environ.get(PASSWORD_ENV)
    if settings.smtp_user and not password:
        return Delivery("email", target, False, f"smtp_user is set but ${PASSWORD_ENV} is not")
    try:
        _smtp_send(message, settings, password)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as one line, never raised
        return Delivery("email", target, False, _scrub(_smtp_error(exc, settings), password))
    return Delivery("email", f"to {message['To']} {target}", True)


def _tls_context(settings: NotifySettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.smtp_ca_cert:
        context.load_verify_locations(cafile=settings.smtp_ca_cert)
    return context


def _smtp_send(message: EmailMessage, settings: NotifySettings, password: str | None) -> None:
    host, port, timeout = settings.smtp_host or "", settings.port, settings.timeout
    if settings.smtp_security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=timeout, context=_tls_context(settings)
        )
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=_tls_context(settings))
            client.ehlo()
        if settings.smtp_user and password:
            client.login(settings.smtp_user, password)
        client.send_message(message)


def _smtp_error(exc: BaseException, settings: NotifySettings) -> str:
    where = settings.smtp_address
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication refused for {settings.smtp_user!r} ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if settings.smtp_security == "starttls" and "STARTTLS" in str(exc):
            return "the server does not offer STARTTLS (try --smtp-security ssl or none)"
        return f"the server does not support {_first_line(exc)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{a} ({code})" for a, (code, _) in exc.recipients.items())
        return f"recipients refused: {refused}"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender!r} refused ({exc.smtp_code} {_decode(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return f"TLS with {where} failed: it does not speak SMTPS (try --smtp-security starttls)"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):  # smtplib turns a read timeout into a disconnect
            return f"no answer from {where} within {settings.timeout:g}s"
        return f"{where} closed the connection ({_first_line(exc) or 'no reason given'})"
    return _network_error(exc, where, settings.timeout, "smtp_ca_cert")


def _network_error(exc: BaseException, where: str, timeout: float, ca_setting: str) -> str:
    """Connection-level failures, shared by both channels."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the certificate of {where} is not trusted ({exc.verify_message}); "
            f"set {ca_setting} to the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed ({exc.reason or _first_line(exc)})"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {where} ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout:g}s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where} ({exc.strerror or _first_line(exc)})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def post_webhook(payload: dict[str, Any], settings: NotifySettings) -> Delivery:
    """POST the JSON; the URL's path and query (its token) never appear in the result."""
    url = settings.webhook_url or ""
    where = _host(url)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "mutator-notify"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = _decode(exc.read()[:200]) if exc.fp else ""
        detail = f" ({body})" if body and "<" not in body else ""
        return Delivery("webhook", f"to {where}", False, _scrub(f"HTTP {exc.code}{detail}", url))
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
        error = _network_error(reason, where, settings.timeout, "SSL_CERT_FILE")
        return Delivery("webhook", f"to {where}", False, _scrub(error, url))
    except Exception as exc:  # noqa: BLE001 - timeouts mid-read, malformed answers: one line
        error = _network_error(exc, where, settings.timeout, "SSL_CERT_FILE")
        return Delivery("webhook", f"to {where}", False, _scrub(error, url))
    return Delivery("webhook", f"to {where}", True)


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _scrub(text: str, secret: str | None) -> str:
    """Belt and braces: whatever a server or library echoed back, the secret is not printed."""
    if secret:
        text = text.replace(secret, "***")
        path = urlsplit(secret).path if "://" in secret else ""
        if len(path) > 1:
            text = text.replace(path, "/***")
    return text


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
