"""The engine with inline snapshots (no HTTP): operators, all/any/none, fail-closed rules, waivers, attestations."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest

from m365audit.evaluate import TypeMismatch, evaluate, holds, run_declarative
from m365audit.models import (
    Attestation,
    CatalogRef,
    Check,
    Condition,
    ManualCheck,
    PolicyPack,
    Rule,
    Snapshot,
    SourceError,
    SourceResult,
    Status,
    Text,
    Waiver,
)

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
    ({}, cond("a", "ne", 2), True),
    ({"a": "x"}, cond("a", "in", ["x", "y"]), True),
    ({}, cond("a", "in", ["x"]), False),
    ({"a": "z"}, cond("a", "not_in", ["x", "y"]), True),
    ({}, cond("a", "not_in", ["x"]), True),
    ({"a": ["x", "y"]}, cond("a", "contains", "y"), True),
    ({"a": ["X"]}, cond("a", "contains", "x", ignore_case=True), True),
    ({}, cond("a", "contains", "y"), False),
    ({"a": ["x"]}, cond("a", "not_contains", "y"), True),
    ({}, cond("a", "not_contains", "y"), True),
    ({"a": ["p2", "q"]}, cond("a", "contains_any", CatalogRef(catalog="plans", field="id")), True),
    ({"a": ["q"]}, cond("a", "contains_any", CatalogRef(catalog="plans", field="id")), False),
    ({"a": ["q"]}, cond("a", "contains_none", ["p1"]), True),
    ({}, cond("a", "contains_none", ["p1"]), True),
    ({"a": "M365_COPILOT_APPS"}, cond("a", "matches", "copilot", ignore_case=True), True),
    ({"a": "M365_COPILOT_APPS"}, cond("a", "matches", "copilot"), False),
    ({"a": "SPE_E5"}, cond("a", "matches_any", ["COPILOT", "^SPE"]), True),
    ({"a": "managePermissionGrantsForSelf.x"}, cond("a", "starts_with", "MANAGE", ignore_case=True), True),
    ({"a": 0}, cond("a", "exists"), True),
    ({"a": None}, cond("a", "exists"), False),
    ({}, cond("a", "absent"), True),
    ({"a": []}, cond("a", "empty"), True),
    ({}, cond("a", "empty"), True),
    ({"a": [1]}, cond("a", "not_empty"), True),
    ({}, cond("a", "not_empty"), False),
    ({"a": 5}, cond("a", "gt", 4), True),
    ({"a": 4}, cond("a", "ge", 4), True),
    ({"a": 3}, cond("a", "lt", 4), True),
    ({"a": 5}, cond("a", "le", 4), False),
    ({}, cond("a", "gt", 4), False),
    ({"a": {"b": [{"c": 1}, {"c": 2}]}}, cond("a.b[].c", "contains", 2), True),
], ids=lambda v: repr(v)[:40])
def test_operator_table(item: dict[str, Any], condition: Condition, expected: bool) -> None:
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
