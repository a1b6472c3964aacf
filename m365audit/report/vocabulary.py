"""The report's words in Dutch and English, and the verdict, counts and order every output shares."""

from __future__ import annotations

from collections import Counter

from m365audit.models import SEVERITY_ORDER, Finding, Lang, Status

STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WAIVED: 2, Status.MANUAL: 3, Status.PASS: 4}
STATUSES = ("fail", "error", "waived", "manual", "pass")
SEVERITIES = ("critical", "high", "medium", "low")

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Audit generatieve AI", "en": "Generative AI audit"},
    "verdict_fail": {"nl": "NIET IN ORDE: het raadsbesluit wordt overtreden",
                     "en": "NOT COMPLIANT: the council decision is broken"},
    "verdict_error": {"nl": "ONVOLLEDIG: niet alles kon worden gecontroleerd",
                      "en": "INCOMPLETE: not everything could be checked"},
    "verdict_pass": {"nl": "IN ORDE: geen overtreding gevonden", "en": "COMPLIANT: no violation found"},
    "verdict_fail_detail": {"nl": "Minstens één regel voldoet niet. Los de bevindingen hieronder op, de ernstigste "
                                  "eerst.",
                            "en": "At least one rule fails. Fix the findings below, the most severe first."},
    "verdict_error_detail": {"nl": "Geen overtreding gevonden, maar sommige bronnen konden niet worden gelezen. "
                                   "Dat is geen bewijs van naleving.",
                             "en": "No violation found, but some sources could not be read. That is not proof "
                                   "of compliance."},
    "verdict_pass_detail": {"nl": "Alle automatisch controleerbare regels voldoen (of hebben een geldige "
                                  "uitzondering). Handmatige controles staan apart vermeld.",
                            "en": "Every automatically checkable rule passes (or has a valid waiver). Manual "
                                  "rules are listed separately."},
    "tenant": {"nl": "Tenant", "en": "Tenant"},
    "run": {"nl": "Controle", "en": "Run"},
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
    "section_error": {"nl": "Niet te beoordelen: een bron kon niet worden gelezen",
                      "en": "Could not be judged: a source could not be read"},
    "section_waived": {"nl": "Uitzonderingen", "en": "Waived"},
    "section_manual": {"nl": "Handmatige controles", "en": "Check by hand"},
    "section_pass": {"nl": "Voldoet", "en": "Passing rules"},
    "objects": {"nl": "Objecten", "en": "Objects"},
    "id": {"nl": "Id", "en": "Id"},
    "name": {"nl": "Naam", "en": "Name"},
    "detail": {"nl": "Detail", "en": "Detail"},
    "waived_object": {"nl": "uitzondering", "en": "waived"},
    "more_objects": {"nl": "En nog {n}; de volledige lijst staat in findings.json.",
                     "en": "And {n} more; findings.json has the full list."},
    "rationale": {"nl": "Waarom dit telt", "en": "Why"},
    "remediation": {"nl": "Herstelactie", "en": "How to fix"},
    "rationale_remediation": {"nl": "Waarom dit telt en herstelactie", "en": "Why and how to fix"},
    "manual_where": {"nl": "Waar", "en": "Where"},
    "manual_how": {"nl": "Controle", "en": "How to check"},
    "errors": {"nl": "Wat niet kon worden gelezen", "en": "What could not be read"},
    "source": {"nl": "Bron", "en": "Source"},
    "sources": {"nl": "Bronnen", "en": "Sources"},
    "hint": {"nl": "Wat te doen", "en": "What to do"},
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
    "not_ok": {"nl": "niet gelezen", "en": "not read"},
    "pass": {"nl": "voldoet", "en": "pass"},
    "fail": {"nl": "voldoet niet", "en": "fail"},
    "error": {"nl": "niet te beoordelen", "en": "error"},
    "waived": {"nl": "uitzondering", "en": "waived"},
    "manual": {"nl": "handmatige controle", "en": "manual"},
    "critical": {"nl": "kritiek", "en": "critical"},
    "high": {"nl": "hoog", "en": "high"},
    "medium": {"nl": "gemiddeld", "en": "medium"},
    "low": {"nl": "laag", "en": "low"},
    "skip": {"nl": "Naar de bevindingen", "en": "Skip to the findings"},
    "verify_title": {"nl": "Over dit rapport", "en": "About this report"},
    "verify_text": {"nl": "Elk antwoord van Microsoft Graph staat ongewijzigd in exchanges/ naast dit rapport, "
                          "met request-id en SHA-256. manifest.json legt de SHA-256 van elk bestand vast en "
                          "verwijst naar het manifest van de vorige controle (hashketen). Controleer met "
                          "`m365audit verify RUN_DIR` of `m365audit verify --chain reports/TENANT`; speel de "
                          "controle opnieuw af met `m365audit audit --replay RUN_DIR`.",
                    "en": "Every Microsoft Graph response sits unchanged in exchanges/ beside this report, with "
                          "its request-id and SHA-256. manifest.json records the SHA-256 of every file and links "
                          "to the previous run's manifest (hash chain). Check with `m365audit verify RUN_DIR` or "
                          "`m365audit verify --chain reports/TENANT`; replay the run with "
                          "`m365audit audit --replay RUN_DIR`."},
    "md_more": {"nl": "Details, objecten, bewijs en herstelacties: report.html en findings.json in de bewijsmap.",
                "en": "Details, objects, evidence and remediation: report.html and findings.json in the run folder."},
    "footer": {"nl": "Gemaakt door m365audit", "en": "Made by m365audit"},
    "new_tonight": {"nl": "Nieuw sinds de vorige controle", "en": "New since the previous run"},
    "new_more": {"nl": "en nog {n}: zie de wijzigingen hieronder", "en": "and {n} more: see the changes below"},
    "new_object": {"nl": "nieuw: {name} ({rule})", "en": "new: {name} ({rule})"},
    "no_attestation_todo": {"nl": "zorg dat deze bron kan worden gelezen en draai de audit opnieuw",
                            "en": "make this source readable and run the audit again"},
    "regression_line": {"nl": "verslechterd sinds de vorige controle: {rule} ({old} → {new})",
                        "en": "worse since the previous run: {rule} ({old} → {new})"},
    "to_complete": {"nl": "Audit onvolledig: wat nodig is om dit te kunnen controleren",
                    "en": "Audit incomplete: what to fix so these rules can be checked"},
    "to_complete_intro": {"nl": "Deze regels zijn niet beoordeeld, omdat een bron niet kon worden gelezen. Er is "
                                "dus ook geen overtreding vastgesteld. Los dit op en draai de audit opnieuw.",
                          "en": "These rules were not judged because a source could not be read, so no violation "
                                "was observed either. Fix this and run the audit again."},
    "graph_said": {"nl": "Oorspronkelijke melding", "en": "Original message"},
    "shared_title": {"nl": "Toelichting bij alle regels", "en": "Background to every rule"},
    "shared_ref": {"nl": "Zie ook de toelichting bij alle regels.", "en": "See also the background to every rule."},
    "no_remediation_error": {"nl": "Geen herstelactie: er is geen overtreding vastgesteld. Zorg eerst dat de bron kan "
                                   "worden gelezen (zie hierboven).",
                             "en": "No remediation: no violation was observed. First make the source readable "
                                   "(see above)."},
    "action_plan": {"nl": "Actieplan (CSV, voor Excel)", "en": "Action plan (CSV, for Excel)"},
    "ocsf": {"nl": "Bevindingen voor een SIEM (OCSF)", "en": "Findings for a SIEM (OCSF)"},
    "downloads": {"nl": "Bestanden in deze bewijsmap", "en": "Files in this run folder"},
}

