"""Pure evaluation: (snapshot, policy pack, today) -> findings. No I/O, no clock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from functools import lru_cache
from typing import Any

import jmespath

from m365audit.evidence.items import ItemsError, PagedItems, is_list
from m365audit.models import (
    Attestation,
    CatalogRef,
    Check,
    CheckOutcome,
    Condition,
    Finding,
    FindingError,
    FindingObject,
    PolicyPack,
    RejectedEntry,
    Rule,
    Snapshot,
    Status,
    Text,
    Waiver,
)
from m365audit.policy.loader import rule_params


class TypeMismatch(Exception):
    """An operator met a value of a type it cannot judge: the rule becomes error, never pass or fail."""


# --------------------------------------------------------------------------- operators


def _fold(value: Any, ignore_case: bool) -> Any:
    if not ignore_case:
        return value
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return [v.casefold() if isinstance(v, str) else v for v in value]
    return value


def _need(value: Any, kind: type | tuple[type, ...], op: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) and kind in ((int, float), int, float):
        raise TypeMismatch(f"'{op}' cannot judge a {type(value).__name__}")


def _number(value: Any, op: str) -> float:
    _need(value, (int, float), op)
    return float(value)


def _compare(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}[op]
    return lambda actual, expected: fn(_number(actual, op), _number(expected, op))


def _as_list(value: Any, op: str) -> list[Any]:
    _need(value, list, op)
    return list(value)


def _string(value: Any, op: str, ignore_case: bool) -> str:
    _need(value, str, op)
    return str(_fold(value, ignore_case))


def _size(value: Any, op: str) -> int:
    _need(value, (list, str, dict), op)
    return len(value)


def _regex(value: Any, op: str, pattern: Any, flags: int) -> bool:
    _need(value, str, op)
    if not isinstance(pattern, str):
        raise TypeMismatch(f"'{op}' needs a regular expression, not a {type(pattern).__name__}")
    try:
        return re.search(pattern, value, flags) is not None
    except re.error as exc:  # the loader rejects these; a pack built in Python may not have been loaded
        raise TypeMismatch(f"'{op}': invalid regular expression '{pattern}': {exc}") from exc


NULL_TRUE_OPERATORS = frozenset({"ne", "not_in", "not_contains", "contains_none", "absent", "empty"})
SCALAR_OPERATORS = frozenset({"eq", "ne", "in", "not_in"})


def _kind(value: Any) -> str | None:
    """'text', 'number' or 'boolean' for a scalar; None for anything else."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "text" if isinstance(value, str) else None


def _kinds(expected: Any) -> frozenset[str]:
    return frozenset(k for k in map(_kind, expected if isinstance(expected, list) else [expected]) if k)


def _same_kind(actual: Any, wanted: frozenset[str], op: str) -> None:
    """eq, ne, in and not_in judge one scalar against scalars of its kind: 'ready' against a list or 1 against
    '1' is a rule that cannot work on this data, not a quiet 'not equal'."""
    kind = _kind(actual)
    if kind is None:
        raise TypeMismatch(f"'{op}' cannot judge a {type(actual).__name__}")
    if wanted and kind not in wanted:
        raise TypeMismatch(f"the value is {kind}, '{op}' compares it with {' or '.join(sorted(wanted))}")


OPERATOR_TABLE: dict[str, Callable[[Any, Any, bool], bool]] = {
    "eq": lambda a, v, i: _fold(a, i) == _fold(v, i),
    "ne": lambda a, v, i: _fold(a, i) != _fold(v, i),
    "in": lambda a, v, i: _fold(a, i) in _fold(_as_list(v, "in"), i),
    "not_in": lambda a, v, i: _fold(a, i) not in _fold(_as_list(v, "not_in"), i),
    "contains": lambda a, v, i: _fold(v, i) in _fold(_as_list(a, "contains"), i),
    "not_contains": lambda a, v, i: a is None or _fold(v, i) not in _fold(_as_list(a, "not_contains"), i),
    "contains_any": lambda a, v, i: bool(set(map(str, _fold(_as_list(a, "contains_any"), i)))
                                         & set(map(str, _fold(_as_list(v, "contains_any"), i)))),
    "contains_none": lambda a, v, i: a is None or not (set(map(str, _fold(_as_list(a, "contains_none"), i)))
                                                       & set(map(str, _fold(_as_list(v, "contains_none"), i)))),
    "matches": lambda a, v, i: _regex(a, "matches", v, re.IGNORECASE if i else 0),
    "matches_any": lambda a, v, i: any(_regex(a, "matches_any", p, re.IGNORECASE if i else 0)
                                       for p in _as_list(v, "matches_any")),
    "starts_with": lambda a, v, i: _string(a, "starts_with", i).startswith(_fold(str(v), i)),
    "exists": lambda a, v, i: a is not None,
    "absent": lambda a, v, i: a is None,
    "empty": lambda a, v, i: a is None or _size(a, "empty") == 0,
    "not_empty": lambda a, v, i: _size(a, "not_empty") > 0,
    "gt": lambda a, v, i: _compare("gt")(a, v),
    "ge": lambda a, v, i: _compare("ge")(a, v),
    "lt": lambda a, v, i: _compare("lt")(a, v),
    "le": lambda a, v, i: _compare("le")(a, v),
}

