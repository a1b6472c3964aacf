"""Load and validate a policy folder (rules, catalogs, waivers, attestations, approved apps, params)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from m365audit.collect import is_guid
from m365audit.errors import PolicyFileError, UsageError
from m365audit.models import (
    PolicyPack,
    RejectedEntry,
    Rule,
)
from m365audit.policy.entries import read_catalogs, read_items, read_params
from m365audit.policy.messages import SINGLE_FILES, FileReport, did_you_mean
from m365audit.policy.validate import dotted_loc, param_bound_problems, param_catalog_problems, rule_problems
from m365audit.policy.yamlread import describe, line_of, read_yaml


def default_policy_dir() -> Path:
    """The policy pack that ships inside the installed package."""
    return Path(str(resources.files("m365audit") / "policies"))


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
    check_functions: Collection[str] = ()


def load_pack(folder: Path | None = None, local: Path | None = None, strict: bool = False, *,
              check_functions: Collection[str]) -> PolicyPack:
    """Load and validate every file of a policy folder; all problems are reported together.

    ``local`` is the user's own folder of waivers.yaml, attestations.yaml, approved-apps.yaml and params.yaml:
    each file found there replaces the pack's file of the same name.

    ``check_functions`` are the names a rule's ``check.function`` may take (the evaluator's registry; passed in
    so that the policy stage does not import the stage above it).

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
    state = _Loaded(check_functions=check_functions)
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
                out.append(f"{where.label(p)}:1: not a file m365audit reads" + did_you_mean(p.name, allowed)
                           + f"; a {kind} folder holds {', '.join(allowed)}")
    for sub in ("rules", "catalogs"):
        for p in sorted((where.folder / sub).glob("*.yml")):
            out.append(f"{where.label(p)}:1: ignored: only *.yaml files are read; rename it to {p.stem}.yaml")
    if not sorted((where.folder / "rules").glob("*.yaml")):
        out.append(f"{where.label(where.folder)}: no rules/*.yaml files")
    return out


def _read(where: _Folder, state: _Loaded, path: Path) -> FileReport | None:
    label = where.label(path)
    try:
        state.files[label] = hashlib.sha256(path.read_bytes()).hexdigest()
        return FileReport(label, read_yaml(path, label))
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
        for name, entries in read_catalogs(report).items():
            if name in origin:
                report.add(("catalogs", name), f"also defined in {origin[name]}", where="")
                continue
            origin[name] = f"{report.label}:{line_of(report.doc, ('catalogs', name))}"
            state.catalogs[name] = entries
        state.problems += report.sorted()


def _load_rules(where: _Folder, state: _Loaded) -> None:
    checks = state.check_functions
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
        for index, rule in read_items(report, "rules").items():
            if rule.id in origin:
                report.add(("rules", index), f"duplicate rule id (also in {origin[rule.id]})", where="")
                continue
            origin[rule.id] = f"{report.label}:{line_of(report.doc, ('rules', index))}"
            problems = rule_problems(rule, known, checks)
            for at, problem in problems:
                report.add(("rules", index, *dotted_loc(at)), problem, where=at)
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
        params = read_params(report)
        _check_params(report, params, state)
        state.problems += report.sorted()
        return params
    items = read_items(report, key)
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
    return f"unknown rule '{rule_id}'" + did_you_mean(rule_id, state.rule_ids)


def _check_references(report: FileReport, key: str, items: list[tuple[int, Any]], state: _Loaded) -> None:
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


def _check_rule_reference(report: FileReport, key: str, i: int, item: Any, state: _Loaded) -> None:
    rule_id = item.rule
    if rule_id not in state.rule_ids:
        report.add((key, i, "rule"), _unknown_rule(rule_id, state), where="")
    elif key == "waivers" and state.rule_ids[rule_id]:
        report.add((key, i, "rule"), "a manual rule cannot be waived; record an attestation instead", where="")
    elif key == "attestations" and not state.rule_ids[rule_id]:
        report.add((key, i, "rule"), "only manual rules take attestations; Graph checks this one (a waiver "
                                     "is the way to accept a failing automated rule)", where="")


def _check_params(report: FileReport, params: dict[str, dict[str, Any]], state: _Loaded) -> None:
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
                report.add(("params", rule_id, key), f"unknown parameter '{key}'" + did_you_mean(key, rule.params)
                           + f"; this rule has: {known}", where="")
                continue
            problem = _param_type_problem(value, rule.params[key])
            if problem:
                report.add(("params", rule_id, key), problem, where=key)
        for at, problem in param_catalog_problems("", values, state.catalogs) + param_bound_problems("", values):
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



def rule_params(rule: Rule, pack: PolicyPack) -> dict[str, Any]:
    """A rule's parameters with the user's overrides from params.yaml applied."""
    return {**rule.params, **pack.params.get(rule.id, {})}


