"""The run's hand-offs: action-plan.csv for the people who fix things, findings.ocsf.json for a SIEM (OCSF 2003)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from m365audit.models import Finding, Lang, PolicyPack, Severity, Snapshot, Status
from m365audit.report.firstscreen import to_complete
from m365audit.report.vocabulary import labels, ordered

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ACTION_STATUSES = (Status.FAIL, Status.ERROR, Status.MANUAL)
CSV_COLUMNS: dict[str, dict[Lang, str]] = {
    "rule": {"nl": "regel", "en": "rule"},
    "title": {"nl": "titel", "en": "title"},
    "severity": {"nl": "ernst", "en": "severity"},
    "status": {"nl": "status", "en": "status"},
    "objects": {"nl": "objecten", "en": "objects"},
    "remediation": {"nl": "herstelactie", "en": "remediation"},
    "owner": {"nl": "eigenaar", "en": "owner"},
    "justification": {"nl": "onderbouwing", "en": "justification"},
    "due_date": {"nl": "streefdatum", "en": "due date"},
}

OCSF_VERSION = "1.5.0"
OCSF_CLASS_UID = 2003  # Compliance Finding
OCSF_CATEGORY_UID = 2  # Findings
OCSF_ACTIVITY_CREATE = 1
OCSF_SEVERITY = {Severity.LOW: (2, "Low"), Severity.MEDIUM: (3, "Medium"), Severity.HIGH: (4, "High"),
                 Severity.CRITICAL: (5, "Critical")}
OCSF_COMPLIANCE_STATUS = {Status.PASS: 1, Status.ERROR: 2, Status.FAIL: 3, Status.WAIVED: 99, Status.MANUAL: 99}
"""compliance.status_id: 1 Pass, 2 Warning (no result: missing information), 3 Fail, 99 Other."""
OCSF_FINDING_STATUS = {Status.WAIVED: (3, "Suppressed")}
"""status_id of the finding: a waived rule is Suppressed, everything else New."""


def excel_safe(value: str) -> str:
    """A cell Excel and LibreOffice show as text: a leading = + - @ tab or CR gets a ' (no formula runs)."""
    return "'" + value if value.startswith(CSV_FORMULA_START) else value


def _objects(f: Finding) -> str:
    return "; ".join(f"{o.name} ({o.id})" if o.name else o.id for o in f.objects if not o.waived)


def action_rows(findings: Sequence[Finding], pack: PolicyPack, lang: Lang) -> list[dict[str, str]]:
    """One row per rule that needs someone: fail, error (what to fix to complete the audit), unattested manual."""
    L, rules = labels(lang), {r.id: r for r in pack.rules}
    rows = []
    for f in ordered(list(findings)):
        if f.status not in ACTION_STATUSES or (f.status is Status.MANUAL and f.attestation is not None):
            continue
        rule = rules.get(f.rule_id)
        if f.status is Status.ERROR:
            what = " ".join(item["todo"] for item in to_complete([f], lang)[0]["items"])
        elif f.status is Status.MANUAL:
            what = rule.manual.how.get(lang) if rule is not None and rule.manual is not None else L["no_attestation"]
        else:
            what = rule.remediation.get(lang) if rule is not None else ""
        rows.append({"rule": f.rule_id, "title": f.title.get(lang), "severity": L[f.severity.value],
                     "status": L[f.status.value], "objects": _objects(f), "remediation": " ".join(what.split()),
                     "owner": "", "justification": "", "due_date": ""})
    return rows


def action_plan_csv(findings: Sequence[Finding], pack: PolicyPack, lang: Lang) -> bytes:
    """action-plan.csv: UTF-8 with BOM (Excel reads it as UTF-8), ';' in Dutch (Excel's list separator), ','."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if lang == "nl" else ",", lineterminator="\r\n")
    writer.writerow([CSV_COLUMNS[c][lang] for c in CSV_COLUMNS])
    for row in action_rows(findings, pack, lang):
        writer.writerow([excel_safe(row[c]) for c in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def ocsf_events(snapshot: Snapshot, findings: Sequence[Finding], pack: PolicyPack, run_id: str,
                lang: Lang) -> list[dict[str, Any]]:
    """One OCSF 1.5 Compliance Finding (class_uid 2003) per rule, in the run's language."""
    rules, when = {r.id: r for r in pack.rules}, int(snapshot.collected_at.timestamp() * 1000)
    events = []
    for f in ordered(list(findings)):
        rule = rules.get(f.rule_id)
        severity_id, severity = OCSF_SEVERITY[f.severity]
        status_id, status = OCSF_FINDING_STATUS.get(f.status, (1, "New"))
        event: dict[str, Any] = {
            "activity_id": OCSF_ACTIVITY_CREATE, "activity_name": "Create",
            "category_uid": OCSF_CATEGORY_UID, "category_name": "Findings",
            "class_uid": OCSF_CLASS_UID, "class_name": "Compliance Finding",
            "type_uid": OCSF_CLASS_UID * 100 + OCSF_ACTIVITY_CREATE, "type_name": "Compliance Finding: Create",
            "time": when, "severity_id": severity_id, "severity": severity, "status_id": status_id, "status": status,
            "message": f.message.get(lang),
            "metadata": {"version": OCSF_VERSION, "uid": f"{run_id}/{f.rule_id}", "event_code": f.rule_id,
                         "tenant_uid": snapshot.tenant_id, "log_name": "m365audit", "log_provider": "m365audit",
                         "product": {"name": "m365audit", "vendor_name": "m365audit", "lang": lang,
                                     "version": snapshot.tool_version}},
            "finding_info": {"uid": f"m365audit:{snapshot.tenant_id}:{f.rule_id}", "title": f.title.get(lang),
                             "desc": f.message.get(lang), "created_time": when,
                             "data_sources": list(f.sources), "types": ["m365audit rule"]},
            "compliance": {"control": f.rule_id, "status_id": OCSF_COMPLIANCE_STATUS[f.status],
                           "standards": [r.label for r in rule.references] if rule is not None else [],
                           "desc": rule.rationale.get(lang) if rule is not None else ""},
            "unmapped": {"m365audit_status": f.status.value, "rule_version": f.rule_version, "run_id": run_id},
        }
        if f.objects:
            event["resources"] = [{"uid": o.id, "name": o.name or o.id, "data": {"detail": o.detail,
                                                                               "waived": o.waived}}
                                  for o in f.objects]
        if f.status is Status.FAIL and rule is not None:
            event["remediation"] = {"desc": rule.remediation.get(lang)}
        elif f.status is Status.ERROR:
            event["remediation"] = {"desc": " ".join(i["todo"] for i in to_complete([f], lang)[0]["items"])}
        events.append(event)
    return events


def ocsf_bytes(snapshot: Snapshot, findings: Sequence[Finding], pack: PolicyPack, run_id: str, lang: Lang) -> bytes:
    """findings.ocsf.json: a JSON array of Compliance Finding events."""
    return json.dumps(ocsf_events(snapshot, findings, pack, run_id, lang), indent=2,
                      ensure_ascii=False).encode() + b"\n"
