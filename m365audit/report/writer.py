"""Render the outputs of a run: findings.json (the contract), report.html, report.md and junit.xml."""

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
from m365audit.models import SEVERITY_ORDER, Finding, Lang, PolicyPack, Snapshot, Status
from m365audit.report.hints_nl import in_lang
from m365audit.report.pseudonymise import Pseudonymiser

STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WAIVED: 2, Status.MANUAL: 3, Status.PASS: 4}
STATUSES = ("fail", "error", "waived", "manual", "pass")
SEVERITIES = ("critical", "high", "medium", "low")
REPORT_OBJECT_CAP = 25
EVIDENCE_CAP = 6
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")

Evidence = Mapping[str, Sequence[ExchangeRef | str]]

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Audit generatieve AI", "en": "Generative AI audit"},
    "verdict_fail": {"nl": "NIET IN ORDE: het raadsbesluit wordt overtreden",
                     "en": "NOT COMPLIANT: the council decision is broken"},
    "verdict_error": {"nl": "ONVOLLEDIG: niet alles kon worden gecontroleerd",
                      "en": "INCOMPLETE: not everything could be checked"},
    "verdict_pass": {"nl": "IN ORDE: geen overtreding gevonden", "en": "COMPLIANT: no violation found"},
    "verdict_fail_detail": {"nl": "Minstens één regel faalt. Los de bevindingen hieronder op, de ernstigste eerst.",
                            "en": "At least one rule fails. Fix the findings below, the most severe first."},
    "verdict_error_detail": {"nl": "Geen overtreding gevonden, maar sommige bronnen konden niet worden gelezen. "
                                   "Dat is geen bewijs van naleving.",
                             "en": "No violation found, but some sources could not be read. That is not proof "
                                   "of compliance."},
    "verdict_pass_detail": {"nl": "Alle automatisch controleerbare regels voldoen (of hebben een geldige "
                                  "uitzondering). Handmatige regels staan apart vermeld.",
                            "en": "Every automatically checkable rule passes (or has a valid waiver). Manual "
                                  "rules are listed separately."},
    "sum_fail": {"nl": "{n} van de {total} regels voldoen niet, waarvan {critical} kritiek en {high} hoog.",
                 "en": "{n} of {total} rules fail: {critical} critical, {high} high."},
    "sum_error": {"nl": "{n} regels konden niet worden beoordeeld: een bron was niet leesbaar.",
                  "en": "{n} rules could not be judged: a source could not be read."},
    "sum_waived": {"nl": "{n} regels hebben een geldige uitzondering.", "en": "{n} rules have a valid waiver."},
    "sum_manual": {"nl": "{n} regels moeten met de hand worden gecontroleerd; {attested} daarvan hebben een "
                         "geldige verklaring.",
                   "en": "{n} rules must be checked by hand; {attested} of them have a current attestation."},
    "sum_pass": {"nl": "{n} regels voldoen.", "en": "{n} rules pass."},
    "tenant": {"nl": "Tenant", "en": "Tenant"},
    "run": {"nl": "Run", "en": "Run"},
    "collected": {"nl": "Verzameld", "en": "Collected"},
    "tool": {"nl": "Versie", "en": "Version"},
    "pack": {"nl": "Beleidspakket (sha256)", "en": "Policy pack (sha256)"},
    "pseudonymised": {"nl": "Gepseudonimiseerd: namen en adressen van gebruikers zijn vervangen door "
                            "user-… (sleutel bij de beheerder).",
                      "en": "Pseudonymised: user names and addresses are replaced by user-… (key kept by "
                            "the administrator)."},
    "overview": {"nl": "Overzicht", "en": "Overview"},
    "counts": {"nl": "Telling naar ernst en status", "en": "Counts by severity and status"},
    "total": {"nl": "Totaal", "en": "Total"},
    "status": {"nl": "Status", "en": "Status"},
    "severity": {"nl": "Ernst", "en": "Severity"},
    "rule": {"nl": "Regel", "en": "Rule"},
    "summary": {"nl": "Samenvatting", "en": "Summary"},
    "section_fail": {"nl": "Voldoet niet", "en": "Failing rules"},
    "section_error": {"nl": "Niet te beoordelen: bron niet leesbaar", "en": "Could not be judged: source unreadable"},
    "section_waived": {"nl": "Uitzonderingen", "en": "Waived"},
    "section_manual": {"nl": "Handmatig te controleren", "en": "Check by hand"},
    "section_pass": {"nl": "Voldoet", "en": "Passing rules"},
    "objects": {"nl": "Objecten", "en": "Objects"},
    "id": {"nl": "Id", "en": "Id"},
    "name": {"nl": "Naam", "en": "Name"},
    "detail": {"nl": "Detail", "en": "Detail"},
    "waived_object": {"nl": "uitzondering", "en": "waived"},
    "more_objects": {"nl": "En nog {n}; de volledige lijst staat in findings.json.",
                     "en": "And {n} more; findings.json has the full list."},
    "rationale": {"nl": "Waarom", "en": "Why"},
    "remediation": {"nl": "Herstel", "en": "How to fix"},
    "rationale_remediation": {"nl": "Waarom en herstel", "en": "Why and how to fix"},
    "manual_where": {"nl": "Waar", "en": "Where"},
    "manual_how": {"nl": "Controle", "en": "How to check"},
    "errors": {"nl": "Fouten bij het lezen", "en": "Read errors"},
    "source": {"nl": "Bron", "en": "Source"},
    "sources": {"nl": "Bronnen", "en": "Sources"},
    "hint": {"nl": "Tip", "en": "Hint"},
    "http_status": {"nl": "HTTP-status", "en": "HTTP status"},
    "evidence": {"nl": "Bewijs", "en": "Evidence"},
    "evidence_more": {"nl": "en nog {n}", "en": "and {n} more"},
    "attempt": {"nl": "poging", "en": "attempt"},
    "notes": {"nl": "Opmerkingen", "en": "Notes"},
    "references": {"nl": "Referenties", "en": "References"},
    "waiver": {"nl": "Uitzondering", "en": "Waiver"},
    "waiver_text": {"nl": "{reason}. Goedgekeurd door {by}, geldig tot en met {expires}.",
                    "en": "{reason}. Approved by {by}, valid until {expires}."},
    "waiver_days": {"nl": "Verloopt over {n} dagen.", "en": "Expires in {n} days."},
    "waiver_without": {"nl": "Zonder uitzondering", "en": "Without the waiver"},
    "attestation": {"nl": "Verklaring", "en": "Attestation"},
    "attestation_text": {"nl": "{statement}. Verklaard door {by} op {date}, geldig tot en met {expires}.",
                         "en": "{statement}. Attested by {by} on {date}, valid until {expires}."},
    "no_attestation": {"nl": "Geen geldige verklaring: controleer met de hand en leg het vast in "
                             "attestations.yaml.",
                       "en": "No current attestation: check by hand and record it in attestations.yaml."},
    "sources_title": {"nl": "Gelezen bronnen", "en": "Sources read"},
    "requests": {"nl": "Verzoeken", "en": "Requests"},
    "request_ids": {"nl": "Request-id's", "en": "Request ids"},
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
    "skip": {"nl": "Naar de bevindingen", "en": "Skip to the findings"},
    "verify_title": {"nl": "Over dit rapport", "en": "About this report"},
    "verify_text": {"nl": "Elk antwoord van Microsoft Graph staat ongewijzigd in exchanges/ naast dit rapport, "
                          "met request-id en SHA-256. manifest.json legt de SHA-256 van elk bestand vast en "
                          "verwijst naar het manifest van de vorige run (hashketen). Controleer met "
                          "`m365audit verify RUN_DIR` of `m365audit verify --chain reports/TENANT`; speel de "
                          "run opnieuw af met `m365audit audit --replay RUN_DIR`.",
                    "en": "Every Microsoft Graph response sits unchanged in exchanges/ beside this report, with "
                          "its request-id and SHA-256. manifest.json records the SHA-256 of every file and links "
                          "to the previous run's manifest (hash chain). Check with `m365audit verify RUN_DIR` or "
                          "`m365audit verify --chain reports/TENANT`; replay the run with "
                          "`m365audit audit --replay RUN_DIR`."},
    "md_more": {"nl": "Details, objecten, bewijs en herstel: report.html en findings.json in de run-map.",
                "en": "Details, objects, evidence and remediation: report.html and findings.json in the run folder."},
    "footer": {"nl": "Gemaakt door m365audit", "en": "Made by m365audit"},
}


