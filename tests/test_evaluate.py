"""The engine with inline snapshots (no HTTP): operators, all/any/none, fail-closed rules, waivers, attestations."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.evaluate import evaluate
from m365audit.evaluate.engine import run_declarative
from m365audit.evaluate.operators import OPERATOR_TABLE, TypeMismatch, holds, search
from m365audit.models import (
    OPERATORS,
    Attestation,
    CatalogRef,
    Check,
    Condition,
    ManualCheck,
    PolicyPack,
    RejectedEntry,
    Rule,
    Snapshot,
    SourceError,
    SourceResult,
    Status,
    Text,
    Waiver,
)
from tests.conftest import ROOT

TODAY = date(2026, 11, 28)
T = Text(nl="x", en="x")
CATALOGS: dict[str, list[Any]] = {"plans": [{"id": "p1", "source": "t"}, {"id": "p2", "source": "t"}]}


def cond(path: str, op: str, value: Any = None, ignore_case: bool = False) -> Condition:
    return Condition(path=path, op=op, value=value, ignore_case=ignore_case)  # type: ignore[arg-type]


@pytest.mark.parametrize("item, condition, expected", [
    ({"a": 1}, cond("a", "eq", 1), True),
    ({"a": 1}, cond("a", "eq", 2), False),
    ({"a": "Enabled"}, cond("a", "eq", "enabled", ignore_case=True), True),
    ({"a": "Enabled"}, cond("a", "eq", "enabled"), False),
    ({"a": 1}, cond("a", "ne", 2), True),
    ({}, cond("a", "ne", 2), None),
    ({"a": "x"}, cond("a", "in", ["x", "y"]), True),
    ({}, cond("a", "in", ["x"]), None),
    ({"a": "z"}, cond("a", "not_in", ["x", "y"]), True),
    ({}, cond("a", "not_in", ["x"]), None),
    ({"a": ["x", "y"]}, cond("a", "contains", "y"), True),
    ({"a": ["X"]}, cond("a", "contains", "x", ignore_case=True), True),
    ({}, cond("a", "contains", "y"), None),
    ({"a": ["x"]}, cond("a", "not_contains", "y"), True),
    ({}, cond("a", "not_contains", "y"), None),
    ({"a": ["p2", "q"]}, cond("a", "contains_any", CatalogRef(catalog="plans", field="id")), True),
    ({"a": ["q"]}, cond("a", "contains_any", CatalogRef(catalog="plans", field="id")), False),
    ({"a": ["q"]}, cond("a", "contains_none", ["p1"]), True),
    ({}, cond("a", "contains_none", ["p1"]), None),
    ({"a": "M365_COPILOT_APPS"}, cond("a", "matches", "copilot", ignore_case=True), True),
    ({"a": "M365_COPILOT_APPS"}, cond("a", "matches", "copilot"), False),
    ({"a": "SPE_E5"}, cond("a", "matches_any", ["COPILOT", "^SPE"]), True),
    ({"a": "managePermissionGrantsForSelf.x"}, cond("a", "starts_with", "MANAGE", ignore_case=True), True),
    ({"a": 0}, cond("a", "exists"), True),
    ({"a": None}, cond("a", "exists"), False),
    ({}, cond("a", "absent"), True),
    ({"a": []}, cond("a", "empty"), True),
    ({}, cond("a", "empty"), None),
    ({"a": [1]}, cond("a", "not_empty"), True),
    ({}, cond("a", "not_empty"), None),
    ({"a": 5}, cond("a", "gt", 4), True),
    ({"a": 4}, cond("a", "ge", 4), True),
    ({"a": 3}, cond("a", "lt", 4), True),
    ({"a": 5}, cond("a", "le", 4), False),
    ({}, cond("a", "gt", 4), None),
    ({"a": {"b": [{"c": 1}, {"c": 2}]}}, cond("a.b[].c", "contains", 2), True),
], ids=lambda v: repr(v)[:40])
def test_operator_table(item: dict[str, Any], condition: Condition, expected: bool | None) -> None:
    """None: the condition cannot be decided (a missing value is not a quiet true or false)."""
    if expected is None:
        with pytest.raises(TypeMismatch, match="missing or null"):
            holds(condition, item, CATALOGS)
    else:
        assert holds(condition, item, CATALOGS) is expected


@pytest.mark.parametrize("item, condition", [
    ({"a": "5"}, cond("a", "gt", 4)),
    ({"a": True}, cond("a", "gt", 0)),
    ({"a": 5}, cond("a", "contains", "x")),
    ({"a": ["x"]}, cond("a", "matches", "x")),
    ({"a": 3}, cond("a", "not_empty")),
    ({"a": 3}, cond("a", "starts_with", "x")),
])
def test_type_mismatch_is_raised_not_guessed(item: dict[str, Any], condition: Condition) -> None:
    with pytest.raises(TypeMismatch, match="type mismatch at 'a'"):
        holds(condition, item, CATALOGS)


ITEMS = [{"id": "1", "state": "ready"}, {"id": "2", "state": "draft"}]


@pytest.mark.parametrize("expect, conditions, status, objects", [
    ("all", [cond("state", "eq", "ready")], Status.FAIL, ["2"]),
    ("all", [cond("state", "in", ["ready", "draft"])], Status.PASS, []),
    ("any", [cond("state", "eq", "ready")], Status.PASS, ["1"]),
    ("any", [cond("state", "eq", "obsolete")], Status.FAIL, []),
    ("none", [cond("state", "eq", "ready")], Status.FAIL, ["1"]),
    ("none", [cond("state", "eq", "obsolete")], Status.PASS, []),
])
def test_expectations(expect: str, conditions: list[Condition], status: Status, objects: list[str]) -> None:
    check = Check(expect=expect, conditions=conditions)  # type: ignore[arg-type]
    outcome = run_declarative(check, ITEMS, CATALOGS)
    assert outcome.status is status and [o.id for o in outcome.objects] == objects


@pytest.mark.parametrize("expect, status", [("all", Status.PASS), ("none", Status.PASS), ("any", Status.FAIL)])
def test_zero_in_scope(expect: str, status: Status) -> None:
    check = Check(where=[cond("state", "eq", "nothing-matches")], expect=expect,  # type: ignore[arg-type]
                  conditions=[cond("id", "exists")])
    outcome = run_declarative(check, ITEMS, CATALOGS)
    assert outcome.status is status
    if status is Status.PASS:
        assert "0 in scope" in outcome.message.en and "0 binnen bereik" in outcome.message.nl


def test_a_single_object_source_is_one_item_and_items_must_select_a_list() -> None:
    assert run_declarative(Check(conditions=[cond("isEnabled", "eq", True)]), {"isEnabled": True}, {}).status \
        is Status.PASS
    assert run_declarative(Check(items="isEnabled", conditions=[]), {"isEnabled": True}, {}).status is Status.ERROR


def test_a_type_mismatch_makes_the_rule_error() -> None:
    outcome = run_declarative(Check(conditions=[cond("state", "gt", 3)]), ITEMS, {})
    assert outcome.status is Status.ERROR and "type mismatch" in outcome.message.en


# --------------------------------------------------------------------------- whole rules


def rule(rule_id: str = "connectors-off", sources: list[str] | None = None, **extra: Any) -> Rule:
    fields: dict[str, Any] = {"id": rule_id, "severity": "high", "title": T, "rationale": T, "remediation": T}
    if "manual" not in extra:
        fields["sources"] = sources or ["external_connections"]
        fields["check"] = Check(where=[cond("state", "eq", "ready")], expect="none",
                                objects={"id": "id", "name": "name"})  # type: ignore[arg-type]
    return Rule(**fields, **extra)


def snapshot(data: Any = None, error: SourceError | None = None) -> Snapshot:
    src = SourceResult(key="external_connections", ok=error is None, url="/v1.0/external/connections",
                       data=data, error=error)
    return Snapshot(tenant_id="t", collected_at=datetime(2026, 11, 28, tzinfo=timezone.utc), tool_version="0",
                    sources={"external_connections": src})


def pack(*rules: Rule, waivers: list[Waiver] | None = None,
         attestations: list[Attestation] | None = None) -> PolicyPack:
    return PolicyPack(rules=list(rules), catalogs={}, waivers=waivers or [], attestations=attestations or [])


READY = [{"id": "c1", "name": "HR", "state": "ready"}, {"id": "c2", "name": "Zaken", "state": "ready"}]


def test_an_unreadable_source_is_error_never_pass() -> None:
    err = SourceError(message="Graph answered 403", status=403, code="Authorization_RequestDenied", hint="grant X")
    [finding] = evaluate(snapshot(error=err), pack(rule()), TODAY)
    assert finding.status is Status.ERROR
    assert finding.errors[0].source == "external_connections" and finding.errors[0].hint == "grant X"


def test_a_source_missing_from_the_snapshot_is_error() -> None:
    [finding] = evaluate(snapshot([]), pack(rule(sources=["users"])), TODAY)
    assert finding.status is Status.ERROR and finding.errors[0].message == "not collected in this run"


def waiver(objects: list[str] | None = None, expires: date = date(2027, 1, 31)) -> Waiver:
    return Waiver(rule="connectors-off", objects=objects, reason="Pilot DPIA 2026-07", approved_by="ciso@voorbeeld.nl",
                  expires=expires)


def test_an_active_waiver_turns_fail_into_waived_and_keeps_the_underlying_result() -> None:
    [finding] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver()]), TODAY)
    assert finding.status is Status.WAIVED and finding.underlying_status is Status.FAIL
    assert [o.id for o in finding.objects] == ["c1", "c2"] and all(o.waived for o in finding.objects)


def test_a_waiver_expiring_today_still_covers_and_one_that_expired_yesterday_does_not() -> None:
    [today] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver(expires=TODAY)]), TODAY)
    [expired] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver(expires=date(2026, 11, 27))]), TODAY)
    assert today.status is Status.WAIVED
    assert expired.status is Status.FAIL and "expired on 2026-11-27" in expired.notes[0].en


def test_an_object_scoped_waiver_fails_again_on_a_new_offender_and_names_it() -> None:
    [finding] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver(objects=["c1"])]), TODAY)
    assert finding.status is Status.FAIL
    assert {o.id: o.waived for o in finding.objects} == {"c1": True, "c2": False}
    assert "Zaken" in finding.notes[-1].en


def test_an_object_scoped_waiver_covering_every_offender_waives() -> None:
    [finding] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver(objects=["c1", "Zaken"])]), TODAY)
    assert finding.status is Status.WAIVED


def test_a_whole_rule_waiver_covers_an_error_but_an_object_waiver_cannot() -> None:
    err = SourceError(message="503", status=503)
    [whole] = evaluate(snapshot(error=err), pack(rule(), waivers=[waiver()]), TODAY)
    [scoped] = evaluate(snapshot(error=err), pack(rule(), waivers=[waiver(objects=["c1"])]), TODAY)
    assert whole.status is Status.WAIVED and whole.underlying_status is Status.ERROR
    assert scoped.status is Status.ERROR


def test_a_waiver_on_a_passing_rule_is_pointed_out() -> None:
    [finding] = evaluate(snapshot([]), pack(rule(), waivers=[waiver()]), TODAY)
    assert finding.status is Status.PASS and "consider withdrawing" in finding.notes[0].en


MANUAL = ManualCheck(where=T, how=T)


def attestation(d: date, expires: date) -> Attestation:
    return Attestation(rule="teams-off", statement="Checked all meeting policies", attested_by="fb@voorbeeld.nl",
                       date=d, expires=expires)


def test_manual_rules_carry_a_current_attestation() -> None:
    r = rule("teams-off", manual=MANUAL)
    [current] = evaluate(snapshot([]), pack(r, attestations=[attestation(date(2026, 11, 1), date(2027, 2, 1))]),
                         TODAY)
    [expired] = evaluate(snapshot([]), pack(r, attestations=[attestation(date(2026, 1, 1), date(2026, 6, 1))]),
                         TODAY)
    [future] = evaluate(snapshot([]), pack(r, attestations=[attestation(date(2026, 12, 1), date(2027, 6, 1))]),
                        TODAY)
    assert current.status is Status.MANUAL and current.attestation is not None and "2027-02-01" in current.message.en
    assert expired.status is Status.MANUAL and expired.attestation is None and "expired" in expired.notes[0].en
    assert future.attestation is None and "future" in future.notes[0].en


# --------------------------------------------------------------------------- docs/rules.md, statement by statement

NULL_VALUES: dict[str, Any] = {
    "eq": "x", "ne": "x", "in": ["x"], "not_in": ["x"], "contains": "x", "not_contains": "x", "contains_any": ["x"],
    "contains_none": ["x"], "matches": "x", "matches_any": ["x"], "starts_with": "x", "exists": None,
    "absent": None, "empty": None, "not_empty": None, "gt": 1, "ge": 1, "lt": 1, "le": 1,
}


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("item", [{}, {"a": None}], ids=["missing", "null"])
def test_a_missing_or_null_path_decides_only_presence_operators(op: str, item: dict[str, Any]) -> None:
    """Semantics 6: exists and absent judge presence; every other operator cannot judge a missing value."""
    if op in ("exists", "absent"):
        assert holds(cond("a", op, NULL_VALUES[op]), item, CATALOGS) is (op == "absent")
    else:
        with pytest.raises(TypeMismatch, match="missing or null"):
            holds(cond("a", op, NULL_VALUES[op]), item, CATALOGS)
        for default in (True, False):  # an explicit safe default decides it
            declared = Condition(path="a", op=op, value=NULL_VALUES[op], when_null=default)  # type: ignore[arg-type]
            assert holds(declared, item, CATALOGS) is default


@pytest.mark.parametrize("item, expected", [
    ({"state": "draft"}, False), ({"state": "READY"}, True), ({"state": "unknownFutureValue"}, None),
    ({"state": 3}, None), ({"state": ["ready"]}, None), ({}, None), ({"state": None}, None),
])
def test_known_values_make_an_unclassified_enum_undecidable(item: dict[str, Any], expected: bool | None) -> None:
    """Class 1: a value the rule does not classify cannot prove an item out of scope."""
    condition = Condition(path="state", op="in", value=["ready", "limitExceeded"], ignore_case=True,
                          known=["draft", "ready", "obsolete", "limitExceeded"])
    if expected is None:
        with pytest.raises(TypeMismatch):
            holds(condition, item, CATALOGS)
    else:
        assert holds(condition, item, CATALOGS) is expected
    outcome = run_declarative(Check(where=[condition], expect="none"), [{"id": "c1", **item}], CATALOGS)
    assert outcome.status is {None: Status.ERROR, True: Status.FAIL, False: Status.PASS}[expected]
    if expected is None:
        assert outcome.objects[0].id == "c1" and "state" in outcome.message.en and "state" in outcome.message.nl


def test_known_applies_to_every_element_of_a_list() -> None:
    condition = Condition(path="[a, b]", op="contains_any", value=["some", "all"], known=["none", "some", "all"])
    assert holds(condition, {"a": "none", "b": "all"}, CATALOGS) is True
    for bad in ({"a": "none"}, {"a": "none", "b": "everyone"}, {"a": "none", "b": 1}):
        with pytest.raises(TypeMismatch):
            holds(condition, bad, CATALOGS)


@pytest.mark.parametrize("expect, items, status", [
    ("none", [{"id": "1", "s": "ready"}, {"id": "2"}], Status.FAIL),    # a proven hit stands
    ("none", [{"id": "1", "s": "draft"}, {"id": "2"}], Status.ERROR),   # nothing proven, one undecided
    ("all", [{"id": "1", "s": "draft"}, {"id": "2"}], Status.FAIL),
    ("all", [{"id": "1", "s": "ready"}, {"id": "2"}], Status.ERROR),
    ("any", [{"id": "1", "s": "ready"}, {"id": "2"}], Status.PASS),
    ("any", [{"id": "1", "s": "draft"}, {"id": "2"}], Status.ERROR),
])
def test_an_undecided_item_blocks_only_the_verdicts_it_could_change(expect: str, items: list[Any],
                                                                      status: Status) -> None:
    check = Check(expect=expect, conditions=[cond("s", "eq", "ready")])  # type: ignore[arg-type]
    outcome = run_declarative(check, items, CATALOGS)
    assert outcome.status is status
    if status is not Status.ERROR:
        assert "1 more could not be judged" in outcome.message.en


def test_a_where_condition_that_is_false_puts_the_item_out_of_scope_whatever_else_is_unknown() -> None:
    check = Check(where=[cond("kind", "eq", "custom"), cond("s", "eq", "ready")], expect="none")
    assert run_declarative(check, [{"kind": "microsoft"}], CATALOGS).status is Status.PASS


def test_the_operator_table_in_the_docs_lists_exactly_the_operators_of_the_engine() -> None:
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    table = docs.split("## Conditions and operators")[1].split("## Semantics")[0]
    documented = set(re.findall(r"`([a-z_]+)`", "".join(line.split("|")[1] for line in table.splitlines()
                                                        if line.startswith("| `"))))
    assert documented == set(OPERATORS) == set(OPERATOR_TABLE)


@pytest.mark.parametrize("item, condition", [
    ({"a": ["ready"]}, cond("a", "in", ["ready"])),
    ({"a": {"state": "ready"}}, cond("a", "eq", "ready")),
    ({"a": 1}, cond("a", "eq", "1")),
    ({"a": "true"}, cond("a", "ne", True)),
    ({"a": 0}, cond("a", "not_in", ["0"])),
    ({"a": {"x": 1}}, cond("a", "contains_any", ["x"])),
    ({"a": 5}, cond("length(a)", "gt", 1)),
])
def test_more_type_mismatches_are_errors_not_quiet_inequality(item: dict[str, Any], condition: Condition) -> None:
    """Semantics 7: a list where a scalar belongs, or 1 against '1', would otherwise pass a 'none' rule quietly."""
    with pytest.raises(TypeMismatch, match="type mismatch at"):
        holds(condition, item, CATALOGS)
    outcome = run_declarative(Check(where=[condition], expect="none"), [item], CATALOGS)
    assert outcome.status is Status.ERROR


@pytest.mark.parametrize("condition, expected", [
    (cond("a", "ne", "ENABLED", ignore_case=True), False),
    (cond("a", "in", ["ENABLED"], ignore_case=True), True),
    (cond("a", "not_in", ["ENABLED"], ignore_case=True), False),
    (cond("a", "starts_with", "ENA", ignore_case=True), True),
    (cond("a", "matches_any", ["^ENA"], ignore_case=True), True),
    (cond("b", "contains_any", ["X"], ignore_case=True), True),
    (cond("b", "contains_none", ["X"], ignore_case=True), False),
    (cond("b", "not_contains", "X", ignore_case=True), False),
    (cond("a", "in", ["ENABLED"]), False),
])
def test_ignore_case_applies_to_every_string_operator(condition: Condition, expected: bool) -> None:
    assert holds(condition, {"a": "Enabled", "b": ["x", "y"]}, CATALOGS) is expected


@pytest.mark.parametrize("path, item", [
    ("a.b", {"a": {"b": 1}}), ("a.b", {"a": [{"b": 1}]}), ("a.b", {"a": "text"}), ("a.b", {}),
    ("a", [1, 2]), ("a.b.c", {"a": {"b": None}}), ("_x.y1", {"_x": {"y1": [1]}}),
])
def test_the_fast_path_for_dotted_names_agrees_with_jmespath(path: str, item: Any) -> None:
    import jmespath

    assert search(path, item) == jmespath.search(path, item)


def test_items_that_select_nothing_make_the_rule_error_naming_it() -> None:
    outcome = run_declarative(Check(items="value", conditions=[]), {"other": []}, {})
    assert outcome.status is Status.ERROR and "selected nothing (null), not a list" in outcome.message.en


def test_zero_items_at_all_is_zero_in_scope() -> None:
    assert run_declarative(Check(expect="all", conditions=[cond("id", "exists")]), [], {}).status is Status.PASS
    assert run_declarative(Check(expect="any", conditions=[cond("id", "exists")]), [], {}).status is Status.FAIL


def test_all_names_every_failing_item_once_in_source_order() -> None:
    items = [{"id": str(i), "ok": i % 2 == 0} for i in range(6)] + [{"id": "1", "ok": False}]
    outcome = run_declarative(Check(expect="all", conditions=[cond("ok", "eq", True)]), items, {})
    assert [o.id for o in outcome.objects] == ["1", "3", "5", "1"]


def test_an_object_name_that_cannot_be_computed_leaves_the_verdict_alone() -> None:
    check = Check(where=[cond("state", "eq", "ready")], expect="none",
                  objects={"id": "id", "name": "length(id)"})  # type: ignore[arg-type]
    outcome = run_declarative(check, [{"id": 5, "state": "ready"}], {})
    assert outcome.status is Status.FAIL and outcome.objects[0].id == "5" and outcome.objects[0].name == ""


def test_a_catalog_reference_without_field_compares_with_whole_entries() -> None:
    catalogs = {"names": ["Copilot", "Claude"]}
    assert holds(cond("a", "in", CatalogRef(catalog="names")), {"a": "Claude"}, catalogs) is True


def test_a_waiver_with_an_empty_object_list_covers_nothing() -> None:
    [finding] = evaluate(snapshot(READY), pack(rule(), waivers=[waiver(objects=[])]), TODAY)
    assert finding.status is Status.FAIL and not any(o.waived for o in finding.objects)


def test_a_waiver_keeps_an_errors_details_and_the_waived_message_keeps_the_underlying_one() -> None:
    err = SourceError(message="Graph answered 403", status=403, code="Authorization_RequestDenied")
    [finding] = evaluate(snapshot(error=err), pack(rule(), waivers=[waiver()]), TODAY)
    assert finding.status is Status.WAIVED and finding.errors[0].status == 403
    assert finding.message.en.startswith("Waived until 2027-01-31") and "Cannot judge" in finding.message.en


def test_an_attestation_starting_today_and_one_ending_today_both_count() -> None:
    r = rule("teams-off", manual=MANUAL)
    for d, e in ((TODAY, date(2027, 1, 1)), (date(2026, 1, 1), TODAY)):
        [finding] = evaluate(snapshot([]), pack(r, attestations=[attestation(d, e)]), TODAY)
        assert finding.attestation is not None


# --------------------------------------------------------------------------- evaluate RUN_DIR --as-of


PILOT = ROOT / "fixtures" / "tenants" / "pilot-with-waivers"


@pytest.fixture(scope="module")
def pilot_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the pilot-with-waivers fixture tenant, made by `m365audit audit --replay`."""
    reports = tmp_path_factory.mktemp("reports")
    result = CliRunner().invoke(cli, ["audit", "--replay", str(PILOT), "--local", str(PILOT / "local"),
                                      "--reports", str(reports), "--as-of", "2026-11-28", "-q"])
    assert result.exit_code == 1, result.output
    [run] = list(reports.glob("*/2*"))
    return run


