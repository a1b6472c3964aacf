"""Alerts by e-mail against a real SMTP server (aiosmtpd) on 127.0.0.1: arrival, attachment, refusals, validation."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.drift import check_targets
from m365audit.drift.mail import smtp_settings
from m365audit.errors import UsageError
from tests.test_drift import NIGHTS


@dataclass
class Inbox:
    """What the local SMTP server received, and whether it refuses recipients."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802 (aiosmtpd)
                          rcpt_options: Any) -> str:
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("M365AUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("M365AUDIT_SMTP_PORT", str(port))
    monkeypatch.setenv("M365AUDIT_SMTP_TLS", "none")
    monkeypatch.setenv("M365AUDIT_SMTP_FROM", "m365audit@gemeente-voorbeeld.example")
    monkeypatch.setattr("m365audit.drift.notify.BACKOFF", 0.01)
    try:
        yield inbox
    finally:
        controller.stop()


def two_nights(tmp_path: Path, *extra: str, pair: str = "new-ai-app-grant") -> Any:
    runner = CliRunner()
    runner.invoke(cli, ["audit", "--replay", str(NIGHTS / pair / "night1"), "--reports", str(tmp_path), "-q"])
    return runner.invoke(cli, ["audit", "--replay", str(NIGHTS / pair / "night2"), "--reports", str(tmp_path),
                               "-q", *extra])


def notify_json(tmp_path: Path) -> dict[str, Any]:
    [path] = sorted(tmp_path.glob("*/*/notify.json"))
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_alert_arrives_with_subject_text_and_the_html_report(smtp: Inbox, tmp_path: Path) -> None:
    result = two_nights(tmp_path, "--notify", "mailto:security@gemeente-voorbeeld.example", "--lang", "nl")
    assert result.exit_code == 1, result.output
    [(sender, to, mail)] = smtp.messages
    assert sender == "m365audit@gemeente-voorbeeld.example" and to == ["security@gemeente-voorbeeld.example"]
    assert mail["Subject"].startswith("m365audit: ") and "NIET IN ORDE" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert "Verslechterd sinds de vorige controle" in body and "Oordeel: NIET IN ORDE" in body
    assert "# " in body, "the Markdown report follows the alert"
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "report.html" and attachment.get_content_type() == "text/html"
    assert "<html" in attachment.get_content().lower()
    record = notify_json(tmp_path)
    assert record["deliveries"][0] == {**record["deliveries"][0], "form": "mail", "ok": True,
                                       "target": "mailto:security@gemeente-voorbeeld.example"}


def test_a_refusing_server_is_recorded_and_the_exit_code_stays(smtp: Inbox, tmp_path: Path) -> None:
    smtp.refuse = True
    result = two_nights(tmp_path, "--notify", "mailto:security@gemeente-voorbeeld.example")
    assert result.exit_code == 1, "a refused mail never changes the verdict"
    delivery = notify_json(tmp_path)["deliveries"][0]
    assert delivery["ok"] is False and "SMTPRecipientsRefused" in delivery["error"] and delivery["attempts"] == 1
    assert "NOT delivered" in result.stderr


def test_an_absent_server_is_recorded_and_the_run_is_kept(smtp: Inbox, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365AUDIT_SMTP_PORT", str(free_port()))  # nobody listens there
    monkeypatch.setattr("m365audit.drift.notify.ATTEMPTS", 2)
    result = two_nights(tmp_path, "--notify", "mailto:security@gemeente-voorbeeld.example")
    assert result.exit_code == 1
    delivery = notify_json(tmp_path)["deliveries"][0]
    assert delivery["ok"] is False and delivery["attempts"] == 2 and "Connection" in delivery["error"]
    assert len(list(tmp_path.glob("*/*/manifest.json"))) == 2, "both runs are sealed"


def test_starttls_is_required_unless_switched_off(smtp: Inbox, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365AUDIT_SMTP_TLS", "starttls")  # the local server offers no STARTTLS
    result = two_nights(tmp_path, "--notify", "mailto:security@gemeente-voorbeeld.example")
    assert result.exit_code == 1 and smtp.messages == []
    delivery = notify_json(tmp_path)["deliveries"][0]
    assert delivery["ok"] is False and "STARTTLS" in delivery["error"]


def test_a_hostile_tenant_name_cannot_inject_headers(smtp: Inbox) -> None:
    import asyncio

    from m365audit.drift import AlertMessage, Cause, default_settings, deliver
    from m365audit.models import Text

    message = AlertMessage(tenant_id="t", tenant_name="Gemeente X\r\nBcc: mallory@evil.example\r\n\r\nbody", lang="en",
                           causes=[Cause(key="regression:r", kind="regression", rule_id="r",
                                         title=Text(nl="R\r\nX-Evil: 1", en="R\r\nX-Evil: 1"))], verdict="fail")
    [delivery] = asyncio.run(deliver(message, default_settings(("mailto:ciso@gemeente-voorbeeld.example",), None)))
    assert delivery.ok
    [(_, to, mail)] = smtp.messages
    assert to == ["ciso@gemeente-voorbeeld.example"]
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert "\n" not in mail["Subject"] and "Gemeente X Bcc: mallory@evil.example" in mail["Subject"]


@pytest.mark.parametrize(("target", "env", "message"), [
    ("mailto:", {"M365AUDIT_SMTP_HOST": "smtp.example"}, "no address"),
    ("mailto:security", {"M365AUDIT_SMTP_HOST": "smtp.example"}, "not an e-mail address"),
    ("mailto:a@b.example%0d%0aBcc:x@y.example", {"M365AUDIT_SMTP_HOST": "smtp.example"}, "not an e-mail address"),
    ("mailto:security@gemeente.example", {}, "M365AUDIT_SMTP_HOST"),
    ("mailto:security@gemeente.example", {"M365AUDIT_SMTP_HOST": "smtp.example", "M365AUDIT_SMTP_PORT": "smtp"},
     "not a port"),
    ("mailto:security@gemeente.example", {"M365AUDIT_SMTP_HOST": "smtp.example", "M365AUDIT_SMTP_TLS": "none",
                                          "M365AUDIT_SMTP_USER": "u"}, "unencrypted"),
    ("ftp://hooks.example/x", {}, "only http:// and https:// URLs"),
    ("hooks.example/x", {}, "only http:// and https:// URLs"),
])
def test_malformed_targets_are_refused_at_start(target: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_targets((target,), env)
    assert message in caught.value.message and caught.value.exit_code == 2


def test_the_cli_refuses_a_mail_target_without_smtp_host_before_auditing(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("M365AUDIT_SMTP_HOST", raising=False)
    result = CliRunner().invoke(cli, ["audit", "--replay", str(NIGHTS / "new-ai-app-grant" / "night1"), "--reports",
                                      str(tmp_path), "--notify", "mailto:security@gemeente-voorbeeld.example"])
    assert result.exit_code == 2 and "M365AUDIT_SMTP_HOST" in result.output
    assert not list(tmp_path.glob("*/*/manifest.json")), "nothing is audited with a target that cannot work"


def test_smtp_settings_default_ports_follow_the_security_mode() -> None:
    assert smtp_settings({"M365AUDIT_SMTP_HOST": "smtp.example"}).port == 587
    assert smtp_settings({"M365AUDIT_SMTP_HOST": "smtp.example", "M365AUDIT_SMTP_TLS": "tls"}).port == 465
    settings = smtp_settings({"M365AUDIT_SMTP_HOST": "smtp.example", "M365AUDIT_SMTP_PASSWORD": "geheim"})
    assert "geheim" not in repr(settings)
