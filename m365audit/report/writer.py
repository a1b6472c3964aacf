"""Render the outputs of a run: findings.json (the contract), report.html, report.md, junit.xml and the exports."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from m365audit.evidence import ExchangeRef
from m365audit.models import Finding, Lang, PolicyPack, Snapshot, Status
from m365audit.report.exports import action_plan_csv, ocsf_bytes
from m365audit.report.firstscreen import new_tonight, shared_rationale, to_complete
from m365audit.report.hints_nl import detail_in_lang, graph_error, in_lang
from m365audit.report.pseudonymise import Pseudonymiser
from m365audit.report.vocabulary import (
    SEVERITIES,
    STATUSES,
    counts,
    labels,
    manual_open,
    ordered,
    summary_lines,
    verdict,
)

REPORT_OBJECT_CAP = 25
EVIDENCE_CAP = 6
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")

Evidence = Mapping[str, Sequence[ExchangeRef | str]]



def evidence_refs(evidence: Evidence | None) -> dict[str, list[ExchangeRef]]:
    """The evidence index with bare file names (older callers) turned into references without a request-id."""
    return {source: [r if isinstance(r, ExchangeRef) else ExchangeRef(r, None, 0) for r in refs]
            for source, refs in (evidence or {}).items()}


def findings_document(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang,
                      evidence: Evidence | None = None, pack: PolicyPack | None = None,
                      pseudonymised: bool = False) -> dict[str, Any]:
    """findings.json: the contract of ARCHITECTURE.md, plus both languages, evidence and the underlying detail."""
    out, refs = [], evidence_refs(evidence)
    for f in findings:
        doc = f.model_dump(mode="json", exclude_none=True)
        doc["title"], doc["message"] = f.title.get(lang), f.message.get(lang)
        doc["i18n"] = {"title": f.title.model_dump(), "message": f.message.model_dump()}
        doc["notes"] = [n.get(lang) for n in f.notes]
        if evidence is not None:
            doc["evidence"] = [{"source": s, "file": f"exchanges/{r.file}", "request_id": r.request_id,
                                "status": r.status, "attempt": r.attempt}
                               for s in f.sources for r in refs.get(s, [])]
        out.append(doc)
    doc_all: dict[str, Any] = {
        "tenant_id": snapshot.tenant_id, "tenant_name": snapshot.tenant_name, "run_id": run_id, "lang": lang,
        "collected_at": snapshot.collected_at.isoformat(), "tool_version": snapshot.tool_version,
        "verdict": verdict(findings), "counts": counts(findings), "pseudonymised": pseudonymised,
    }
    if pack is not None:
        doc_all["policy_pack_digest"] = pack.digest
    doc_all["findings"] = out
    return doc_all


def safe_url(url: str | None) -> str | None:
    """Only http(s) links reach the report (a policy file cannot smuggle javascript: in)."""
    return url if url and re.match(r"^https?://", url, re.IGNORECASE) else None


def md_escape(value: object) -> Markup:
    """Text as literal Markdown on one line: no links, emphasis, HTML, entities or table breaks (CommonMark escapes)."""
    return Markup(MD_SPECIAL.sub(r"\\\1", _xml(" ".join(str(value).split()))))


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """One jinja2 environment per process: templates compile once, not on every render."""
    env = Environment(loader=PackageLoader("m365audit.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["safe_url"] = safe_url
    env.filters["md"] = md_escape
    env.filters["in_lang"] = in_lang  # our hints in Dutch for a Dutch report (hints_nl.py)
    env.filters["detail"] = detail_in_lang  # the phrases of object details in Dutch; names stay as written
    env.filters["graph_error"] = graph_error  # Dutch explanation of a Graph error, Graph's own text quoted
    return env


def render_html(snapshot: Snapshot, findings: list[Finding], pack: PolicyPack, run_id: str, lang: Lang,
                evidence: Evidence, generated_at: datetime, pseudonymised: bool = False,
                drift: Mapping[str, Any] | None = None) -> str:
    """report.html: one self-contained, autoescaped page (inline CSS, no scripts, no external resources)."""
    rules = {r.id: r for r in pack.rules}
    by_status = {s: [f for f in ordered(findings) if f.status.value == s] for s in STATUSES}
    today: date = generated_at.date()
    shared, own_rationale = shared_rationale(pack.rules, lang)
    return template_environment().get_template("report.html.j2").render(
        lang=lang, L=labels(lang), snapshot=snapshot, run_id=run_id, findings=ordered(findings), rules=rules,
        verdict=verdict(findings), counts=counts(findings), summary=summary_lines(findings, lang),
        severity_counts=Counter((f.severity.value, f.status.value) for f in findings), pack=pack,
        by_status=by_status, statuses=STATUSES, severities=SEVERITIES, evidence=evidence_refs(evidence),
        cap=REPORT_OBJECT_CAP, evidence_cap=EVIDENCE_CAP, today=today, pseudonymised=pseudonymised, drift=drift,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"), manual_open=manual_open(findings, lang),
        new_tonight=new_tonight(drift, lang), to_complete=to_complete(ordered(findings), lang),
        shared_rationale=shared, own_rationale=own_rationale)


def render_markdown(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang,
                    pseudonymised: bool = False, drift: Mapping[str, Any] | None = None) -> str:
    """report.md: the verdict and the rules that need attention, short enough for a ticket or an e-mail."""
    text = template_environment().get_template("report.md.j2").render(
        lang=lang, L=labels(lang), snapshot=snapshot, run_id=run_id, findings=ordered(findings),
        verdict=verdict(findings), counts=counts(findings), summary=summary_lines(findings, lang),
        pseudonymised=pseudonymised, drift=drift, manual_open=manual_open(findings, lang),
        new_tonight=new_tonight(drift, lang))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _xml(text: str) -> str:
    """Text XML 1.0 can carry: control characters from tenant data would make junit.xml unreadable."""
    return XML_INVALID.sub("\ufffd", text)


def _skip_reason(f: Finding, lang: Lang) -> str:
    L = labels(lang)
    if f.status is Status.WAIVED and f.waiver is not None:
        w = f.waiver
        return f"{L['waived']}: " + L["waiver_text"].format(reason=w.reason.rstrip("."), by=w.approved_by,
                                                            expires=w.expires.isoformat())
    if f.attestation is not None:
        a = f.attestation
        return f"{L['manual']}: " + L["attestation_text"].format(
            statement=a.statement.rstrip("."), by=a.attested_by, date=a.date.isoformat(),
            expires=a.expires.isoformat())
    return f"{L[f.status.value]}: {f.message.get(lang)}"


def _case_text(f: Finding, lang: Lang) -> str:
    lines = [f.message.get(lang)]
    lines += [f"- {o.id} {o.name} {detail_in_lang(o.detail, lang)}".rstrip() for o in f.objects]
    for e in f.errors:
        where = " ".join(x for x in (str(e.status or ""), e.code or "", e.request_id or "") if x)
        what, quote = graph_error(e.message, lang)
        lines.append(f"{e.source}: {what}" + (f" ({labels(lang)['graph_said']}: \"{quote}\")" if quote else "")
                     + f" [{where}]"
                     + (f" {labels(lang)['hint']}: {in_lang(e.hint, lang)}" if e.hint else ""))
    return "\n".join(lines)


def render_junit(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang) -> bytes:
    """One test case per rule: fail -> failure, error -> error, manual and waived -> skipped with the reason."""
    c = counts(findings)
    totals = {"tests": str(len(findings)), "failures": str(c["fail"]), "errors": str(c["error"]),
              "skipped": str(c["manual"] + c["waived"]), "time": "0"}
    suites = ET.Element("testsuites", {"name": "m365audit", **totals})
    suite = ET.SubElement(suites, "testsuite", {
        "name": _xml(f"m365audit {snapshot.tenant_name or snapshot.tenant_id}"), **totals,
        "timestamp": snapshot.collected_at.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": "graph.microsoft.com",
        "id": run_id, "package": "m365audit"})
    props = ET.SubElement(suite, "properties")
    for name, value in (("tenant_id", snapshot.tenant_id), ("run_id", run_id),
                        ("tool_version", snapshot.tool_version), ("verdict", verdict(findings))):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    for f in ordered(findings):
        case = ET.SubElement(suite, "testcase", name=f.rule_id, classname=f"m365audit.{f.severity.value}", time="0")
        if f.status is Status.FAIL:
            ET.SubElement(case, "failure", message=_xml(f.title.get(lang)),
                          type=f.severity.value).text = _xml(_case_text(f, lang))
        elif f.status is Status.ERROR:
            ET.SubElement(case, "error", message=_xml(f.message.get(lang)),
                          type="incomplete-evidence").text = _xml(_case_text(f, lang))
        elif f.status in (Status.MANUAL, Status.WAIVED):
            ET.SubElement(case, "skipped", message=_xml(_skip_reason(f, lang)))
    ET.SubElement(suite, "system-out").text = _xml(" ".join(summary_lines(findings, lang)
                                                            + [manual_open(findings, lang) or ""]).strip())
    ET.SubElement(suite, "system-err")
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True)) + b"\n"



def findings_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


def write_reports(write: Callable[[str, bytes], object], snapshot: Snapshot, findings: list[Finding],
                  pack: PolicyPack, run_id: str, lang: Lang, evidence: Evidence, generated_at: datetime,
                  pseudonymiser: Pseudonymiser | None = None, drift: dict[str, Any] | None = None) -> None:
    """findings.json, report.html, report.md, junit.xml, action-plan.csv and findings.ocsf.json (pseudonymised when
    asked; the evidence never is)."""
    if pseudonymiser is not None:
        snapshot = pseudonymiser.snapshot(snapshot)
        findings = [pseudonymiser.finding(f) for f in findings]
    pseudo = pseudonymiser is not None
    write("findings.json", findings_bytes(findings_document(snapshot, findings, run_id, lang, evidence, pack, pseudo)))
    write("report.html", render_html(snapshot, findings, pack, run_id, lang, evidence, generated_at,
                                     pseudonymised=pseudo, drift=drift).encode())
    write("report.md", render_markdown(snapshot, findings, run_id, lang, pseudonymised=pseudo, drift=drift).encode())
    write("junit.xml", render_junit(snapshot, findings, run_id, lang))
    write("action-plan.csv", action_plan_csv(findings, pack, lang))
    write("findings.ocsf.json", ocsf_bytes(snapshot, findings, pack, run_id, lang))
