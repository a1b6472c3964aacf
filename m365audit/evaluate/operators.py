"""The operators of declarative conditions: compiled once, strict about types (a mismatch raises TypeMismatch)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath

from m365audit.models import (
    CatalogRef,
    Condition,
)


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


@dataclass(frozen=True)
class Unknown:
    """A condition that cannot be decided for one item: the property and why. The item cannot be judged."""

    path: str
    kind: str  # "missing" (absent or null), "unclassified" (a value outside `known`) or "type" (a mismatch)
    detail: str = ""

    def text(self, lang: str = "en") -> str:
        """E.g. "state: 'unknownFutureValue' is not a value this rule classifies (known: draft, ready)"."""
        if self.kind == "missing":
            return f"{self.path}: " + ("ontbreekt of is null" if lang == "nl" else "is missing or null")
        if self.kind == "unclassified":
            return f"{self.path}: {self.detail} " + ("is geen waarde die deze regel kent" if lang == "nl"
                                                      else "is not a value this rule classifies")
        return f"{self.path}: " + ("ander type dan verwacht, " if lang == "nl" else "") + self.detail


Verdict = bool | Unknown
"""True, False, or Unknown: a missing, null, mistyped or unclassified value decides nothing."""

Test = Callable[[Any], Verdict]

PRESENCE_OPERATORS = frozenset({"exists", "absent"})
"""The operators that judge presence itself: for them a missing or null value is an answer, not an unknown."""


def _key(value: Any, fold: bool) -> tuple[str | None, Any]:
    """A hashable, kind-tagged key, so that True never equals 1 and '1' never equals 1."""
    return _kind(value), _fold(value, fold) if _kind(value) else repr(value)


def known_values(cond: Condition, catalogs: dict[str, list[Any]]) -> list[Any] | None:
    """The condition's `known` list, with a catalog reference resolved; None when the rule declares none."""
    if cond.known is None:
        return None
    known = resolve_value(cond.known, catalogs)
    return list(known) if isinstance(known, list) else [known]


def compile_condition(cond: Condition, catalogs: dict[str, list[Any]]) -> Test:
    """One condition as a three-valued function of an item (docs/rules.md, 'Semantics'), resolved once.

    Missing or null is Unknown unless the operator judges presence (exists, absent) or the rule declares
    `when_null`; a value (or list element) outside `known` is Unknown; a type the operator cannot judge is Unknown.
    """
    get, value, fold = _compiled(cond.path), resolve_value(cond.value, catalogs), cond.ignore_case
    fn = _specialised(cond.op, value, fold) or OPERATOR_TABLE[cond.op]
    wanted, presence = _kinds(value), cond.op in PRESENCE_OPERATORS
    scalar = cond.op in SCALAR_OPERATORS
    declared = known_values(cond, catalogs)
    known = None if declared is None else frozenset(_key(k, fold) for k in declared)
    shown = "" if declared is None else ", ".join(map(str, declared))

    def test(item: Any) -> Verdict:
        try:
            actual = get(item)
        except jmespath.exceptions.JMESPathError as exc:
            return Unknown(cond.path, "type", f"type mismatch at '{cond.path}': {str(exc).splitlines()[0]}")
        if actual is None:
            if presence:
                return fn(actual, value, fold)
            return cond.when_null if cond.when_null is not None else Unknown(cond.path, "missing")
        if known is not None:
            for element in actual if isinstance(actual, list) else [actual]:
                if element is None and not presence:
                    return cond.when_null if cond.when_null is not None else Unknown(cond.path, "missing")
                if _key(element, fold) not in known:
                    return Unknown(cond.path, "unclassified", f"{json_text(element)} (known: {shown})")
        try:
            if scalar:
                _same_kind(actual, wanted, cond.op)
            return fn(actual, value, fold)
        except TypeMismatch as exc:
            return Unknown(cond.path, "type", f"type mismatch at '{cond.path}': {exc}")

    return test


def json_text(value: Any, limit: int = 60) -> str:
    """A value as a short JSON-like text for a message: 'unknownFutureValue', 3, ["x"]."""
    text = f"'{value}'" if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    """Whether one condition holds for one item; raises TypeMismatch (with the reason) when it cannot be decided."""
    result = compile_condition(cond, catalogs)(item)
    if isinstance(result, Unknown):
        raise TypeMismatch(result.detail if result.kind == "type" else result.text())
    return result


# --------------------------------------------------------------------------- declarative checks
