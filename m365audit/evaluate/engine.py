"""Pure evaluation: (snapshot, policy pack, today) -> findings. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from m365audit.evaluate.operators import TypeMismatch, Unknown, Verdict, compile_condition, search
from m365audit.evidence import ItemsError, PagedItems, is_list
from m365audit.models import (
    Attestation,
    Check,
    CheckOutcome,
    Finding,
    FindingError,
    FindingObject,
    PolicyPack,
    RejectedEntry,
    Rule,
    Snapshot,
    SourceError,
    Status,
    Text,
    Waiver,
)
from m365audit.policy import rule_params


def _describe(check: Check, item: Any) -> FindingObject:
    def text(expr: str | None) -> str:
        if expr is None:
            return ""
        try:
            value = search(expr, item)
        except TypeMismatch:  # naming an object is best effort; it never changes the verdict
            return ""
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    return FindingObject(id=text(check.objects.id) or "?", name=text(check.objects.name),
                         detail=text(check.objects.detail))


def run_declarative(check: Check, data: Any, catalogs: dict[str, list[Any]]) -> CheckOutcome:
    """Evaluate where/expect/conditions over the items of one source (docs/rules.md, 'Semantics')."""
    try:
        if isinstance(data, PagedItems) and check.items:
            data = list(data)  # a JMESPath expression needs the whole list in memory
        items = search(check.items, data) if check.items else (data if is_list(data) else [data])
    except TypeMismatch as exc:
        return _error(str(exc), str(exc))
    except ItemsError as exc:
        return _error(f"The stored data can no longer be read: {exc} ({exc.hint})",
                      f"De opgeslagen gegevens zijn niet meer leesbaar: {exc} ({exc.hint})")
    if not is_list(items):
        what = "nothing (null)" if items is None else f"a {type(items).__name__}"
        return _error(f"'items' selected {what}, not a list: the data does not have the shape the rule expects",
                      f"'items' leverde {'niets (null)' if items is None else f'een {type(items).__name__}'} op, "
                      "geen lijst: de gegevens hebben niet de vorm die de regel verwacht")
    where = [compile_condition(c, catalogs) for c in check.where]
    conditions = [compile_condition(c, catalogs) for c in check.conditions]
    keep_failing = check.expect == "all"  # keep only the items the finding will name: memory follows the finding
    hits: list[Any] = []  # none: in scope and satisfying; all: in scope and not satisfying; any: satisfying
    unknown: list[tuple[Any, Unknown]] = []
    n = k = 0
    try:
        for it in items:
            scope = all3(t(it) for t in where)
            if scope is False:
                continue
            sat = all3(t(it) for t in conditions)
            if scope is True:
                n += 1
                k += sat is True
            hit = all3((scope, not3(sat) if keep_failing else sat))
            if hit is True:
                hits.append(it)
            elif isinstance(hit, Unknown):
                unknown.append((it, hit))
    except ItemsError as exc:
        return _error(f"The stored data can no longer be read: {exc} ({exc.hint})",
                      f"De opgeslagen gegevens zijn niet meer leesbaar: {exc} ({exc.hint})")
    return _verdict(check, n, k, hits, unknown)


def all3(verdicts: Iterable[Verdict]) -> Verdict:
    """Three-valued AND: False if any is False, else Unknown (the first) if any is, else True."""
    first: Unknown | None = None
    for v in verdicts:
        if v is False:
            return False
        if isinstance(v, Unknown) and first is None:
            first = v
    return True if first is None else first


def not3(verdict: Verdict) -> Verdict:
    return verdict if isinstance(verdict, Unknown) else not verdict


def _verdict(check: Check, n: int, k: int, hits: list[Any], unknown: list[tuple[Any, Unknown]]) -> CheckOutcome:
    """pass, fail or error from the decided items; an undecided item blocks every verdict it could change."""
    if unknown and not hits:  # none/all: a hit is a proven fail; any: a hit is a proven pass
        return _cannot_judge(check, unknown)
    extra_en = extra_nl = ""
    if unknown:  # the verdict stands whatever the undecided items hold; say they exist
        extra_en = f" {len(unknown)} more could not be judged: {_reasons(check, unknown, 'en')}."
        extra_nl = f" Nog {len(unknown)} niet te beoordelen: {_reasons(check, unknown, 'nl')}."
    if n == 0 and not hits and check.expect != "any":
        return CheckOutcome(status=Status.PASS, message=Text(
            en="0 in scope: the source was read completely and holds nothing this rule applies to.",
            nl="0 binnen bereik: de bron is volledig gelezen en bevat niets waarop deze regel van toepassing is."))
    if check.expect == "all":
        if not hits:
            return CheckOutcome(status=Status.PASS, message=Text(
                en=f"All {n} in scope meet the rule.", nl=f"Alle {n} binnen bereik voldoen aan de regel."))
        return CheckOutcome(status=Status.FAIL, objects=[_describe(check, it) for it in hits], message=Text(
            en=f"{len(hits)} of {n} in scope {'does' if len(hits) == 1 else 'do'} not meet the rule.{extra_en}",
            nl=f"{len(hits)} van de {n} binnen bereik {'voldoet' if len(hits) == 1 else 'voldoen'} niet aan "
               f"de regel.{extra_nl}"))
    if check.expect == "any":
        if hits:
            return CheckOutcome(status=Status.PASS, objects=[_describe(check, it) for it in hits],
                                message=Text(en=f"{k} of {n} in scope {'meets' if k == 1 else 'meet'} the rule."
                                                f"{extra_en}",
                                             nl=f"{k} van de {n} binnen bereik "
                                                f"{'voldoet' if k == 1 else 'voldoen'} aan de regel.{extra_nl}"))
        return CheckOutcome(status=Status.FAIL, message=Text(
            en=f"None of the {n} in scope meets the rule.", nl=f"Geen van de {n} binnen bereik voldoet aan de regel."))
    if not hits:
        return CheckOutcome(status=Status.PASS, message=Text(
            en=f"None of the {n} in scope matches what must not exist.",
            nl=f"Geen van de {n} binnen bereik voldoet aan wat niet mag bestaan."))
    return CheckOutcome(status=Status.FAIL, objects=[_describe(check, it) for it in hits], message=Text(
        en=f"{len(hits)} of {n} in scope {'matches' if len(hits) == 1 else 'match'} what must not exist.{extra_en}",
        nl=f"{len(hits)} van de {n} binnen bereik {'is' if len(hits) == 1 else 'zijn'} wat niet mag "
           f"bestaan.{extra_nl}"))


def _reasons(check: Check, unknown: list[tuple[Any, Unknown]], lang: str) -> str:
    shown = []
    for it, why in unknown[:3]:
        obj = _describe(check, it)
        label = f"{obj.name} ({obj.id})" if obj.name else obj.id
        shown.append(f"{label}: {why.text(lang)}")
    return "; ".join(shown) + (" …" if len(unknown) > 3 else "")


def _cannot_judge(check: Check, unknown: list[tuple[Any, Unknown]]) -> CheckOutcome:
    """error: some item's scope or verdict hangs on a value that is missing, null, mistyped or unclassified."""
    objects = [_describe(check, it).model_copy(update={"detail": why.text("en")}) for it, why in unknown]
    return CheckOutcome(status=Status.ERROR, objects=objects, message=Text(
        en=f"Cannot judge {len(unknown)} item(s): a property this rule reads is missing, null, of another type or "
           f"holds a value the rule does not classify ({_reasons(check, unknown, 'en')}). This is not a pass: "
           "check the data, or classify the new value in the rule (see docs/rules.md, 'Semantics').",
        nl=f"{len(unknown)} item(s) niet te beoordelen: een eigenschap die deze regel leest ontbreekt, is null, heeft "
           f"een ander type of een waarde die de regel niet kent ({_reasons(check, unknown, 'nl')}). Dit is geen "
           "'voldoet': controleer de gegevens, of deel de nieuwe waarde in bij de regel (zie docs/rules.md)."))


