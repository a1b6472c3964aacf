"""Load and validate a policy folder (rules, catalogs, waivers, attestations, approved apps, params)."""

from __future__ import annotations

import difflib
import hashlib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from m365audit.collect.sources import SOURCES, is_guid
from m365audit.errors import PolicyFileError, UsageError
from m365audit.models import (
    OPERATORS,
    ApprovedApp,
    Attestation,
    CatalogRef,
    Condition,
    PolicyPack,
    RejectedEntry,
    Rule,
    Waiver,
)

REGEX_OPERATORS = ("matches", "matches_any")
SCHEMA_FILE = "schema.json"
SCHEMA_COMMAND = "m365audit schema -o m365audit/policies/schema.json"


def default_policy_dir() -> Path:
    """The policy pack that ships inside the installed package."""
    return Path(str(resources.files("m365audit") / "policies"))


# --------------------------------------------------------------------------- YAML with line numbers


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that remembers the line of itself and of each item."""

    line: int = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers, rejects duplicate keys, leaves dates to the models, and reads
    only true/false as booleans (YAML 1.2): `value: off` or `nl: no` stay the strings they look like."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A constructor's plain error (`!!int` on a word) becomes a YAML error with the node's line."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(None, None, f"cannot read the {tag} value: {exc}",
                                                    node.start_mark) from exc


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


def _bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first on line {first}); a second value would silently win")
        self.line = line


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    own: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool, type(None))):
            raise yaml.constructor.ConstructorError(None, None, f"a key must be a plain name, not {describe(key)}",
                                                    key_node.start_mark)
        if key in own:
            raise _DuplicateKey(key, line, own[key])
        own[key] = line
    loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor); the mapping's own keys override them
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)


def _decode(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyFileError([f"{label}:{line}: not UTF-8: byte 0x{raw[exc.start]:02x} in column {column}; "
                               "save the file as UTF-8"]) from exc


def read_yaml(path: Path, label: str) -> Any:
    """Parse one YAML file; unreadable bytes, syntax errors and duplicate keys become 'file:line: message'."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyFileError([f"{label}: cannot read: {exc.strerror or exc}"]) from exc
    text = _decode(raw, label)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except _DuplicateKey as exc:
        raise PolicyFileError([f"{label}:{exc.line}: {exc}"]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or str(exc)
        if "'\\t'" in problem:
            problem = f"a tab in column {mark.column + 1 if mark else '?'}; indent with spaces, not tabs"
        raise PolicyFileError([f"{label}:{line}: invalid YAML: {problem}"]) from exc
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text[:exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise PolicyFileError([f"{label}:{line}: invalid YAML: control character 0x{exc.character:02x} in column "
                               f"{column}; remove it"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError([f"{label}:1: invalid YAML: {exc}"]) from exc


def line_of(doc: Any, loc: Iterable[int | str]) -> int:
    """The line of the deepest node along an error location that exists in the YAML."""
    line = getattr(doc, "line", 0) or 1
    node = doc
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line, node = node.lines[part], node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.lines[part], node[part]
        else:
            break
    return line


# --------------------------------------------------------------------------- file shapes


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RulesFile(_File):
    """policies/rules/*.yaml"""

    rules: list[Rule]


class CatalogsFile(_File):
    """policies/catalogs/*.yaml: named lists; every entry says where its facts come from."""

    catalogs: dict[str, list[dict[str, Any]]]


class WaiversFile(_File):
    """policies/waivers.yaml"""

    waivers: list[Waiver] = []


class AttestationsFile(_File):
    """policies/attestations.yaml"""

    attestations: list[Attestation] = []


class ApprovedAppsFile(_File):
    """policies/approved-apps.yaml"""

    approved_apps: list[ApprovedApp] = []


class ParamsFile(_File):
    """policies/params.yaml: rule id -> {parameter: value}, overriding the rules' defaults."""

    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


SINGLE_FILES: dict[str, type[_File]] = {
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


def _did_you_mean(word: object, options: Iterable[str]) -> str:
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
    hint = f" (did you mean '{alias}'?)" if alias else _did_you_mean(value, OPERATORS)
    return f"unknown operator '{value}'" + (hint or f" (allowed: {', '.join(OPERATORS)})")


def describe(value: object) -> str:
    """A value as a user would name it in a message: 'a list', 'the number 3', "'yes'"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


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


def _date_message(value: object) -> str:
    if not isinstance(value, str):
        return f"expected a date written YYYY-MM-DD (e.g. 2027-01-31), got {describe(value)}"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return f"'{value}' is not a date: write YYYY-MM-DD, e.g. 2027-01-31"
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        return f"'{value}' is not a date: {exc}"
    return f"'{value}' is not a valid date here"


def _text(err: dict[str, Any], root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """(location the message is about, message) for one pydantic error; an unknown key is about its mapping."""
    kind, value, last = err["type"], err.get("input"), loc[-1] if loc else None
    if kind == "missing":
        return loc[:-1], f"missing required key '{last}'"
    if kind == "extra_forbidden":
        return loc[:-1], f"unknown key '{last}'" + _did_you_mean(last, _keys_at(root, loc[:-1]))
    if kind == "literal_error" and last == "op":
        return loc, _unknown_operator(value)
    if kind in ("literal_error", "enum"):
        expected = str(err.get("ctx", {}).get("expected", "")).replace("'", "")
        options = [o.strip() for o in re.split(r",| or ", expected) if o.strip()]
        return loc, f"{describe(value)} is not allowed; use {_or(options)}" + _did_you_mean(value, options)
    if kind == "blank":
        return loc, str(err["msg"])
    if kind.startswith(("date_", "datetime_")):
        return loc, _date_message(value)
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
class _Report:
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
            at, message = _text(err, root, loc)
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


# --------------------------------------------------------------------------- one file


def _envelope(report: _Report, key: str, kind: type) -> Any:
    """The file's one top-level key, checked: a mapping with exactly that key, holding a list or mapping."""
    doc, example = report.doc, EXAMPLES[key]
    if doc is None:
        report.add((), f"the file is empty; it should hold `{example}`")
        return None
    if not isinstance(doc, dict):
        report.add((), f"expected a mapping with the key '{key}' (`{example}`), found {describe(doc)}")
        return None
    for other in doc:
        if other != key:
            report.add((other,), f"unknown key '{other}'" + _did_you_mean(other, [key])
                       + f"; this file holds only '{key}'", where="")
    if key not in doc:
        if not any(k != key for k in doc):
            report.add((), f"missing key '{key}'")
        return None
    value = doc[key]
    if value is None:
        report.add((key,), f"'{key}' is empty; write `{example}`" + (" for none" if key != "rules" else ""),
                   where="")
        return None
    if not isinstance(value, kind):
        report.add((key,), f"expected {'a list' if kind is list else 'a mapping'}, got {describe(value)}", where=key)
        return None
    return value


TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "waivers": ("reason", "approved_by"), "attestations": ("statement", "attested_by"),
    "approved_apps": ("name", "reason")}


def _raw_errors(kind: str, item: Any) -> list[dict[str, Any]]:
    """Checks on the item as written: dates as YYYY-MM-DD (a bare number must not become a Unix timestamp),
    and no blank reason or name (they are the audit trail)."""
    if not isinstance(item, dict):
        return []
    out = []
    for name in DATE_FIELDS.get(kind, ()):
        value = item.get(name)
        if name in item and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
                                 and _valid_date(value)):
            out.append({"loc": (name,), "type": "date_strict", "msg": _date_message(value), "input": value})
    for name in TEXT_FIELDS.get(kind, ()):
        value = item.get(name)
        if isinstance(value, str) and not value.strip():
            out.append({"loc": (name,), "type": "blank", "msg": "is empty; say who and why: it is the audit trail",
                        "input": value})
    return out


def _valid_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _items(report: _Report, key: str) -> dict[int, Any]:
    """Each list item of a rules, waivers, attestations or approved-apps file, validated on its own."""
    items = _envelope(report, key, list)
    out: dict[int, Any] = {}
    if items is None:
        return out
    model = LIST_ITEMS[key]
    for i, item in enumerate(items):
        strict = _raw_errors(key, item)
        for err in strict:
            at, message = _text(err, model, err["loc"])
            report.add((key, i, *at), message)
        try:
            parsed = model.model_validate(item)
        except ValidationError as exc:
            report.pydantic(exc, (key, i), model, skip={e["loc"] for e in strict})
            continue
        if not strict:
            out[i] = parsed
    return out


def _catalogs(report: _Report) -> dict[str, list[dict[str, Any]]]:
    catalogs = _envelope(report, "catalogs", dict)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, entries in (catalogs or {}).items():
        if not isinstance(entries, list):
            report.add(("catalogs", name), f"expected a list of entries, got {describe(entries)}", where="")
            continue
        good = True
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict):
                report.add(("catalogs", name, n), f"entry {n}: expected a mapping, got {describe(entry)}", where="")
                good = False
            elif not str(entry.get("source") or "").strip():
                report.add(("catalogs", name, n), f"entry {n}: every entry needs a 'source' note (where the fact "
                                                  "comes from)", where="")
                good = False
        if good:
            out[str(name)] = entries
    return out


def _params(report: _Report) -> dict[str, dict[str, Any]]:
    params = _envelope(report, "params", dict)
    out: dict[str, dict[str, Any]] = {}
    for rule_id, values in (params or {}).items():
        if not isinstance(values, dict):
            report.add(("params", rule_id), f"expected a mapping of parameter: value, got {describe(values)}",
                       where="")
        else:
            out[str(rule_id)] = dict(values)
    return out


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
        return [], f"unknown catalog '{value.catalog}'" + _did_you_mean(value.catalog, catalogs), "value.catalog"
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
    if cond.op in REGEX_OPERATORS:
        for v in values if values is not None else [cond.value]:
            try:
                re.compile(str(v))
            except re.error as exc:
                problems.append((f"{where}.value", f"invalid regular expression '{v}': {exc}"))
    return problems


def _jmespath_reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0].rstrip(":")
    return text.removeprefix("Invalid jmespath expression: ").removesuffix(", for expression")


def _rule_problems(rule: Rule, catalogs: dict[str, list[Any]], checks: dict[str, Any]) -> list[tuple[str, str]]:
    """(path inside the rule, problem) for every reference that does not resolve and every value that cannot work."""
    problems: list[tuple[str, str]] = []
    for i, key in enumerate(rule.sources):
        if key not in SOURCES:
            problems.append((f"sources.{i}", f"unknown source '{key}'" + _did_you_mean(key, SOURCES)))
    if rule.manual is not None and rule.sources and rule.observed_by is None:
        problems.append(("sources", "a manual rule reads no sources unless it has 'observed_by' (Graph cannot "
                                    "observe it); remove 'sources'"))
    problems += _param_catalog_problems("params", rule.params, catalogs)
    problems += _param_bound_problems("params", rule.params)
    check = rule.active_check
    if check is None:
        return problems
    key = _check_key(rule)
    if check.function is not None and check.function not in checks:
        problems.append((f"{key}.function", f"unknown check function '{check.function}'"
                         + _did_you_mean(check.function, checks)))
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


def _param_catalog_problems(where: str, params: dict[str, Any], catalogs: dict[str, Any]) -> list[tuple[str, str]]:
    """Parameters named *_catalog (a name) or *_catalogs (a list of names) must name catalogs that exist."""
    out = []
    for key, value in params.items():
        names = [value] if key.endswith("_catalog") else value if key.endswith("_catalogs") else []
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name not in catalogs:
                out.append((f"{where}.{key}", f"unknown catalog '{name}'" + _did_you_mean(name, catalogs)))
    return out


PARAM_BOUNDS: dict[str, tuple[int, int, str]] = {
    "lookback_days": (1, 180, "Purview keeps audit records 180 days"),
}
"""Parameters whose whole-number value must lie in a range, by name, with the reason for the message."""


def _param_bound_problems(where: str, params: dict[str, Any]) -> list[tuple[str, str]]:
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


def _loc(path: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in path.split("."))


# --------------------------------------------------------------------------- the pack


@dataclass
class _Folder:
    """Where files come from and how they are named in messages."""

    folder: Path
    local: Path | None
    given: bool

    def label(self, p: Path) -> str:
        if self.local is not None and p.is_relative_to(self.local):
            return (self.local / p.relative_to(self.local)).as_posix()
        if p.is_relative_to(self.folder):
            base = self.folder if self.given else Path("policies")
            return (base / p.relative_to(self.folder)).as_posix()
        return p.as_posix()


@dataclass
class _Loaded:
    """What the files held so far, and every problem found."""

    problems: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    catalogs: dict[str, list[Any]] = field(default_factory=dict)
    catalog_names: set[str] = field(default_factory=set)
    rules: list[Rule] = field(default_factory=list)
    rule_ids: dict[str, bool] = field(default_factory=dict)  # every id written in a rules file -> manual?
    rejected: list[RejectedEntry] = field(default_factory=list)


def load_pack(folder: Path | None = None, local: Path | None = None, strict: bool = False) -> PolicyPack:
    """Load and validate every file of a policy folder; all problems are reported together.

    ``local`` is the user's own folder of waivers.yaml, attestations.yaml, approved-apps.yaml and params.yaml:
    each file found there replaces the pack's file of the same name.

    ``strict`` (``m365audit validate``): every problem is an error. Otherwise (audit, evaluate) a malformed
    waiver, attestation or approved app is not applied and lands in ``PolicyPack.rejected``, so that the
    audit still runs, fails closed, and its findings say why; a broken rule, catalog or params.yaml still
    stops everything, since it would change what is checked.
    """
    where = _Folder(folder or default_policy_dir(), local, folder is not None)
    if not where.folder.is_dir():
        raise UsageError(f"policy folder not found: {where.folder}",
                         hint="--policies takes a folder with rules/*.yaml")
    if local is not None and not local.is_dir():
        raise UsageError(f"local folder not found: {local}",
                         hint="--local takes a folder with waivers.yaml, attestations.yaml, approved-apps.yaml")
    state = _Loaded()
    state.problems += _stray_files(where)
    _load_catalogs(where, state)
    _load_rules(where, state)
    singles = {name: _load_single(where, state, name, strict) for name in SINGLE_FILES}
    if state.problems:
        raise PolicyFileError(state.problems, hint="fix the lines above; `m365audit validate` checks a folder")
    digest = hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(state.files.items())).encode()).hexdigest()
    return PolicyPack(rules=state.rules, catalogs=state.catalogs, waivers=singles["waivers.yaml"],
                      attestations=singles["attestations.yaml"], approved_apps=singles["approved-apps.yaml"],
                      params=singles["params.yaml"], rejected=state.rejected, digest=digest, files=state.files)


