"""Issue 14's routes: the licence refusal, low classifications, the audit liveness query, metered AI, RSC grants."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.evaluate import CHECKS
from m365audit.evaluate.checks.base import CheckInput
from m365audit.models import ApprovedApp, CheckOutcome, SourceError, Status
from m365audit.simulator import SimTenant, TenantSpec
from tests.conftest import FIXED_NOW, TENANTS
from tests.test_checks import CATALOGS, RULES, TODAY

LICENCE_REFUSAL = SourceError(message="Customer must be a licensed for Agent 365 in order to use Agent 365 Graph APIs.",
                              status=403, code="Forbidden", hint="grant the application permission ...")
FALLBACK = ["copilot-plans-not-assigned", "copilot-studio-plans-not-assigned", "copilot-subscriptions-absent",
            "copilot-metered-usage-none"]


def run(rule_id: str, data: dict[str, Any], *, refused: dict[str, SourceError] | None = None,
        verdicts: dict[str, Status] | None = None, meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None, approved: list[ApprovedApp] | None = None) -> CheckOutcome:
    rule = RULES[rule_id]
    check = rule.active_check
    assert check is not None and check.function is not None
    answers = verdicts or {}
    return CHECKS[check.function](CheckInput(
        rule=rule, data=data, catalogs=CATALOGS, params={**rule.params, **(params or {})},
        approved_apps=approved or [], today=TODAY, meta=meta or {}, refused=refused or {},
        verdict=lambda rid: answers.get(rid, Status.ERROR)))


# --------------------------------------------------------------------------- item 2: the Agent 365 refusal


def test_a_licence_refusal_passes_with_a_note_only_when_every_fallback_rule_passes() -> None:
    out = run("copilot-agents-not-deployed", {}, refused={"copilot_packages": LICENCE_REFUSAL},
              verdicts=dict.fromkeys(FALLBACK, Status.PASS))
    assert out.status is Status.PASS and "Agent 365" in out.message.en
    assert "copilot-metered-usage-none" in out.message.en
    for rule_id, status in [("copilot-plans-not-assigned", Status.FAIL), ("copilot-metered-usage-none", Status.ERROR)]:
        out = run("copilot-agents-not-deployed", {}, refused={"copilot_packages": LICENCE_REFUSAL},
                  verdicts={**dict.fromkeys(FALLBACK, Status.PASS), rule_id: status})
        assert out.status is Status.ERROR and f"{rule_id} ({status.value})" in out.message.en
        assert out.errors[0].source == "copilot_packages" and out.errors[0].status == 403


@pytest.mark.parametrize("error", [
    SourceError(message="Insufficient privileges to complete the operation.", status=403, code="Forbidden"),
    SourceError(message="Customer must be a licensed for Agent 365", status=404, code="Forbidden"),
    SourceError(message="Customer must be a licensed for Agent 365", status=403, code="accessDenied"),
    SourceError(message="The operation timed out", code="Timeout"),
])
def test_any_other_refusal_of_the_catalog_is_an_error_never_a_pass(error: SourceError) -> None:
    out = run("copilot-agents-not-deployed", {}, refused={"copilot_packages": error},
              verdicts=dict.fromkeys(FALLBACK, Status.PASS))
    assert out.status is Status.ERROR and out.errors[0].message == error.message


def test_a_package_with_unknown_state_is_an_error_not_a_pass() -> None:
    package = {"id": "p", "displayName": "p", "type": "custom", "isBlocked": None, "availableTo": "none",
               "deployedTo": "none"}
    assert run("copilot-agents-not-deployed", {"copilot_packages": [package]}).status is Status.ERROR


# --------------------------------------------------------------------------- item 3: low classifications

LOW_POLICY = {"defaultUserRolePermissions": {"permissionGrantPoliciesAssigned": [
    "ManagePermissionGrantsForSelf.microsoft-user-default-low"]}}
GRAPH = "00000003-0000-0000-c000-000000000000"


def classification(name: str, level: str = "low", app: str = GRAPH) -> dict[str, Any]:
    return {"id": name, "permissionId": "570282fd-fa5c-430d-a7fd-fc8dc98a9dca", "permissionName": name,
            "classification": level, "resourceAppId": app}


def test_default_low_fails_when_an_org_data_permission_is_classified_low() -> None:
    data = {"authorization_policy": LOW_POLICY, "permission_classifications": [classification("User.Read")]}
    assert run("consent-users-cannot-grant-org-data", data).status is Status.PASS
    data["permission_classifications"] += [classification("Mail.Read"), classification("Files.Read.All", "medium")]
    out = run("consent-users-cannot-grant-org-data", data)
    assert out.status is Status.FAIL and [o.name for o in out.objects] == ["Mail.Read"]
    data["permission_classifications"] = [{"id": "x", "permissionName": "Mail.Read", "resourceAppId": GRAPH}]
    assert run("consent-users-cannot-grant-org-data", data).status is Status.ERROR  # no classification: unknown


# --------------------------------------------------------------------------- item 3b: is the audit log on?

QUERIED = {"record_types": ["CopilotInteraction", "AIAppInteraction", "ConnectedAIAppInteraction"], "lookback_days": 7}


@pytest.mark.parametrize("liveness, status", [
    ({"records_on_first_page": 3, "record_type": "AzureActiveDirectoryStsLogon"}, Status.PASS),
    ({"records_on_first_page": 0, "record_type": "AzureActiveDirectoryStsLogon"}, Status.ERROR),
    ({"records_on_first_page": None}, Status.ERROR),
    (None, Status.ERROR),
])
def test_silence_in_the_audit_log_is_only_a_pass_when_sign_ins_prove_it_is_on(liveness: Any, status: Status) -> None:
    meta = {**QUERIED, **({"liveness": liveness} if liveness is not None else {})}
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": []}, meta={"audit_ai_interactions": meta})
    assert out.status is status
    if liveness and liveness.get("records_on_first_page") == 0:
        assert "audit log appears off or empty" in out.message.en


def test_an_empty_sign_in_page_replayed_end_to_end_makes_the_audit_rule_error(tmp_path: Path) -> None:
    tenant = tmp_path / "tenant"
    shutil.copytree(TENANTS / "gemeente-voorbeeld", tenant)
    page = tenant / "exchanges" / "302-audit-liveness-records-page-1.json"
    doc = json.loads(page.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"] = []
    page.write_text(json.dumps(doc), encoding="utf-8")
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "r", replay=tenant, now=FIXED_NOW)))
    finding = next(f for f in result.findings if f.rule_id == "audit-no-ai-interactions")
    assert finding.status is Status.ERROR and "appears off or empty" in finding.message.en
    live = result.snapshot.sources["audit_ai_interactions"].meta["liveness"]
    assert live["records_on_first_page"] == 0 and live["record_type"] == "AzureActiveDirectoryStsLogon"


# --------------------------------------------------------------------------- item 8: metered AI


def metered(empty: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"copilot_metered_usage": {"days": ["2026-11-21", "2026-11-27"], "empty_days": list(empty)}}


def test_metered_consumption_fails_zero_passes_and_an_empty_answer_is_a_parameter() -> None:
    zero = [{"serviceId": "workIQ", "consumedQuantity": 0.0, "unit": "copilotCredit", "day": "2026-11-27"}]
    assert run("copilot-metered-usage-none", {"copilot_metered_usage": zero}, meta=metered()).status is Status.PASS
    used = [*zero, {"serviceId": "cowork", "consumedQuantity": 3, "unit": "copilotCredit", "day": "2026-11-26"}]
    out = run("copilot-metered-usage-none", {"copilot_metered_usage": used}, meta=metered())
    assert out.status is Status.FAIL and out.objects[0].id == "cowork"
    empty = metered(empty=("2026-11-21",))
    out = run("copilot-metered-usage-none", {"copilot_metered_usage": []}, meta=empty)
    assert out.status is Status.PASS and "read as zero" in out.message.en
    out = run("copilot-metered-usage-none", {"copilot_metered_usage": []}, meta=empty,
              params={"empty_answer_is_zero": False})
    assert out.status is Status.ERROR


@pytest.mark.parametrize("quantity", [None, "0", -1, True])
def test_a_quantity_that_is_not_a_number_is_an_error(quantity: Any) -> None:
    rows = [{"serviceId": "workIQ", "consumedQuantity": quantity, "day": "2026-11-27"}]
    assert run("copilot-metered-usage-none", {"copilot_metered_usage": rows}, meta=metered()).status is Status.ERROR


# --------------------------------------------------------------------------- items 5, 7, 10

SPS = [{"id": "sp-otter", "appId": "a7d7838f-fb36-5041-aebd-5bbfca6349b7", "displayName": "Otter.ai",
        "appOwnerOrganizationId": "7d2c4e6f-1a3b-4c5d-9e8f-0a1b2c3d4e5f"},
       {"id": "sp-tool", "appId": "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", "displayName": "Roosterplanner",
        "appOwnerOrganizationId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}]


def grant(app: str, permission: str) -> dict[str, Any]:
    return {"id": f"{app}-{permission}", "clientAppId": app, "clientId": "c", "permission": permission,
            "permissionType": "Application", "teamId": "t1", "teamName": "Team Burgerzaken"}


def test_rsc_grants_fail_for_ai_apps_and_for_sensitive_permissions_of_unapproved_apps() -> None:
    tool = SPS[1]["appId"]
    ok = [grant(tool, "TeamMember.Read.Group")]
    assert run("teams-rsc-grants-none", {"teams_rsc_grants": ok, "service_principals": SPS}).status is Status.PASS
    out = run("teams-rsc-grants-none", {"teams_rsc_grants": [*ok, grant(SPS[0]["appId"], "TeamMember.Read.Group"),
                                                             grant(tool, "ChannelMessage.Read.Group")],
                                        "service_principals": SPS})
    assert out.status is Status.FAIL and len(out.objects) == 2 and "Otter.ai" in out.objects[0].detail
    approved = [ApprovedApp(app_id=tool, name="Roosterplanner", reason="DPIA 2026-03", review_by=date(2027, 1, 1))]
    out = run("teams-rsc-grants-none", {"teams_rsc_grants": [grant(tool, "ChannelMessage.Read.Group")],
                                        "service_principals": SPS}, approved=approved)
    assert out.status is Status.PASS
    nameless = [{"id": "g", "permission": "ChannelMessage.Read.Group", "clientAppId": None, "clientId": ""}]
    assert run("teams-rsc-grants-none", {"teams_rsc_grants": nameless,
                                         "service_principals": SPS}).status is Status.ERROR


def test_any_grant_on_work_iq_or_the_mcp_server_fails() -> None:
    api = {"id": "6a0c1d3e-5f7a-4b9c-8d1e-2f3a4b5c6d7e", "appId": "fdcc1f02-fc51-4226-8753-f668596af7f7",
           "displayName": "Work IQ", "appRoleAssignedTo": []}
    data: dict[str, Any] = {"microsoft_ai_apis": [api], "delegated_grants": [], "service_principals": SPS}
    assert run("microsoft-ai-apis-not-granted", data).status is Status.PASS
    data["delegated_grants"] = [{"id": "g1", "clientId": "sp-tool", "consentType": "Principal", "principalId": "u1",
                                 "resourceId": "6A0C1D3E-5F7A-4B9C-8D1E-2F3A4B5C6D7E", "scope": "WorkIQAgent.Ask"}]
    out = run("microsoft-ai-apis-not-granted", data)
    assert out.status is Status.FAIL and out.objects[0].name == "Roosterplanner"
    stray = {**data["delegated_grants"][0], "resourceId": "0f0e0d0c-0b0a-4908-8706-050403020100"}
    assert run("microsoft-ai-apis-not-granted", {**data, "delegated_grants": [stray]}).status is Status.ERROR, \
        "a grant on an API that is no known service principal cannot be proven harmless"
    data["microsoft_ai_apis"] = [{k: v for k, v in api.items() if k != "appRoleAssignedTo"}]
    assert run("microsoft-ai-apis-not-granted", data).status is Status.ERROR  # $expand not applied: unknown


def test_ai_app_sign_ins_in_the_window_fail_and_a_malformed_date_is_an_error() -> None:
    def activity(when: str | None) -> dict[str, Any]:
        return {"appId": SPS[0]["appId"], "lastSignInActivity": {"lastSignInDateTime": when}}

    data = {"sp_sign_in_activity": [activity("2026-11-01T10:00:00Z")], "service_principals": SPS}
    assert run("ai-apps-no-sign-ins", data).status is Status.PASS
    data["sp_sign_in_activity"] = [activity("2026-11-26T10:00:00Z")]
    assert run("ai-apps-no-sign-ins", data).status is Status.FAIL
    data["sp_sign_in_activity"] = [activity("2021-03-01T00:00:00-8:00")]  # Learn's own example: not ISO 8601
    assert run("ai-apps-no-sign-ins", data).status is Status.ERROR


# --------------------------------------------------------------------------- the Teams RSC source's bounds


def test_switching_the_rsc_source_off_reads_no_team_and_makes_the_rule_manual(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "params.yaml").write_text("params:\n  teams-rsc-grants-none:\n    collect: false\n", encoding="utf-8")
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "r", replay=TENANTS / "gemeente-voorbeeld",
                                                local=local, now=FIXED_NOW)))
    finding = next(f for f in result.findings if f.rule_id == "teams-rsc-grants-none")
    assert finding.status is Status.MANUAL
    assert "teams" not in result.snapshot.sources and "teams_rsc_grants" not in result.snapshot.sources


def test_more_teams_than_max_teams_is_an_error_never_a_partial_read(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "params.yaml").write_text("params:\n  teams-rsc-grants-none:\n    max_teams: 1\n", encoding="utf-8")
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "r", replay=TENANTS / "gemeente-voorbeeld",
                                                local=local, now=FIXED_NOW)))
    source = result.snapshot.sources["teams_rsc_grants"]
    assert not source.ok and source.error is not None and "max_teams (1)" in source.error.message
    assert source.requests == 0
    assert next(f for f in result.findings if f.rule_id == "teams-rsc-grants-none").status is Status.ERROR


def test_the_simulator_answers_one_rsc_request_per_team() -> None:
    tenant = SimTenant(TenantSpec(users=10, teams=2000))
    assert tenant.minimum_requests()["teams_rsc_grants"] == 2000
    assert tenant.minimum_requests()["teams"] == 3  # 2,000 teams at 999 a page


def test_judges_errors_of_and_uses_rules_are_checked_when_the_pack_loads() -> None:
    from m365audit.policy.validate import rule_problems

    raw = RULES["copilot-agents-not-deployed"].model_dump(exclude_none=True)
    raw["check"] = {**raw["check"], "judges_errors_of": ["users"], "uses_rules": ["copilot-agents-not-deployed"]}
    problems = dict(rule_problems(RULES["copilot-agents-not-deployed"].model_validate(raw), CATALOGS, CHECKS))
    assert problems["check.judges_errors_of.0"] == "'users' is not one of the rule's sources"
    assert problems["check.uses_rules"] == "a rule cannot use its own verdict"