def _error(en: str, nl: str) -> CheckOutcome:
    return CheckOutcome(status=Status.ERROR, message=Text(en=en, nl=nl))


# --------------------------------------------------------------------------- one rule


def run_check(rule: Rule, snapshot: Snapshot, pack: PolicyPack, today: date) -> CheckOutcome:
    """The rule's verdict before waivers: error when any source it needs was not read completely."""
    check = rule.active_check
    assert check is not None
    errors = []
    refused: dict[str, SourceError] = {}
    for key in rule.sources:
        result = snapshot.sources.get(key)
        if result is None:
            errors.append(FindingError(source=key, message="not collected in this run",
                                       hint="the snapshot has no such source; run a full audit"))
        elif not result.ok and result.error is not None and key in check.judges_errors_of:
            refused[key] = result.error  # the function judges this refusal itself (and errs on any other)
        elif not result.ok and result.error is not None:
            e = result.error
            errors.append(FindingError(source=key, message=e.message, status=e.status, code=e.code,
                                       request_id=e.request_id, hint=e.hint))
    if errors:
        names = ", ".join(f"'{e.source}'" for e in errors)  # quoted: source ids are names, not words to translate
        many = len(errors) > 1
        return CheckOutcome(status=Status.ERROR, errors=errors, message=Text(
            en=f"Cannot judge: the source{'s' if many else ''} {names} could not be read completely. "
               "This is not a pass.",
            nl=f"Niet te beoordelen: de bron{'nen' if many else ''} {names} "
               f"{'konden' if many else 'kon'} niet volledig worden gelezen. Dit is geen 'voldoet'."))
    if check.function is None:
        return run_declarative(check, snapshot.sources[rule.sources[0]].data, pack.catalogs)
    from m365audit.evaluate.checks import CHECKS
    from m365audit.evaluate.checks.base import CheckInput

    def verdict(rule_id: str) -> Status:
        """Another rule's verdict before waivers; error for a rule not named in uses_rules or using rules itself."""
        other = pack.rule(rule_id)
        if rule_id not in check.uses_rules or other is None or other.active_check is None \
                or other.active_check.uses_rules:
            return Status.ERROR
        return run_check(other, snapshot, pack, today).status

    data = {key: snapshot.sources[key].data for key in rule.sources if key not in refused}
    return CHECKS[check.function](CheckInput(
        meta={key: snapshot.sources[key].meta for key in rule.sources},
        rule=rule, data=data, catalogs=pack.catalogs, params=rule_params(rule, pack),
        approved_apps=pack.approved_apps, today=today, refused=refused, verdict=verdict))