def _stray_files(where: _Folder) -> list[str]:
    """Files m365audit would silently ignore: a misspelt waivers.yaml, rules saved as .yml."""
    out = []
    for base, allowed in ((where.folder, SINGLE_FILES), (where.local, SINGLE_FILES)):
        if base is None:
            continue
        for p in sorted(base.glob("*.y*ml")):
            if p.name not in allowed:
                kind = "local" if base == where.local else "policy"
                out.append(f"{where.label(p)}:1: not a file m365audit reads" + _did_you_mean(p.name, allowed)
                           + f"; a {kind} folder holds {', '.join(allowed)}")
    for sub in ("rules", "catalogs"):
        for p in sorted((where.folder / sub).glob("*.yml")):
            out.append(f"{where.label(p)}:1: ignored: only *.yaml files are read; rename it to {p.stem}.yaml")
    if not sorted((where.folder / "rules").glob("*.yaml")):
        out.append(f"{where.label(where.folder)}: no rules/*.yaml files")
    return out


def _read(where: _Folder, state: _Loaded, path: Path) -> _Report | None:
    label = where.label(path)
    try:
        state.files[label] = hashlib.sha256(path.read_bytes()).hexdigest()
        return _Report(label, read_yaml(path, label))
    except (PolicyFileError, OSError) as exc:
        state.problems += exc.problems if isinstance(exc, PolicyFileError) else [f"{label}: cannot read: {exc}"]
        return None


