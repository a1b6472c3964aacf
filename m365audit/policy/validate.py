"""What pydantic cannot see: conditions, operators, catalogs, check functions and params checked against each other."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import Any

import jmespath
import jmespath.exceptions

from m365audit.collect import SOURCES
from m365audit.models import (
    CatalogRef,
    Condition,
    Rule,
)
from m365audit.policy.messages import did_you_mean
from m365audit.policy.yamlread import describe

# --------------------------------------------------------------------------- cross-references


def _check_key(rule: Rule) -> str:
    return "check" if rule.check is not None else "observed_by"


def _conditions(rule: Rule) -> Iterator[tuple[str, Condition]]:
    check = rule.active_check
    if check is None:
        return
    for kind in ("where", "conditions"):
        for i, cond in enumerate(getattr(check, kind)):
            yield f"{_check_key(rule)}.{kind}.{i}", cond


REGEX_OPERATORS = ("matches", "matches_any")
NO_VALUE_OPERATORS = ("exists", "absent", "empty", "not_empty")
LIST_OPERATORS = ("in", "not_in", "contains_any", "contains_none", "matches_any")
NUMBER_OPERATORS = ("gt", "ge", "lt", "le")
STRING_OPERATORS = ("matches", "starts_with")
SCALAR_OPERATORS = ("eq", "ne", "contains", "not_contains")


def _value_problem(cond: Condition, values: list[Any] | None) -> str | None:
    """What is wrong with a condition's value for its operator (``values``: the resolved list, if a list)."""
    op, value = cond.op, cond.value
    if op in NO_VALUE_OPERATORS:
        return None if value is None else f"'{op}' takes no value (remove value: {describe(value)})"
    if value is None:
        alternative = " (to test for null use 'exists' or 'absent')" if op in ("eq", "ne") else ""
        return f"'{op}' needs a value{alternative}"
    if op in LIST_OPERATORS:
        if values is None:
            return f"'{op}' needs a list (or a catalog reference), got {describe(value)}"
        if op == "matches_any" and not all(isinstance(v, str) for v in values):
            return f"'{op}' needs a list of regular expressions (strings)"
        return None
    if isinstance(value, (CatalogRef, list)):
        return f"'{op}' compares with one value, got {'a catalog reference' if values is not None else 'a list'}" \
               + (" (did you mean 'in'?)" if op == "eq" else " (did you mean 'contains_any'?)" if op == "contains"
                  else "")
    if op in NUMBER_OPERATORS and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"'{op}' compares numbers, got {describe(value)}"
    if op in STRING_OPERATORS and not isinstance(value, str):
        return f"'{op}' needs a string, got {describe(value)}"
    return None


def _resolve(cond: Condition, catalogs: dict[str, list[Any]]) -> tuple[list[Any] | None, str | None, str]:
    """(the list a condition's value stands for or None, a problem, where the problem is)."""
    value = cond.value
    if not isinstance(value, CatalogRef):
        return (list(value) if isinstance(value, list) else None), None, "value"
    if value.catalog not in catalogs:
        return [], f"unknown catalog '{value.catalog}'" + did_you_mean(value.catalog, catalogs), "value.catalog"
    entries = catalogs[value.catalog]
    if value.field is None:
        return list(entries), None, "value"
    missing = [n for n, e in enumerate(entries) if value.field not in e]
    if missing:
        return [], f"catalog '{value.catalog}' entry {missing[0]} has no field '{value.field}'", "value.field"
    return [e[value.field] for e in entries], None, "value"