def _matches_object(waiver_objects: list[str], obj: FindingObject) -> bool:
    wanted = {w.casefold() for w in waiver_objects}
    return obj.id.casefold() in wanted or (bool(obj.name) and obj.name.casefold() in wanted)


def rejected_notes(rule: Rule, kind: str, rejected: Iterable[RejectedEntry], applies: bool) -> list[Text]:
    """Notes for malformed waivers (or attestations) that name this rule, or whose whole file is unusable."""
    return [Text(en=f"Not applied, it covers nothing until fixed: {r.problem}",
                 nl=f"Niet toegepast, dekt niets tot het is hersteld: {r.problem}")
            for r in rejected if r.kind == kind and (r.rule == rule.id or r.rule is None and applies)]


def apply_waivers(rule: Rule, outcome: CheckOutcome, waivers: list[Waiver], today: date,
                  rejected: Iterable[RejectedEntry] = ()) -> Finding:
    """Turn fail or error into waived where an active waiver covers it; say why when it does not."""
    mine = [w for w in waivers if w.rule == rule.id]
    active = [w for w in mine if w.expires >= today and w.objects != []]  # objects: [] covers nothing
    notes = [Text(en=f"Waiver expired on {w.expires.isoformat()} (approved by {w.approved_by}): it covers nothing.",
                  nl=f"Uitzondering verlopen op {w.expires.isoformat()} (goedgekeurd door {w.approved_by}): "
                     "dekt niets meer.") for w in mine if w.expires < today]
    notes += rejected_notes(rule, "waivers", rejected, outcome.status is not Status.PASS)
    notes += rejected_notes(rule, "approved_apps", rejected, outcome.status is not Status.PASS
                            and rule.check is not None and rule.check.function is not None)
    base = {"rule_id": rule.id, "rule_version": rule.version, "severity": rule.severity, "title": rule.title,
            "sources": list(rule.sources), "errors": outcome.errors}
    status, message, objects, waiver = outcome.status, outcome.message, list(outcome.objects), None
    if status is Status.PASS and active:
        notes.append(Text(en="An active waiver exists but the rule passes: consider withdrawing it.",
                          nl="Er is een actieve uitzondering maar de regel voldoet: overweeg die in te trekken."))
    elif status in (Status.FAIL, Status.ERROR) and active:
        whole = next((w for w in active if w.objects is None), None)
        if whole is not None:
            return Finding(**base, status=Status.WAIVED, underlying_status=status, waiver=whole, notes=notes,
                           objects=[o.model_copy(update={"waived": True}) for o in objects],
                           message=_waived_message(outcome.message, whole))
        covered_ids = [oid for w in active for oid in (w.objects or [])]
        if status is Status.ERROR:
            notes.append(Text(en="A waiver names objects, but an error has none to match: it cannot cover it.",
                              nl="Een uitzondering noemt objecten, maar een fout heeft er geen: die dekt dit niet."))
        else:
            objects = [o.model_copy(update={"waived": _matches_object(covered_ids, o)}) for o in objects]
            uncovered = [o for o in objects if not o.waived]
            scoped = next(w for w in active if w.objects)
            if not uncovered:
                return Finding(**base, status=Status.WAIVED, underlying_status=status, waiver=scoped, notes=notes,
                               objects=objects, message=_waived_message(outcome.message, scoped))
            names = ", ".join(o.name or o.id for o in uncovered[:10]) + (" …" if len(uncovered) > 10 else "")
            notes.append(Text(en=f"The waiver does not cover: {names}.",
                              nl=f"De uitzondering dekt niet: {names}."))
            waiver = scoped
    return Finding(**base, status=status, message=message, objects=objects, notes=notes, waiver=waiver)