def _load_catalogs(where: _Folder, state: _Loaded) -> None:
    origin: dict[str, str] = {}
    for path in sorted((where.folder / "catalogs").glob("*.yaml")):
        report = _read(where, state, path)
        if report is None:
            continue
        if isinstance(report.doc, dict) and isinstance(report.doc.get("catalogs"), dict):
            state.catalog_names |= {str(k) for k in report.doc["catalogs"]}
        for name, entries in _catalogs(report).items():
            if name in origin:
                report.add(("catalogs", name), f"also defined in {origin[name]}", where="")
                continue
            origin[name] = f"{report.label}:{line_of(report.doc, ('catalogs', name))}"
            state.catalogs[name] = entries
        state.problems += report.sorted()


def _load_rules(where: _Folder, state: _Loaded) -> None:
    checks = _check_functions()
    origin: dict[str, str] = {}
    known = {**state.catalogs, **{n: [] for n in state.catalog_names if n not in state.catalogs}}
    for path in sorted((where.folder / "rules").glob("*.yaml")):
        report = _read(where, state, path)
        if report is None:
            continue
        raw = report.doc.get("rules") if isinstance(report.doc, dict) else None
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                state.rule_ids.setdefault(item["id"], "manual" in item)
        for index, rule in _items(report, "rules").items():
            if rule.id in origin:
                report.add(("rules", index), f"duplicate rule id (also in {origin[rule.id]})", where="")
                continue
            origin[rule.id] = f"{report.label}:{line_of(report.doc, ('rules', index))}"
            problems = _rule_problems(rule, known, checks)
            for at, problem in problems:
                report.add(("rules", index, *_loc(at)), problem, where=at)
            if not problems:
                state.rules.append(rule)
        state.problems += report.sorted()