def _condition_problems(where: str, cond: Condition, catalogs: dict[str, list[Any]]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        jmespath.compile(cond.path)
    except jmespath.exceptions.JMESPathError as exc:
        problems.append((f"{where}.path", f"invalid JMESPath '{cond.path}': {_jmespath_reason(exc)}"))
    values, problem, at = _resolve(cond, catalogs)
    if problem:
        return [*problems, (f"{where}.{at}", problem)]
    problem = _value_problem(cond, values)
    if problem:
        return [*problems, (f"{where}.value" if cond.value is not None else f"{where}.op", problem)]
    problems += _known_problems(where, cond, catalogs, values)
    if cond.op in REGEX_OPERATORS:
        for v in values if values is not None else [cond.value]:
            try:
                re.compile(str(v))
            except re.error as exc:
                problems.append((f"{where}.value", f"invalid regular expression '{v}': {exc}"))
    return problems


COMPARED_OPERATORS = ("eq", "ne", "in", "not_in", "contains", "not_contains", "contains_any", "contains_none")


def _known_problems(where: str, cond: Condition, catalogs: dict[str, list[Any]],
                    values: list[Any] | None) -> list[tuple[str, str]]:
    """`known` lists (or names a catalog of) the values the rule classifies; what it compares with is among them."""
    problems: list[tuple[str, str]] = []
    if cond.when_null is not None and cond.op in ("exists", "absent"):
        problems.append((f"{where}.when_null", f"'{cond.op}' already judges a missing value; remove when_null"))
    if cond.known is None:
        return problems
    known: list[Any] | None
    if isinstance(cond.known, CatalogRef):
        resolved, problem, at = _resolve(Condition(path=cond.path, op="in", value=cond.known), catalogs)
        if problem:
            return [*problems, (f"{where}.known.{at.removeprefix('value.')}" if "." in at else f"{where}.known",
                                problem)]
        known = resolved
    else:
        known = cond.known if isinstance(cond.known, list) else None
    if not known:
        return [*problems, (f"{where}.known", "needs a non-empty list of the values the rule classifies")]
    if cond.op in COMPARED_OPERATORS:
        fold = cond.ignore_case
        keys = {(type(k), k.casefold() if fold and isinstance(k, str) else k) for k in known}
        compared = values if values is not None else [cond.value]
        missing = [v for v in compared if (type(v), v.casefold() if fold and isinstance(v, str) else v) not in keys]
        if missing:
            problems.append((f"{where}.value", f"{describe(missing[0])} is not in 'known': a value the rule does not "
                                               "classify can never match (add it to known)"))
    return problems


def _jmespath_reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0].rstrip(":")
    return text.removeprefix("Invalid jmespath expression: ").removesuffix(", for expression")


def rule_problems(rule: Rule, catalogs: dict[str, list[Any]], checks: Collection[str]) -> list[tuple[str, str]]:
    """(path inside the rule, problem) for every reference that does not resolve and every value that cannot work."""
    problems: list[tuple[str, str]] = []
    for i, key in enumerate(rule.sources):
        if key not in SOURCES:
            problems.append((f"sources.{i}", f"unknown source '{key}'" + did_you_mean(key, SOURCES)))
    if rule.manual is not None and rule.sources and rule.observed_by is None:
        problems.append(("sources", "a manual rule reads no sources unless it has 'observed_by' (Graph cannot "
                                    "observe it); remove 'sources'"))
    problems += param_catalog_problems("params", rule.params, catalogs)
    problems += param_bound_problems("params", rule.params)
    check = rule.active_check
    if check is None:
        return problems
    key = _check_key(rule)
    for i, src in enumerate(check.judges_errors_of):
        if src not in rule.sources:
            problems.append((f"{key}.judges_errors_of.{i}", f"'{src}' is not one of the rule's sources"))
    if rule.id in check.uses_rules:
        problems.append((f"{key}.uses_rules", "a rule cannot use its own verdict"))
    if check.function is not None and check.function not in checks:
        problems.append((f"{key}.function", f"unknown check function '{check.function}'"
                         + did_you_mean(check.function, checks)))
    if check.function is None and rule.params:
        problems.append(("params", "only check functions read parameters; a declarative check ignores them"))
    expressions = [(f"{key}.items", check.items)] + [
        (f"{key}.objects.{k}", getattr(check.objects, k)) for k in ("id", "name", "detail")]
    for where, expr in expressions:
        if expr is not None:
            try:
                jmespath.compile(expr)
            except jmespath.exceptions.JMESPathError as exc:
                problems.append((where, f"invalid JMESPath '{expr}': {_jmespath_reason(exc)}"))
    for where, cond in _conditions(rule):
        problems += _condition_problems(where, cond, catalogs)
    return problems


def param_catalog_problems(where: str, params: dict[str, Any], catalogs: dict[str, Any]) -> list[tuple[str, str]]:
    """Parameters named *_catalog (a name) or *read_catalogs (a list of names) must name catalogs that exist."""
    out = []
    for key, value in params.items():
        names = [value] if key.endswith("_catalog") else value if key.endswith("read_catalogs") else []
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name not in catalogs:
                out.append((f"{where}.{key}", f"unknown catalog '{name}'" + did_you_mean(name, catalogs)))
    return out


PARAM_BOUNDS: dict[str, tuple[int, int, str]] = {
    "lookback_days": (1, 180, "Purview keeps audit records 180 days"),
}
"""Parameters whose whole-number value must lie in a range, by name, with the reason for the message."""


def param_bound_problems(where: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """Known parameters out of their range, and list parameters of record types that are empty."""
    out = []
    for key, value in params.items():
        bound = PARAM_BOUNDS.get(key)
        if bound is not None and isinstance(value, int) and not isinstance(value, bool) \
                and not bound[0] <= value <= bound[1]:
            out.append((f"{where}.{key}", f"must be from {bound[0]} to {bound[1]} ({bound[2]}), got {value}"))
        if key == "record_types" and value == []:
            out.append((f"{where}.{key}", "must name at least one audit record type "
                                          "(an empty list would query nothing and read as 'none found')"))
    return out


def dotted_loc(path: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in path.split("."))