def statuses_as_of(run: Path, as_of: str, local: Path = PILOT / "local") -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--local", str(local), "--as-of", as_of, "--json",
                                      "--lang", "en"])
    doc = json.loads(result.output)
    return result.exit_code, {f["rule_id"]: f for f in doc["findings"]}


@pytest.mark.parametrize("as_of, changes", [
    ("2026-11-28", {}),
    ("2026-12-31", {}),  # a waiver still covers on its expiry date
    ("2027-01-01", {"endpoint-recall-disabled": "error"}),
    ("2027-02-01", {"endpoint-recall-disabled": "error", "copilot-plans-not-assigned": "fail",
                    "copilot-usage-none": "fail"}),
    ("2027-04-01", {"endpoint-recall-disabled": "error", "copilot-plans-not-assigned": "fail",
                    "copilot-usage-none": "fail"}),
])
def test_evaluate_as_of_decides_waiver_expiry(pilot_run: Path, as_of: str, changes: dict[str, str]) -> None:
    expected = yaml.safe_load((PILOT / "expected.yaml").read_text(encoding="utf-8"))
    code, findings = statuses_as_of(pilot_run, as_of)
    assert {k: f["status"] for k, f in findings.items()} == {**expected, **changes}
    assert code == 1  # copilot-subscriptions-absent fails throughout: its waiver expired on 2026-10-31
    assert "Waiver expired on 2026-10-31" in findings["copilot-subscriptions-absent"]["notes"][0]
    for rule_id in changes:
        assert any("expired" in n for n in findings[rule_id]["notes"]), rule_id


