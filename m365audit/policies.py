"""Load and validate a policy folder (rules, catalogs, waivers, attestations, approved apps, params)."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from m365audit.errors import PolicyFileError, UsageError
from m365audit.models import (
    OPERATORS,
    ApprovedApp,
    Attestation,
    CatalogRef,
    Condition,
    PolicyPack,
    Rule,
    Waiver,
)
from m365audit.sources import SOURCES, is_guid

REGEX_OPERATORS = ("matches", "matches_any")


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
    """SafeLoader that keeps line numbers, rejects duplicate keys and leaves dates to pydantic."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first on line {first})")
        self.line = line


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    own: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
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


def read_yaml(path: Path, label: str) -> Any:
    """Parse one YAML file; syntax errors and duplicate keys become 'file:line: message'."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError([f"{label}: cannot read: {exc}"]) from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except _DuplicateKey as exc:
        raise PolicyFileError([f"{label}:{exc.line}: {exc}"]) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise PolicyFileError([f"{label}:{line}: invalid YAML: {exc.problem or exc}"]) from exc


def line_of(doc: Any, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node along a pydantic error location that exists in the YAML."""
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


def _messages(exc: ValidationError, doc: Any, label: str) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        rule_id = _rule_id_at(doc, loc)
        where = ".".join(str(p) for p in loc[2:] if not _is_union_tag(p)) if rule_id else ".".join(
            str(p) for p in loc if not _is_union_tag(p))
        msg = err["msg"]
        if loc and loc[-1] == "op" and err["type"] == "literal_error":
            msg = _unknown_operator(err.get("input"))
        elif err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'"
        prefix = f"{label}:{line_of(doc, loc)}: " + (f"{rule_id}: " if rule_id else "")
        out.append(prefix + (f"{where}: {msg}" if where else msg))
    return out


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (part in ("CatalogRef",) or part.startswith(("function-", "json-")))


def _unknown_operator(value: object) -> str:
    guess = difflib.get_close_matches(str(value), OPERATORS, n=1)
    hint = f" (did you mean '{guess[0]}'?)" if guess else f" (allowed: {', '.join(OPERATORS)})"
    return f"unknown operator '{value}'{hint}"


