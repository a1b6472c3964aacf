"""action-plan.csv (Excel-safe, both languages) and findings.ocsf.json (OCSF 1.5 Compliance Finding, class 2003)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.evaluate import load_pack
from m365audit.models import Finding, FindingObject, Severity, Snapshot, Status, Text
from m365audit.report.exports import action_plan_csv, excel_safe, ocsf_events
from tests.conftest import FIXED_NOW, TENANTS


def audit(name: str, reports: Path, lang: str = "nl") -> AuditResult:
    tenant = TENANTS / name
    local = tenant / "local" if (tenant / "local").is_dir() else None
    return asyncio.run(run_audit(AuditOptions(reports=reports, replay=tenant, local=local, now=FIXED_NOW,
                                              lang="en" if lang == "en" else "nl", concurrency=1)))


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM: Excel opens it as UTF-8"
    text = data[3:].decode("utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter=";" if text.startswith("regel;") else ","))


@pytest.mark.parametrize("value, shown", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+31 6 1234", "'+31 6 1234"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("ChatGPT", "ChatGPT"), ("", "")])
def test_a_cell_that_excel_would_run_becomes_text(value: str, shown: str) -> None:
    assert excel_safe(value) == shown


def finding(status: Status, objects: list[FindingObject], rule_id: str = "ai-apps-no-org-data-access") -> Finding:
    return Finding(rule_id=rule_id, rule_version=1, status=status, severity=Severity.CRITICAL,
                   title=Text(nl="Titel", en="Title"), message=Text(nl="Bericht", en="Message"), objects=objects)


def test_the_action_plan_neutralises_hostile_object_names_and_has_empty_owner_columns() -> None:
    hostile = [FindingObject(id="=cmd|' /C calc'!A0", name="=HYPERLINK(\"http://evil\",\"klik\")"),
               FindingObject(id="app-2", name="@SUM(1+1)\nnext line;semi")]
    pack = load_pack()
    rows = read_csv(action_plan_csv([finding(Status.FAIL, hostile)], pack, "nl"))
    assert list(rows[0]) == ["regel", "titel", "ernst", "status", "objecten", "herstelactie", "eigenaar",
                             "onderbouwing", "streefdatum"]
    [row] = rows
    assert row["objecten"].startswith("'=HYPERLINK") and "@SUM(1+1)\nnext line;semi" in row["objecten"]
    assert row["ernst"] == "kritiek" and row["status"] == "voldoet niet"
    assert row["eigenaar"] == row["onderbouwing"] == row["streefdatum"] == ""
    rule = pack.rule("ai-apps-no-org-data-access")
    assert rule is not None and row["herstelactie"] == " ".join(rule.remediation.nl.split())
    english = read_csv(action_plan_csv([finding(Status.FAIL, hostile)], pack, "en"))
    assert list(english[0])[-3:] == ["owner", "justification", "due date"] and english[0]["severity"] == "critical"


def test_error_rules_in_the_action_plan_say_what_to_fix_not_how_to_remediate(tmp_path: Path) -> None:
    run = audit("permissions-missing", tmp_path).run_dir
    rows = {r["regel"]: r for r in read_csv((run / "action-plan.csv").read_bytes())}
    row = rows["audit-no-ai-interactions"]
    assert row["status"] == "niet te beoordelen"
    assert "AuditLogsQuery.Read.All" in row["herstelactie"] and "beheerderstoestemming" in row["herstelactie"]
    pack = load_pack()
    rule = pack.rule("audit-no-ai-interactions")
    assert rule is not None and " ".join(rule.remediation.nl.split()) not in row["herstelactie"]
    findings = json.loads((run / "findings.json").read_text(encoding="utf-8"))["findings"]
    expected = {f["rule_id"] for f in findings if f["status"] in ("fail", "error")
                or f["status"] == "manual" and "attestation" not in f}
    assert set(rows) == expected, "fail, error and unattested manual rules; nothing that passes"


def test_both_exports_are_in_the_run_folder_and_its_manifest(tmp_path: Path) -> None:
    run = audit("copilot-pilot", tmp_path).run_dir
    files = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert "action-plan.csv" in files and "findings.ocsf.json" in files


def validated(event: dict[str, Any]) -> dict[str, Any]:
    """The event through the OCSF model (py-ocsf-models), back as JSON: an unknown key or a bad type shows."""
    return ComplianceFinding.model_validate(event).model_dump(mode="json", exclude_unset=True)


@pytest.mark.parametrize("tenant", ["copilot-pilot", "permissions-missing", "pilot-with-waivers", "hostile-names"])
def test_every_ocsf_event_is_a_valid_compliance_finding(tenant: str, tmp_path: Path) -> None:
    result = audit(tenant, tmp_path, "en")
    events = json.loads((result.run_dir / "findings.ocsf.json").read_text(encoding="utf-8"))
    assert len(events) == len(result.findings)
    for event in events:
        assert validated(event) == event, "every key is an OCSF attribute of the class, with the right type"
        assert event["class_uid"] == 2003 and event["category_uid"] == 2 and event["type_uid"] == 200301
        assert event["metadata"]["version"] == "1.5.0" and event["metadata"]["product"]["name"] == "m365audit"
    by_rule = {e["compliance"]["control"]: e for e in events}
    for f in result.findings:
        event = by_rule[f.rule_id]
        assert event["unmapped"]["m365audit_status"] == f.status.value
        assert event["compliance"]["status_id"] == {"pass": 1, "error": 2, "fail": 3}.get(f.status.value, 99)
        assert event["severity_id"] == {"low": 2, "medium": 3, "high": 4, "critical": 5}[f.severity.value]
        assert ("remediation" in event) == (f.status in (Status.FAIL, Status.ERROR))
        if f.status is Status.WAIVED:
            assert event["status"] == "Suppressed"
        assert [r["uid"] for r in event.get("resources", [])] == [o.id for o in f.objects]


def test_the_ocsf_check_catches_a_wrong_event() -> None:
    snapshot = Snapshot(tenant_id="t", collected_at=FIXED_NOW, tool_version="0", sources={})
    [event] = ocsf_events(snapshot, [finding(Status.FAIL, [])], load_pack(), "r", "en")
    assert validated(event) == event
    with pytest.raises(ValueError):
        ComplianceFinding.model_validate({**event, "type_uid": 123})
    assert validated({**event, "finding_info": {**event["finding_info"], "titel": "x"}}) != \
        {**event, "finding_info": {**event["finding_info"], "titel": "x"}}, "an unknown key does not survive"