def _load_single(where: _Folder, state: _Loaded, name: str, strict: bool) -> Any:
    local = where.local / name if where.local is not None else None
    path = local if local is not None and local.is_file() else where.folder / name
    key = next(iter(SINGLE_FILES[name].model_fields))
    empty: Any = {} if key == "params" else []
    if not path.is_file():
        return empty
    lenient = not strict and key != "params"
    before = len(state.problems)
    report = _read(where, state, path)
    if report is None:
        if lenient:  # unreadable as a whole: nothing in it applies
            state.rejected += [RejectedEntry(kind=key, problem=p) for p in state.problems[before:]]
            del state.problems[before:]
        return empty
    if key == "params":
        params = _params(report)
        _check_params(report, params, state)
        state.problems += report.sorted()
        return params
    items = _items(report, key)
    _check_references(report, key, sorted(items.items()), state)
    if not lenient:
        state.problems += report.sorted()
        return [items[i] for i in sorted(items)]
    found = sorted(zip(report.locs, report.problems, strict=True), key=lambda lp: line_of(report.doc, lp[0]))
    for loc, problem in found:
        index = loc[1] if len(loc) >= 2 and loc[0] == key and isinstance(loc[1], int) else None
        items = {} if index is None else {i: v for i, v in items.items() if i != index}
        state.rejected.append(RejectedEntry(kind=key, rule=_raw_rule(report.doc, key, index), problem=problem))
    return [items[i] for i in sorted(items)]