_SIMPLE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@lru_cache(maxsize=512)
def _compiled(expression: str) -> Callable[[Any], Any]:
    """A getter for one JMESPath expression; dotted names (the common case) skip the JMESPath interpreter."""
    if _SIMPLE_PATH.match(expression):
        keys = tuple(expression.split("."))

        def get(item: Any) -> Any:
            for key in keys:  # JMESPath: a field of anything but an object is null
                item = item.get(key) if isinstance(item, dict) else None
            return item

        return get
    parsed = jmespath.compile(expression)
    search_fn: Callable[[Any], Any] = parsed.search
    return search_fn


def search(expression: str, item: Any) -> Any:
    """The value at a JMESPath expression (None when absent); a JMESPath runtime type error is a TypeMismatch."""
    try:
        return _compiled(expression)(item)
    except jmespath.exceptions.JMESPathError as exc:
        raise TypeMismatch(f"JMESPath '{expression}' failed on this data: {str(exc).splitlines()[0]}") from exc


def resolve_value(value: Any, catalogs: dict[str, list[Any]]) -> Any:
    """A condition's value, with a catalog reference replaced by the catalog's list."""
    if isinstance(value, CatalogRef):
        entries = catalogs[value.catalog]
        return [e[value.field] for e in entries] if value.field else list(entries)
    return value


Test = Callable[[Any], bool]


def compile_condition(cond: Condition, catalogs: dict[str, list[Any]]) -> Test:
    """One condition as a function of an item; the value is resolved (and folded) once, not per item."""
    get, value, fold = _compiled(cond.path), resolve_value(cond.value, catalogs), cond.ignore_case
    fn = _specialised(cond.op, value, fold) or OPERATOR_TABLE[cond.op]
    null_true, wanted = cond.op in NULL_TRUE_OPERATORS, _kinds(value)
    scalar = cond.op in SCALAR_OPERATORS

    def test(item: Any) -> bool:
        try:
            actual = get(item)
        except jmespath.exceptions.JMESPathError as exc:
            raise TypeMismatch(f"type mismatch at '{cond.path}': {str(exc).splitlines()[0]}") from exc
        if actual is None:
            return null_true and fn(actual, value, fold)
        try:
            if scalar:
                _same_kind(actual, wanted, cond.op)
            return fn(actual, value, fold)
        except TypeMismatch as exc:
            raise TypeMismatch(f"type mismatch at '{cond.path}': {exc}") from exc

    return test


def _specialised(op: str, value: Any, fold: bool) -> Callable[[Any, Any, bool], bool] | None:
    """eq, ne, in and not_in with the value folded once and a list turned into a set (same results, faster)."""
    if op in ("eq", "ne"):
        target, positive = _fold(value, fold), op == "eq"
        return lambda a, v, i: (_fold(a, i) == target) == positive
    if op in ("in", "not_in") and isinstance(value, list):
        folded = _fold(value, fold)
        try:
            members: set[Any] | list[Any] = set(folded)
        except TypeError:  # unhashable entries (whole catalog entries): compare one by one
            members = folded
        positive = op == "in"
        return lambda a, v, i: (_fold(a, i) in members) == positive
    return None


def holds(cond: Condition, item: Any, catalogs: dict[str, list[Any]]) -> bool:
    """Whether one condition holds for one item; raises TypeMismatch instead of guessing."""
    return compile_condition(cond, catalogs)(item)


# --------------------------------------------------------------------------- declarative checks


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
    satisfying: list[Any] = []
    failing: list[Any] = []
    n = k = 0
    try:
        for it in items:
            if all(t(it) for t in where):
                n += 1
                if all(t(it) for t in conditions):
                    k += 1
                    if not keep_failing:
                        satisfying.append(it)
                elif keep_failing:
                    failing.append(it)
    except TypeMismatch as exc:
        return _error(str(exc), str(exc))
    except ItemsError as exc:
        return _error(f"The stored data can no longer be read: {exc} ({exc.hint})",
                      f"De opgeslagen gegevens zijn niet meer leesbaar: {exc} ({exc.hint})")
    if n == 0 and check.expect != "any":
        return CheckOutcome(status=Status.PASS, message=Text(
            en="0 in scope: the source was read completely and holds nothing this rule applies to.",
            nl="0 binnen bereik: de bron is volledig gelezen en bevat niets waarop deze regel van toepassing is."))
    if check.expect == "all":
        if not failing:
            return CheckOutcome(status=Status.PASS, message=Text(
                en=f"All {n} in scope meet the rule.", nl=f"Alle {n} binnen bereik voldoen aan de regel."))
        return CheckOutcome(status=Status.FAIL, objects=[_describe(check, it) for it in failing], message=Text(
            en=f"{len(failing)} of {n} in scope do not meet the rule.",
            nl=f"{len(failing)} van {n} binnen bereik voldoen niet aan de regel."))
    if check.expect == "any":
        if k:
            return CheckOutcome(status=Status.PASS, objects=[_describe(check, it) for it in satisfying],
                                message=Text(en=f"{k} of {n} in scope meet the rule.",
                                             nl=f"{k} van {n} binnen bereik voldoen aan de regel."))
        return CheckOutcome(status=Status.FAIL, message=Text(
            en=f"None of the {n} in scope meets the rule.", nl=f"Geen van de {n} binnen bereik voldoet aan de regel."))
    if not k:
        return CheckOutcome(status=Status.PASS, message=Text(
            en=f"None of the {n} in scope matches what must not exist.",
            nl=f"Geen van de {n} binnen bereik voldoet aan wat niet mag bestaan."))
    return CheckOutcome(status=Status.FAIL, objects=[_describe(check, it) for it in satisfying], message=Text(
        en=f"{k} of {n} in scope match what must not exist.",
        nl=f"{k} van {n} binnen bereik voldoen aan wat niet mag bestaan."))


