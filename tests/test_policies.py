"""The policy loader: a corpus of broken files, each with its exact message and line; YAML quirks; the schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.errors import PolicyFileError
from m365audit.models import CatalogRef
from m365audit.policies import SCHEMA_COMMAND, default_policy_dir, load_pack, pack_schema
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
        load_pack(folder, local)
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
        load_pack(folder)
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
