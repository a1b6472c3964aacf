"""Alert causes and rhythm: one alert per cause, reminders, incomplete nights, failed nights, new permissions."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit import runner as runner_module
from m365audit.cli import cli
from m365audit.drift import (
    STATE_FILE,
    AlertState,
    Cause,
    advance,
    due,
    failed_cause,
    load_state,
    run_causes,
    save_state,
    with_incomplete,
)
from m365audit.drift.alerts import failure_of
from m365audit.errors import AuthError, PolicyFileError
from m365audit.graph import ReplayTransport
from m365audit.models import Finding, FindingError, Severity, Status, Text
from tests.test_notify import Hook, regression_report, server  # noqa: F401 (the fixture)
from tests.test_permissions import ALL, TENANTS, FakeCredential, jwt

TENANT = "061ea7c2-cc15-418b-bfc0-9f6a7d98011c"
START = datetime(2026, 12, 1, 2, 15, tzinfo=timezone.utc)


def night(n: int) -> str:
    return (START + timedelta(days=n - 1)).date().isoformat()


def simulate(causes_per_night: list[list[Cause]], remind_every: int = 7,
             delivered: bool = True) -> list[list[str]]:
    """Run the rhythm over nights: what would be told each night."""
    state = AlertState(tenant_id=TENANT)
    told = []
    for n, causes in enumerate(causes_per_night, 1):
        tonight = due(state, causes, night(n), remind_every)
        told.append([c.key for c in tonight])
        state = advance(state, causes, night(n), [c.key for c in tonight] if delivered else [])
    return told


PERMS = Cause(key="permissions:ExternalConnection.Read.All", kind="permissions",
              permissions=["ExternalConnection.Read.All"])


def test_a_persisting_cause_is_told_once_then_every_seven_nights() -> None:
    told = simulate([[PERMS]] * 16)
    assert [n + 1 for n, keys in enumerate(told) if keys] == [1, 8, 15]


def test_a_cause_that_goes_away_and_returns_is_told_again() -> None:
    told = simulate([[PERMS], [PERMS], [], [PERMS]])
    assert [bool(k) for k in told] == [True, False, False, True]


def test_a_cause_never_delivered_is_tried_again_the_next_night() -> None:
    assert simulate([[PERMS]] * 3, delivered=False) == [[PERMS.key]] * 3


def test_a_second_run_on_the_same_date_is_not_another_night() -> None:
    state = advance(AlertState(tenant_id=TENANT), [PERMS], night(1), [PERMS.key])
    for _ in range(10):
        assert due(state, [PERMS], night(1), 2) == []
        state = advance(state, [PERMS], night(1), [])
    assert state.causes[PERMS.key].nights == 1


def test_more_permissions_needed_is_a_new_cause() -> None:
    more = Cause(key="permissions:A,ExternalConnection.Read.All", kind="permissions", permissions=["A", "B"])
    assert simulate([[PERMS], [more]]) == [[PERMS.key], [more.key]]


def test_incomplete_evidence_alerts_on_the_third_night_in_a_row_then_reminds() -> None:
    state = AlertState(tenant_id=TENANT)
    told = []
    for n in range(1, 12):
        causes, streak, since = with_incomplete(state, [], night(n), incomplete=True, failed=False, threshold=3)
        tonight = due(state, causes, night(n), 7)
        told.append([(c.key, c.nights, c.since) for c in tonight])
        state = advance(state, causes, night(n), [c.key for c in tonight], streak, since)
    assert told[:2] == [[], []] and told[2] == [("incomplete", 3, night(1))]
    from m365audit.drift import cause_line

    assert cause_line(Cause(key="incomplete", kind="incomplete", nights=3, since=night(1)), "nl") == \
        "Het bewijs is 3 nachten achter elkaar onvolledig (sinds 1 december 2026)."
    assert [n + 1 for n, t in enumerate(told) if t] == [3, 10]
    causes, streak, _ = with_incomplete(state, [], night(12), incomplete=False, failed=False)
    assert (causes, streak) == ([], 0), "a complete night ends the streak"


def finding(rule: str, status: Status, errors: list[FindingError] | None = None) -> Finding:
    return Finding(rule_id=rule, rule_version=1, status=status, severity=Severity.HIGH,
                   title=Text(nl=f"Regel {rule}", en=f"Rule {rule}"), message=Text(nl="m", en="m"),
                   errors=errors or [])


def test_causes_of_a_run_name_titles_objects_and_the_fix() -> None:
    from m365audit.drift import cause_line

    drift = regression_report()
    broken = FindingError(source="users", message="HTTP 503", hint="try again later")
    refused = FindingError(source="external_connections", message="not read", code="PermissionMissing")
    causes = run_causes([finding("a", Status.ERROR, [broken]), finding("b", Status.ERROR, [refused])], None,
                        ["ExternalConnection.Read.All"])
    assert [c.key for c in causes] == ["permissions:ExternalConnection.Read.All", "became-error:a"], \
        "a rule refused for a missing permission is told by the permissions cause"
    assert cause_line(causes[1], "nl") == "Niet te beoordelen: Regel a. HTTP 503 Oplossing: try again later"
    [regression] = run_causes([], drift)
    assert cause_line(regression, "en") == ("Got worse since the previous run: CA blocks Copilot (pass → fail). "
                                           "New objects: BLOCK - AI.")


@pytest.mark.parametrize(("error", "kind"), [
    (AuthError("sign-in failed: ClientAuthenticationError: AADSTS7000215 invalid client secret"), "sign-in"),
    (AuthError("no source could be read: network error: ConnectError: [Errno -3] Temporary failure in name "
               "resolution"), "network"),
    (PolicyFileError(["waivers.yaml: line 3: expires is not a date"]), "configuration"),
    (OSError(28, "No space left on device"), "environment"),
])
def test_a_failed_night_says_which_failure(error: BaseException, kind: str) -> None:
    assert failure_of(error) == kind
    assert failed_cause(error).key == f"failed:{kind}"


def test_state_file_is_written_atomically_and_a_broken_one_starts_afresh(tmp_path: Path) -> None:
    state = advance(AlertState(tenant_id=TENANT), [PERMS], night(1), [PERMS.key])
    path = save_state(tmp_path, state)
    assert path == tmp_path / TENANT / STATE_FILE and [p.name for p in path.parent.iterdir()] == [STATE_FILE]
    assert load_state(tmp_path, TENANT) == (state, None)
    path.write_text("{not json")
    fresh, warning = load_state(tmp_path, TENANT)
    assert fresh == AlertState(tenant_id=TENANT) and warning and "could not be read" in warning


def received(hook: Hook) -> list[dict[str, Any]]:
    return [json.loads(body) for _, _, body in hook.received]


def test_a_night_that_fails_before_any_evidence_alerts_once(server: tuple[str, Hook], tmp_path: Path,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = server
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    args = ["audit", "--reports", str(tmp_path), "--auth", "secret", "--tenant-id", TENANT,
            "--client-id", "0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "--notify", url + "/hook", "--lang", "en"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 4 and "AZURE_CLIENT_SECRET" in first.output
    [doc] = received(hook)
    assert doc["verdict"] is None and doc["exit_code"] == 4 and doc["new_run"] is None
    assert [c["key"] for c in doc["causes"]] == ["failed:sign-in"]
    assert "failed before any evidence was taken (sign-in)" in doc["alert_lines"][0]
    assert "Fix: " in doc["alert_lines"][0] and "AZURE_CLIENT_SECRET" in doc["alert_lines"][0]
    state = json.loads((tmp_path / TENANT / STATE_FILE).read_text())
    assert state["causes"]["failed:sign-in"]["sent"] == 1 and state["last_alert"]["deliveries"][0]["ok"]
    assert not list(tmp_path.rglob("manifest.json")), "no run folder"
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 4 and len(hook.received) == 1, "the same cause is not told again the same night"


def live_night(tmp_path: Path, n: int, roles: list[str], url: str, monkeypatch: pytest.MonkeyPatch,
               **kw: Any) -> Any:
    monkeypatch.setattr(runner_module, "build_credential", lambda *a, **k: FakeCredential(jwt({"roles": roles})))
    monkeypatch.setattr(runner_module, "AUDIT_POLL_INTERVAL", 0.0)
    return asyncio.run(run_audit(AuditOptions(
        reports=tmp_path, now=START + timedelta(days=n - 1), lang="en", notify=(url + "/hook",),
        transport=ReplayTransport.from_folder(TENANTS / "gemeente-voorbeeld"), **kw)))


def test_an_upgrade_that_needs_new_permissions_alerts_once_naming_them(server: tuple[str, Hook],  # noqa: F811
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = server
    fewer = [r for r in ALL if r not in ("ExternalConnection.Read.All", "DeviceManagementConfiguration.Read.All")]
    first = live_night(tmp_path, 1, ALL, url, monkeypatch, remind_every=3)
    assert first.notify is not None and not first.notify.alert and hook.received == []
    told = []
    for n in range(2, 7):
        result = live_night(tmp_path, n, fewer, url, monkeypatch, remind_every=3)
        assert result.exit_code == 3
        told.append(bool(result.notify and result.notify.alert))
    assert told == [True, False, False, True, False], "the night after the upgrade, then every 3 nights"
    doc = received(hook)[0]
    assert [c["key"] for c in doc["causes"]] == [
        "permissions:DeviceManagementConfiguration.Read.All,ExternalConnection.Read.All"]
    assert "DeviceManagementConfiguration.Read.All, ExternalConnection.Read.All" in doc["alert_lines"][0]
    assert received(hook)[1]["alert_lines"][0].startswith("Reminder (4 nights so far)")
