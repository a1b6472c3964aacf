"""Drift in words: the report's labels in Dutch and English, summary lines for stdout and alerts, the headline."""

from __future__ import annotations

from typing import Any

from m365audit.drift.nights import PATH_CAP, DriftReport, RuleDrift
from m365audit.models import Lang

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Wijzigingen sinds de vorige controle", "en": "Changes since the previous run"},
    "first": {"nl": "Eerste controle van deze tenant: er is niets om mee te vergelijken.",
              "en": "First run of this tenant: there is nothing to compare with."},
    "not_compared": {"nl": "Niet vergeleken met de vorige controle:", "en": "Not compared with the previous run:"},
    "quiet": {"nl": "Niets veranderd sinds controle {run}.", "en": "Nothing changed since run {run}."},
    "since": {"nl": "Vergeleken met controle {run}.", "en": "Compared with run {run}."},
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
    "pass": {"nl": "voldoet", "en": "pass"},
    "fail": {"nl": "voldoet niet", "en": "fail"},
    "error": {"nl": "niet te beoordelen", "en": "error"},
    "waived": {"nl": "uitzondering", "en": "waived"},
    "manual": {"nl": "handmatige controle", "en": "manual"},
    "ok": {"nl": "gelezen", "en": "ok"},
    "absent": {"nl": "niet verzameld", "en": "absent"},
    "added": {"nl": "toegevoegd", "en": "added"},
    "removed": {"nl": "verwijderd", "en": "removed"},
    "version": {"nl": "nieuwe versie", "en": "version"},
    "head_regression": {"nl": "VERSLECHTERD", "en": "REGRESSION"},
    "head_new-objects": {"nl": "VERSLECHTERD", "en": "REGRESSION"},
    "head_rule-changed": {"nl": "REGEL GEWIJZIGD", "en": "RULE-CHANGED"},
    "head_changed": {"nl": "GEWIJZIGD", "en": "CHANGED"},
    "head_improvement": {"nl": "VERBETERD", "en": "IMPROVEMENT"},
    "head_rule": {"nl": "REGEL", "en": "RULE"},
    "head_source": {"nl": "BRON", "en": "SOURCE"},
    "headline_worse": {"nl": "VERSLECHTERD: {n} slechter dan bij controle {run}: ",
                       "en": "REGRESSION: {n} got worse since run {run}: "},
    "rules_worse": {"nl": "{n} regel|{n} regels", "en": "{n} rule(s)|{n} rule(s)"},
    "objects_new": {"nl": "+{n} object|+{n} objecten", "en": "+{n} object(s)|+{n} object(s)"},
    "headline_ok": {"nl": "Wijzigingen sinds controle {run}: niets verslechterd ({what})",
                    "en": "Drift since run {run}: no regression ({what})"},
    "no_change": {"nl": "niets gewijzigd", "en": "no change"},
    "n_changed": {"nl": "{rules} en {sources} gewijzigd", "en": "{rules} and {sources} changed"},
    "n_rules": {"nl": "{n} regel|{n} regels", "en": "{n} rule(s)|{n} rule(s)"},
    "n_sources": {"nl": "{n} bron|{n} bronnen", "en": "{n} source(s)|{n} source(s)"},
}


def word(key: str, lang: Lang) -> str:
    """One of the drift words (a status, a source state, a kind) in ``lang``; an unknown key as it is."""
    return LABELS[key][lang] if key in LABELS else key


def _count(key: str, n: int, lang: Lang) -> str:
    one, more = LABELS[key][lang].split("|")
    return (one if n == 1 else more).format(n=n)


def context(report: DriftReport | None, lang: Lang, warning: str | None = None) -> dict[str, Any]:
    """What drift.html.j2 and drift.md.j2 need: the report (None: a first run, or `warning` says why not)."""
    return {"r": report, "lang": lang, "L": {k: v[lang] for k, v in LABELS.items()}, "warning": warning,
            "cap": PATH_CAP}


def drift_bytes(report: DriftReport) -> bytes:
    """drift.json: the whole report, indented."""
    return report.model_dump_json(indent=2).encode()


def _arrow(r: RuleDrift, lang: Lang = "en") -> str:
    old = word(r.old_status.value, lang) if r.old_status else "—"
    return f"{old} → {word(r.new_status.value, lang) if r.new_status else '—'}"


def summary_lines(report: DriftReport, lang: Lang = "en") -> list[str]:
    """Plain lines for stdout, cron mail and alerts; regressions first, starting REGRESSION (nl: VERSLECHTERD)."""
    lines = []
    for r in report.rules:
        head = word(f"head_{r.kind}", lang)
        parts = [f"{head}: {r.rule_id} {_arrow(r, lang)}"]
        if r.added:
            parts.append(f"+{len(r.added)} " + ", ".join(o.name or o.id for o in r.added[:3])
                         + (" …" if len(r.added) > 3 else ""))
        if r.removed:
            parts.append(f"-{len(r.removed)}")
        parts += [c.get(lang) for c in r.causes]
        lines.append("; ".join(parts))
    lines += [f"{word('head_rule', lang)} {c.rule_id} {word(c.change, lang)}"
              + (f" v{c.old_version} → v{c.new_version}" if c.change == "version" else "")
              for c in report.rule_changes]
    for s in report.sources:
        state = f"{word(s.old_state, lang)} → {word(s.new_state, lang)}" + (f" ({s.new_error})" if s.new_error else "")
        counts = f"+{s.added} -{s.removed} ~{s.changed}"
        lines.append(f"{word('head_source', lang)} {s.source}: " + (state if s.old_state != s.new_state else counts))
    return lines


def is_regression_line(line: str) -> bool:
    """A summary line about something that got worse, in either language (for --quiet)."""
    return line.startswith((LABELS["head_regression"]["en"] + ":", LABELS["head_regression"]["nl"] + ":"))


def headline(report: DriftReport, lang: Lang = "en") -> str:
    """One line: the count of regressions since which run, or that nothing got worse."""
    n = len(report.regressions)
    run = report.old_run.run_id
    if n:
        def one(r: RuleDrift) -> str:
            return (f"{r.rule_id} ({_arrow(r, lang)}" + (f", {_count('objects_new', len(r.added), lang)}"
                                                          if r.added else "") + ")")

        return (word("headline_worse", lang).format(n=_count("rules_worse", n, lang), run=run)
                + ", ".join(one(r) for r in report.regressions[:5]) + (" …" if n > 5 else ""))
    what = word("no_change", lang) if report.quiet else word("n_changed", lang).format(
        rules=_count("n_rules", len(report.rules), lang), sources=_count("n_sources", len(report.sources), lang))
    return word("headline_ok", lang).format(run=run, what=what)
