"""Webhook alerts against a real HTTP server on 127.0.0.1: success, 500 then success, permanent failure recorded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from m365audit.drift import AlertMessage, DriftReport, report_link, run_causes
from m365audit.drift.alert_text import generic_body, teams_body
from m365audit.drift.nights import RuleDrift, RunRef
from m365audit.drift.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotifySettings,
    is_teams,
    notify,
    redact,
    sign,
)
from m365audit.models import FindingObject, Lang, Severity, Status, Text


@dataclass
class Hook:
    """What the local server answers (a script of statuses) and what it received."""

    script: list[int]
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def next_status(self) -> int:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


@pytest.fixture
def server() -> Iterator[tuple[str, Hook]]:
    hook = Hook(script=[200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append((self.path, dict(self.headers.items()), body))
            status = hook.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hook
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def regression_report() -> DriftReport:
    return DriftReport(
        tenant_id="061ea7c2-cc15-418b-bfc0-9f6a7d98011c", tenant_name="Gemeente Voorbeeld",
        old_run=RunRef(run_id="20261127T021500Z", verdict="pass"),
        new_run=RunRef(run_id="20261128T021500Z", verdict="fail"),
        rules=[RuleDrift(rule_id="ca-blocks-copilot-apps", severity=Severity.HIGH,
                         title=Text(nl="CA blokkeert Copilot", en="CA blocks Copilot"), kind="regression",
                         old_status=Status.PASS, new_status=Status.FAIL,
                         added=[FindingObject(id="decc18e3-775a-562c-94cc-0b59579205c5", name="BLOCK - AI",
                                              detail="report-only")])])


def settings(url: str, **kw: Any) -> NotifySettings:
    return NotifySettings(urls=(url,), backoff=0.01, timeout=5.0, run_dir="reports/x/20261128T021500Z", **kw)


def test_delivered_signed_once(server: tuple[str, Hook]) -> None:
    url, hook = server
    record = asyncio.run(notify(regression_report(), settings(url + "/hook?token=s3cr3t", secret="k3y")))
    assert record.alert and [d.ok for d in record.deliveries] == [True]
    d = record.deliveries[0]
    assert (d.attempts, d.status, d.form, d.signed) == (1, 200, "generic", True)
    assert "s3cr3t" not in record.model_dump_json() and "k3y" not in record.model_dump_json()
    path, headers, body = hook.received[0]
    doc = json.loads(body)
    assert doc["event"] == "m365audit.drift" and doc["regressions"][0]["rule_id"] == "ca-blocks-copilot-apps"
    stamp = headers[TIMESTAMP_HEADER]
    expected = "sha256=" + hmac.new(b"k3y", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected == sign("k3y", stamp, body)


def test_500_then_success_is_retried(server: tuple[str, Hook]) -> None:
    url, hook = server
    hook.script[:] = [500, 503, 200]
    record = asyncio.run(notify(regression_report(), settings(url)))
    d = record.deliveries[0]
    assert (d.ok, d.attempts, d.status, d.error) == (True, 3, 200, None)
    assert len(hook.received) == 3
    assert SIGNATURE_HEADER not in hook.received[0][1], "no secret, no signature"


def test_permanent_failure_is_recorded_and_bounded(server: tuple[str, Hook]) -> None:
    url, hook = server
    hook.script[:] = [500]
    record = asyncio.run(notify(regression_report(), settings(url, attempts=3)))
    d = record.deliveries[0]
    assert (d.ok, d.attempts, d.status, d.error) == (False, 3, 500, "HTTP 500")
    assert len(hook.received) == 3
    assert record.failed == [d]


def test_client_error_is_not_retried(server: tuple[str, Hook]) -> None:
    url, hook = server
    hook.script[:] = [404]
    record = asyncio.run(notify(regression_report(), settings(url)))
    assert (record.deliveries[0].ok, record.deliveries[0].attempts) == (False, 1)


def test_unreachable_host_is_recorded_without_raising() -> None:
    record = asyncio.run(notify(regression_report(), settings("http://127.0.0.1:9/hook", attempts=2)))
    d = record.deliveries[0]
    assert not d.ok and d.attempts == 2 and d.status is None and d.error and "ConnectError" in d.error


def test_no_regression_sends_nothing(server: tuple[str, Hook]) -> None:
    url, hook = server
    quiet = regression_report().model_copy(update={"rules": []})
    record = asyncio.run(notify(quiet, settings(url)))
    assert (record.alert, record.deliveries, hook.received) == (False, [], [])
    assert asyncio.run(notify(None, settings(url))).reason.startswith("first run")


@pytest.mark.parametrize(("url", "teams"), [
    ("https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x", True),
    ("https://default1234.56.environment.api.powerplatform.com/powerautomate/automations/direct/x", True),
    ("https://voorbeeld.webhook.office.com/webhookb2/abc", True),
    ("https://hooks.voorbeeld.nl/m365audit", False),
    ("https://logic.azure.com.voorbeeld.nl/x", False),
])
def test_teams_recognised_by_host(url: str, teams: bool) -> None:
    assert is_teams(url) is teams


def message_of(report: DriftReport, lang: Lang = "nl", link: str | None = "reports/x/r/report.html") -> AlertMessage:
    return AlertMessage(tenant_id=report.tenant_id, tenant_name=report.tenant_name, lang=lang,
                        causes=run_causes([], report), verdict="fail", run_id=report.new_run.run_id,
                        report_link=link, drift=report)


def card_texts(doc: dict[str, Any]) -> str:
    card = doc["attachments"][0]["content"]
    facts = [f"{f['title']}={f['value']}" for b in card["body"] for f in b.get("facts", [])]
    return " ".join([b.get("text", "") for b in card["body"]] + facts)


@pytest.mark.parametrize(("lang", "words"), [
    ("nl", ["NIET IN ORDE", "Verslechterd sinds de vorige controle: CA blokkeert Copilot", "Rapport="]),
    ("en", ["NOT COMPLIANT", "Got worse since the previous run: CA blocks Copilot", "Report="]),
])
def test_teams_body_is_an_adaptive_card_in_the_report_language(lang: Lang, words: list[str]) -> None:
    doc = teams_body(message_of(regression_report(), lang))
    attachment = doc["attachments"][0]
    assert doc["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4" and card["lang"] == lang
    texts = card_texts(doc)
    for word in words:
        assert word in texts
    assert "ca-blocks-copilot-apps" not in texts, "rule titles, not ids"
    assert "reports/x/r/report.html" in texts and "actions" not in card, "a path is shown, not a button"


def test_teams_card_links_the_report_url() -> None:
    link = report_link("reports/t/r", "061ea7c2-cc15-418b-bfc0-9f6a7d98011c", "20261128T021500Z",
                       "https://intranet.voorbeeld.nl/m365audit/")
    assert link == ("https://intranet.voorbeeld.nl/m365audit/061ea7c2-cc15-418b-bfc0-9f6a7d98011c/"
                    "20261128T021500Z/report.html")
    card = teams_body(message_of(regression_report(), "nl", link))["attachments"][0]["content"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Rapport openen", "url": link}]


def test_teams_url_gets_the_card_and_no_signature(server: tuple[str, Hook], monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = server
    monkeypatch.setattr("m365audit.drift.notify.is_teams", lambda u: True)
    record = asyncio.run(notify(regression_report(), settings(url, secret="k3y")))
    assert record.deliveries[0].form == "teams" and not record.deliveries[0].signed
    assert json.loads(hook.received[0][2])["type"] == "message"
    assert SIGNATURE_HEADER not in hook.received[0][1]


def test_redact_keeps_no_path_or_query() -> None:
    assert redact("https://prod-1.logic.azure.com/workflows/abc?sig=x") == "https://prod-1.logic.azure.com/…"
    assert redact("https://ciso:geheim@hooks.voorbeeld.nl:8443/x") == "https://hooks.voorbeeld.nl:8443/…"
    assert generic_body(message_of(regression_report()))["regressions"][0]["added"][0]["detail"] == "report-only"


def test_audit_records_a_failed_alert_and_keeps_its_verdict(server: tuple[str, Hook], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from m365audit.evidence import verify_run
    from tests.test_drift import run_pair

    url, hook = server
    hook.script[:] = [500]
    monkeypatch.setattr("m365audit.drift.notify.BACKOFF", 0.01)
    monkeypatch.setattr("m365audit.drift.notify.ATTEMPTS", 2)
    first, second = run_pair("ca-report-only", tmp_path, notify=(url + "/alert",))
    assert second.verdict == "fail" and second.exit_code == 1, "a failed alert never changes the verdict"
    assert second.notify is not None and second.notify.alert and len(hook.received) == 2
    recorded = json.loads((second.run_dir / "notify.json").read_text())
    assert recorded["deliveries"][0]["ok"] is False and recorded["deliveries"][0]["error"] == "HTTP 500"
    assert "notify.json" in json.loads((second.run_dir / "manifest.json").read_text())["files"]
    assert verify_run(second.run_dir).ok
    assert json.loads(hook.received[0][2])["new_run"] == second.run_dir.name


def test_cli_reports_failed_delivery_on_stderr(server: tuple[str, Hook], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from m365audit.cli import cli
    from tests.test_drift import NIGHTS

    url, hook = server
    hook.script[:] = [503]
    monkeypatch.setattr("m365audit.drift.notify.BACKOFF", 0.01)
    monkeypatch.setenv("M365AUDIT_NOTIFY_SECRET", "zeer-geheim")
    runner = CliRunner()
    pair = NIGHTS / "new-ai-app-grant"
    runner.invoke(cli, ["audit", "--replay", str(pair / "night1"), "--reports", str(tmp_path), "-q"])
    result = runner.invoke(cli, ["audit", "--replay", str(pair / "night2"), "--reports", str(tmp_path), "-q",
                                 "--notify", url + "/hook?token=abc", "--lang", "en"])
    assert result.exit_code == 1
    assert "REGRESSION" in result.stdout
    assert "NOT delivered after 4 attempt(s): HTTP 503" in result.stderr
    assert "token=abc" not in result.stderr + result.stdout and "zeer-geheim" not in result.stderr + result.stdout
    assert hook.received[0][1][SIGNATURE_HEADER].startswith("sha256=")


def test_several_urls_are_delivered_independently(server: tuple[str, Hook]) -> None:
    url, hook = server
    record = asyncio.run(notify(regression_report(), NotifySettings(
        urls=(url + "/a", "http://127.0.0.1:9/b", url + "/c"), attempts=2, backoff=0.01)))
    port = url.rsplit(":", 1)[1]
    assert [(d.ok, d.target) for d in record.deliveries] == [
        (True, f"http://127.0.0.1:{port}/…"), (False, "http://127.0.0.1:9/…"), (True, f"http://127.0.0.1:{port}/…")]
    assert sorted(p for p, _, _ in hook.received) == ["/a", "/c"]


def test_error_texts_never_quote_the_url() -> None:
    from m365audit.drift.notify import _scrub

    url = "https://prod-1.logic.azure.com/workflows/abc?sig=geheim"
    text = _scrub(f"Invalid URL 'https://prod-1.logic.azure.com/workflows/abc?api-version=1&sig=geheim' for {url}", url)
    assert "geheim" not in text and "https://prod-1.logic.azure.com/…" in text


def test_tenant_strings_on_the_card_are_shown_not_rendered() -> None:
    report = regression_report()
    hostile = report.rules[0].model_copy(update={"added": [FindingObject(id="x", name="[klik](javascript:alert(1))")]})
    report = report.model_copy(update={"tenant_name": "**Gemeente**", "rules": [hostile]})
    texts = card_texts(teams_body(message_of(report, "en")))
    assert "\\[klik\\]\\(javascript:alert\\(1\\)\\)" in texts and "\\*\\*Gemeente\\*\\*" in texts
    assert "[klik](" not in texts
