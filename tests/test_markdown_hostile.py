"""Markdown outputs (report.md with its drift section, the Teams card) show hostile tenant strings as literal text."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.drift.alert_text import AlertMessage, teams_body
from m365audit.drift.alerts import run_causes
from tests.conftest import FIXED_NOW, TENANTS

NAME = "Zaak | *vet* _schuin_ [x](http://evil.example) `code` <script>alert(1)</script> &amp;\n# KOP | nep"
ORG = "Gemeente ** [klik](http://evil.example/org) | <b>vet</b>\n- lijst"


def _night(src: Path, dst: Path, connector: dict[str, str] | None) -> Path:
    shutil.copytree(src, dst)
    org = dst / "exchanges" / "010-organization.json"
    doc = json.loads(org.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"][0]["displayName"] = ORG
    org.write_text(json.dumps(doc), encoding="utf-8")
    (dst / "tenant.yaml").write_text(re.sub(r"(?m)^display_name:.*$", lambda _: "display_name: " + json.dumps(ORG),
                                            (dst / "tenant.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    if connector:
        conn = dst / "exchanges" / "180-external-connections.json"
        doc = json.loads(conn.read_text(encoding="utf-8"))
        doc["response"]["body"]["value"][0].update(connector)
        conn.write_text(json.dumps(doc), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def second_night(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    base = tmp_path_factory.mktemp("md-hostile")
    reports = base / "reports"
    for night in (_night(TENANTS / "hostile-names", base / "n1", None),
                  _night(TENANTS / "hostile-names", base / "n2", {"state": "ready", "name": NAME})):
        result = asyncio.run(run_audit(AuditOptions(reports=reports, replay=night, now=FIXED_NOW, concurrency=1)))
    assert result.drift is not None and result.drift.alert
    return result


def assert_literal(text: str, where: str) -> None:
    """After the hostile name starts, every Markdown/HTML special is backslash-escaped and no line break came in."""
    start = text.index("Zaak")
    rest = text[start:].split("\n")[0]
    assert "KOP" in rest, f"{where}: the name's line break started a new Markdown line"
    assert not re.search(r"(?<!\\)[|*_`<>\[\]]", rest.split("KOP")[0]), f"{where}: unescaped special in {rest!r}"
    assert "](" not in rest.replace("\\](", ""), where


def test_report_md_drift_section_escapes_tenant_strings(second_night: AuditResult) -> None:
    md = (second_night.run_dir / "report.md").read_text(encoding="utf-8")
    section = md[md.index("\n## "):]
    assert "Zaak" in section, "the hostile connector is named in the drift section"
    assert_literal(section, "drift.md")
    assert "<script>" not in md and "\n# KOP" not in md and "\n- lijst" not in md
    assert not re.search(r"(?<!\\)\]\(", md), "no live link anywhere in report.md"


def test_teams_card_escapes_tenant_strings(second_night: AuditResult) -> None:
    assert second_night.drift is not None
    report = second_night.drift
    message = AlertMessage(tenant_id=report.tenant_id, tenant_name=report.tenant_name, lang="en",
                           causes=run_causes([], report), verdict=report.new_run.verdict,
                           run_id=report.new_run.run_id, run_dir="reports/x", report_link="reports/x", drift=report)
    card = teams_body(message)["attachments"][0]["content"]
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    facts = [f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]]
    named = [t for t in texts if "Zaak" in t]
    assert named, texts
    for text in named:
        assert_literal(text, "card")
    tenant = facts[0]
    assert "\n" not in tenant and not re.search(r"(?<!\\)[*|<>\[\]]", tenant), tenant
    assert all("\n" not in t and "<script>" not in t for t in texts + facts)
