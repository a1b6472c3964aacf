"""Drift: night-to-night fixture pairs through the real SDK (respx), the diff's quietness, and the drift command."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import respx
import yaml
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.cli import cli
from m365audit.drift import DriftReport
from m365audit.drift.nights import RuleDrift
from m365audit.drift.snapdiff import diff, diff_items, normalise, object_tally
from m365audit.evidence import verify_run
from m365audit.graph import ReplayTransport
from m365audit.models import Status
from tests.conftest import ROOT, real_transport

NIGHTS = ROOT / "fixtures" / "nights"


def run_night(folder: Path, reports: Path, when: dict[str, Any], notify: tuple[str, ...] = ()) -> AuditResult:
    """One night through msgraph-sdk with respx answering graph.microsoft.com from the night's recording."""
    replay = ReplayTransport.from_folder(folder)
    local = folder / "local" if (folder / "local").is_dir() else None
    as_of = when.get("as_of")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host="graph.microsoft.com").mock(side_effect=replay.answer)
        router.route(host="127.0.0.1").pass_through()
        result = asyncio.run(run_audit(AuditOptions(
            reports=reports, replay=folder, local=local, transport=real_transport(), lang="en", notify=notify,
            now=datetime.fromisoformat(str(when["now"]).replace("Z", "+00:00")),
            as_of=date.fromisoformat(str(as_of)) if as_of else None)))
    assert replay.unmatched == [], "a request nobody recorded"
    return result


def run_pair(name: str, reports: Path, notify: tuple[str, ...] = ()) -> tuple[AuditResult, AuditResult]:
    pair = yaml.safe_load((NIGHTS / name / "pair.yaml").read_text(encoding="utf-8"))
    first = run_night(NIGHTS / name / "night1", reports, pair["night1"])
    second = run_night(NIGHTS / name / "night2", reports, pair["night2"], notify)
    return first, second


def rule(report: DriftReport, rule_id: str) -> RuleDrift:
    found = [r for r in report.rules if r.rule_id == rule_id]
    assert found, f"{rule_id} not in drift: {[r.rule_id for r in report.rules]}"
    return found[0]


def test_identical_nights_with_reordered_pages_are_no_drift(tmp_path: Path) -> None:
    first, second = run_pair("reordered-identical", tmp_path)
    assert first.drift is None, "the first run has nothing to compare with"
    drift = second.drift
    assert drift is not None
    assert drift.quiet, drift.model_dump_json(indent=1)
    assert (drift.rules, drift.sources, drift.rule_changes, drift.alert) == ([], [], [], False)
    assert (second.run_dir / "drift.json").is_file()
    assert json.loads((second.run_dir / "drift.json").read_text())["old_run"]["run_id"] == first.run_dir.name


def test_new_copilot_user_is_a_new_object_in_a_failing_rule(tmp_path: Path) -> None:
    _, second = run_pair("new-copilot-user", tmp_path)
    drift = second.drift
    assert drift is not None and drift.alert
    r = rule(drift, "copilot-plans-not-assigned")
    assert (r.old_status, r.new_status, r.kind) == (Status.FAIL, Status.FAIL, "new-objects")
    assert [o.id for o in r.added] == ["a77cfb87-9bb7-55d7-a2c0-b19504079fec"] and r.removed == []
    assert r.added[0].name == "b.degroot@proefstad.voorbeeld.nl"
    assert drift.rules[0].kind in ("regression", "new-objects"), "what needs attention comes first"
    users = next(s for s in drift.sources if s.source == "users")
    assert users.old_state == users.new_state == "ok"
    assert all(p.path.startswith("users[id=a77cfb87-9bb7-55d7-a2c0-b19504079fec]") for p in users.paths)
    assert any(p.path.endswith("assignedLicenses[skuId=639dec6b-bb19-468b-871c-c5c441c4b0cb]")
               and p.change == "added" for p in users.paths)
    assert [s.source for s in drift.sources] == ["users"], "nothing else changed"