def labels(lang: Lang) -> dict[str, str]:
    """Every label in one language."""
    return {k: v[lang] for k, v in LABELS.items()}


def verdict(findings: list[Finding]) -> str:
    """fail when any rule fails, error when none fails but evidence is incomplete, else pass."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return "fail"
    if Status.ERROR in statuses:
        return "error"
    return "pass"


def counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per status, every status present."""
    c = Counter(f.status.value for f in findings)
    return {s.value: c.get(s.value, 0) for s in Status}


def ordered(findings: list[Finding]) -> list[Finding]:
    """Worst first: by status, then severity, then rule id."""
    return sorted(findings, key=lambda f: (STATUS_ORDER[f.status], SEVERITY_ORDER[f.severity], f.rule_id))


def summary_lines(findings: list[Finding], lang: Lang) -> list[str]:
    """The verdict in a few sentences a manager reads in five seconds."""
    L, c = labels(lang), counts(findings)
    failing = Counter(f.severity.value for f in findings if f.status is Status.FAIL)
    attested = sum(1 for f in findings if f.status is Status.MANUAL and f.attestation is not None)
    lines = []
    if c["fail"]:
        lines.append(L["sum_fail"].format(n=c["fail"], total=len(findings), critical=failing["critical"],
                                          high=failing["high"]))
    order = ("error", "waived", "manual", "pass") if c["fail"] or c["error"] else ("pass", "waived", "manual")
    for status in order:
        if c[status]:
            lines.append(L[f"sum_{status}"].format(n=c[status], attested=attested))
    return lines


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
    return env