VERDICT_WORDS: dict[str, dict[Lang, str]] = {
    "pass": {"nl": "IN ORDE", "en": "COMPLIANT"},
    "fail": {"nl": "NIET IN ORDE", "en": "NOT COMPLIANT"},
    "error": {"nl": "ONVOLLEDIG", "en": "INCOMPLETE"},
}
"""The verdict as one word, where a line starts with it: the terminal, the log, an alert's subject and card."""

PLURALS: dict[str, dict[Lang, tuple[str, str]]] = {
    "sum_fail": {"nl": ("{n} van de {total} regels voldoet niet: {critical} kritiek, {high} hoog.",
                        "{n} van de {total} regels voldoen niet: {critical} kritiek, {high} hoog."),
                 "en": ("{n} of {total} rules fails: {critical} critical, {high} high.",
                        "{n} of {total} rules fail: {critical} critical, {high} high.")},
    "sum_error": {"nl": ("{n} regel is niet te beoordelen: een bron kon niet worden gelezen.",
                         "{n} regels zijn niet te beoordelen: een bron kon niet worden gelezen."),
                  "en": ("{n} rule could not be judged: a source could not be read.",
                         "{n} rules could not be judged: a source could not be read.")},
    "sum_waived": {"nl": ("{n} regel heeft een geldige uitzondering.", "{n} regels hebben een geldige uitzondering."),
                   "en": ("{n} rule has a valid waiver.", "{n} rules have a valid waiver.")},
    "sum_manual": {"nl": ("{n} regel moet met de hand worden gecontroleerd; {attested} daarvan heeft een geldige "
                          "verklaring.",
                          "{n} regels moeten met de hand worden gecontroleerd; {attested} daarvan hebben een geldige "
                          "verklaring."),
                   "en": ("{n} rule must be checked by hand; {attested} of them has a current attestation.",
                          "{n} rules must be checked by hand; {attested} of them have a current attestation.")},
    "sum_pass": {"nl": ("{n} regel voldoet.", "{n} regels voldoen."), "en": ("{n} rule passes.", "{n} rules pass.")},
    "manual_open": {"nl": ("Let op: {n} handmatige controle heeft geen geldige verklaring ({high} met ernst hoog of "
                           "kritiek). Het oordeel hierboven gaat alleen over wat automatisch is gecontroleerd.",
                           "Let op: {n} handmatige controles hebben geen geldige verklaring ({high} met ernst hoog "
                           "of kritiek). Het oordeel hierboven gaat alleen over wat automatisch is gecontroleerd."),
                    "en": ("Note: {n} manual check has no valid attestation ({high} of them high or critical). The "
                           "verdict above covers only what was checked automatically.",
                           "Note: {n} manual checks have no valid attestation ({high} of them high or critical). The "
                           "verdict above covers only what was checked automatically.")},
}
"""Sentences with a count: (one, more), chosen by ``plural``."""