def test_new_tenant_wide_ai_grant_is_a_regression(tmp_path: Path) -> None:
    first, second = run_pair("new-ai-app-grant", tmp_path)
    assert first.verdict == "pass" and second.verdict == "fail"
    drift = second.drift
    assert drift is not None and drift.alert
    regressions = {r.rule_id: r for r in drift.regressions}
    assert {"ai-apps-no-org-data-access", "apps-tenant-wide-data-access-approved"} <= set(regressions)
    for r in regressions.values():
        assert (r.old_status, r.new_status, r.kind) == (Status.PASS, Status.FAIL, "regression")
        assert any("ChatGPT" in o.name or "ChatGPT" in o.detail for o in r.added), r.added
    assert all(r.kind == "regression" for r in drift.rules[:len(drift.regressions)]), "regressions first"
    changed = {s.source: s for s in drift.sources}
    assert changed["delegated_grants"].added == 1
    assert changed["delegated_grants"].paths[0].path.startswith("delegated_grants[id=twA_5s0wi1qNAPDjQLTYPoJVwF1g")
    assert changed["service_principals"].paths[0].new == "ChatGPT Enterprise"


def test_ca_policy_switched_to_report_only(tmp_path: Path) -> None:
    _, second = run_pair("ca-report-only", tmp_path)
    drift = second.drift
    assert drift is not None
    r = rule(drift, "ca-blocks-copilot-apps")
    assert (r.old_status, r.new_status, r.kind) == (Status.PASS, Status.FAIL, "regression")
    policy = [o for o in r.added if o.id == "decc18e3-775a-562c-94cc-0b59579205c5"]
    assert policy and "report-only" in policy[0].detail
    ca = next(s for s in drift.sources if s.source == "conditional_access")
    paths = {p.path: p for p in ca.paths}
    state = paths["conditional_access[id=decc18e3-775a-562c-94cc-0b59579205c5].state"]
    assert (state.change, state.old, state.new) == ("changed", "enabled", "enabledForReportingButNotEnforced")


def test_waiver_expired_between_nights(tmp_path: Path) -> None:
    first, second = run_pair("waiver-expired", tmp_path)
    drift = second.drift
    assert drift is not None
    r = rule(drift, "copilot-plans-not-assigned")
    assert (r.old_status, r.new_status, r.kind) == (Status.WAIVED, Status.FAIL, "regression")
    assert any("waiver expired on 2026-11-28" in c.en for c in r.causes), r.causes
    assert {c.old_waived for c in r.changed} == {True} and {c.new_waived for c in r.changed} == {False}
    assert drift.sources == [], "the tenant did not change, only the date"
    assert [x.rule_id for x in drift.regressions] == ["copilot-plans-not-assigned"]


def test_source_that_errors_tonight(tmp_path: Path) -> None:
    _, second = run_pair("source-errors", tmp_path)
    drift = second.drift
    assert drift is not None and second.verdict == "error"
    assert drift.regressions and all(r.new_status is Status.ERROR for r in drift.regressions)
    for r in drift.regressions:
        assert r.old_status is Status.PASS and r.kind == "regression"
        assert any("delegated_grants could not be read tonight (403" in c.en for c in r.causes), r.causes
    src = [s for s in drift.sources if s.source == "delegated_grants"]
    assert src and (src[0].old_state, src[0].new_state) == ("ok", "error")
    assert src[0].new_error and src[0].new_error.startswith("403")


