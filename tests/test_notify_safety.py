"""--notify URLs are checked when the command starts, and an alert that fails in any way never costs the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.drift import check_urls
from m365audit.errors import UsageError
from m365audit.evidence import verify_chain, verify_run
from tests.conftest import TENANTS

BAD = {
    "ftp://hooks.voorbeeld.nl/x": "only http:// and https://",
    "javascript:alert(1)": "only http:// and https://",
    "hooks.voorbeeld.nl/m365audit": "only http:// and https://",
    "https://": "no host",
    "https:///pad/token": "no host",
    "https://ciso:geheim-wachtwoord@hooks.voorbeeld.nl/x": "user name or password",
    "https://hooks.voorbeeld.nl/a b?token=geheim-token": "spaces or control characters",
    "https://hooks.voorbeeld.nl/\x1b]52;c;Z2VoZWlt\x07": "spaces or control characters",
    "https://hooks.voorbeeld.nl:99999/x?token=geheim-token": "cannot be read as a URL",
    "https://[::1/x": "cannot be read as a URL",
    "": "empty",
}


@pytest.mark.parametrize("url", list(BAD))
def test_a_bad_notify_url_exits_2_before_any_lock_or_evidence(url: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"), "--reports",
                                      str(reports), "-q", "--notify", "https://ok.voorbeeld.nl/a", "--notify", url])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --notify ") and BAD[url] in result.output and "Hint:" in result.output
    for secret in ("geheim", "token=", "ciso", "\x1b", "\x07", "/x", "/a"):
        assert secret not in result.output
    assert not reports.exists(), "no lock, no .incomplete folder, no run"


@pytest.mark.parametrize("url", ["https://prod-12.westeurope.logic.azure.com:443/workflows/abc?sig=x",
                                 "http://127.0.0.1:8080/hook", "https://[::1]:8443/x", "HTTPS://Hooks.Voorbeeld.NL"])
def test_good_notify_urls_pass(url: str) -> None:
    check_urls((url,))


def test_run_audit_itself_refuses_a_bad_url_before_the_reports_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        asyncio.run(run_audit(AuditOptions(reports=tmp_path / "r", replay=TENANTS / "gemeente-voorbeeld",
                                           notify=("https://a:b@h/x",))))
    assert caught.value.exit_code == 2 and not (tmp_path / "r").exists()


def test_a_config_file_with_a_bad_notify_url_is_refused_at_load(tmp_path: Path) -> None:
    from m365audit.operations import load_config

    config = tmp_path / "tenants.toml"
    config.write_text('[[tenant]]\nname = "gemeente-a"\ntenant_id = "11111111-2222-3333-4444-555555555555"\n'
                      'notify = ["https://hooks.voorbeeld.nl/ok", "ftp://hooks.voorbeeld.nl/x"]\n')
    with pytest.raises(UsageError) as caught:
        load_config(config)
    assert "gemeente-a" in caught.value.message and "ftp://hooks.voorbeeld.nl/…" in caught.value.message


# --------------------------------------------------------------------------- a failing notifier


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("unexpected: https://ciso:geheim@hooks.voorbeeld.nl/x?token=geheim-token")


@pytest.mark.parametrize("target", ["m365audit.audit.runner.run_alert", "m365audit.audit.alerting.deliver",
                                    "m365audit.drift.notify.generic_body", "m365audit.drift.notify._request",
                                    "m365audit.drift.notify.deliver_one"])
def test_a_notifier_that_raises_anything_costs_neither_run_nor_verdict(target: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_drift import run_pair

    _, plain = run_pair("ca-report-only", tmp_path / "plain")
    monkeypatch.setattr(target, boom)
    url = "https://hooks.voorbeeld.nl/m365audit?token=geheim-token"
    first, second = run_pair("ca-report-only", tmp_path / "notified", notify=(url,))
    assert (second.verdict, second.exit_code) == (plain.verdict, plain.exit_code) == ("fail", 1)
    assert all(r.ok for r in verify_chain(second.run_dir.parent)) and verify_run(second.run_dir).ok
    recorded = json.loads((second.run_dir / "notify.json").read_text())
    [delivery] = recorded["deliveries"]
    assert delivery["ok"] is False and delivery["target"] == "https://hooks.voorbeeld.nl/…"
    assert "RuntimeError" in delivery["error"]
    text = (second.run_dir / "notify.json").read_text()
    assert "geheim" not in text and "token" not in text
    assert "notify.json" in json.loads((second.run_dir / "manifest.json").read_text())["files"]