@pytest.mark.parametrize("as_of, attested", [("2026-11-28", True), ("2027-02-01", True), ("2027-02-02", False)])
def test_evaluate_as_of_decides_attestation_expiry(pilot_run: Path, as_of: str, attested: bool) -> None:
    _, findings = statuses_as_of(pilot_run, as_of)
    teams = findings["teams-meeting-copilot-restricted"]
    assert teams["status"] == "manual" and ("attestation" in teams) is attested
    assert ("Attested until 2027-02-01" in teams["message"]) is attested
    assert any("Attestation expired on 2026-08-01" in n for n in findings["copilot-web-search-disabled"]["notes"])


def test_evaluate_uses_the_local_files_it_is_given(pilot_run: Path, tmp_path: Path) -> None:
    """Without the tenant's waivers every waived rule is judged on its own again."""
    (tmp_path / "waivers.yaml").write_text("waivers: []\n", encoding="utf-8")
    code, findings = statuses_as_of(pilot_run, "2026-11-28", local=tmp_path)
    assert not [k for k, f in findings.items() if f["status"] == "waived"]
    assert findings["endpoint-recall-disabled"]["status"] == "error"
    assert code == 1


def test_a_malformed_waiver_covers_nothing_and_the_finding_says_so() -> None:
    problem = "local/waivers.yaml:5: connectors-off: expires: 'next friday' is not a date: write YYYY-MM-DD"
    rejected = [RejectedEntry(kind="waivers", rule="connectors-off", problem=problem),
                RejectedEntry(kind="waivers", rule="other-rule", problem="local/waivers.yaml:9: other-rule: ...")]
    p = pack(rule()).model_copy(update={"rejected": rejected})
    [finding] = evaluate(snapshot(READY), p, TODAY)
    assert finding.status is Status.FAIL
    assert [n.en for n in finding.notes] == [f"Not applied, it covers nothing until fixed: {problem}"]


