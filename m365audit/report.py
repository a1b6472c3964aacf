"""Render the outputs of a run: findings.json (the contract), report.html, report.md and junit.xml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from m365audit.models import SEVERITY_ORDER, Finding, Lang, PolicyPack, Snapshot, Status

STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WAIVED: 2, Status.MANUAL: 3, Status.PASS: 4}
REPORT_OBJECT_CAP = 25

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Audit generatieve AI", "en": "Generative AI audit"},
    "verdict_fail": {"nl": "NIET IN ORDE: het raadsbesluit wordt overtreden",
                     "en": "NOT COMPLIANT: the council decision is broken"},
    "verdict_error": {"nl": "ONVOLLEDIG: niet alles kon worden gecontroleerd",
                      "en": "INCOMPLETE: not everything could be checked"},
    "verdict_pass": {"nl": "IN ORDE: geen overtreding gevonden", "en": "COMPLIANT: no violation found"},
    "verdict_fail_detail": {"nl": "Minstens één regel faalt. Zie de bevindingen hieronder.",
                            "en": "At least one rule fails. See the findings below."},
    "verdict_error_detail": {"nl": "Geen overtreding gevonden, maar sommige bronnen konden niet worden gelezen. "
                                   "Dat is geen bewijs van naleving.",
                             "en": "No violation found, but some sources could not be read. That is not proof "
                                   "of compliance."},
    "verdict_pass_detail": {"nl": "Alle automatisch controleerbare regels voldoen (of hebben een geldige "
                                  "uitzondering). Handmatige regels staan apart vermeld.",
                            "en": "Every automatically checkable rule passes (or has a valid waiver). Manual "
                                  "rules are listed separately."},
    "tenant": {"nl": "Tenant", "en": "Tenant"},
    "run": {"nl": "Run", "en": "Run"},
    "collected": {"nl": "Verzameld", "en": "Collected"},
    "tool": {"nl": "Versie", "en": "Version"},
    "pack": {"nl": "Beleidspakket (sha256)", "en": "Policy pack (sha256)"},
    "counts": {"nl": "Telling", "en": "Counts"},
    "status": {"nl": "Status", "en": "Status"},
    "severity": {"nl": "Ernst", "en": "Severity"},
    "rule": {"nl": "Regel", "en": "Rule"},
    "findings": {"nl": "Bevindingen", "en": "Findings"},
    "objects": {"nl": "Objecten", "en": "Objects"},
    "id": {"nl": "Id", "en": "Id"},
    "name": {"nl": "Naam", "en": "Name"},
    "detail": {"nl": "Detail", "en": "Detail"},
    "waived_object": {"nl": "uitzondering", "en": "waived"},
    "more_objects": {"nl": "en nog {n}: zie findings.json", "en": "and {n} more: see findings.json"},
    "rationale": {"nl": "Waarom", "en": "Why"},
    "remediation": {"nl": "Herstel", "en": "How to fix"},
    "manual_where": {"nl": "Waar", "en": "Where"},
    "manual_how": {"nl": "Controle", "en": "How to check"},
    "errors": {"nl": "Fouten bij het lezen", "en": "Read errors"},
    "source": {"nl": "Bron", "en": "Source"},
    "hint": {"nl": "Tip", "en": "Hint"},
    "evidence": {"nl": "Bewijs", "en": "Evidence"},
    "notes": {"nl": "Opmerkingen", "en": "Notes"},
    "references": {"nl": "Bronnen", "en": "References"},
    "waiver": {"nl": "Uitzondering", "en": "Waiver"},
    "attestation": {"nl": "Verklaring", "en": "Attestation"},
    "sources_title": {"nl": "Gelezen bronnen", "en": "Sources read"},
    "requests": {"nl": "Verzoeken", "en": "Requests"},
    "request_ids": {"nl": "request-id's", "en": "request ids"},
    "ok": {"nl": "gelezen", "en": "read"},
    "not_ok": {"nl": "fout", "en": "error"},
    "pass": {"nl": "voldoet", "en": "pass"},
    "fail": {"nl": "voldoet niet", "en": "fail"},
    "error": {"nl": "fout", "en": "error"},
    "waived": {"nl": "uitzondering", "en": "waived"},
    "manual": {"nl": "handmatig", "en": "manual"},
    "critical": {"nl": "kritiek", "en": "critical"},
    "high": {"nl": "hoog", "en": "high"},
    "medium": {"nl": "middel", "en": "medium"},
    "low": {"nl": "laag", "en": "low"},
    "footer": {"nl": "Gemaakt door m365audit. Het bewijs (exchanges/) en manifest.json staan naast dit rapport; "
                     "controleer met `m365audit verify`.",
               "en": "Made by m365audit. The evidence (exchanges/) and manifest.json sit beside this report; "
                     "check them with `m365audit verify`."},
}


def verdict(findings: list[Finding]) -> str:
    """fail when any rule fails, error when none fails but evidence is incomplete, else pass."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return "fail"
    if Status.ERROR in statuses:
        return "error"
    return "pass"


