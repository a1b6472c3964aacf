"""Drift in words: the report's labels in Dutch and English, summary lines for stdout and alerts, the headline."""

from __future__ import annotations

from typing import Any

from m365audit.drift.nights import ALERT_KINDS, PATH_CAP, DriftReport, RuleDrift
from m365audit.models import Lang

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Wijzigingen sinds de vorige run", "en": "Changes since the previous run"},
    "first": {"nl": "Eerste run van deze tenant: er is niets om mee te vergelijken.",
              "en": "First run of this tenant: there is nothing to compare with."},
    "not_compared": {"nl": "Niet vergeleken met de vorige run:", "en": "Not compared with the previous run:"},
    "quiet": {"nl": "Niets veranderd sinds run {run}.", "en": "Nothing changed since run {run}."},
    "since": {"nl": "Vergeleken met run {run}.", "en": "Compared with run {run}."},
    "regression": {"nl": "verslechterd", "en": "regression"},
    "new-objects": {"nl": "nieuwe objecten", "en": "new objects"},
    "rule-changed": {"nl": "regel gewijzigd", "en": "rule changed"},
    "changed": {"nl": "gewijzigd", "en": "changed"},
    "improvement": {"nl": "verbeterd", "en": "improvement"},
    "rules": {"nl": "Regels", "en": "Rules"},
    "kind": {"nl": "Soort", "en": "Kind"},
    "status": {"nl": "Status", "en": "Status"},
    "what": {"nl": "Wat en waarom", "en": "What and why"},
    "rule_changes": {"nl": "Wijzigingen in het beleidspakket", "en": "Policy pack changes"},
    "pack_changed": {"nl": "Het beleidspakket (of een lokaal bestand) is gewijzigd.",
                     "en": "The policy pack (or a local file) changed."},
    "sources": {"nl": "Gewijzigde bronnen", "en": "Changed sources"},
    "appeared": {"nl": "erbij", "en": "appeared"},
    "disappeared": {"nl": "verdwenen", "en": "disappeared"},
    "more": {"nl": "en nog {n}: zie drift.json", "en": "and {n} more: see drift.json"},
    "none": {"nl": "geen", "en": "none"},
}


def context(report: DriftReport | None, lang: Lang, warning: str | None = None) -> dict[str, Any]:
    """What drift.html.j2 and drift.md.j2 need: the report (None: a first run, or `warning` says why not)."""
    return {"r": report, "lang": lang, "L": {k: v[lang] for k, v in LABELS.items()}, "warning": warning,
            "cap": PATH_CAP}


def drift_bytes(report: DriftReport) -> bytes:
    """drift.json: the whole report, indented."""
    return report.model_dump_json(indent=2).encode()


def _arrow(r: RuleDrift) -> str:
    return f"{r.old_status.value if r.old_status else '—'} → {r.new_status.value if r.new_status else '—'}"


def summary_lines(report: DriftReport, lang: Lang = "en") -> list[str]:
    """Plain lines for stdout, cron mail and alerts; regressions first, each starting with REGRESSION."""
    lines = []
    for r in report.rules:
        head = "REGRESSION" if r.kind in ALERT_KINDS else r.kind.upper()
        parts = [f"{head}: {r.rule_id} {_arrow(r)}"]
        if r.added:
            parts.append(f"+{len(r.added)} " + ", ".join(o.name or o.id for o in r.added[:3])
                         + (" …" if len(r.added) > 3 else ""))
        if r.removed:
            parts.append(f"-{len(r.removed)}")
        parts += [c.get(lang) for c in r.causes]
        lines.append("; ".join(parts))
    lines += [f"RULE {c.rule_id} {c.change}" + (f" v{c.old_version} → v{c.new_version}" if c.change == "version"
                                                 else "") for c in report.rule_changes]
    for s in report.sources:
        state = f"{s.old_state} → {s.new_state}" + (f" ({s.new_error})" if s.new_error else "")
        counts = f"+{s.added} -{s.removed} ~{s.changed}"
        lines.append(f"SOURCE {s.source}: " + (state if s.old_state != s.new_state else counts))
    return lines


def headline(report: DriftReport) -> str:
    """One line: the count of regressions since which run, or that nothing got worse."""
    n = len(report.regressions)
    if n:
        def one(r: RuleDrift) -> str:
            return f"{r.rule_id} ({_arrow(r)}" + (f", +{len(r.added)} object(s)" if r.added else "") + ")"

        return (f"REGRESSION: {n} rule(s) got worse since run {report.old_run.run_id}: "
                + ", ".join(one(r) for r in report.regressions[:5]) + (" …" if n > 5 else ""))
    what = "no change" if report.quiet else f"{len(report.rules)} rule(s) and {len(report.sources)} source(s) changed"
    return f"Drift since run {report.old_run.run_id}: no regression ({what})"