def _rule_id_at(doc: Any, loc: tuple[int | str, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] in ("rules", "waivers", "attestations") and isinstance(loc[1], int):
        try:
            item = doc[loc[0]][loc[1]]
        except (KeyError, IndexError, TypeError):
            return None
        value = item.get("id" if loc[0] == "rules" else "rule") if isinstance(item, dict) else None
        return str(value) if value else None
    return None


def _parse(model: type[_File], doc: Any, label: str) -> Any:
    if doc is None:
        doc = LineDict()
        doc.lines = {}
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise PolicyFileError(_messages(exc, doc, label)) from exc


# --------------------------------------------------------------------------- cross-references


def _conditions(rule: Rule) -> Iterator[tuple[str, Condition]]:
    if rule.check is None:
        return
    for kind in ("where", "conditions"):
        for i, cond in enumerate(getattr(rule.check, kind)):
            yield f"check.{kind}.{i}", cond


def _rule_problems(rule: Rule, catalogs: dict[str, list[Any]], checks: dict[str, Any]) -> list[tuple[str, str]]:
    """(path inside the rule, problem) for every reference that does not resolve."""
    problems: list[tuple[str, str]] = []
    for i, key in enumerate(rule.sources):
        if key not in SOURCES:
            guess = difflib.get_close_matches(key, SOURCES, n=1)
            problems.append((f"sources.{i}", f"unknown source '{key}'" + (f" (did you mean '{guess[0]}'?)"
                                                                            if guess else "")))
    check = rule.check
    if check is None:
        return problems
    if check.function is not None and check.function not in checks:
        guess = difflib.get_close_matches(check.function, checks, n=1)
        problems.append(("check.function", f"unknown check function '{check.function}'"
                         + (f" (did you mean '{guess[0]}'?)" if guess else "")))
    expressions = [("check.items", check.items)] + [
        (f"check.objects.{k}", getattr(check.objects, k)) for k in ("id", "name", "detail")]
    expressions += [(f"{where}.path", cond.path) for where, cond in _conditions(rule)]
    for where, expr in expressions:
        if expr is None:
            continue
        try:
            jmespath.compile(expr)
        except jmespath.exceptions.JMESPathError as exc:
            problems.append((where, f"invalid JMESPath '{expr}': {exc}"))
    for where, cond in _conditions(rule):
        values: list[Any] = []
        if isinstance(cond.value, CatalogRef):
            if cond.value.catalog not in catalogs:
                guess = difflib.get_close_matches(cond.value.catalog, catalogs, n=1)
                problems.append((f"{where}.value.catalog", f"unknown catalog '{cond.value.catalog}'"
                                 + (f" (did you mean '{guess[0]}'?)" if guess else "")))
                continue
            entries = catalogs[cond.value.catalog]
            if cond.value.field is not None:
                missing = [n for n, e in enumerate(entries) if cond.value.field not in e]
                if missing:
                    problems.append((f"{where}.value.field", f"catalog '{cond.value.catalog}' entry {missing[0]} "
                                     f"has no field '{cond.value.field}'"))
                    continue
                values = [e[cond.value.field] for e in entries]
            else:
                values = list(entries)
        elif isinstance(cond.value, list):
            values = cond.value
        else:
            values = [cond.value]
        if cond.op in REGEX_OPERATORS:
            for v in values:
                try:
                    re.compile(str(v))
                except re.error as exc:
                    problems.append((f"{where}.value", f"invalid regular expression '{v}': {exc}"))
    return problems


def _rule_path_line(doc: Any, index: int, path: str) -> int:
    loc: tuple[int | str, ...] = ("rules", index, *(int(p) if p.isdigit() else p for p in path.split(".")))
    return line_of(doc, loc)


# --------------------------------------------------------------------------- the pack


def load_pack(folder: Path | None = None, local: Path | None = None) -> PolicyPack:
    """Load and validate every file of a policy folder; all problems are reported together.

    ``local`` is the user's own folder of waivers.yaml, attestations.yaml, approved-apps.yaml and params.yaml:
    each file found there replaces the pack's file of the same name.
    """
    folder = folder or default_policy_dir()
    if not folder.is_dir():
        raise UsageError(f"policy folder not found: {folder}", hint="--policies takes a folder with rules/*.yaml")
    if local is not None and not local.is_dir():
        raise UsageError(f"local folder not found: {local}",
                         hint="--local takes a folder with waivers.yaml, attestations.yaml, approved-apps.yaml")
    if local is not None:
        unknown = sorted(p.name for p in local.glob("*.y*ml") if p.name not in SINGLE_FILES)
        if unknown:
            raise UsageError(f"{local}: unexpected file(s) {', '.join(unknown)}",
                             hint=f"a local folder holds only {', '.join(SINGLE_FILES)}")

    def label(p: Path) -> str:
        for base, prefix in ((folder, "policies"), (local, "local")):
            if base is not None and p.is_relative_to(base):
                return f"{prefix}/{p.relative_to(base).as_posix()}"
        return str(p)

    problems: list[str] = []
    files: dict[str, str] = {}
    docs: dict[Path, Any] = {}

    def read(path: Path) -> Any:
        files[label(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            docs[path] = read_yaml(path, label(path))
            return docs[path]
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            return None

    rule_files = sorted((folder / "rules").glob("*.yaml")) if (folder / "rules").is_dir() else []
    if not rule_files:
        problems.append(f"{label(folder)}: no rules/*.yaml files")
    catalogs: dict[str, list[Any]] = {}
    catalog_origin: dict[str, str] = {}
    for path in sorted((folder / "catalogs").glob("*.yaml")) if (folder / "catalogs").is_dir() else []:
        doc = read(path)
        if doc is None:
            continue
        try:
            parsed = _parse(CatalogsFile, doc, label(path))
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            continue
        for name, entries in parsed.catalogs.items():
            line = line_of(doc, ("catalogs", name))
            if name in catalogs:
                problems.append(f"{label(path)}:{line}: catalog '{name}' is also defined in {catalog_origin[name]}")
                continue
            for n, entry in enumerate(entries):
                if not str(entry.get("source", "")).strip():
                    problems.append(f"{label(path)}:{line_of(doc, ('catalogs', name, n))}: catalog '{name}' "
                                    f"entry {n}: every entry needs a 'source' note (where the fact comes from)")
            catalogs[name], catalog_origin[name] = entries, label(path)

    checks = _check_functions()
    rules: list[Rule] = []
    rule_origin: dict[str, str] = {}
    for path in rule_files:
        doc = read(path)
        if doc is None:
            continue
        try:
            parsed = _parse(RulesFile, doc, label(path))
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            continue
        for index, rule in enumerate(parsed.rules):
            line = line_of(doc, ("rules", index))
            if rule.id in rule_origin:
                problems.append(f"{label(path)}:{line}: {rule.id}: duplicate rule id (also in {rule_origin[rule.id]})")
                continue
            rule_origin[rule.id] = f"{label(path)}:{line}"
            for where, problem in _rule_problems(rule, catalogs, checks):
                problems.append(f"{label(path)}:{_rule_path_line(doc, index, where)}: {rule.id}: {where}: {problem}")
            rules.append(rule)

    singles: dict[str, Any] = {}
    for name, model in SINGLE_FILES.items():
        path = local / name if local is not None and (local / name).is_file() else folder / name
        if not path.is_file():
            singles[name] = model()
            continue
        doc = read(path)
        try:
            singles[name] = _parse(model, doc, label(path)) if doc is not None or not problems else model()
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            singles[name] = model()
        problems.extend(_reference_problems(name, singles[name], docs.get(path), label(path),
                                            {r.id: r for r in rules}))
    if problems:
        raise PolicyFileError(problems, hint="fix the lines above; `m365audit validate` checks a folder")
    digest = hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(files.items())).encode()).hexdigest()
    return PolicyPack(rules=rules, catalogs=catalogs, waivers=singles["waivers.yaml"].waivers,
                      attestations=singles["attestations.yaml"].attestations,
                      approved_apps=singles["approved-apps.yaml"].approved_apps,
                      params=singles["params.yaml"].params, digest=digest, files=files)


def _reference_problems(name: str, parsed: Any, doc: Any, label: str, rules: dict[str, Rule]) -> list[str]:
    """Waivers, attestations and params must name rules that exist, in a way that can apply."""
    out: list[str] = []

    def unknown(rule_id: str) -> str:
        guess = difflib.get_close_matches(rule_id, rules, n=1)
        return f"unknown rule '{rule_id}'" + (f" (did you mean '{guess[0]}'?)" if guess else "")

    if name == "waivers.yaml":
        for i, w in enumerate(parsed.waivers):
            line = line_of(doc, ("waivers", i, "rule"))
            if w.rule not in rules:
                out.append(f"{label}:{line}: {w.rule}: {unknown(w.rule)}")
            elif rules[w.rule].manual is not None:
                out.append(f"{label}:{line}: {w.rule}: a manual rule cannot be waived; record an attestation")
    elif name == "attestations.yaml":
        for i, a in enumerate(parsed.attestations):
            line = line_of(doc, ("attestations", i, "rule"))
            if a.rule not in rules:
                out.append(f"{label}:{line}: {a.rule}: {unknown(a.rule)}")
            elif rules[a.rule].manual is None:
                out.append(f"{label}:{line}: {a.rule}: only manual rules take attestations; Graph checks this one")
            if a.expires < a.date:
                out.append(f"{label}:{line_of(doc, ('attestations', i, 'expires'))}: {a.rule}: expires before its date")
    elif name == "approved-apps.yaml":
        for i, app in enumerate(parsed.approved_apps):
            if not is_guid(app.app_id):
                out.append(f"{label}:{line_of(doc, ('approved_apps', i, 'app_id'))}: app_id '{app.app_id}' is not a "
                           "GUID (use the application (client) id)")
    elif name == "params.yaml":
        for rule_id, values in parsed.params.items():
            line = line_of(doc, ("params", rule_id))
            if rule_id not in rules:
                out.append(f"{label}:{line}: {rule_id}: {unknown(rule_id)}")
                continue
            for key in values:
                if key not in rules[rule_id].params:
                    known = ", ".join(rules[rule_id].params) or "none"
                    out.append(f"{label}:{line_of(doc, ('params', rule_id, key))}: {rule_id}: unknown parameter "
                               f"'{key}' (this rule has: {known})")
    return out


def _check_functions() -> dict[str, Any]:
    from m365audit.checks import CHECKS

    return dict(CHECKS)


def rule_params(rule: Rule, pack: PolicyPack) -> dict[str, Any]:
    """A rule's parameters with the user's overrides from params.yaml applied."""
    return {**rule.params, **pack.params.get(rule.id, {})}


def pack_schema() -> dict[str, Any]:
    """JSON Schema for every kind of policy file, for editors (yaml-language-server) and reviews."""
    from pydantic.json_schema import models_json_schema

    kinds: list[type[_File]] = [RulesFile, CatalogsFile, *SINGLE_FILES.values()]
    refs, top = models_json_schema([(m, "validation") for m in kinds], ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "m365audit policy pack files",
        "description": "One of: a rules file, a catalogs file, waivers, attestations, approved apps or params.",
        "anyOf": [refs[(m, "validation")] for m in kinds],
        "$defs": top.get("$defs", {}),
    }