def counts(findings: list[Finding]) -> dict[str, int]:
    c = Counter(f.status.value for f in findings)
    return {s.value: c.get(s.value, 0) for s in Status}


def ordered(findings: list[Finding]) -> list[Finding]:
    """Worst first: by status, then severity, then rule id."""
    return sorted(findings, key=lambda f: (STATUS_ORDER[f.status], SEVERITY_ORDER[f.severity], f.rule_id))


def findings_document(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang) -> dict[str, Any]:
    """findings.json: the contract of ARCHITECTURE.md, plus both languages and the underlying detail."""
    out = []
    for f in findings:
        doc = f.model_dump(mode="json", exclude_none=True)
        doc["title"], doc["message"] = f.title.get(lang), f.message.get(lang)
        doc["i18n"] = {"title": f.title.model_dump(), "message": f.message.model_dump()}
        doc["notes"] = [n.get(lang) for n in f.notes]
        out.append(doc)
    return {"tenant_id": snapshot.tenant_id, "tenant_name": snapshot.tenant_name, "run_id": run_id,
            "lang": lang, "verdict": verdict(findings), "counts": counts(findings), "findings": out}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("m365audit", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def render_html(snapshot: Snapshot, findings: list[Finding], pack: PolicyPack, run_id: str, lang: Lang,
                evidence: dict[str, list[str]], generated_at: datetime, drift: dict[str, Any] | None = None) -> str:
    rules = {r.id: r for r in pack.rules}
    template = _environment().get_template("report.html.j2")
    return template.render(
        lang=lang, L={k: v[lang] for k, v in LABELS.items()}, snapshot=snapshot, run_id=run_id,
        findings=ordered(findings), rules=rules, verdict=verdict(findings), counts=counts(findings),
        severity_counts=Counter((f.severity.value, f.status.value) for f in findings), pack=pack,
        evidence=evidence, cap=REPORT_OBJECT_CAP, generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        drift=drift,
    )


def render_markdown(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang,
                    drift: dict[str, Any] | None = None) -> str:
    template = _environment().get_template("report.md.j2")
    return template.render(lang=lang, L={k: v[lang] for k, v in LABELS.items()}, snapshot=snapshot, run_id=run_id,
                           findings=ordered(findings), verdict=verdict(findings), counts=counts(findings),
                           drift=drift)


def render_junit(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang) -> bytes:
    """One test case per rule: fail -> failure, error -> error, manual and waived -> skipped with the reason."""
    c = counts(findings)
    suites = ET.Element("testsuites", name="m365audit", tests=str(len(findings)), failures=str(c["fail"]),
                        errors=str(c["error"]), skipped=str(c["manual"] + c["waived"]))
    suite = ET.SubElement(suites, "testsuite", name=f"m365audit {snapshot.tenant_name or snapshot.tenant_id}",
                          tests=str(len(findings)), failures=str(c["fail"]), errors=str(c["error"]),
                          skipped=str(c["manual"] + c["waived"]), timestamp=snapshot.collected_at.isoformat(),
                          id=run_id)
    props = ET.SubElement(suite, "properties")
    for name, value in (("tenant_id", snapshot.tenant_id), ("run_id", run_id), ("tool_version",
                                                                                 snapshot.tool_version)):
        ET.SubElement(props, "property", name=name, value=value)
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=f"m365audit.{f.severity.value}", name=f.rule_id,
                             time="0")
        text = "\n".join([f.message.get(lang)] + [f"- {o.id} {o.name} {o.detail}".rstrip() for o in f.objects]
                         + [f"{e.source}: {e.message} ({e.hint or ''})" for e in f.errors])
        if f.status is Status.FAIL:
            ET.SubElement(case, "failure", message=f.title.get(lang), type=f.severity.value).text = text
        elif f.status is Status.ERROR:
            ET.SubElement(case, "error", message=f.message.get(lang), type="incomplete-evidence").text = text
        elif f.status in (Status.MANUAL, Status.WAIVED):
            ET.SubElement(case, "skipped", message=f"{f.status.value}: {f.message.get(lang)}")
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    return snapshot.model_dump_json(indent=1).encode()


def findings_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()