def test_an_unusable_waivers_file_is_noted_on_failing_findings_only() -> None:
    problem = "local/waivers.yaml:3: invalid YAML: expected ',' or ']', but got '}'"
    p = pack(rule()).model_copy(update={"rejected": [RejectedEntry(kind="waivers", problem=problem)]})
    [failing] = evaluate(snapshot(READY), p, TODAY)
    [passing] = evaluate(snapshot([]), p, TODAY)
    assert failing.status is Status.FAIL and problem in failing.notes[0].en and problem in failing.notes[0].nl
    assert passing.status is Status.PASS and passing.notes == []


def test_a_malformed_attestation_leaves_the_rule_unattested_and_says_so() -> None:
    problem = "local/attestations.yaml:5: teams-off: date: '2026-13-01' is not a date: month must be in 1..12"
    p = pack(rule("teams-off", manual=MANUAL)).model_copy(
        update={"rejected": [RejectedEntry(kind="attestations", rule="teams-off", problem=problem)]})
    [finding] = evaluate(snapshot([]), p, TODAY)
    assert finding.status is Status.MANUAL and finding.attestation is None and problem in finding.notes[0].en


def test_evaluate_with_a_malformed_local_waiver_runs_fails_closed_and_warns(pilot_run: Path, tmp_path: Path) -> None:
    text = (PILOT / "local" / "waivers.yaml").read_text(encoding="utf-8")
    (tmp_path / "waivers.yaml").write_text(text.replace("expires: 2027-01-31", "expires: 2027-02-30", 1),
                                           encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", str(pilot_run), "--local", str(tmp_path),
                                      "--as-of", "2026-11-28", "--json"])
    assert result.exit_code == 1
    assert "Warning: not applied (covers nothing): " in result.stderr and "2027-02-30" in result.stderr
    finding = next(f for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "copilot-plans-not-assigned")
    assert finding["status"] == "fail" and "'2027-02-30' is not a date" in finding["notes"][-1]


