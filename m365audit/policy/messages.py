"""Policy files shaped by pydantic, and its validation errors turned into file:line messages a person can act on."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from m365audit.models import (
    OPERATORS,
    ApprovedApp,
    Attestation,
    Rule,
    Waiver,
)
from m365audit.policy.yamlread import describe, line_of

# --------------------------------------------------------------------------- file shapes


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RulesFile(PolicyFile):
    """policies/rules/*.yaml"""

    rules: list[Rule]


class CatalogsFile(PolicyFile):
    """policies/catalogs/*.yaml: named lists; every entry says where its facts come from."""

    catalogs: dict[str, list[dict[str, Any]]]


class WaiversFile(PolicyFile):
    """policies/waivers.yaml"""

    waivers: list[Waiver] = []


class AttestationsFile(PolicyFile):
    """policies/attestations.yaml"""

    attestations: list[Attestation] = []


class ApprovedAppsFile(PolicyFile):
    """policies/approved-apps.yaml"""

    approved_apps: list[ApprovedApp] = []


class ParamsFile(PolicyFile):
    """policies/params.yaml: rule id -> {parameter: value}, overriding the rules' defaults."""

    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


SINGLE_FILES: dict[str, type[PolicyFile]] = {
    "waivers.yaml": WaiversFile,
    "attestations.yaml": AttestationsFile,
    "approved-apps.yaml": ApprovedAppsFile,
    "params.yaml": ParamsFile,
}
LIST_ITEMS: dict[str, type[BaseModel]] = {
    "rules": Rule, "waivers": Waiver, "attestations": Attestation, "approved_apps": ApprovedApp}
DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "waivers": ("expires",), "attestations": ("date", "expires"), "approved_apps": ("review_by",)}
EXAMPLES = {"rules": "rules: [...]", "catalogs": "catalogs: {NAME: [...]}", "waivers": "waivers: []",
            "attestations": "attestations: []", "approved_apps": "approved_apps: []", "params": "params: {}"}


# --------------------------------------------------------------------------- readable validation errors


def did_you_mean(word: object, options: Iterable[str]) -> str:
    guess = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{guess[0]}'?)" if guess else ""


OPERATOR_ALIASES = {
    "==": "eq", "=": "eq", "equals": "eq", "is": "eq", "!=": "ne", "<>": "ne", "not_equals": "ne", "isnot": "ne",
    ">": "gt", ">=": "ge", "<": "lt", "<=": "le", "match": "matches", "regex": "matches", "like": "matches",
    "startswith": "starts_with", "notin": "not_in", "missing": "absent", "not_exists": "absent", "present": "exists",
    "has": "contains", "includes": "contains", "any_of": "contains_any", "none_of": "contains_none",
}


def _unknown_operator(value: object) -> str:
    alias = OPERATOR_ALIASES.get(str(value).strip().lower().replace(" ", "_").replace("-", "_"))
    hint = f" (did you mean '{alias}'?)" if alias else did_you_mean(value, OPERATORS)
    return f"unknown operator '{value}'" + (hint or f" (allowed: {', '.join(OPERATORS)})")


def _is_tag(part: object) -> bool:
    """A pydantic union-member tag in an error location (not a key of the YAML)."""
    return isinstance(part, str) and (part in ("str", "bool", "int", "float", "none")
                                      or "[" in part or part[:1].isupper())


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes reachable from one annotation (through Optional, list, dict and unions)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the mapping at ``loc`` (for 'did you mean' on unknown keys)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or _is_tag(part):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        found = _unwrap(info.annotation)
        model = found[0] if found else None
    return model


def _keys_at(root: type[BaseModel], loc: Iterable[Any]) -> list[str]:
    model = _model_at(root, tuple(loc))
    return list(model.model_fields) if model is not None else []


def _collapse_unions(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One error per failed union: the member that fits the input's shape, or 'expected X or Y'."""
    out: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        cut = next((i for i, p in enumerate(loc) if _is_tag(p) and not (
            i == len(loc) - 1 and err["type"] == "extra_forbidden")), None)
        if cut is None:
            out.append(err)
        else:
            groups.setdefault(loc[:cut], []).append(err)
    for prefix, members in groups.items():
        out.extend(_pick_member(prefix, members))
    return out


def _pick_member(prefix: tuple[Any, ...], members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = len(prefix)
    tags = list(dict.fromkeys(str(e["loc"][n]) for e in members))
    value = _input_at(members, n)
    wanted = [t for t in tags if (isinstance(value, dict) and t[:1].isupper())
              or (isinstance(value, list) and t.startswith("list["))]
    if wanted:
        inner = [{**e, "loc": prefix + tuple(e["loc"][n + 1:])} for e in members if str(e["loc"][n]) == wanted[0]]
        return _collapse_unions(inner)
    names = list(dict.fromkeys(_TAG_NAMES.get(t.split("[")[0], "a catalog reference {catalog: NAME}") for t in tags))
    return [{"loc": prefix, "type": "union", "msg": f"expected {_or(names)}, got {describe(value)}", "input": value}]


_TAG_NAMES = {"str": "a string", "bool": "true or false", "int": "a number", "float": "a number", "list": "a list",
              "nullable": "a string, number or boolean", "none": "nothing"}


def _input_at(members: list[dict[str, Any]], n: int) -> Any:
    for e in members:
        if len(e["loc"]) == n + 1:
            return e.get("input")
    return members[0].get("input")


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_EXPECTED = {"string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
             "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
             "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
             "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping"}


def date_message(value: object) -> str:
    if not isinstance(value, str):
        return f"expected a date written YYYY-MM-DD (e.g. 2027-01-31), got {describe(value)}"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"'{value}' is not a date: write YYYY-MM-DD, e.g. 2027-01-31"
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        return f"'{value}' is not a date: {exc}"
    return f"'{value}' is not a valid date here"


def error_text(err: dict[str, Any], root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """(location the message is about, message) for one pydantic error; an unknown key is about its mapping."""
    kind, value, last = err["type"], err.get("input"), loc[-1] if loc else None
    if kind == "missing":
        return loc[:-1], f"missing required key '{last}'"
    if kind == "extra_forbidden":
        return loc[:-1], f"unknown key '{last}'" + did_you_mean(last, _keys_at(root, loc[:-1]))
    if kind == "literal_error" and last == "op":
        return loc, _unknown_operator(value)
    if kind in ("literal_error", "enum"):
        expected = str(err.get("ctx", {}).get("expected", "")).replace("'", "")
        options = [o.strip() for o in re.split(r",| or ", expected) if o.strip()]
        return loc, f"{describe(value)} is not allowed; use {_or(options)}" + did_you_mean(value, options)
    if kind == "blank":
        return loc, str(err["msg"])
    if kind.startswith(("date_", "datetime_")):
        return loc, date_message(value)
    if kind == "string_pattern_mismatch" and last == "id":
        return loc, f"{describe(value)} is not a valid rule id: lowercase words joined by hyphens, e.g. connectors-off"
    if kind in ("greater_than_equal", "greater_than"):
        return loc, f"must be {err['ctx'].get('ge', err['ctx'].get('gt'))} or more, got {describe(value)}"
    if kind in ("model_type", "model_attributes_type") and _model_at(root, loc) is not None:
        model = _model_at(root, loc)
        assert model is not None
        keys = ", ".join(f"{k}: ..." for k, f in model.model_fields.items() if f.is_required())
        return loc, f"expected a mapping ({keys}), got {describe(value)}"
    if kind in _EXPECTED:
        return loc, f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind == "value_error":
        return loc, str(err["msg"]).removeprefix("Value error, ")
    return loc, str(err["msg"])


@dataclass
class FileReport:
    """Problems of one file: each 'file:line: subject: where: what'."""

    label: str
    doc: Any
    problems: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    locs: list[tuple[int | str, ...]] = field(default_factory=list)

    def add(self, loc: tuple[int | str, ...], message: str, subject: str | None = None,
            where: str | None = None) -> None:
        subject = subject if subject is not None else _subject(self.doc, loc)
        if where is None:
            where = ".".join(str(p) for p in loc[2:]) if subject and len(loc) >= 2 else ".".join(map(str, loc))
        line = line_of(self.doc, loc)
        text = f"{self.label}:{line}: " + (f"{subject}: " if subject else "")
        self.problems.append(text + (f"{where}: {message}" if where else message))
        self.lines.append(line)
        self.locs.append(loc)

    def sorted(self) -> list[str]:
        """The problems in line order (a later check may find an earlier line)."""
        return [p for _, p in sorted(zip(self.lines, self.problems, strict=True), key=lambda lp: lp[0])]

    def pydantic(self, exc: ValidationError, prefix: tuple[int | str, ...], root: type[BaseModel],
                 skip: Iterable[tuple[Any, ...]] = ()) -> None:
        skipped = set(skip)
        errors: list[dict[str, Any]] = _collapse_unions([dict(e) for e in exc.errors()])
        typos = {(tuple(e["loc"][:-1]), g) for e in errors if e["type"] == "extra_forbidden"
                 for g in difflib.get_close_matches(str(e["loc"][-1]), _keys_at(root, e["loc"][:-1]), n=1)}
        for err in errors:
            loc: tuple[int | str, ...] = tuple(err["loc"])
            if loc in skipped or err["type"] == "missing" and (loc[:-1], loc[-1]) in typos:
                continue  # a misspelt key: 'unknown key (did you mean ...)' says it all
            at, message = error_text(err, root, loc)
            where = ".".join(str(p) for p in (prefix + at)[2:]) if len(prefix) >= 2 else None
            self.add(prefix + loc if err["type"] == "extra_forbidden" else prefix + at, message,
                     where=where if _subject(self.doc, prefix + at) else None)


def _subject(doc: Any, loc: tuple[int | str, ...]) -> str | None:
    """The rule id (or catalog, app) an error location belongs to, for the 'file:line: rule-id:' prefix."""
    if len(loc) < 2 or not isinstance(doc, dict):
        return None
    container = doc.get(str(loc[0]))
    if loc[0] in LIST_ITEMS and isinstance(container, list) and isinstance(loc[1], int) and loc[1] < len(container):
        item = container[loc[1]]
        key = {"rules": "id", "approved_apps": "name"}.get(str(loc[0]), "rule")
        value = item.get(key) if isinstance(item, dict) else None
        return str(value) if isinstance(value, (str, int)) and str(value) else None
    if loc[0] == "params":
        return str(loc[1])
    if loc[0] == "catalogs":
        return f"catalog '{loc[1]}'"
    return None