def render_html(snapshot: Snapshot, findings: list[Finding], pack: PolicyPack, run_id: str, lang: Lang,
                evidence: Evidence, generated_at: datetime, pseudonymised: bool = False,
                drift: Mapping[str, Any] | None = None) -> str:
    """report.html: one self-contained, autoescaped page (inline CSS, no scripts, no external resources)."""
    rules = {r.id: r for r in pack.rules}
    by_status = {s: [f for f in ordered(findings) if f.status.value == s] for s in STATUSES}
    today: date = generated_at.date()
    return template_environment().get_template("report.html.j2").render(
        lang=lang, L=labels(lang), snapshot=snapshot, run_id=run_id, findings=ordered(findings), rules=rules,
        verdict=verdict(findings), counts=counts(findings), summary=summary_lines(findings, lang),
        severity_counts=Counter((f.severity.value, f.status.value) for f in findings), pack=pack,
        by_status=by_status, statuses=STATUSES, severities=SEVERITIES, evidence=evidence_refs(evidence),
        cap=REPORT_OBJECT_CAP, evidence_cap=EVIDENCE_CAP, today=today, pseudonymised=pseudonymised, drift=drift,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"))


def render_markdown(snapshot: Snapshot, findings: list[Finding], run_id: str, lang: Lang,
                    pseudonymised: bool = False, drift: Mapping[str, Any] | None = None) -> str:
    """report.md: the verdict and the rules that need attention, short enough for a ticket or an e-mail."""
    text = template_environment().get_template("report.md.j2").render(
        lang=lang, L=labels(lang), snapshot=snapshot, run_id=run_id, findings=ordered(findings),
        verdict=verdict(findings), counts=counts(findings), summary=summary_lines(findings, lang),
        pseudonymised=pseudonymised, drift=drift)
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
    return f"{f.status.value}: {f.message.get(lang)}"


def _case_text(f: Finding, lang: Lang) -> str:
    lines = [f.message.get(lang)]
    lines += [f"- {o.id} {o.name} {o.detail}".rstrip() for o in f.objects]
    for e in f.errors:
        where = " ".join(x for x in (str(e.status or ""), e.code or "", e.request_id or "") if x)
        lines.append(f"{e.source}: {in_lang(e.message, lang)} [{where}]"
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
    ET.SubElement(suite, "system-out").text = _xml(" ".join(summary_lines(findings, lang)))
    ET.SubElement(suite, "system-err")
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True)) + b"\n"



def findings_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


def write_reports(write: Callable[[str, bytes], object], snapshot: Snapshot, findings: list[Finding],
                  pack: PolicyPack, run_id: str, lang: Lang, evidence: Evidence, generated_at: datetime,
                  pseudonymiser: Pseudonymiser | None = None, drift: dict[str, Any] | None = None) -> None:
    """findings.json, report.html, report.md and junit.xml (pseudonymised when asked; the evidence never is)."""
    if pseudonymiser is not None:
        snapshot = pseudonymiser.snapshot(snapshot)
        findings = [pseudonymiser.finding(f) for f in findings]
    pseudo = pseudonymiser is not None
    write("findings.json", findings_bytes(findings_document(snapshot, findings, run_id, lang, evidence, pack, pseudo)))
    write("report.html", render_html(snapshot, findings, pack, run_id, lang, evidence, generated_at,
                                     pseudonymised=pseudo, drift=drift).encode())
    write("report.md", render_markdown(snapshot, findings, run_id, lang, pseudonymised=pseudo, drift=drift).encode())
    write("junit.xml", render_junit(snapshot, findings, run_id, lang))