def test_validate_rejects_what_evaluate_sets_aside(tmp_path: Path) -> None:
    (tmp_path / "waivers.yaml").write_text("waivers:\n  - {rule: copilot-usage-none, reason: r, approved_by: a, "
                                           "expires: next friday}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--local", str(tmp_path)])
    assert result.exit_code == 2
    assert "waivers.yaml:2: copilot-usage-none: expires: 'next friday' is not a date" in result.output


def test_an_audit_with_a_malformed_local_waiver_still_runs_and_says_why(tmp_path: Path) -> None:
    local = tmp_path / "local"
    shutil.copytree(PILOT / "local", local)
    waivers = local / "waivers.yaml"
    waivers.write_text(waivers.read_text(encoding="utf-8").replace("expires: 2027-01-31", "expires: next month", 1),
                       encoding="utf-8")
    result = CliRunner().invoke(cli, ["audit", "--replay", str(PILOT), "--local", str(local), "--reports",
                                      str(tmp_path / "reports"), "--as-of", "2026-11-28", "-q"])
    assert result.exit_code == 1, result.output
    [run] = list((tmp_path / "reports").glob("*/2*"))
    findings = {f["rule_id"]: f for f in json.loads((run / "findings.json").read_text(encoding="utf-8"))["findings"]}
    plans = findings["copilot-plans-not-assigned"]
    assert plans["status"] == "fail"
    assert any("waivers.yaml:8: copilot-plans-not-assigned: expires: 'next month' is not a date" in n
               for n in plans["notes"])
    assert findings["copilot-usage-none"]["status"] == "waived"  # the other waivers still apply


