"""`mutate notify` against real servers on localhost: aiosmtpd (plain, STARTTLS, SMTPS with AUTH
and a certificate made here) and http.server for the webhook. No training: the run directory is
built by hand the way `mutate tune` leaves it."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mutator.cli.app import main
from mutator.errors import UsageError
from mutator.publish.notify import NotifySettings, notify_run, notify_settings
from mutator.publish.run_summary import MAX_DIFF_LINES, summarise_run
from mutator.search.config import settings_from
from mutator.search.ledger import Ledger, TrialRecord, sha256
from mutator.training.metrics import infer_mode

USER, PASSWORD = "ci", "s3cret-Passw0rd"

ORIGINAL = """\
from keras.models import Sequential
from keras.layers import Conv2D, Flatten, Dense

model = Sequential()
model.add(Conv2D(4, (3, 3), activation='relu', input_shape=(8, 8, 1)))
model.add(Flatten())
model.add(Dense(10, activation='softmax'))
model.fit(x, y, epochs=2)
"""
MORE_EPOCHS = ORIGINAL.replace("epochs=2", "epochs=4")
BEST = MORE_EPOCHS.replace("Conv2D(4,", "Conv2D(8,")
KERNEL = MORE_EPOCHS.replace("(3, 3)", "(5, 5)")


# -- a run directory, as `mutate tune` leaves it ------------------------------------------------
def _record(trial, rule, description, source, value, decision, best_after, status="ok", error=None):
    return TrialRecord(
        id=trial,
        parent=None if trial == 1 else 1,
        rule=rule,
        site=0 if rule else None,
        params={},
        description=description,
        sha256=sha256(source),
        diff="",
        status=status,
        value=value,
        decision=decision,
        best_after=best_after,
        seconds=60.0,
        started="2025-01-01T00:00:00+00:00",
        finished="2025-01-01T00:01:00+00:00",
        error=error,
    )


def make_run(
    folder: Path,
    *,
    target: float | None = 0.97,
    best_value: float = 0.9722,
    mode: str = "auto",
    metric: str | None = None,
    failed: bool = False,
    best_source: str = BEST,
) -> Path:
    """train.py and .mutator/train/ with 4 trials: baseline, accepted, rejected, accepted."""
    script = folder / "train.py"
    script.write_text(ORIGINAL)
    ledger = Ledger(folder / ".mutator" / "train")
    ledger.start(
        {
            "script": str(script),
            "script_sha256": sha256(ORIGINAL),
            "model": "model",
            "settings": {"target": target, "mode": mode, "metric": metric, "max_trials": 20},
        }
    )
    if failed:
        trials = [(1, None, "baseline: the script as given", ORIGINAL, None, "baseline", None)]
    else:
        trials = [
            (1, None, "baseline: the script as given", ORIGINAL, 0.3278, "baseline", 0.3278),
            (2, "more_epochs", "epochs 2 -> 4", MORE_EPOCHS, 0.61, "accepted", 0.61),
            (3, "larger_kernel", "layer 0 (Conv2D): kernel 3 -> 5", KERNEL, 0.58, "rejected", 0.61),
            (
                4,
                "more_filters",
                "layer 0 (Conv2D): filters 4 -> 8",
                best_source,
                best_value,
                "accepted",
                best_value,
            ),
        ]
    for trial, rule, description, source, value, decision, best_after in trials:
        ledger.prepare_trial(trial, "train.py", source, {"id": trial})
        # what the harness writes: the metric it judged by and its direction
        verdict = {"metric": metric or "accuracy", "mode": infer_mode(metric, mode)}
        (ledger.trial_dir(trial) / "metrics.json").write_text(json.dumps(verdict))
        extra = {"status": "failed", "error": "ValueError: boom"} if failed else {}
        ledger.append(
            _record(trial, rule, description, source, value, decision, best_after, **extra)
        )
    if not failed:
        ledger.best_script.write_text(best_source)
        (ledger.root / "report.html").write_text("<html>report</html>")
    return script


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("MUTATOR_SMTP_PASSWORD", "MUTATOR_WEBHOOK_URL", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def script(tmp_path):
    return make_run(tmp_path)


# -- a certificate, made here -----------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (its own CA), and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _make_cert_with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is installed")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
    return cert, key


def _make_cert_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# -- a real SMTP server -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SmtpServer:
    port: int
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(certificate):
    """Start an aiosmtpd server: `smtp("none" | "starttls" | "ssl")`; stopped after the test."""
    from aiosmtpd.controller import Controller

    controllers = []

    def start(security: str) -> SmtpServer:
        server = SmtpServer(free_port())
        options: dict = {}
        if security != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            options = {"authenticator": _authenticate, "auth_required": True}
            if security == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                options.update(ssl_context=context, auth_require_tls=False)
        controller = Controller(server, hostname="127.0.0.1", port=server.port, **options)
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for controller in controllers:
        controller.stop()


# -- a real HTTP server for the webhook -----------------------------------------------------------
def run_notify(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["notify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def body_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


# -- the summary -------------------------------------------------------------------------------
def test_summary_of_a_run_that_reached_its_target(script):
    summary = summarise_run(script.parent / ".mutator" / "train")
    assert summary.outcome == "reached" and summary.headline == "target reached"
    assert (summary.before, summary.after, summary.best_trial) == (0.3278, 0.9722, 4)
    assert summary.metric == "accuracy" and summary.mode == "max" and summary.trials == 4
    assert [(c.trial, c.rule) for c in summary.accepted] == [
        (2, "more_epochs"),
        (4, "more_filters"),
    ]
    assert "-model.add(Conv2D(4, (3, 3)" in summary.diff
    assert (
        "+model.add(Conv2D(8, (3, 3)" in summary.diff
        and "+model.fit(x, y, epochs=4)" in summary.diff
    )
    assert summary.report.endswith("report.html")


def test_summary_outcomes_follow_the_searchs_tolerance_and_mode(tmp_path):
    def outcome(name, **kwargs):
        folder = tmp_path / name
        folder.mkdir()
        return summarise_run(make_run(folder, **kwargs).parent / ".mutator" / "train")

    # Keras' float32 0.949999988 counts as 0.95, as in mutator.search.reached
    assert outcome("float32", target=0.95, best_value=0.949999988).outcome == "reached"
    short = outcome("short", target=0.99)
    assert (short.outcome, short.headline) == ("not_reached", "target not reached after 4 trials")
    assert outcome("none", target=None).headline == "no target: best after 4 trials"
    # a loss is minimised: 0.9722 is not at or under 0.5
    assert outcome("loss", target=0.5, metric="val_loss", mode="auto").outcome == "not_reached"
    failed = outcome("failed", failed=True)
    assert failed.outcome == "failed" and "ValueError: boom" in failed.failure
    assert failed.after is None and failed.diff == ""


def test_a_long_diff_is_capped(tmp_path):
    long_best = BEST + "".join(f"print({i})\n" for i in range(300))
    script = make_run(tmp_path, best_source=long_best)
    summary = summarise_run(script.parent / ".mutator" / "train")
    lines = summary.diff.splitlines()
    assert len(lines) == MAX_DIFF_LINES + 1 and summary.diff_omitted_lines > 90
    assert lines[-1] == f"... {summary.diff_omitted_lines} more lines"


# -- email -------------------------------------------------------------------------------------
def test_plain_smtp_delivers_the_summary(smtp, script, capsys):
    server = smtp("none")
    code, out, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--email", "lead@example.com",
        "--from", "mutator@ci.example.com", "--smtp-host", "127.0.0.1",
        "--smtp-port", str(server.port), "--smtp-security", "none",
    )  # fmt: skip
    assert code == 0, err
    assert "notified: email to ml@example.com, lead@example.com" in out
    (message,) = server.messages
    assert message["Subject"] == "mutate: train.py target reached 0.3278 -> 0.9722"
    assert message["From"] == "mutator@ci.example.com"
    assert server.envelopes == [("mutator@ci.example.com", ["ml@example.com", "lead@example.com"])]
    body = body_of(message)
    for expected in ("0.3278", "0.9722", "more_epochs", "more_filters", "+model.add(Conv2D(8,",
                     str(script.parent / ".mutator" / "train" / "report.html")):  # fmt: skip
        assert expected in body
    assert "larger_kernel" not in body  # a rejected change is not news
    assert "Conv2D" in message.get_body(("html",)).get_content()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # SMTPS is TLS
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_auth_and_a_trusted_self_signed_certificate(
    security, smtp, script, certificate, capsys, monkeypatch
):
    server = smtp(security)
    monkeypatch.setenv("MUTATOR_SMTP_PASSWORD", PASSWORD)
    code, out, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--smtp-host", "localhost",
        "--smtp-port", str(server.port), "--smtp-security", security, "--smtp-user", USER,
        "--smtp-ca-cert", str(certificate[0]), "--report-url", "https://jenkins.example.com/job/7/",
    )  # fmt: skip
    assert code == 0, err
    (message,) = server.messages
    assert message["To"] == "ml@example.com"
    assert "report       https://jenkins.example.com/job/7/" in body_of(message)


def test_an_untrusted_certificate_is_one_line(smtp, script, capsys, monkeypatch):
    server = smtp("starttls")
    monkeypatch.setenv("MUTATOR_SMTP_PASSWORD", PASSWORD)
    code, _, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--smtp-host", "localhost",
        "--smtp-port", str(server.port), "--smtp-user", USER,
    )  # fmt: skip
    assert code == 8 and not server.messages
    assert err.count("\n") == 1 and "is not trusted" in err and "smtp_ca_cert" in err


def test_a_wrong_password_is_one_line_and_never_printed(
    smtp, script, certificate, capsys, monkeypatch
):
    server = smtp("starttls")
    before = tree_hashes(script.parent)
    monkeypatch.setenv("MUTATOR_SMTP_PASSWORD", "wrong-" + PASSWORD)
    code, out, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--smtp-host", "localhost",
        "--smtp-port", str(server.port), "--smtp-user", USER, "--smtp-ca-cert", str(certificate[0]),
    )  # fmt: skip
    assert code == 8
    assert err == (
        f"mutate: error: email via localhost:{server.port} failed: "
        f"authentication refused for '{USER}' (535)\n"
    )
    assert PASSWORD not in out + err and "Traceback" not in err
    assert not server.messages
    assert tree_hashes(script.parent) == before


def test_an_unreachable_relay_is_one_line(script, capsys):
    before = tree_hashes(script.parent)
    port = free_port()  # nothing listens here once the probe is closed
    code, _, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--smtp-host", "127.0.0.1",
        "--smtp-port", str(port), "--smtp-security", "none",
    )  # fmt: skip
    assert code == 8
    assert err == (
        f"mutate: error: email via 127.0.0.1:{port} failed: "
        f"cannot connect to 127.0.0.1:{port} (connection refused)\n"
    )
    assert tree_hashes(script.parent) == before


def test_a_user_without_the_password_variable_is_refused_before_connecting(script, capsys):
    code, _, err = run_notify(
        capsys, str(script), "--email", "ml@example.com", "--smtp-host", "127.0.0.1",
        "--smtp-port", str(free_port()), "--smtp-user", USER,
    )  # fmt: skip
    assert code == 8 and "MUTATOR_SMTP_PASSWORD is not" in err and err.count("\n") == 1


# -- webhook -------------------------------------------------------------------------------------
def test_the_webhook_receives_slack_text_and_the_structured_summary(webhook, script, capsys):
    hook = webhook()
    code, out, err = run_notify(capsys, str(script), "--webhook", hook.url)
    assert code == 0, err
    assert out == f"notified: webhook to 127.0.0.1:{hook.url.split(':')[2].split('/')[0]}\n"
    (payload,) = hook.received
    assert "`train.py`: target reached: *0.3278 -> 0.9722*" in payload["text"]
    assert "`more_filters`" in payload["text"]
    data = payload["mutator"]
    assert (data["outcome"], data["before"], data["after"]) == ("reached", 0.3278, 0.9722)
    assert (data["target"], data["trials"]) == (0.97, 4)
    assert [c["rule"] for c in data["accepted"]] == ["more_epochs", "more_filters"]
    assert data["report"].endswith("report.html") and "+model.fit(x, y, epochs=4)" in data["diff"]


@pytest.mark.parametrize("status", [404, 500])
def test_a_failing_webhook_is_one_line_without_its_token(status, webhook, script, capsys):
    hook = webhook(status=status, path="/services/T000/B000/XSECRETTOKENX")
    before = tree_hashes(script.parent)
    code, out, err = run_notify(capsys, str(script), "--webhook", hook.url)
    assert code == 8 and len(hook.received) == 1
    port = hook.url.split(":")[2].split("/")[0]
    assert err == (
        f"mutate: error: webhook to 127.0.0.1:{port} failed: HTTP {status} (no_service)\n"
    )
    assert "XSECRETTOKENX" not in out + err
    assert tree_hashes(script.parent) == before


def test_one_failing_channel_does_not_stop_the_other(smtp, webhook, script, capsys):
    server, hook = smtp("none"), webhook(status=500)
    code, out, err = run_notify(
        capsys, str(script), "--webhook", hook.url, "--email", "ml@example.com",
        "--smtp-host", "127.0.0.1", "--smtp-port", str(server.port), "--smtp-security", "none",
    )  # fmt: skip
    assert code == 8 and len(server.messages) == 1 and len(hook.received) == 1
    assert "notified: email" in out and err.count("\n") == 1 and "HTTP 500" in err


def test_the_library_call_reports_each_channel_without_raising(webhook, script):
    good = webhook()
    unreachable = NotifySettings(
        email_to=("ml@example.com",), smtp_host="127.0.0.1", smtp_port=free_port(),
        smtp_security="none", webhook_url=good.url, timeout=5,
    )  # fmt: skip
    deliveries = notify_run(script.parent / ".mutator" / "train", unreachable)
    assert [(d.channel, d.ok) for d in deliveries] == [("email", False), ("webhook", True)]
    assert "connection refused" in deliveries[0].error and len(good.received) == 1


# -- settings -------------------------------------------------------------------------------------
def test_config_from_pyproject_and_flags_override_it(webhook, script, capsys):
    configured, flagged = webhook(), webhook()
    (script.parent / "pyproject.toml").write_text(
        "[tool.mutator]\nmax_trials = 5\n\n[tool.mutator.notify]\n"
        f'webhook_url = "{configured.url}"\nreport_url = "https://ci.example.com/job/3/"\n'
    )
    assert (
        settings_from({"max_trials": 5, "notify": {"webhook_url": "x"}}, {}).budget.max_trials == 5
    )
    assert run_notify(capsys, str(script))[0] == 0
    (payload,) = configured.received
    assert payload["mutator"]["report"] == "https://ci.example.com/job/3/"
    assert "<https://ci.example.com/job/3/|report>" in payload["text"]

    assert (
        run_notify(capsys, str(script), "--webhook", flagged.url, "--report-url", "https://x/")[0]
        == 0
    )
    assert (
        len(configured.received) == 1 and flagged.received[0]["mutator"]["report"] == "https://x/"
    )


def test_mutator_toml_notify_table_and_the_environment(webhook, script, capsys, monkeypatch):
    from_file, from_env = webhook(), webhook()
    (script.parent / "mutator.toml").write_text(f'[notify]\nwebhook_url = "{from_file.url}"\n')
    assert run_notify(capsys, str(script))[0] == 0 and len(from_file.received) == 1
    monkeypatch.setenv("MUTATOR_WEBHOOK_URL", from_env.url)
    assert run_notify(capsys, str(script))[0] == 0 and len(from_env.received) == 1


def test_settings_are_checked():
    with pytest.raises(UsageError, match="unknown notify setting 'smtp_password'"):
        notify_settings({"smtp_password": "x"}, {}, environ={})
    with pytest.raises(UsageError, match="needs an SMTP server"):
        notify_settings({"email_to": "a@example.com"}, {}, environ={})
    with pytest.raises(UsageError, match="smtp_security must be"):
        notify_settings({"smtp_security": "tls"}, {}, environ={})
    settings = notify_settings(
        {"email_to": "a@example.com, b@example.com", "smtp_host": "mail", "smtp_security": "ssl",
         "timeout": "1m"},
        {"smtp_host": "relay", "email_to": None},
        environ={},
    )  # fmt: skip
    assert settings.email_to == ("a@example.com", "b@example.com")
    assert (settings.smtp_address, settings.timeout) == ("relay:465", 60.0)


def test_nothing_configured_is_a_usage_error(script, capsys):
    code, _, err = run_notify(capsys, str(script))
    assert code == 2 and err.count("\n") == 1
    for hint in ("--email", "--webhook", "[tool.mutator.notify]", "MUTATOR_WEBHOOK_URL"):
        assert hint in err


def test_no_run_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "train.py").write_text(ORIGINAL)
    code, _, err = run_notify(
        capsys, str(tmp_path / "train.py"), "--webhook", "http://127.0.0.1:9/"
    )
    assert code == 2 and "no trials recorded" in err and err.count("\n") == 1


def test_dry_run_prints_both_messages_and_sends_nothing(smtp, webhook, script, capsys):
    server, hook = smtp("none"), webhook()
    code, out, _ = run_notify(
        capsys, str(script), "--dry-run", "--webhook", hook.url, "--email", "ml@example.com",
        "--smtp-host", "127.0.0.1", "--smtp-port", str(server.port), "--smtp-security", "none",
    )  # fmt: skip
    assert code == 0 and not server.messages and not hook.received
    assert "Subject: mutate: train.py target reached 0.3278 -> 0.9722" in out
    payload = json.loads(out.split(": not sent\n")[-1])
    assert payload["mutator"]["outcome"] == "reached"


def test_a_failed_run_is_reported_as_failed(tmp_path, webhook, capsys):
    script, hook = make_run(tmp_path, failed=True), webhook()
    assert run_notify(capsys, str(script), "--webhook", hook.url)[0] == 0
    assert hook.received[0]["mutator"]["outcome"] == "failed"
    assert (
        "failed: the baseline did not train: failed (ValueError: boom)" in hook.received[0]["text"]
    )


def test_notify_never_imports_keras(script):
    probe = (
        "import sys\nfrom mutator.cli.app import main\n"
        f"code = main(['notify', {str(script)!r}, '--dry-run'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'torch'})\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY [] 0" in result.stderr, result.stderr


def test_a_relay_without_starttls_or_that_never_answers_is_one_line(smtp, script):
    run_dir = script.parent / ".mutator" / "train"
    plain = smtp("none")
    settings = NotifySettings(
        email_to=("ml@example.com",), smtp_host="127.0.0.1", smtp_port=plain.port, timeout=5
    )
    (delivery,) = notify_run(run_dir, settings)
    assert "does not offer STARTTLS" in delivery.error and not plain.messages
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = NotifySettings(
            email_to=("ml@example.com",), smtp_host="127.0.0.1", smtp_port=port, timeout=0.3
        )
        (delivery,) = notify_run(run_dir, settings)
    assert delivery.line() == (
        f"email via 127.0.0.1:{port} failed: no answer from 127.0.0.1:{port} within 0.3s"
    )