def _raw_rule(doc: Any, key: str, index: int | None) -> str | None:
    """The rule a (possibly malformed) waiver or attestation names, if it names one in a usable way."""
    try:
        value = doc[key][index]["rule"] if index is not None else None
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) and value else None


def _unknown_rule(rule_id: str, state: _Loaded) -> str:
    return f"unknown rule '{rule_id}'" + _did_you_mean(rule_id, state.rule_ids)


def _check_references(report: _Report, key: str, items: list[tuple[int, Any]], state: _Loaded) -> None:
    """Waivers, attestations and approved apps: they must name rules that exist, in a way that can apply."""
    seen: dict[str, int] = {}
    for i, item in items:
        if key in ("waivers", "attestations"):
            _check_rule_reference(report, key, i, item, state)
        if key == "waivers" and item.objects == []:
            report.add((key, i, "objects"), "is an empty list, which would cover nothing; list the objects, or "
                                            "remove 'objects' to waive the whole rule")
        if key == "attestations" and item.expires < item.date:
            report.add((key, i, "expires"), f"{item.expires.isoformat()} is before the attestation's date "
                                            f"{item.date.isoformat()}")
        if key == "approved_apps":
            if not is_guid(item.app_id):
                report.add((key, i, "app_id"), f"'{item.app_id}' is not a GUID (use the application (client) id)")
            elif item.app_id.lower() in seen:
                report.add((key, i, "app_id"), f"app {item.app_id} is listed twice (also on line "
                                               f"{seen[item.app_id.lower()]})")
            seen.setdefault(item.app_id.lower(), line_of(report.doc, (key, i)))


def _check_rule_reference(report: _Report, key: str, i: int, item: Any, state: _Loaded) -> None:
    rule_id = item.rule
    if rule_id not in state.rule_ids:
        report.add((key, i, "rule"), _unknown_rule(rule_id, state), where="")
    elif key == "waivers" and state.rule_ids[rule_id]:
        report.add((key, i, "rule"), "a manual rule cannot be waived; record an attestation instead", where="")
    elif key == "attestations" and not state.rule_ids[rule_id]:
        report.add((key, i, "rule"), "only manual rules take attestations; Graph checks this one (a waiver "
                                     "is the way to accept a failing automated rule)", where="")


