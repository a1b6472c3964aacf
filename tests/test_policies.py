"""The policy loader: a corpus of broken files, each with its exact message and line; YAML quirks; the schema."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.errors import PolicyFileError
from m365audit.evaluate import load_pack
from m365audit.models import CatalogRef
from m365audit.policy import SCHEMA_COMMAND, default_policy_dir, pack_schema
from m365audit.report import labels
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "data" / "bad_policies"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))


def build(tmp_path: Path, case: str | None = None) -> tuple[Path, Path | None]:
    """The corpus base pack as tmp/policies with a case's files laid over it (local/ goes to tmp/local)."""
    shutil.copytree(CORPUS / "_base", tmp_path / "policies")
    if case is not None:
        for f in sorted((CORPUS / case).rglob("*")):
            rel = f.relative_to(CORPUS / case)
            if f.is_file() and rel.name != "expected.txt":
                dest = tmp_path / rel if rel.parts[0] == "local" else tmp_path / "policies" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
    local = tmp_path / "local"
    return Path("policies"), Path("local") if local.is_dir() else None


def expected(case: str) -> list[str]:
    return (CORPUS / case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_the_corpus_is_large_enough_and_every_case_has_its_expectation() -> None:
    assert len(CASES) >= 30
    assert [c for c in CASES if not (CORPUS / c / "expected.txt").is_file()] == []


def test_the_base_of_the_corpus_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder, _ = build(tmp_path)
    assert [r.id for r in load_pack(folder).rules] == ["connectors-off", "plans-not-assigned", "teams-off"]


@pytest.mark.parametrize("case", CASES)
def test_a_broken_file_gives_exactly_its_message_and_line(case: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder, local = build(tmp_path, case)
    with pytest.raises(PolicyFileError) as caught:
        load_pack(folder, local, strict=True)
    assert caught.value.problems == expected(case)


@pytest.mark.parametrize("case", CASES)
def test_validate_exits_2_with_the_message_and_no_traceback(case: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder, local = build(tmp_path, case)
    result = CliRunner().invoke(cli, ["validate", str(folder), *(["--local", str(local)] if local else [])])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: " + expected(case)[0] + "\n")
    for line in expected(case):
        assert line in result.output
    assert "Hint: fix the lines above" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --------------------------------------------------------------------------- what the loader accepts


def write_rule(tmp_path: Path, value_yaml: str, op: str = "eq") -> Path:
    folder = tmp_path / "pack"
    shutil.copytree(CORPUS / "_base", folder)
    (folder / "rules" / "extra.yaml").write_text(
        "rules:\n  - id: extra-rule\n    severity: low\n    title: {nl: a, en: a}\n    rationale: {nl: a, en: a}\n"
        "    remediation: {nl: a, en: a}\n    sources: [external_connections]\n    check:\n"
        f"      conditions: [{{path: state, op: {op}, value: {value_yaml}}}]\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("value_yaml, expected", [
    ("off", "off"), ("no", "no"), ("yes", "yes"), ("on", "on"), ("'true'", "true"),
    ("true", True), ("False", False), ("2027-01-31", "2027-01-31"),
])
def test_only_true_and_false_are_booleans_and_dates_stay_strings(tmp_path: Path, value_yaml: str,
                                                                 expected: object) -> None:
    """YAML 1.1 reads `off`, `no`, `yes` and `on` as booleans: `value: off` would silently compare with false."""
    pack = load_pack(write_rule(tmp_path, value_yaml))
    cond = next(r for r in pack.rules if r.id == "extra-rule").check.conditions[0]  # type: ignore[union-attr]
    assert cond.value == expected and type(cond.value) is type(expected)


def test_a_catalog_reference_is_resolved_not_taken_as_a_literal_mapping(tmp_path: Path) -> None:
    pack = load_pack(write_rule(tmp_path, "{catalog: copilot-plans, field: name}", op="in"))
    cond = next(r for r in pack.rules if r.id == "extra-rule").check.conditions[0]  # type: ignore[union-attr]
    assert cond.value == CatalogRef(catalog="copilot-plans", field="name")


def test_a_byte_order_mark_and_merge_keys_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(CORPUS / "_base", folder)
    text = (CORPUS / "_base" / "rules" / "base.yaml").read_text(encoding="utf-8")
    (folder / "rules" / "base.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (folder / "waivers.yaml").write_text(
        "waivers:\n  - &w {rule: connectors-off, reason: Pilot, approved_by: ciso@voorbeeld.nl, expires: 2027-01-31}\n"
        "  - {<<: *w, objects: [c1]}\n", encoding="utf-8")
    pack = load_pack(folder)
    assert [w.objects for w in pack.waivers] == [None, ["c1"]]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder, _ = build(tmp_path, "two-errors-in-one-file")
    for case in ("waiver-unknown-rule", "params-wrong-type", "catalog-entry-without-source"):
        for f in (CORPUS / case).rglob("*.yaml"):
            dest = folder / f.relative_to(CORPUS / case)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
    with pytest.raises(PolicyFileError) as caught:
        load_pack(folder, strict=True)
    want = [line for case in ("catalog-entry-without-source", "two-errors-in-one-file", "waiver-unknown-rule",
                              "params-wrong-type") for line in expected(case)]
    assert caught.value.problems == want


def test_the_shipped_pack_and_every_fixture_local_folder_are_valid() -> None:
    pack = load_pack()
    assert len(pack.rules) >= 20
    for local in sorted((ROOT / "fixtures" / "tenants").glob("*/local")):
        load_pack(None, local)


def test_a_missing_folder_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["validate", "/nonexistent/policies"])
    assert result.exit_code == 2 and "policy folder not found" in result.output


# --------------------------------------------------------------------------- the JSON Schema


def test_schema_json_is_current_with_the_models() -> None:
    kept = json.loads((default_policy_dir() / "schema.json").read_text(encoding="utf-8"))
    assert kept == pack_schema(), f"policies/schema.json is stale; regenerate it with: {SCHEMA_COMMAND}"


def test_the_schema_command_prints_what_is_kept() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == (default_policy_dir() / "schema.json").read_text(encoding="utf-8")


def test_the_schema_knows_each_kind_of_file_by_its_one_top_level_key() -> None:
    schema = pack_schema()
    assert sorted(schema["properties"]) == ["approved_apps", "attestations", "catalogs", "params", "rules",
                                            "waivers"]
    assert schema["maxProperties"] == 1 and schema["additionalProperties"] is False
    condition = schema["$defs"]["Condition"]
    assert condition["properties"]["op"]["enum"][:2] == ["eq", "ne"]
    in_rule = next(a for a in condition["allOf"] if "in" in a["if"]["properties"]["op"]["enum"])
    assert in_rule["then"]["required"] == ["value"]
    assert schema["$defs"]["Waiver"]["properties"]["expires"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"


# --------------------------------------------------------------------------- rules and explain


@pytest.mark.parametrize("lang, manual", [("en", "(manual)"), ("nl", "(handmatig)")])
def test_rules_lists_every_rule_with_severity_sources_and_title(lang: str, manual: str) -> None:
    pack = load_pack()
    result = CliRunner().invoke(cli, ["rules", "--lang", lang])
    assert result.exit_code == 0
    header, *lines = result.output.splitlines()
    assert header.split() == (["rule", "severity", "title", "[sources]"] if lang == "en"
                              else ["regel", "ernst", "titel", "[bronnen]"])
    assert len(lines) == len(pack.rules)
    for line, rule in zip(lines, pack.rules, strict=True):
        assert line.split()[:2] == [rule.id, labels(lang)[rule.severity.value]]  # type: ignore[arg-type]
        assert rule.title.get(lang) in line  # type: ignore[arg-type]
        assert line.endswith(f"[{','.join(rule.sources)}]" if rule.sources else f"[{manual}]")


@pytest.mark.parametrize("lang, words", [
    ("en", ("version", "severity critical", "Why: ", "How to fix: ",
            "Source users: /v1.0/users (v1.0) needs User.Read.All",
            "Checked in code: m365audit/evaluate/checks/licences.py service_plans_not_assigned", "Reference: ")),
    ("nl", ("versie", "ernst kritiek", "Waarom: ", "Herstelactie: ",
            "Bron users: /v1.0/users (v1.0) vereist User.Read.All",
            "Controle in code: m365audit/evaluate/checks/licences.py service_plans_not_assigned", "Referentie: ")),
])
def test_explain_shows_rationale_remediation_sources_and_permissions(lang: str, words: tuple[str, ...]) -> None:
    rule = load_pack().rule("copilot-plans-not-assigned")
    assert rule is not None
    result = CliRunner().invoke(cli, ["explain", rule.id, "--lang", lang])
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output
    assert rule.title.get(lang) in result.output  # type: ignore[arg-type]
    assert rule.rationale.get(lang) in result.output and rule.remediation.get(lang) in result.output  # type: ignore[arg-type]
    assert "Parameters: plan_catalog=copilot-service-plans" in result.output


def test_explain_a_manual_rule_says_where_and_how_to_check() -> None:
    rule = next(r for r in load_pack().rules if r.manual is not None)
    assert rule.manual is not None
    result = CliRunner().invoke(cli, ["explain", rule.id, "--lang", "en"])
    assert result.exit_code == 0
    assert f"Where: {rule.manual.where.en}" in result.output and f"How to check: {rule.manual.how.en}" in result.output
    assert "Source " not in result.output


def test_explain_shows_the_parameters_as_overridden_in_the_local_folder(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("params:\n  audit-no-ai-interactions: {lookback_days: 14}\n")
    result = CliRunner().invoke(cli, ["explain", "audit-no-ai-interactions", "--local", str(tmp_path)])
    assert result.exit_code == 0 and "lookback_days=14" in result.output


@pytest.mark.parametrize("rule_id, message", [
    ("copilot-plans-not-assigne", "Error: unknown rule 'copilot-plans-not-assigne' "
                                  "(did you mean 'copilot-plans-not-assigned'?)"),
    ("nothing-like-it", "Error: unknown rule 'nothing-like-it'\n"),
])
def test_explain_an_unknown_rule_is_a_usage_error_with_a_suggestion(rule_id: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["explain", rule_id])
    assert result.exit_code == 2
    assert message in result.output and "Hint: `m365audit rules` lists them" in result.output
    assert "Traceback" not in result.output


SCHEMA_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
                                "integer": int, "number": (int, float)}


def schema_errors(schema: dict[str, Any], value: Any, root: dict[str, Any], at: str = "") -> list[str]:
    """The subset of JSON Schema that schema.json uses, enough to check what an editor would flag."""
    if "$ref" in schema:
        return schema_errors(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], value, root, at)
    errors: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(value, SCHEMA_TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                 for k in kinds)
        if not ok:
            return [f"{at}: not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in enum")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        errors.append(f"{at}: below minimum")
    if "anyOf" in schema and all(schema_errors(s, value, root, at) for s in schema["anyOf"]):
        errors.append(f"{at}: matches none of anyOf")
    for sub in schema.get("allOf", []):
        if "if" not in sub or not schema_errors(sub["if"], value, root, at):
            errors += schema_errors(sub.get("then", sub), value, root, at)
    if "not" in schema and not schema_errors(schema["not"], value, root, at):
        errors.append(f"{at}: matches 'not'")
    if isinstance(value, dict):
        errors += [f"{at}: missing {k}" for k in schema.get("required", []) if k not in value]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += schema_errors(props[k], v, root, f"{at}.{k}")
            elif extra is False:
                errors.append(f"{at}: unknown key {k}")
            elif isinstance(extra, dict):
                errors += schema_errors(extra, v, root, f"{at}.{k}")
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", len(value)):
            errors.append(f"{at}: wrong number of keys")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += schema_errors(schema["items"], v, root, f"{at}.{i}")
    return errors


def shipped_files() -> list[Path]:
    pack = default_policy_dir()
    local = (ROOT / "fixtures" / "tenants").glob("*/local/*.yaml")
    return sorted([*pack.glob("*/*.yaml"), *pack.glob("*.yaml"), *local])


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_policy_file_is_valid_against_the_schema(path: Path) -> None:
    from m365audit.policy.yamlread import read_yaml

    schema = pack_schema()
    assert schema_errors(schema, json.loads(json.dumps(read_yaml(path, path.name))), schema) == []


@pytest.mark.parametrize("case", ["unknown-rule-key", "severity-not-allowed", "unknown-operator-did-you-mean",
                                  "text-missing-language", "catalog-reference-misspelt", "in-needs-a-list",
                                  "gt-needs-a-number", "exists-takes-no-value", "eq-without-value",
                                  "unknown-top-level-key", "waiver-date-next-friday", "attestation-unknown-key",
                                  "approved-app-without-review-date"])
def test_the_schema_flags_what_an_editor_can_see(case: str) -> None:
    from m365audit.policy.yamlread import read_yaml

    schema = pack_schema()
    [path] = [p for p in (CORPUS / case).rglob("*.yaml")]
    assert schema_errors(schema, json.loads(json.dumps(read_yaml(path, path.name))), schema) != []


# --------------------------------------------------------------------------- malformed user files fail closed


@pytest.mark.parametrize("case, kind, rule", [
    ("waiver-date-next-friday", "waivers", "connectors-off"),
    ("waiver-unknown-rule", "waivers", "connector-off"),
    ("waiver-empty-objects", "waivers", "connectors-off"),
    ("waivers-empty-file", "waivers", None),
    ("attestation-expires-before-date", "attestations", "teams-off"),
    ("attestation-month-13", "attestations", "teams-off"),
    ("approved-app-not-a-guid", "approved_apps", None),
    ("local-waiver-unknown-rule", "waivers", "connectors-of"),
])
def test_outside_validate_a_malformed_user_entry_is_set_aside_not_fatal(
        case: str, kind: str, rule: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit must still run: the entry covers nothing (fail closed) and the findings say why."""
    monkeypatch.chdir(tmp_path)
    folder, local = build(tmp_path, case)
    pack = load_pack(folder, local)
    assert [(r.kind, r.rule, r.problem) for r in pack.rejected] == [(kind, rule, line) for line in expected(case)]
    assert getattr(pack, kind) == []


@pytest.mark.parametrize("case", ["unknown-operator-did-you-mean", "catalog-entry-without-source",
                                  "params-wrong-type", "yaml-syntax-error"])
def test_outside_validate_a_broken_rule_catalog_or_params_file_still_stops_everything(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder, local = build(tmp_path, case)
    with pytest.raises(PolicyFileError) as caught:
        load_pack(folder, local)
    assert caught.value.problems == expected(case)


def test_one_malformed_waiver_leaves_the_others_applied(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(CORPUS / "_base", folder)
    (folder / "waivers.yaml").write_text(
        "waivers:\n"
        "  - {rule: connectors-off, reason: Pilot, approved_by: ciso, expires: 2027-01-31}\n"
        "  - {rule: plans-not-assigned, reason: Pilot, approved_by: ciso, expires: 31-01-2027}\n", encoding="utf-8")
    pack = load_pack(folder)
    assert [w.rule for w in pack.waivers] == ["connectors-off"]
    assert [r.rule for r in pack.rejected] == ["plans-not-assigned"]
    assert "expires: '31-01-2027' is not a date" in pack.rejected[0].problem