def _waived_message(underlying: Text, waiver: Waiver) -> Text:
    until = waiver.expires.isoformat()
    return Text(en=f"Waived until {until} ({waiver.reason}; approved by {waiver.approved_by}). Without the "
                   f"waiver: {underlying.en}",
                nl=f"Uitzondering tot {until} ({waiver.reason}; goedgekeurd door {waiver.approved_by}). Zonder "
                   f"uitzondering: {underlying.nl}")


def manual_finding(rule: Rule, attestations: list[Attestation], today: date,
                   rejected: Iterable[RejectedEntry] = (), observed: CheckOutcome | None = None) -> Finding:
    """A rule Graph cannot observe: manual, with the current attestation when there is one.

    ``observed`` is what an observed_by check saw when it could only say that a person must look (status manual,
    e.g. a plan is held whose AI setting Graph does not show): its message and objects lead the finding.
    """
    mine = sorted((a for a in attestations if a.rule == rule.id), key=lambda a: a.date, reverse=True)
    current = next((a for a in mine if a.date <= today <= a.expires), None)
    base: dict[str, Any] = {"rule_id": rule.id, "rule_version": rule.version, "status": Status.MANUAL,
                            "severity": rule.severity, "title": rule.title}
    seen = Text(en="Not observable through Graph.", nl="Niet waarneembaar via Graph.")
    if observed is not None:
        base.update(sources=list(rule.sources), objects=list(observed.objects))
        seen = observed.message
    if current is not None:
        return Finding(**base, attestation=current, message=Text(
            en=f"{seen.en} Attested until {current.expires.isoformat()} by "
               f"{current.attested_by}: {current.statement}",
            nl=f"{seen.nl} Verklaard tot {current.expires.isoformat()} door "
               f"{current.attested_by}: {current.statement}"))
    notes = [Text(en=f"Attestation expired on {a.expires.isoformat()} ({a.attested_by}).",
                  nl=f"Verklaring verlopen op {a.expires.isoformat()} ({a.attested_by}).")
             for a in mine if a.expires < today]
    notes += [Text(en=f"Attestation dated in the future ({a.date.isoformat()}): not counted.",
                   nl=f"Verklaring gedateerd in de toekomst ({a.date.isoformat()}): telt niet.")
              for a in mine if a.date > today]
    notes += rejected_notes(rule, "attestations", rejected, True)
    if observed is not None:
        return Finding(**base, notes=notes, message=Text(
            en=f"{seen.en} No current attestation: check by hand (see 'how to check').",
            nl=f"{seen.nl} Geen geldige verklaring: handmatig controleren (zie 'controle')."))
    return Finding(**base, notes=notes, message=Text(
        en="Not observable through Graph and no current attestation: check by hand (see 'how to check').",
        nl="Niet waarneembaar via Graph en geen geldige verklaring: handmatig controleren (zie 'controle')."))


def observed(rule: Rule, snapshot: Snapshot) -> bool:
    """A manual rule with 'observed_by' is evaluated when the run collected its sources (read or not)."""
    return rule.observed_by is not None and all(key in snapshot.sources for key in rule.sources)


def rule_needs(rule: Rule, pack: PolicyPack) -> set[str]:
    """Every source the rule's finding depends on: its own, and those of the rules whose verdict it uses."""
    keys = set(rule.sources)
    check = rule.active_check
    for rule_id in check.uses_rules if check is not None else []:
        other = pack.rule(rule_id)
        if other is not None:
            keys.update(other.sources)
    return keys


def evaluate_rule(rule: Rule, snapshot: Snapshot, pack: PolicyPack, today: date) -> Finding:
    """One rule's finding; it reads only the sources rule_needs names, so a snapshot holding those suffices."""
    if rule.manual is not None and not observed(rule, snapshot):
        return manual_finding(rule, pack.attestations, today, pack.rejected)
    outcome = run_check(rule, snapshot, pack, today)
    if outcome.status is Status.MANUAL and rule.manual is not None:  # seen, but only a person can judge
        return manual_finding(rule, pack.attestations, today, pack.rejected, observed=outcome)
    if outcome.status is Status.MANUAL:  # a rule without a manual part cannot be left to a person
        outcome = _error("The check answered 'manual' for a rule that has no manual part.",
                         "De controle gaf 'handmatig' voor een regel zonder handmatige controle.")
    return apply_waivers(rule, outcome, pack.waivers, today, pack.rejected)


def evaluate(snapshot: Snapshot, pack: PolicyPack, today: date) -> list[Finding]:
    """Every rule of the pack against the snapshot, in pack order."""
    return [evaluate_rule(rule, snapshot, pack, today) for rule in pack.rules]