def labels(lang: Lang) -> dict[str, str]:
    """Every label in one language."""
    return {k: v[lang] for k, v in LABELS.items()}


def plural(key: str, n: int, lang: Lang, **values: object) -> str:
    """The sentence ``key`` for ``n`` things: singular for 1, plural otherwise."""
    one, more = PLURALS[key][lang]
    return (one if n == 1 else more).format(n=n, **values)


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
    c = counts(findings)
    failing = Counter(f.severity.value for f in findings if f.status is Status.FAIL)
    attested = sum(1 for f in findings if f.status is Status.MANUAL and f.attestation is not None)
    lines = []
    if c["fail"]:
        lines.append(plural("sum_fail", c["fail"], lang, total=len(findings), critical=failing["critical"],
                            high=failing["high"]))
    order = ("error", "waived", "manual", "pass") if c["fail"] or c["error"] else ("pass", "waived", "manual")
    for status in order:
        if c[status] and not (status == "manual" and attested < c[status]):  # manual_open says that one
            lines.append(plural(f"sum_{status}", c[status], lang, attested=attested))
    return lines


def manual_open(findings: list[Finding], lang: Lang) -> str | None:
    """The line under the headline: manual checks without a valid attestation (None when there are none)."""
    open_ = [f for f in findings if f.status is Status.MANUAL and f.attestation is None]
    if not open_:
        return None
    high = sum(1 for f in open_ if f.severity.value in ("high", "critical"))
    return plural("manual_open", len(open_), lang, high=high)