def test_a_malformed_approved_app_is_noted_where_a_function_check_fails() -> None:
    problem = "local/approved-apps.yaml:2: Zaaksysteem: app_id: 'Zaaksysteem' is not a GUID"
    rejected = [RejectedEntry(kind="approved_apps", problem=problem)]
    by_function = rule().model_copy(update={"check": Check(function="copilot_usage_none")})
    declarative = rule("connectors-off")
    p = pack(by_function).model_copy(update={"rejected": rejected})
    [finding] = evaluate(snapshot(error=SourceError(message="503", status=503)), p, TODAY)
    assert problem in finding.notes[0].en
    [other] = evaluate(snapshot(READY), pack(declarative).model_copy(update={"rejected": rejected}), TODAY)
    assert other.status is Status.FAIL and other.notes == []


DATA = [None, 0, 2.5, True, "", "Ready", [], [1], ["x", "Y"], [[1]], [{"a": 1}], {}, {"a": 1}, [None]]
VALUES = [None, 3, "x", "(", True, [], ["x"], [1, "x"], ["("], CatalogRef(catalog="plans", field="id")]


@pytest.mark.parametrize("op", OPERATORS)
def test_an_operator_answers_true_false_or_type_mismatch_on_any_data_never_crashes(op: str) -> None:
    """Whatever Graph sends and whatever a pack built in Python holds: a verdict or 'error', never a traceback."""
    for data, value, path, fold in itertools.product(DATA, VALUES, ["a", "a.b", "length(a)", "a[0]"], [False, True]):
        with contextlib.suppress(TypeMismatch):
            assert holds(cond(path, op, value, fold), {"a": data}, CATALOGS) in (True, False)


def test_audit_with_a_malformed_local_waiver_warns_on_stderr(tmp_path: Path) -> None:
    local = tmp_path / "local"
    shutil.copytree(PILOT / "local", local)
    text = (local / "waivers.yaml").read_text(encoding="utf-8")
    (local / "waivers.yaml").write_text(text.replace("expires: 2027-01-31", "expires: 2027-02-30", 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["audit", "--replay", str(PILOT), "--local", str(local), "-q",
                                      "--reports", str(tmp_path / "reports"), "--as-of", "2026-11-28"])
    assert result.exit_code == 1, result.output
    assert "Warning: not applied (covers nothing): " in result.stderr and "2027-02-30" in result.stderr