def test_drift_is_in_the_reports_and_the_manifest(tmp_path: Path) -> None:
    _, second = run_pair("ca-report-only", tmp_path)
    run = second.run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    assert "drift.json" in manifest["files"]
    assert verify_run(run).ok
    html = (run / "report.html").read_text(encoding="utf-8")
    md = (run / "report.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert "Changes since the previous run" in text and "ca-blocks-copilot-apps" in text
    assert "regression" in html and "REGRESSION" in md


def test_cli_drift_default_pair_and_exit_code(tmp_path: Path) -> None:
    first, second = run_pair("ca-report-only", tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["drift", "--reports", str(tmp_path), "--exit-code", "--lang", "en"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("REGRESSION: 1 rule(s) got worse since run " + first.run_dir.name)
    dutch = runner.invoke(cli, ["drift", "--reports", str(tmp_path), "--exit-code"])
    assert dutch.output.startswith("VERSLECHTERD: 1 regel slechter dan bij controle " + first.run_dir.name)
    assert "(voldoet → voldoet niet, +2 objecten)" in dutch.output and "BRON conditional_access" in dutch.output
    plain = runner.invoke(cli, ["drift", str(first.run_dir), str(second.run_dir), "--json"])
    assert plain.exit_code == 0 and json.loads(plain.output)["new_run"]["run_id"] == second.run_dir.name
    backwards = runner.invoke(cli, ["drift", second.run_dir.name, first.run_dir.name, "--reports", str(tmp_path),
                                    "--exit-code", "--lang", "en"])
    assert backwards.exit_code == 0 and "IMPROVEMENT: ca-blocks-copilot-apps" in backwards.output
    one = runner.invoke(cli, ["drift", str(second.run_dir), "--json"])
    assert json.loads(one.output)["old_run"]["run_id"] == first.run_dir.name
    alone = runner.invoke(cli, ["drift", str(first.run_dir)])
    assert alone.exit_code == 2 and "no run before" in alone.output
    other = run_night(NIGHTS / "new-copilot-user" / "night1", tmp_path, {"now": "2026-11-28T03:00:00Z"})
    mixed = runner.invoke(cli, ["drift", str(first.run_dir), str(other.run_dir)])
    assert mixed.exit_code == 2 and "different tenants" in mixed.output
    several = runner.invoke(cli, ["drift", "--reports", str(tmp_path), "--json"])
    assert several.exit_code == 2 and "holds runs of 2 tenants" in several.output


def test_cli_audit_prints_regression_even_when_quiet(tmp_path: Path) -> None:
    pair = NIGHTS / "source-errors"
    runner = CliRunner()
    first = runner.invoke(cli, ["audit", "--replay", str(pair / "night1"), "--reports", str(tmp_path), "-q"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["audit", "--replay", str(pair / "night2"), "--reports", str(tmp_path), "-q",
                                 "--lang", "en"])
    assert second.exit_code == 3, "the verdict exit code keeps its meaning"
    lines = [line for line in second.output.splitlines() if not line.startswith("  ERROR ")]
    assert lines[0].startswith("INCOMPLETE") and lines[1].startswith("REGRESSION: 4 rule(s) got worse since run ")
    assert [line.split(";")[0].strip() for line in lines[2:]] == [
        "REGRESSION: ai-apps-no-org-data-access pass → error",
        "REGRESSION: microsoft-ai-apis-not-granted pass → error",
        "REGRESSION: apps-tenant-wide-data-access-approved pass → error",
        "REGRESSION: apps-user-consent-org-data-approved pass → error"]
    again = runner.invoke(cli, ["audit", "--replay", str(pair / "night2"), "--reports", str(tmp_path), "-q"])
    assert again.exit_code == 3 and "VERSLECHTERD" not in again.output, "an old error is not new since last night"
    assert again.output.startswith("ONVOLLEDIG") and "REGRESSION" not in again.output


# --------------------------------------------------------------------------- the diff itself


def test_diff_keys_lists_by_id_not_position() -> None:
    old = [{"id": "a", "state": "on"}, {"id": "b", "state": "on"}]
    new = [{"id": "b", "state": "on"}, {"id": "a", "state": "off"}, {"id": "c", "displayName": "Nieuw"}]
    changes = {(p.path, p.change, p.old, p.new) for p in diff(old, new, "x")}
    assert changes == {("x[id=a].state", "changed", "on", "off"), ("x[id=c]", "added", None, "Nieuw")}


def test_diff_ignores_odata_request_ids_refresh_dates_and_scalar_order() -> None:
    old = {"@odata.context": "a", "value@odata.nextLink": "p2", "Report Refresh Date": "2026-11-27",
           "roles": ["b", "a"], "rows": [{"x": 1}, {"x": 2}]}
    new = {"@odata.context": "b", "Report Refresh Date": "2026-11-28", "request-id": "r2", "roles": ["a", "b"],
           "rows": [{"x": 2}, {"x": 1}]}
    assert diff(normalise(old), normalise(new), "s") == []


def test_diff_without_ids_is_a_multiset() -> None:
    changes = diff([{"x": 1}, {"x": 1}], [{"x": 1}, {"x": 3}], "s")
    assert [(p.change, p.old, p.new) for p in changes] == [("removed", '{"x":1}', None), ("added", None, '{"x":3}')]


def test_scrubbed_drift_names_nobody(tmp_path: Path) -> None:
    """With pseudonymised reports, drift.json, the drift section and alerts carry no names from either night."""
    from m365audit.drift import compare_with_previous, current_run, load_run
    from m365audit.drift.nights import scrub

    first, second = run_pair("new-copilot-user", tmp_path / "a")
    assert second.drift is not None
    seen: list[int] = []

    def scrubber(snapshot: Any) -> Any:
        seen.append(len(snapshot.sources["users"].data))
        return lambda text: text.replace("b.degroot@proefstad.voorbeeld.nl", "user-0f3a9c").replace(
            "Bram de Groot", "user-0f3a9c")

    only_first = tmp_path / "b"
    shutil.copytree(first.run_dir, only_first / first.run_dir.parent.name / first.run_dir.name)
    tonight = load_run(second.run_dir)
    drift, warning = compare_with_previous(only_first, current_run(tonight.run_id, tonight.snapshot,
                                                                   tonight.findings, tonight.manifest), scrubber)
    assert warning is None and drift is not None and seen == [18, 18]
    text = drift.model_dump_json()
    assert "degroot" not in text and "Bram de Groot" not in text and "user-0f3a9c" in text
    assert drift.regressions[0].added[0].name == "user-0f3a9c"
    plain = scrub(second.drift, [])
    assert "b.degroot@proefstad.voorbeeld.nl" in plain.model_dump_json() and plain == second.drift


def test_unreadable_previous_run_is_a_warning_not_a_first_run(tmp_path: Path) -> None:
    first, _ = run_pair("ca-report-only", tmp_path)
    (first.run_dir.parent / sorted(p.name for p in first.run_dir.parent.iterdir() if p.is_dir())[-1]
     / "findings.json").write_text("{", encoding="utf-8")
    third = run_night(NIGHTS / "ca-report-only" / "night2", tmp_path, {"now": "2026-11-30T02:15:00Z"})
    assert third.drift is None and not (third.run_dir / "drift.json").exists()
    assert len(third.warnings) == 1 and "no drift against" in third.warnings[0]
    assert "findings.json is not valid JSON" in third.warnings[0]
    md = (third.run_dir / "report.md").read_text(encoding="utf-8")
    assert "Not compared with the previous run:" in md and "First run" not in md


def test_positional_intune_setting_ids_are_no_identity() -> None:
    def setting(n: int, definition: str, value: str) -> dict[str, Any]:
        return {"id": str(n), "settingInstance": {"settingDefinitionId": definition,
                                                   "choiceSettingValue": {"value": value}}}

    old = [setting(0, "recall", "r_0"), setting(1, "copilot", "c_1")]
    assert diff(old, [setting(0, "copilot", "c_1"), setting(1, "recall", "r_0")], "p") == []
    changes = diff(old, [setting(0, "copilot", "c_0"), setting(1, "recall", "r_0")], "p")
    assert [(c.path, c.old, c.new) for c in changes] == [
        ("p[settingInstance.settingDefinitionId=copilot].settingInstance.choiceSettingValue.value", "c_1", "c_0")]


# --------------------------------------------------------------------------- classification, inline runs


def _finding(rule_id: str, status: Status, version: int = 1, objects: tuple[str, ...] = (),
             **extra: Any) -> Any:
    from m365audit.models import Finding, FindingObject, Severity, Text

    return Finding(rule_id=rule_id, rule_version=version, status=status, severity=Severity.HIGH,
                   title=Text(nl=rule_id, en=rule_id), message=Text(nl="-", en="-"),
                   objects=[FindingObject(id=o, name=o) for o in objects], **extra)


def _state(run_id: str, findings: list[Any], as_of: str = "2026-11-28") -> Any:
    from m365audit.drift import current_run
    from m365audit.models import Snapshot

    snapshot = Snapshot(tenant_id="061ea7c2-cc15-418b-bfc0-9f6a7d98011c", collected_at=datetime(2026, 11, 28),
                        tool_version="t", sources={})
    return current_run(run_id, snapshot, findings, {"as_of": as_of, "policy_pack": {"digest": run_id}})


def test_kinds_and_causes() -> None:
    from m365audit.drift import compare
    from m365audit.models import FindingError, FindingObject, Waiver

    waiver = Waiver(rule="w", reason="pilot", approved_by="ciso@voorbeeld.nl", expires=date(2026, 11, 27))
    old = _state("a", [
        _finding("fixed", Status.WAIVED, waiver=waiver), _finding("known-broken", Status.FAIL, objects=("x",)),
        _finding("now-unknown", Status.FAIL), _finding("now-known", Status.ERROR),
        _finding("rewritten", Status.PASS), _finding("dropped", Status.PASS),
        _finding("more-waived", Status.FAIL, objects=("x",))])
    new = _state("b", [
        _finding("fixed", Status.PASS), _finding("known-broken", Status.FAIL, objects=("y",)),
        _finding("now-unknown", Status.ERROR, errors=[FindingError(source="users", message="503", status=503)]),
        _finding("now-known", Status.FAIL), _finding("rewritten", Status.FAIL, version=2),
        _finding("brand-new", Status.FAIL),
        _finding("more-waived", Status.FAIL, objects=("x",)).model_copy(update={"objects": [
            FindingObject(id="x", name="x"), FindingObject(id="z", name="z", waived=True)]})],
        as_of="2026-11-29")
    report = compare(old, new)
    kinds = {r.rule_id: r.kind for r in report.rules}
    assert kinds == {"fixed": "improvement", "known-broken": "new-objects", "now-unknown": "changed",
                     "now-known": "regression", "rewritten": "rule-changed", "dropped": "rule-changed",
                     "brand-new": "rule-changed", "more-waived": "changed"}
    by = {r.rule_id: r for r in report.rules}
    assert by["fixed"].causes == [], "a fixed tenant is not 'waiver expired'"
    assert [c.en for c in by["now-unknown"].causes] == ["source users could not be read tonight (503)"]
    assert "the rule changed (version 1 → 2)" in by["rewritten"].causes[0].en
    assert [(c.rule_id, c.change) for c in report.rule_changes] == [
        ("brand-new", "added"), ("dropped", "removed"), ("rewritten", "version")]
    assert report.policy_pack_changed
    assert [r.rule_id for r in report.regressions] == ["now-known", "known-broken"]


def test_pseudonymised_runs_keep_people_out_of_drift_and_alerts(tmp_path: Path,
                                                                 monkeypatch: Any) -> None:
    monkeypatch.setenv("M365AUDIT_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
    pair = NIGHTS / "new-copilot-user"
    runner = CliRunner()
    for night in ("night1", "night2"):
        result = runner.invoke(cli, ["audit", "--replay", str(pair / night), "--reports", str(tmp_path), "-q",
                                     "--pseudonymise", "--lang", "en"])
        assert result.exit_code == 1, result.output
    assert "REGRESSION: copilot-plans-not-assigned fail → fail; +1 user-" in result.output
    run = sorted(p for p in next(tmp_path.glob("4c7e2b19-*")).iterdir() if p.is_dir())[-1]
    drift = DriftReport.model_validate_json((run / "drift.json").read_text(encoding="utf-8"))
    assert [r.rule_id for r in drift.rules] == ["copilot-plans-not-assigned"], "no noise from pseudonyms"
    for name in ("drift.json", "report.html", "report.md"):
        text = (run / name).read_text(encoding="utf-8")
        assert "degroot" not in text.lower() and "Bram de Groot" not in text, name


def test_a_person_who_left_since_last_night_is_not_named_in_pseudonymised_drift(tmp_path: Path,
                                                                               monkeypatch: Any) -> None:
    """Last night's snapshot holds a person tonight's no longer has: drift's 'removed' label must not name them."""
    monkeypatch.setenv("M365AUDIT_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
    pair = NIGHTS / "new-copilot-user"
    gone = tmp_path / "night-without-bram"
    shutil.copytree(pair / "night1", gone)
    page = gone / "exchanges" / "040-users-page-2.json"
    doc = json.loads(page.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"] = [u for u in doc["response"]["body"]["value"]
                                        if u.get("displayName") != "Bram de Groot"]
    page.write_text(json.dumps(doc), encoding="utf-8")
    for night in (pair / "night2", gone):
        result = CliRunner().invoke(cli, ["audit", "--replay", str(night), "--reports", str(tmp_path / "r"), "-q",
                                          "--pseudonymise", "--lang", "en"])
        assert result.exit_code == 1, result.output
    run = sorted(p for p in next((tmp_path / "r").glob("4c7e2b19-*")).iterdir() if p.is_dir())[-1]
    drift = (run / "drift.json").read_text(encoding="utf-8")
    assert '"removed"' in drift or '"removed": 1' in drift
    assert "Bram de Groot" not in drift and "degroot" not in drift.lower() and "user-" in drift


def test_source_counts_are_objects_not_paths() -> None:
    """A licence given to a user is one changed user, not three added paths (as an officer reads +N -N ~N)."""
    old = [{"id": "u1", "assignedLicenses": []}, {"id": "u2", "assignedLicenses": []}, {"id": "u4"}]
    new = [{"id": "u1", "assignedLicenses": [{"skuId": "s1"}],
            "assignedPlans": [{"servicePlanId": "p1"}, {"servicePlanId": "p2"}]},
           {"id": "u2", "assignedLicenses": []}, {"id": "u3"}]
    paths = diff_items(old, new, "users")
    assert len([p for p in paths if p.path.startswith("users[id=u1]")]) >= 2, paths
    assert object_tally("users", paths) == Counter(added=1, removed=1, changed=1)
    policy = diff({"a": 1, "b": 2}, {"a": 2, "d": 3}, "authorization_policy")  # a source that is one object
    assert object_tally("authorization_policy", policy) == Counter(added=1, removed=1, changed=1), "its properties"
