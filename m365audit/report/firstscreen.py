"""What the first screen of report.html needs: what is new tonight, what blocks a complete audit, shared rationale."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from m365audit.models import Finding, Lang, Rule, Status
from m365audit.report.hints_nl import graph_error, in_lang
from m365audit.report.vocabulary import labels

NEW_TONIGHT_CAP = 5
SHARED_MIN_RULES = 3
"""A rationale sentence found in this many rules is background, shown once."""
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
ALERT_KINDS = ("regression", "new-objects")


def to_complete(findings: Iterable[Finding], lang: Lang) -> list[dict[str, Any]]:
    """Per `error` rule: which source could not be read, why (Graph's text quoted), and what to do about it."""
    L, out = labels(lang), []
    for f in findings:
        if f.status is not Status.ERROR and f.underlying_status is not Status.ERROR:
            continue
        items = []
        for e in f.errors:
            what, quote = graph_error(e.message, lang)
            items.append({"source": e.source, "what": what, "quote": quote, "status": e.status, "code": e.code,
                          "request_id": e.request_id,
                          "todo": in_lang(e.hint, lang) if e.hint else L["no_attestation_todo"]})
        out.append({"rule_id": f.rule_id, "title": f.title.get(lang), "severity": f.severity.value,
                    "status": f.status.value, "items": items or [
                        {"source": "", "what": f.message.get(lang), "quote": None, "status": None, "code": None,
                         "request_id": None, "todo": L["no_attestation_todo"]}]})
    return out


def new_tonight(drift: Mapping[str, Any] | None, lang: Lang) -> list[str]:
    """The banner's lines about tonight: new offending objects and rules that got worse (empty without drift)."""
    report = drift.get("r") if drift else None
    if report is None:
        return []
    L, lines = labels(lang), []
    new: dict[str, tuple[str, list[str]]] = {}  # object id -> (name, the titles of the rules it offends)
    for r in report.rules:
        if r.kind not in ALERT_KINDS:
            continue
        title = r.title.get(lang)
        for o in r.added:
            new.setdefault(o.id, (o.name or o.id, []))[1].append(title)
        if not r.added:
            lines.append(L["regression_line"].format(
                rule=title, old=L[r.old_status.value] if r.old_status else "—",
                new=L[r.new_status.value] if r.new_status else "—"))
    lines = [L["new_object"].format(name=name, rule="; ".join(rules)) for name, rules in new.values()] + lines
    if len(lines) > NEW_TONIGHT_CAP:
        rest = len(lines) - NEW_TONIGHT_CAP + 1
        lines = lines[:NEW_TONIGHT_CAP - 1] + [L["new_more"].format(n=rest)]
    return lines


def sentences(text: str) -> list[str]:
    """A rationale as its sentences, whitespace normalised."""
    return [s for s in SENTENCE.split(" ".join(text.split())) if s]


def shared_rationale(rules: Iterable[Rule], lang: Lang) -> tuple[list[str], dict[str, str]]:
    """(the sentences many rules share, shown once; each rule's own rationale without them)."""
    rules = list(rules)
    per_rule = {r.id: sentences(r.rationale.get(lang)) for r in rules}
    seen = Counter(s for parts in per_rule.values() for s in dict.fromkeys(parts))
    shared = [s for s, n in seen.items() if n >= SHARED_MIN_RULES]
    common = set(shared)
    own = {rid: " ".join(s for s in parts if s not in common) for rid, parts in per_rule.items()}
    return shared, own