def _check_params(report: _Report, params: dict[str, dict[str, Any]], state: _Loaded) -> None:
    """params.yaml: known rules, known parameters, and each value of the same type as the rule's default."""
    rules = {r.id: r for r in state.rules}
    for rule_id, values in params.items():
        if rule_id not in state.rule_ids:
            report.add(("params", rule_id), _unknown_rule(rule_id, state), where="")
            continue
        rule = rules.get(rule_id)
        if rule is None:  # the rule itself has problems, reported already
            continue
        for key, value in values.items():
            if key not in rule.params:
                known = ", ".join(rule.params) or "none"
                report.add(("params", rule_id, key), f"unknown parameter '{key}'" + _did_you_mean(key, rule.params)
                           + f"; this rule has: {known}", where="")
                continue
            problem = _param_type_problem(value, rule.params[key])
            if problem:
                report.add(("params", rule_id, key), problem, where=key)
        for at, problem in _param_catalog_problems("", values, state.catalogs) + _param_bound_problems("", values):
            report.add(("params", rule_id, at.lstrip(".")), problem, where=at.lstrip("."))


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "true or false"), ((int, float), "a number"), (str, "text"), (list, "a list"), (dict, "a mapping"))


def _kind(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float):
        return "a whole number" if isinstance(value, int) else "a number"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), "nothing (null)")


def _param_type_problem(value: Any, default: Any) -> str | None:
    """An override must have the type of the rule's default (a whole number for a whole number, ...)."""
    want, got = _kind(default), _kind(value)
    if want == "a number" and got == "a whole number" or want == got == "nothing (null)":
        return None
    if want != got:
        return f"expected {want} like the rule's default ({default!r}), got {describe(value)}"
    if isinstance(default, list) and default and isinstance(value, list):
        inner = _kind(default[0])
        if any(_kind(v) != inner for v in value):
            return f"expected a list of {inner.removeprefix('a ')} like the rule's default ({default!r})"
    if isinstance(default, list) and not default and isinstance(value, list) and \
            any(not isinstance(v, str) for v in value):
        return "expected a list of strings"
    return None


def _check_functions() -> dict[str, Any]:
    from m365audit.evaluate.checks import CHECKS

    return dict(CHECKS)


def rule_params(rule: Rule, pack: PolicyPack) -> dict[str, Any]:
    """A rule's parameters with the user's overrides from params.yaml applied."""
    return {**rule.params, **pack.params.get(rule.id, {})}


# --------------------------------------------------------------------------- JSON Schema


_CONDITION_VALUE_RULES: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (NO_VALUE_OPERATORS, {"not": {"required": ["value"]}}),
    (LIST_OPERATORS, {"required": ["value"], "properties": {"value": {"anyOf": [
        {"type": "array"}, {"$ref": "#/$defs/CatalogRef"}]}}}),
    (NUMBER_OPERATORS, {"required": ["value"], "properties": {"value": {"type": "number"}}}),
    (STRING_OPERATORS, {"required": ["value"], "properties": {"value": {"type": "string"}}}),
    (SCALAR_OPERATORS, {"required": ["value"], "properties": {"value": {"type": ["string", "number", "boolean"]}}}),
]


def pack_schema() -> dict[str, Any]:
    """JSON Schema for every kind of policy file, for editors (yaml-language-server) and reviews.

    Every kind of file has exactly one top-level key (rules, catalogs, waivers, ...), so one schema with those
    keys as properties, of which a file has exactly one, lets an editor complete the top-level key and then
    check the file precisely, without the vague 'matches none of anyOf' errors of a union of file schemas.
    """
    from pydantic.json_schema import models_json_schema

    kinds: list[type[_File]] = [RulesFile, CatalogsFile, *SINGLE_FILES.values()]
    refs, top = models_json_schema([(m, "validation") for m in kinds], ref_template="#/$defs/{model}")
    defs: dict[str, Any] = top.get("$defs", {})
    properties: dict[str, Any] = {}
    for model in kinds:
        name = refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]
        file_schema = defs.pop(name)
        for key, prop in file_schema["properties"].items():
            properties[key] = {**prop, "description": f"{model.__doc__}"}
    condition = defs["Condition"]
    condition["allOf"] = [{"if": {"properties": {"op": {"enum": list(ops)}}, "required": ["op"]}, "then": then}
                          for ops, then in _CONDITION_VALUE_RULES]
    for dates in ("Waiver", "Attestation", "ApprovedApp"):
        for prop in defs[dates]["properties"].values():
            if prop.get("format") == "date":
                prop["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "m365audit policy file",
        "description": "One of: rules/*.yaml (rules), catalogs/*.yaml (catalogs), waivers.yaml, attestations.yaml, "
                       "approved-apps.yaml or params.yaml. Generated by `m365audit schema`; see docs/rules.md.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "$defs": defs,
    }