def _error(en: str, nl: str) -> CheckOutcome:
    return CheckOutcome(status=Status.ERROR, message=Text(en=en, nl=nl))


# --------------------------------------------------------------------------- one rule


def run_check(rule: Rule, snapshot: Snapshot, pack: PolicyPack, today: date) -> CheckOutcome:
    """The rule's verdict before waivers: error when any source it needs was not read completely."""
    check = rule.active_check
    assert check is not None
    errors = []
    for key in rule.sources:
        result = snapshot.sources.get(key)
        if result is None:
            errors.append(FindingError(source=key, message="not collected in this run",
                                       hint="the snapshot has no such source; run a full audit"))
        elif not result.ok and result.error is not None:
            e = result.error
            errors.append(FindingError(source=key, message=e.message, status=e.status, code=e.code,
                                       request_id=e.request_id, hint=e.hint))
    if errors:
        names = ", ".join(e.source for e in errors)
        return CheckOutcome(status=Status.ERROR, errors=errors, message=Text(
            en=f"Cannot judge: {names} could not be read completely. This is not a pass.",
            nl=f"Niet te beoordelen: {names} kon niet volledig worden gelezen. Dit is geen 'voldoet'."))
    if check.function is None:
        return run_declarative(check, snapshot.sources[rule.sources[0]].data, pack.catalogs)
    from m365audit.evaluate.checks import CHECKS, CheckInput

    data = {key: snapshot.sources[key].data for key in rule.sources}
    return CHECKS[check.function](CheckInput(
        meta={key: snapshot.sources[key].meta for key in rule.sources},
        rule=rule, data=data, catalogs=pack.catalogs, params=rule_params(rule, pack),
        approved_apps=pack.approved_apps, today=today))


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
                   rejected: Iterable[RejectedEntry] = ()) -> Finding:
    """A rule Graph cannot observe: manual, with the current attestation when there is one."""
    mine = sorted((a for a in attestations if a.rule == rule.id), key=lambda a: a.date, reverse=True)
    current = next((a for a in mine if a.date <= today <= a.expires), None)
    base = {"rule_id": rule.id, "rule_version": rule.version, "status": Status.MANUAL, "severity": rule.severity,
            "title": rule.title}
    if current is not None:
        return Finding(**base, attestation=current, message=Text(
            en=f"Not observable through Graph. Attested until {current.expires.isoformat()} by "
               f"{current.attested_by}: {current.statement}",
            nl=f"Niet waarneembaar via Graph. Verklaard tot {current.expires.isoformat()} door "
               f"{current.attested_by}: {current.statement}"))
    notes = [Text(en=f"Attestation expired on {a.expires.isoformat()} ({a.attested_by}).",
                  nl=f"Verklaring verlopen op {a.expires.isoformat()} ({a.attested_by}).")
             for a in mine if a.expires < today]
    notes += [Text(en=f"Attestation dated in the future ({a.date.isoformat()}): not counted.",
                   nl=f"Verklaring gedateerd in de toekomst ({a.date.isoformat()}): telt niet.")
              for a in mine if a.date > today]
    notes += rejected_notes(rule, "attestations", rejected, True)
    return Finding(**base, notes=notes, message=Text(
        en="Not observable through Graph and no current attestation: check by hand (see 'how to check').",
        nl="Niet waarneembaar via Graph en geen geldige verklaring: handmatig controleren (zie 'controle')."))


def observed(rule: Rule, snapshot: Snapshot) -> bool:
    """A manual rule with 'observed_by' is evaluated when the run collected its sources (read or not)."""
    return rule.observed_by is not None and all(key in snapshot.sources for key in rule.sources)


def evaluate(snapshot: Snapshot, pack: PolicyPack, today: date) -> list[Finding]:
    """Every rule of the pack against the snapshot, in pack order."""
    findings = []
    for rule in pack.rules:
        if rule.manual is not None and not observed(rule, snapshot):
            findings.append(manual_finding(rule, pack.attestations, today, pack.rejected))
        else:
            findings.append(apply_waivers(rule, run_check(rule, snapshot, pack, today), pack.waivers, today,
                                          pack.rejected))
    return findings
