"""Unit tests of the check functions in m365audit/evaluate/checks/, with inline data and the shipped catalogs."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from m365audit.evaluate import CHECKS
from m365audit.evaluate.checks.base import CheckInput
from m365audit.evaluate.engine import run_declarative
from m365audit.models import ApprovedApp, CheckOutcome, Rule, SourceError, Status

POLICIES = Path(__file__).resolve().parent.parent / "m365audit" / "policies"
TODAY = date(2026, 11, 28)


def _load_catalogs() -> dict[str, list[Any]]:
    catalogs: dict[str, list[Any]] = {}
    for path in sorted((POLICIES / "catalogs").glob("*.yaml")):
        catalogs.update(yaml.safe_load(path.read_text(encoding="utf-8"))["catalogs"])
    return catalogs


def _load_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for path in sorted((POLICIES / "rules").glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            rule = Rule.model_validate(raw)
            rules[rule.id] = rule
    return rules


CATALOGS = _load_catalogs()
RULES = _load_rules()


def run(rule_id: str, data: dict[str, Any], *, params: dict[str, Any] | None = None,
        approved: list[ApprovedApp] | None = None, today: date = TODAY,
        meta: dict[str, dict[str, Any]] | None = None) -> CheckOutcome:
    """Run a shipped rule's check function the way the engine does."""
    rule = RULES[rule_id]
    check = rule.active_check
    assert check is not None and check.function is not None
    return CHECKS[check.function](CheckInput(
        rule=rule, data=data, catalogs=CATALOGS, params={**rule.params, **(params or {})},
        approved_apps=approved or [], today=today, meta=meta or {},
    ))


def ids(outcome: CheckOutcome) -> list[str]:
    return [o.id for o in outcome.objects]


# --------------------------------------------------------------------------- licences

COPILOT_SKU = "639dec6b-bb19-468b-871c-c5c441c4b0cb"
E5_SKU = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
CHAT = "3f30311c-6b1e-48a4-ab79-725b469da960"
APPS = "a62f8878-de10-42f3-b68f-6149a25ceb97"
STUDIO_IN_COPILOT = "fe6c28b3-d468-44ea-bbd0-a10a5167435c"
EXCHANGE_PLAN = "efb87545-963c-4e0d-99df-69c6916d9eb0"
PVA_P3 = "ded3d325-1bdc-453e-8432-5bac26d7a014"
BING = "0d0c0d31-fae7-41f2-b909-eaf4d7f26dba"


def plan(plan_id: str, name: str) -> dict[str, Any]:
    return {"servicePlanId": plan_id, "servicePlanName": name, "provisioningStatus": "Success",
            "appliesTo": "User"}


def copilot_sku(status: str = "Enabled", enabled: int = 25, warning: int = 0) -> dict[str, Any]:
    return {
        "skuId": COPILOT_SKU, "skuPartNumber": "Microsoft_365_Copilot", "capabilityStatus": status,
        "consumedUnits": 3,
        "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": warning, "lockedOut": 0},
        "servicePlans": [plan(CHAT, "M365_COPILOT_BUSINESS_CHAT"), plan(APPS, "M365_COPILOT_APPS"),
                         plan(STUDIO_IN_COPILOT, "COPILOT_STUDIO_IN_COPILOT_FOR_M365")],
    }


def e5_sku() -> dict[str, Any]:
    return {
        "skuId": E5_SKU, "skuPartNumber": "SPE_E5", "capabilityStatus": "Enabled", "consumedUnits": 10,
        "prepaidUnits": {"enabled": 100, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [plan(EXCHANGE_PLAN, "EXCHANGE_S_ENTERPRISE"),
                         plan(PVA_P3, "POWER_VIRTUAL_AGENTS_O365_P3"), plan(BING, "Bing_Chat_Enterprise")],
    }


def user(uid: str, licences: list[dict[str, Any]], plans: list[dict[str, Any]] | None = None,
         enabled: bool = True) -> dict[str, Any]:
    return {"id": uid, "userPrincipalName": f"{uid}@voorbeeld.nl", "displayName": uid,
            "accountEnabled": enabled, "userType": "Member", "assignedLicenses": licences,
            "assignedPlans": plans or []}


def assigned(plan_id: str, status: str = "Enabled") -> dict[str, Any]:
    return {"assignedDateTime": "2026-03-02T09:14:11Z", "capabilityStatus": status, "service": "x",
            "servicePlanId": plan_id}


def licence(sku: str, disabled: list[str] | None = None) -> dict[str, Any]:
    return {"skuId": sku, "disabledPlans": disabled or []}


ALL_COPILOT = [CHAT, APPS, STUDIO_IN_COPILOT]


def plans_data(users: list[dict[str, Any]], skus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"users": users, "subscribed_skus": skus if skus is not None else [copilot_sku(), e5_sku()]}


def test_copilot_plans_pass_when_no_user_has_copilot() -> None:
    out = run("copilot-plans-not-assigned", plans_data([user("a", [licence(E5_SKU)])]))
    assert out.status is Status.PASS
    assert "1 users" in out.message.en


def test_copilot_plans_fail_names_user_and_plans() -> None:
    out = run("copilot-plans-not-assigned", plans_data([
        user("a", [licence(E5_SKU)]),
        user("b", [licence(COPILOT_SKU, [STUDIO_IN_COPILOT])], [assigned(CHAT), assigned(APPS),
                                                                 assigned(STUDIO_IN_COPILOT, "Deleted")]),
    ]))
    assert out.status is Status.FAIL
    assert ids(out) == ["b"]
    detail = out.objects[0].detail
    assert detail == "Microsoft_365_Copilot: M365_COPILOT_APPS, M365_COPILOT_BUSINESS_CHAT"
    assert "M365_COPILOT_APPS" in detail
    assert "COPILOT_STUDIO" not in detail  # switched off through disabledPlans
    assert "account disabled" not in detail


def test_copilot_plans_all_disabled_through_disabled_plans_pass() -> None:
    out = run("copilot-plans-not-assigned", plans_data([
        user("a", [licence(COPILOT_SKU, ALL_COPILOT)], [assigned(p, "Deleted") for p in ALL_COPILOT]),
    ]))
    assert out.status is Status.PASS


def test_copilot_plans_disabled_plans_win_over_stale_assigned_plans() -> None:
    out = run("copilot-plans-not-assigned", plans_data([
        user("a", [licence(COPILOT_SKU, ALL_COPILOT)], [assigned(p) for p in ALL_COPILOT]),
    ]))
    assert out.status is Status.PASS


def test_copilot_plans_disabled_guid_case_insensitive() -> None:
    out = run("copilot-plans-not-assigned", plans_data([
        user("a", [licence(COPILOT_SKU.upper(), [p.upper() for p in ALL_COPILOT])]),
    ]))
    assert out.status is Status.PASS


def test_copilot_plans_group_licensing_counts() -> None:
    # A group-based licence appears in assignedLicenses like a direct one; no assignedPlans needed.
    out = run("copilot-plans-not-assigned", plans_data([user("g", [licence(COPILOT_SKU)])]))
    assert out.status is Status.FAIL
    assert ids(out) == ["g"]


@pytest.mark.parametrize("status", ["Suspended", "LockedOut", "Deleted"])
def test_copilot_plans_unusable_sku_status_passes(status: str) -> None:
    out = run("copilot-plans-not-assigned", plans_data([user("a", [licence(COPILOT_SKU)])],
                                                       [copilot_sku(status=status)]))
    assert out.status is Status.PASS


def test_copilot_plans_warning_sku_is_usable_grace_period() -> None:
    out = run("copilot-plans-not-assigned", plans_data([user("a", [licence(COPILOT_SKU)])],
                                                       [copilot_sku(status="Warning")]))
    assert out.status is Status.FAIL
    assert "grace period" in out.objects[0].detail


@pytest.mark.parametrize(("status", "expected"), [
    ("Enabled", Status.FAIL), ("Warning", Status.FAIL), ("Suspended", Status.PASS),
    ("LockedOut", Status.PASS), ("Deleted", Status.PASS),
])
def test_copilot_plans_assigned_plan_status(status: str, expected: Status) -> None:
    out = run("copilot-plans-not-assigned", plans_data([
        user("a", [licence(COPILOT_SKU, [APPS, STUDIO_IN_COPILOT])], [assigned(CHAT, status)]),
    ]))
    assert out.status is expected


def test_copilot_plans_assigned_plan_without_known_licence_fails_closed() -> None:
    out = run("copilot-plans-not-assigned", plans_data([user("a", [], [assigned(CHAT)])], [e5_sku()]))
    assert out.status is Status.FAIL
    assert "assignedPlans" in out.objects[0].detail


def test_copilot_plans_disabled_account_is_marked() -> None:
    out = run("copilot-plans-not-assigned", plans_data([user("x", [licence(COPILOT_SKU)], enabled=False)]))
    assert out.status is Status.FAIL
    assert out.objects[0].detail.endswith("account disabled")
    assert "1 of them with a disabled account" in out.message.en


def test_copilot_plans_zero_users_is_pass_0_in_scope() -> None:
    out = run("copilot-plans-not-assigned", plans_data([]))
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


def test_copilot_plans_catalog_update_needs_no_code() -> None:
    catalogs = {**CATALOGS, "copilot-service-plans": [{"id": EXCHANGE_PLAN, "name": "EXCHANGE_S_ENTERPRISE"}]}
    rule = RULES["copilot-plans-not-assigned"]
    out = CHECKS["service_plans_not_assigned"](CheckInput(
        rule=rule, data=plans_data([user("a", [licence(E5_SKU)])]), catalogs=catalogs,
        params=rule.params, approved_apps=[], today=TODAY))
    assert out.status is Status.FAIL


@pytest.mark.parametrize("data", [
    {"users": {"value": []}, "subscribed_skus": []},
    {"users": [{"id": "a", "assignedLicenses": "639dec6b"}], "subscribed_skus": []},
    {"users": [{"id": "a"}], "subscribed_skus": []},
    {"users": [], "subscribed_skus": [{"skuPartNumber": "no id"}]},
    {"users": []},
])
def test_copilot_plans_unexpected_shape_is_error(data: dict[str, Any]) -> None:
    out = run("copilot-plans-not-assigned", data)
    assert out.status is Status.ERROR
    assert "Unexpected data" in out.message.en


def test_copilot_subscriptions_fail_with_units() -> None:
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [copilot_sku(), e5_sku()]})
    assert out.status is Status.FAIL
    assert ids(out) == [COPILOT_SKU]
    assert "25 enabled" in out.objects[0].detail
    assert "M365_COPILOT_BUSINESS_CHAT" in out.objects[0].detail


def test_copilot_subscriptions_pass_when_copilot_sku_has_no_units() -> None:
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [copilot_sku(enabled=0), e5_sku()]})
    assert out.status is Status.PASS
    assert "1 subscription carries" in out.message.en


def test_copilot_subscriptions_grace_period_units_count_unless_configured_away() -> None:
    data = {"subscribed_skus": [copilot_sku(enabled=0, warning=5)]}
    out = run("copilot-subscriptions-absent", data)
    assert out.status is Status.FAIL
    assert "0 enabled, 5 warning" in out.objects[0].detail
    assert run("copilot-subscriptions-absent", data, params={"unit_states": ["enabled"]}).status is Status.PASS


def test_copilot_subscriptions_unknown_sku_id_with_copilot_plan_counts() -> None:
    sku = {**copilot_sku(), "skuId": "11111111-2222-3333-4444-555555555555",
           "skuPartNumber": "COPILOT_BUSINESS"}
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [sku]})
    assert out.status is Status.FAIL


def test_copilot_subscriptions_zero_in_scope() -> None:
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [e5_sku()]})
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


def test_copilot_subscriptions_bad_units_is_error() -> None:
    sku = {**copilot_sku(), "prepaidUnits": {"enabled": "25"}}
    assert run("copilot-subscriptions-absent", {"subscribed_skus": [sku]}).status is Status.ERROR
    sku = {**copilot_sku(), "prepaidUnits": None}
    assert run("copilot-subscriptions-absent", {"subscribed_skus": [sku]}).status is Status.ERROR


# --------------------------------------------------------------------------- consent


def auth_policy(*assignments: str, risky: bool = False) -> dict[str, Any]:
    return {"id": "authorizationPolicy", "allowUserConsentForRiskyApps": risky,
            "defaultUserRolePermissions": {"allowedToCreateApps": False,
                                           "permissionGrantPoliciesAssigned": list(assignments)}}


@pytest.mark.parametrize("assignments", [
    (),
    ("ManagePermissionGrantsForSelf.microsoft-user-default-low",),
    ("managePermissionGrantsForSelf.Microsoft-User-Default-LOW",),
    ("ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team",),
])
def test_consent_users_pass(assignments: tuple[str, ...]) -> None:
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(*assignments),
                                                      "permission_classifications": []})
    assert out.status is Status.PASS


@pytest.mark.parametrize("value", [
    "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
    "managePermissionGrantsForSelf.microsoft-user-default-recommended",
])
def test_consent_users_fail(value: str) -> None:
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(value),
                                                      "permission_classifications": []})
    assert out.status is Status.FAIL
    assert ids(out) == [value]


def test_consent_users_risky_apps_flag_is_a_note_not_a_failure() -> None:
    low = "ManagePermissionGrantsForSelf.microsoft-user-default-low"
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(low, risky=True),
                                                      "permission_classifications": []})
    assert out.status is Status.PASS
    assert "allowUserConsentForRiskyApps is on" in out.message.en
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(low),
                                                      "permission_classifications": []})
    assert "allowUserConsentForRiskyApps" not in out.message.en


@pytest.mark.parametrize("policy", [
    [],
    {"id": "authorizationPolicy"},
    {"defaultUserRolePermissions": {}},
    {"defaultUserRolePermissions": {"permissionGrantPoliciesAssigned": ["just-user-read"]}},
    {"defaultUserRolePermissions": {"permissionGrantPoliciesAssigned": [7]}},
])
def test_consent_users_unexpected_shape_is_error(policy: Any) -> None:
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": policy})
    assert out.status is Status.ERROR


def test_consent_owners_pass_when_off() -> None:
    data = {"authorization_policy": auth_policy("ManagePermissionGrantsForSelf.microsoft-user-default-low"),
            "teams_app_settings": {"isUserPersonalScopeResourceSpecificConsentEnabled": False}}
    assert run("consent-owners-cannot-grant-team-data", data).status is Status.PASS


def test_consent_owners_fail_names_rsc_policy_and_personal_scope() -> None:
    team = "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"
    data = {"authorization_policy": auth_policy(team),
            "teams_app_settings": {"isUserPersonalScopeResourceSpecificConsentEnabled": True}}
    out = run("consent-owners-cannot-grant-team-data", data)
    assert out.status is Status.FAIL
    assert ids(out) == [team, "isUserPersonalScopeResourceSpecificConsentEnabled"]


def test_consent_owners_allowed_policy_is_case_insensitive() -> None:
    chat = "managePermissionGrantsForOwnedResource.Microsoft-Pre-Approval-Apps-For-Chat"
    data = {"authorization_policy": auth_policy(chat),
            "teams_app_settings": {"isUserPersonalScopeResourceSpecificConsentEnabled": False}}
    out = run("consent-owners-cannot-grant-team-data", data,
              params={"allowed_policies": ["microsoft-pre-approval-apps-for-chat"]})
    assert out.status is Status.PASS
    assert run("consent-owners-cannot-grant-team-data", data).status is Status.FAIL


def test_consent_owners_missing_teams_setting_is_error() -> None:
    data = {"authorization_policy": auth_policy(), "teams_app_settings": {}}
    assert run("consent-owners-cannot-grant-team-data", data).status is Status.ERROR


# --------------------------------------------------------------------------- catalog and studio plans


def test_catalog_current_passes_when_ai_plans_are_classified() -> None:
    out = run("copilot-catalog-current", {"subscribed_skus": [copilot_sku(), e5_sku()]})
    assert out.status is Status.PASS
    assert "5 service plans" in out.message.en  # 3 Copilot plans, PVA P3 and Bing (reviewed)


def test_catalog_current_flags_unknown_ai_plan_once() -> None:
    new = plan("99999999-aaaa-bbbb-cccc-dddddddddddd", "M365_COPILOT_FUTURE_THING")
    sku1 = {**copilot_sku(), "servicePlans": [*copilot_sku()["servicePlans"], new]}
    upper = {**new, "servicePlanId": new["servicePlanId"].upper()}
    sku2 = {**e5_sku(), "servicePlans": [*e5_sku()["servicePlans"], upper]}
    out = run("copilot-catalog-current", {"subscribed_skus": [sku1, sku2]})
    assert out.status is Status.FAIL
    assert ids(out) == ["99999999-aaaa-bbbb-cccc-dddddddddddd"]
    assert "Microsoft_365_Copilot, SPE_E5" in out.objects[0].detail


def test_catalog_current_zero_in_scope() -> None:
    sku = {**e5_sku(), "servicePlans": [plan(EXCHANGE_PLAN, "EXCHANGE_S_ENTERPRISE")]}
    out = run("copilot-catalog-current", {"subscribed_skus": [sku]})
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


def test_catalog_current_invalid_pattern_is_error() -> None:
    rule = RULES["copilot-catalog-current"]
    catalogs = {**CATALOGS, "ai-plan-name-patterns": [{"pattern": "copilot("}]}
    out = CHECKS["ai_plans_in_catalog"](CheckInput(
        rule=rule, data={"subscribed_skus": [copilot_sku()]}, catalogs=catalogs, params=rule.params,
        approved_apps=[], today=TODAY))
    assert out.status is Status.ERROR


def test_studio_plans_fail_for_e5_power_virtual_agents_and_pass_when_disabled() -> None:
    out = run("copilot-studio-plans-not-assigned", plans_data([user("a", [licence(E5_SKU)])]))
    assert out.status is Status.FAIL
    assert out.objects[0].detail == "SPE_E5: POWER_VIRTUAL_AGENTS_O365_P3"
    out = run("copilot-studio-plans-not-assigned", plans_data([user("a", [licence(E5_SKU, [PVA_P3])])]))
    assert out.status is Status.PASS


# --------------------------------------------------------------------------- apps

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
SPO_APP = "00000003-0000-0ff1-ce00-000000000000"
EXO_APP = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_SP, SPO_SP, EXO_SP = "g0000000-0000-0000-0000-000000000001", "s0000000-0000-0000-0000-000000000002", \
    "e0000000-0000-0000-0000-000000000003"
MAIL_READ_ROLE = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
USER_READ_ALL_ROLE = "df021288-bdef-4463-88db-98f22de89214"
SITES_READ_ALL_SPO_ROLE = "678536fe-1083-478a-9c59-b99265e6b0d3"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
CLAUDE_CLIENT = "08ad6f98-a4f8-4635-bb8d-f1a3044760f0"


def resources() -> list[dict[str, Any]]:
    return [
        {"id": GRAPH_SP, "appId": GRAPH_APP, "displayName": "Microsoft Graph",
         "appRoles": [{"id": MAIL_READ_ROLE, "value": "Mail.Read"},
                      {"id": USER_READ_ALL_ROLE, "value": "User.Read.All"}],
         "oauth2PermissionScopes": []},
        {"id": SPO_SP, "appId": SPO_APP, "displayName": "Office 365 SharePoint Online",
         "appRoles": [{"id": SITES_READ_ALL_SPO_ROLE, "value": "Sites.Read.All"}], "oauth2PermissionScopes": []},
        {"id": EXO_SP, "appId": EXO_APP, "displayName": "Office 365 Exchange Online",
         "appRoles": [], "oauth2PermissionScopes": []},
    ]


def sp(obj_id: str, app_id: str, name: str, owner: str = "aaaaaaaa-0000-0000-0000-000000000000",
       publisher: str | None = None, enabled: bool = True) -> dict[str, Any]:
    return {"id": obj_id, "appId": app_id, "displayName": name, "appOwnerOrganizationId": owner,
            "accountEnabled": enabled, "servicePrincipalType": "Application", "tags": [],
            "verifiedPublisher": {"displayName": publisher, "verifiedPublisherId": None, "addedDateTime": None}}


def grant(client: str, scope: str, consent: str = "Principal", principal: str | None = "u1",
          resource: str = GRAPH_SP) -> dict[str, Any]:
    return {"id": f"grant-{client}-{principal}", "clientId": client, "consentType": consent,
            "principalId": principal if consent == "Principal" else None, "resourceId": resource, "scope": scope}


def role(client: str, role_id: str, resource: str = GRAPH_SP) -> dict[str, Any]:
    return {"id": f"ra-{client}-{role_id}", "appRoleId": role_id, "principalId": client,
            "principalType": "ServicePrincipal", "resourceId": resource, "principalDisplayName": client}


def apps_data(sps: list[dict[str, Any]], grants: list[dict[str, Any]] | None = None,
              roles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"service_principals": sps, "resource_permissions": resources(),
            "delegated_grants": grants or [], "app_role_assignments": roles or []}


CHATGPT = sp("c1", "11111111-1111-1111-1111-111111111111", "ChatGPT Connector", publisher="OpenAI")


def test_ai_app_with_only_basic_sign_in_scopes_passes() -> None:
    out = run("ai-apps-no-org-data-access",
              apps_data([CHATGPT], [grant("c1", "openid profile User.Read", "AllPrincipals")]))
    assert out.status is Status.PASS
    assert "1 recognised AI app" in out.message.en


def test_user_consented_ai_app_with_files_read_all_fails() -> None:
    out = run("ai-apps-no-org-data-access", apps_data([CHATGPT], [
        grant("c1", "openid Files.Read.All", principal="u1"),
        grant("c1", "openid files.read.all User.Read", principal="u2"),
    ]))
    assert out.status is Status.FAIL
    assert ids(out) == [CHATGPT["appId"]]
    detail = out.objects[0].detail
    assert "Files.Read.All (Microsoft Graph, user consent by 2 users)" in detail
    assert "ChatGPT (OpenAI)" in detail


def test_ai_app_application_role_resolved_to_name() -> None:
    claude = sp("c2", CLAUDE_CLIENT, "M365 MCP Client for Claude")
    out = run("ai-apps-no-org-data-access", apps_data([claude], roles=[role("c2", MAIL_READ_ROLE)]))
    assert out.status is Status.FAIL
    assert "Mail.Read (Microsoft Graph, application permission)" in out.objects[0].detail
    assert MAIL_READ_ROLE not in out.objects[0].detail


def test_ai_app_sharepoint_permission_and_disabled_sp() -> None:
    otter = sp("c3", "33333333-3333-3333-3333-333333333333", "Otter.ai", enabled=False)
    out = run("ai-apps-no-org-data-access", apps_data([otter], roles=[role("c3", SITES_READ_ALL_SPO_ROLE, SPO_SP)]))
    assert out.status is Status.FAIL
    assert "Sites.Read.All (Office 365 SharePoint Online, application permission)" in out.objects[0].detail
    assert "service principal disabled" in out.objects[0].detail


def test_non_ai_app_and_microsoft_app_named_like_ai_are_ignored() -> None:
    hr = sp("c4", "44444444-4444-4444-4444-444444444444", "Zaaksysteem connector")
    ms = sp("c5", "55555555-5555-5555-5555-555555555555", "Gemini migration tool", owner=MICROSOFT_TENANT)
    out = run("ai-apps-no-org-data-access", apps_data([hr, ms], [
        grant("c4", "Mail.Read", "AllPrincipals"), grant("c5", "Mail.Read", "AllPrincipals")]))
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


def test_ai_app_unknown_role_id_is_error() -> None:
    out = run("ai-apps-no-org-data-access",
              apps_data([CHATGPT], roles=[role("c1", "12345678-1234-1234-1234-123456789012")]))
    assert out.status is Status.ERROR


def test_ai_app_grant_for_unknown_client_is_error() -> None:
    out = run("ai-apps-no-org-data-access", apps_data([CHATGPT], [grant("zz", "Mail.Read")]))
    assert out.status is Status.ERROR


def test_tenant_wide_unapproved_app_fails_and_user_grants_do_not_count() -> None:
    hr = sp("c4", "44444444-4444-4444-4444-444444444444", "Zaaksysteem connector")
    tool = sp("c6", "66666666-6666-6666-6666-666666666666", "Some tool")
    out = run("apps-tenant-wide-data-access-approved", apps_data([hr, tool], [
        grant("c4", "Mail.Read", "AllPrincipals"), grant("c6", "Mail.Read", principal="u1")]))
    assert out.status is Status.FAIL
    assert ids(out) == [hr["appId"]]
    assert "not on the approved-apps list" in out.objects[0].detail
    assert "admin consent for all users" in out.objects[0].detail


def test_tenant_wide_approved_app_passes_until_review_date() -> None:
    hr = sp("c4", "44444444-4444-4444-4444-444444444444", "Zaaksysteem connector")
    data = apps_data([hr], roles=[role("c4", MAIL_READ_ROLE)])
    approval = ApprovedApp(app_id=hr["appId"].upper(), name="Zaaksysteem", reason="DPIA 2025-14",
                           review_by=date(2026, 11, 28))
    assert run("apps-tenant-wide-data-access-approved", data, approved=[approval]).status is Status.PASS
    out = run("apps-tenant-wide-data-access-approved", data, approved=[approval], today=date(2026, 11, 29))
    assert out.status is Status.FAIL
    assert "approval expired: review was due 2026-11-28" in out.objects[0].detail


def test_tenant_wide_ignores_microsoft_apps_and_non_org_data_roles() -> None:
    ms = sp("c7", "77777777-7777-7777-7777-777777777777", "Office 365 Management", owner=MICROSOFT_TENANT)
    audit = sp("c8", "88888888-8888-8888-8888-888888888888", "m365audit")
    out = run("apps-tenant-wide-data-access-approved", apps_data([ms, audit], roles=[
        role("c7", MAIL_READ_ROLE), role("c8", USER_READ_ALL_ROLE)]))
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


AME_TENANT = "33e01921-4d64-4f8c-a055-5bdaffd5e33d"
MCP_SERVER = "e8c77dc2-69b3-43f4-bc51-3213c9d915b4"


def test_an_app_of_another_microsoft_tenant_is_microsofts() -> None:
    """Owned by AME, not by the three best-known Microsoft tenants: still first party, not a third-party AI app."""
    ame = sp("c9", "99999999-9999-9999-9999-999999999999", "Copilot Insights Connector", owner=AME_TENANT)
    assert run("apps-tenant-wide-data-access-approved", apps_data([ame], roles=[role("c9", MAIL_READ_ROLE)])).status \
        is Status.PASS
    data = apps_data([ame], [grant("c9", "Mail.Read", "AllPrincipals")])
    assert run("ai-apps-no-org-data-access", data).status is Status.PASS


def test_a_first_party_app_id_is_microsofts_whatever_its_owner_field_says() -> None:
    mcp = {**sp("ca", MCP_SERVER, "Microsoft MCP Server for Enterprise"), "appOwnerOrganizationId": None}
    out = run("apps-tenant-wide-data-access-approved", apps_data([mcp], roles=[role("ca", MAIL_READ_ROLE)]))
    assert out.status is Status.PASS and "0 in scope" in out.message.en


def test_an_app_that_only_looks_like_microsoft_is_a_third_party() -> None:
    """A Microsoft-like name or publisher, an unknown owner: judged as a third party, and its AI name counts."""
    fake = sp("cb", "bbbbbbbb-1111-2222-3333-444444444444", "Microsoft Copilot ChatGPT Bridge",
              owner="bbbbbbbb-0000-0000-0000-000000000000", publisher="Microsoft Corporation")
    assert run("apps-tenant-wide-data-access-approved",
               apps_data([fake], roles=[role("cb", MAIL_READ_ROLE)])).status is Status.FAIL
    assert run("ai-apps-no-org-data-access", apps_data([fake], roles=[role("cb", MAIL_READ_ROLE)])).status \
        is Status.FAIL
    no_owner = {**fake, "appOwnerOrganizationId": None}
    assert run("apps-tenant-wide-data-access-approved",
               apps_data([no_owner], roles=[role("cb", MAIL_READ_ROLE)])).status is Status.FAIL


def test_an_unconfirmed_first_party_id_never_makes_an_app_microsofts() -> None:
    unconfirmed = [e for e in CATALOGS["copilot-first-party-apps"] if e.get("confirmed") is False]
    assert unconfirmed, "the catalog marks its unconfirmed ids"
    app = sp("cc", unconfirmed[0]["app_id"], "Teams helper", owner="cccccccc-0000-0000-0000-000000000000")
    out = run("apps-tenant-wide-data-access-approved", apps_data([app], roles=[role("cc", MAIL_READ_ROLE)]))
    assert out.status is Status.FAIL


def test_apps_bad_grant_shape_is_error() -> None:
    bad = {**grant("c1", "Mail.Read"), "consentType": "Everyone"}
    assert run("apps-tenant-wide-data-access-approved", apps_data([CHATGPT], [bad])).status is Status.ERROR
    data = {**apps_data([CHATGPT]), "resource_permissions": {"value": []}}
    assert run("ai-apps-no-org-data-access", data).status is Status.ERROR


# --------------------------------------------------------------------------- Conditional Access

ECP = "fb8d773d-7ef8-4ec0-a117-179f88add510"


def ca_policy(pid: str, *, state: str = "enabled", apps: list[str] | None = None, users: list[str] | None = None,
              groups: list[str] | None = None, exclude_users: list[str] | None = None,
              controls: list[str] | None = None, client_types: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": pid, "displayName": f"policy {pid}", "state": state,
        "conditions": {
            "clientAppTypes": client_types or ["all"], "signInRiskLevels": [], "userRiskLevels": [],
            "servicePrincipalRiskLevels": [], "platforms": None, "locations": None, "devices": None,
            "applications": {"includeApplications": apps if apps is not None else [ECP], "excludeApplications": []},
            "users": {"includeUsers": users if users is not None else ["All"], "excludeUsers": exclude_users or [],
                      "includeGroups": groups or [], "excludeGroups": [], "includeRoles": [], "excludeRoles": []},
        },
        "grantControls": {"operator": "OR", "builtInControls": controls or ["block"]},
    }


def test_ca_enabled_block_for_all_users_passes_with_exclusions_as_objects() -> None:
    out = run("ca-blocks-copilot-apps", {"conditional_access": [ca_policy("p1", exclude_users=["breakglass"])]})
    assert out.status is Status.PASS
    assert ids(out) == ["breakglass"]
    assert "standalone" in out.message.en and "losstaande" in out.message.nl


def test_ca_report_only_block_fails() -> None:
    out = run("ca-blocks-copilot-apps",
              {"conditional_access": [ca_policy("p1", state="enabledForReportingButNotEnforced")]})
    assert out.status is Status.FAIL
    assert ids(out) == [ECP, "p1"]
    assert out.objects[1].detail == "report-only"


@pytest.mark.parametrize("policy", [
    ca_policy("p1", users=[], groups=["pilot"]),
    ca_policy("p1", controls=["mfa"]),
    ca_policy("p1", apps=["All"], client_types=["exchangeActiveSync", "other"]),
    ca_policy("p1", apps=["00000003-0000-0ff1-ce00-000000000000"]),
    ca_policy("p1", state="disabled"),
])
def test_ca_partial_or_other_policies_fail(policy: dict[str, Any]) -> None:
    out = run("ca-blocks-copilot-apps", {"conditional_access": [policy]})
    assert out.status is Status.FAIL
    assert ECP in ids(out)


def test_ca_all_apps_block_counts_and_zero_policies_fail() -> None:
    assert run("ca-blocks-copilot-apps", {"conditional_access": [ca_policy("p1", apps=["All"])]}).status is Status.PASS
    assert run("ca-blocks-copilot-apps", {"conditional_access": []}).status is Status.FAIL


def test_ca_missing_conditions_is_error() -> None:
    out = run("ca-blocks-copilot-apps", {"conditional_access": [{"id": "p1", "state": "enabled",
                                                                  "grantControls": {"builtInControls": ["block"]}}]})
    assert out.status is Status.ERROR


# --------------------------------------------------------------------------- Intune

RECALL = "device_vendor_msft_policy_config_windowsai_allowrecallenablement"
EDGE_PAGE = "device_vendor_msft_policy_config_microsoft_edgev130~policy~microsoft_edge_edgeentracopilotpagecontext"


def choice(definition: str, value: str, children: list[Any] | None = None) -> dict[str, Any]:
    return {"id": "0", "settingInstance": {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
        "settingDefinitionId": definition,
        "choiceSettingValue": {"value": f"{definition}_{value}", "children": children or []}}}


def target(kind: str, group: str | None = "grp", filter_type: str = "none",
           filter_id: str | None = None) -> dict[str, Any]:
    """An assignment as Graph returns it: the filter fields are always present ('none' and null: no filter)."""
    return {"id": "a", "target": {"@odata.type": f"#microsoft.graph.{kind}", "groupId": group,
                                  "deviceAndAppManagementAssignmentFilterId": filter_id,
                                  "deviceAndAppManagementAssignmentFilterType": filter_type}}


def intune(pid: str, settings: list[Any], assignments: list[Any]) -> dict[str, Any]:
    return {"id": pid, "name": f"policy {pid}", "isAssigned": bool(assignments), "settings": settings,
            "settingCount": len(settings), "assignments": assignments}


def test_intune_assigned_compliant_policy_passes() -> None:
    out = run("endpoint-recall-disabled", {"intune_policies": [
        intune("p1", [choice(RECALL, "0")], [target("groupAssignmentTarget")])]})
    assert out.status is Status.PASS
    assert ids(out) == ["p1"]
    assert "assigned to group grp" in out.objects[0].detail


def test_intune_unassigned_policy_proves_nothing() -> None:
    out = run("endpoint-recall-disabled", {"intune_policies": [intune("p1", [choice(RECALL, "0")], [])]})
    assert out.status is Status.FAIL
    assert "no assignment that counts: proves nothing" in out.objects[0].detail


def test_intune_exclusion_only_assignment_is_unassigned() -> None:
    out = run("endpoint-edge-copilot-page-access-disabled", {"intune_policies": [
        intune("p1", [choice(EDGE_PAGE, "0")], [target("exclusionGroupAssignmentTarget")])]})
    assert out.status is Status.FAIL


def test_intune_edge_matched_on_suffix_any_admx_version_and_nested() -> None:
    other_version = EDGE_PAGE.replace("edgev130", "edgev142")
    nested = {"id": "0", "settingInstance": {"settingDefinitionId": "group",
                                             "groupSettingCollectionValue": [{"children": [
                                                 choice(other_version, "0")["settingInstance"]]}]}}
    out = run("endpoint-edge-copilot-page-access-disabled", {"intune_policies": [
        intune("p1", [nested], [target("allDevicesAssignmentTarget", None)])]})
    assert out.status is Status.PASS
    assert "assigned to all devices" in out.objects[0].detail


def test_intune_wrong_value_fails_and_an_opposite_assigned_policy_fails_by_default() -> None:
    wrong = intune("p1", [choice(RECALL, "1")], [target("groupAssignmentTarget")])
    out = run("endpoint-recall-disabled", {"intune_policies": [wrong]})
    assert out.status is Status.FAIL
    assert "not compliant" in out.objects[0].detail
    right = intune("p2", [choice(RECALL, "0")], [target("allLicensedUsersAssignmentTarget", None)])
    out = run("endpoint-recall-disabled", {"intune_policies": [wrong, right]})
    assert out.status is Status.FAIL
    assert "without an opposite assigned policy" in out.message.en
    out = run("endpoint-recall-disabled", {"intune_policies": [wrong, right]}, params={"fail_on_opposite": False})
    assert out.status is Status.PASS
    assert ids(out) == ["p2", "p1"]
    assert "residual exposure" in out.message.en


def test_intune_setting_of_another_rule_does_not_count() -> None:
    out = run("endpoint-windows-copilot-disabled", {"intune_policies": [
        intune("p1", [choice(RECALL, "0")], [target("groupAssignmentTarget")])]})
    assert out.status is Status.FAIL
    assert out.objects == []


def test_intune_missing_assignments_is_error() -> None:
    policy = intune("p1", [choice(RECALL, "0")], [])
    del policy["assignments"]
    assert run("endpoint-recall-disabled", {"intune_policies": [policy]}).status is Status.ERROR


# --------------------------------------------------------------------------- usage and audit

HEADER = ["Report Refresh Date", "User Principal Name", "Display Name", "Last Activity Date",
          "Copilot Chat Last Activity Date", "Word Copilot Last Activity Date", "Report Period"]


def usage_row(upn: str, last: str = "", chat: str = "", word: str = "") -> dict[str, str]:
    return dict(zip(HEADER, ["2026-11-27", upn, upn.split("@")[0], last, chat, word, "30"], strict=True))


def test_usage_empty_report_is_pass_0_in_scope() -> None:
    out = run("copilot-usage-none", {"copilot_usage": []})
    assert out.status is Status.PASS
    assert "0 in scope" in out.message.en


def test_usage_rows_without_activity_pass() -> None:
    out = run("copilot-usage-none", {"copilot_usage": [usage_row("E58EEF6A6BBD3D0293CB306D24A42057")]})
    assert out.status is Status.PASS


def test_usage_activity_fails_and_hashed_names_are_marked() -> None:
    hashed = "E58EEF6A6BBD3D0293CB306D24A42057"
    out = run("copilot-usage-none", {"copilot_usage": [
        usage_row("a@voorbeeld.nl", "2026-11-20", word="2026-11-20"),
        usage_row(hashed, "2026-11-02", chat="2026-11-02"),
    ]})
    assert out.status is Status.FAIL
    assert ids(out) == ["a@voorbeeld.nl", hashed]
    assert out.objects[0].detail == "last activity 2026-11-20 (Word Copilot 2026-11-20)"
    assert out.objects[1].name == f"concealed name {hashed}"
    assert "concealed (hashed)" in out.objects[1].detail
    assert "1 with a concealed name" in out.message.en


def test_usage_activity_before_the_report_period_passes() -> None:
    out = run("copilot-usage-none", {"copilot_usage": [usage_row("a@voorbeeld.nl", "2026-09-10", word="2026-09-10")]})
    assert out.status is Status.PASS


@pytest.mark.parametrize("row", [
    {"User Principal Name": "a@voorbeeld.nl"},
    usage_row("a@voorbeeld.nl", "yesterday"),
    {**usage_row("a@voorbeeld.nl", "2026-11-20"), "Report Period": "D30"},
])
def test_usage_unexpected_rows_are_error(row: dict[str, str]) -> None:
    assert run("copilot-usage-none", {"copilot_usage": [row]}).status is Status.ERROR


def audit_record(kind: str | None, upn: str = "j.jansen@voorbeeld.nl",
                 when: str = "2026-11-26T17:12:36Z") -> dict[str, Any]:
    return {"id": "r", "createdDateTime": when, "operation": kind, "userPrincipalName": upn,
            "auditLogRecordType": kind, "auditData": {}}


LIVE = {"audit_ai_interactions": {
    "record_types": ["CopilotInteraction", "AIAppInteraction", "ConnectedAIAppInteraction"], "lookback_days": 30,
    "liveness": {"records_on_first_page": 2, "record_type": "AzureActiveDirectoryStsLogon"}}}


def test_audit_no_records_passes_and_names_window() -> None:
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": []}, meta=LIVE)
    assert out.status is Status.PASS
    assert "last 7 days" in out.message.en
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": []}, params={"lookback_days": 30}, meta=LIVE)
    assert "last 30 days" in out.message.en


def test_audit_records_fail_grouped_per_user() -> None:
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": [
        audit_record("CopilotInteraction"), audit_record("CopilotInteraction", when="2026-11-27T08:00:00Z"),
        audit_record("AIAppInteraction", upn="p@voorbeeld.nl"), audit_record("SharePointFileOperation"),
    ]})
    assert out.status is Status.FAIL
    assert ids(out) == ["j.jansen@voorbeeld.nl", "p@voorbeeld.nl"]
    assert out.objects[0].detail == "2 CopilotInteraction; latest 2026-11-27T08:00:00Z"
    assert "3 AI interactions by 2 users" in out.message.en


def test_audit_record_without_type_counts() -> None:
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": [audit_record(None)]})
    assert out.status is Status.FAIL


def test_audit_records_only_of_a_type_nobody_asked_for_cannot_pass() -> None:
    """Class 1: unknownFutureValue, or a new AI record type, is not proof of 'no AI interactions'."""
    for kind in ("unknownFutureValue", "SharePointFileOperation", 7):
        out = run("audit-no-ai-interactions", {"audit_ai_interactions": [audit_record(kind)]})  # type: ignore[arg-type]
        assert out.status is Status.ERROR and "did not ask for" in out.message.en


def test_audit_bad_shape_and_bad_param_are_error() -> None:
    assert run("audit-no-ai-interactions", {"audit_ai_interactions": {"status": "running"}}).status is Status.ERROR
    out = run("audit-no-ai-interactions", {"audit_ai_interactions": []}, params={"lookback_days": "7"})
    assert out.status is Status.ERROR


CONTRACT_MANUAL = {"copilot-open-content-blocked", "copilot-web-search-disabled", "power-platform-ai-restricted",
                   "purview-copilot-dlp", "teams-meeting-copilot-restricted"}


def test_every_rule_naming_a_function_names_an_existing_one() -> None:
    assert len(RULES) >= 23, "the 23 rule ids of POLICY-PACK.md are a contract; the pack may add rules"
    for rule in RULES.values():
        for check in (rule.check, rule.observed_by):
            if check is not None and check.function is not None:
                assert check.function in CHECKS, rule.id
    manual = {r.id for r in RULES.values() if r.manual is not None}
    assert manual >= CONTRACT_MANUAL | {"teams-premium-ai-attested", "copilot-anthropic-subprocessor-off",
                                        "copilot-payg-billing-absent", "sharepoint-restricted-content-discovery",
                                        "teams-rsc-grants-none"}


def test_every_catalog_entry_has_a_source_note() -> None:
    for name, entries in CATALOGS.items():
        for entry in entries:
            assert entry.get("source"), f"{name}: {entry}"


def test_ca_general_all_apps_policy_is_not_listed_as_copilot_policy() -> None:
    legacy = ca_policy("legacy", apps=["All"], client_types=["exchangeActiveSync", "other"])
    out = run("ca-blocks-copilot-apps", {"conditional_access": [legacy]})
    assert out.status is Status.FAIL
    assert ids(out) == [ECP]


# --------------------------------------------------------------------------- the declarative rules of the pack


def declarative(rule_id: str, data: Any) -> CheckOutcome:
    check = RULES[rule_id].check
    assert check is not None and check.function is None
    return run_declarative(check, data, CATALOGS)


def package(pid: str, kind: str, available: str = "none", deployed: str = "none", blocked: bool = False) -> Any:
    return {"id": pid, "displayName": pid, "type": kind, "isBlocked": blocked, "availableTo": available,
            "deployedTo": deployed, "publisher": "Gemeente"}


def test_agents_not_deployed() -> None:
    clean = [package("ms", "microsoft", "all", "all"), package("blocked", "custom", "all", "all", blocked=True),
             package("idle", "custom")]
    assert run("copilot-agents-not-deployed", {"copilot_packages": clean}).status is Status.PASS
    leaking = [*clean, package("ext", "external", available="some")]
    out = run("copilot-agents-not-deployed", {"copilot_packages": leaking})
    assert out.status is Status.FAIL
    assert ids(out) == ["ext"]
    assert "available to: some" in out.objects[0].detail


def test_agent_identities_absent() -> None:
    disabled = {"id": "a1", "displayName": "agent", "accountEnabled": False}
    assert declarative("agent-identities-absent", [disabled]).status is Status.PASS
    out = declarative("agent-identities-absent", [disabled, {**disabled, "id": "a2", "accountEnabled": True}])
    assert out.status is Status.FAIL
    assert ids(out) == ["a2"]


def test_connectors_not_indexing() -> None:
    draft = {"id": "c1", "name": "Draft", "state": "draft"}
    assert declarative("copilot-connectors-not-indexing", [draft]).status is Status.PASS
    full = {"id": "c2", "name": "Full", "state": "limitExceeded"}
    out = declarative("copilot-connectors-not-indexing", [draft, full])
    assert out.status is Status.FAIL
    assert ids(out) == ["c2"]


def test_admin_consent_workflow() -> None:
    on = {"isEnabled": True, "notifyReviewers": True, "reviewers": [{"query": "/users/ciso"}]}
    assert declarative("consent-admin-workflow-enabled", on).status is Status.PASS
    out = declarative("consent-admin-workflow-enabled", {**on, "reviewers": []})
    assert out.status is Status.FAIL
    assert out.objects[0].detail == "isEnabled: true reviewers: 0"


def test_ai_app_catalog_with_invalid_pattern_is_error() -> None:
    rule = RULES["ai-apps-no-org-data-access"]
    catalogs = {**CATALOGS, "ai-apps": [{"name_pattern": "chat(gpt", "name": "x", "vendor": "y"}]}
    out = CHECKS["ai_apps_no_org_data_access"](CheckInput(
        rule=rule, data=apps_data([CHATGPT]), catalogs=catalogs, params={}, approved_apps=[], today=TODAY))
    assert out.status is Status.ERROR


# --------------------------------------------------------------------------- plans that need an attestation

TEAMS_PREMIUM_SKU = "36a0f3b3-adb5-49ea-bf66-762134cf063a"
TEAMSPRO_MGMT = "0504111f-feb8-4a3c-992a-70280f9a2869"


def teams_premium_sku() -> dict[str, Any]:
    return {"skuId": TEAMS_PREMIUM_SKU, "skuPartNumber": "Microsoft_Teams_Premium", "capabilityStatus": "Enabled",
            "consumedUnits": 1, "prepaidUnits": {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [plan(TEAMSPRO_MGMT, "TEAMSPRO_MGMT"),
                             plan("78b58230-ec7e-4309-913c-93a45cc4735b", "TEAMSPRO_WEBINAR")]}


def attest_check(data: dict[str, Any]) -> CheckOutcome:
    rule = RULES["teams-premium-ai-attested"]
    assert rule.observed_by is not None and rule.observed_by.function is not None
    return CHECKS[rule.observed_by.function](CheckInput(rule=rule, data=data, catalogs=CATALOGS,
                                                        params=dict(rule.params), approved_apps=[], today=TODAY))


def test_a_held_teams_premium_intelligent_plan_asks_for_an_attestation_not_a_fail() -> None:
    data = {"subscribed_skus": [e5_sku(), teams_premium_sku()],
            "users": [user("u1", [licence(TEAMS_PREMIUM_SKU)]), user("u2", [licence(E5_SKU)])]}
    out = attest_check(data)
    assert out.status is Status.MANUAL and ids(out) == ["TEAMSPRO_MGMT"] and "1 user" in out.message.en


def test_teams_premium_with_the_intelligent_plan_switched_off_passes() -> None:
    data = {"subscribed_skus": [teams_premium_sku()],
            "users": [user("u1", [licence(TEAMS_PREMIUM_SKU, disabled=[TEAMSPRO_MGMT])])]}
    out = attest_check(data)
    assert out.status is Status.PASS and "0 in scope" in out.message.en


def test_an_observed_manual_outcome_takes_the_attestation_and_keeps_what_graph_showed() -> None:
    from m365audit.evaluate import evaluate, load_pack
    from m365audit.models import Attestation, Snapshot, SourceResult

    data = {"subscribed_skus": [teams_premium_sku()], "users": [user("u1", [licence(TEAMS_PREMIUM_SKU)])]}
    snap = Snapshot(tenant_id="t", tenant_name="", collected_at=datetime(2026, 11, 28, tzinfo=timezone.utc),
                    tool_version="test", sources={k: SourceResult(key=k, ok=True, url="/x", data=v)
                                                  for k, v in data.items()})
    shipped = load_pack()
    only = shipped.model_copy(update={"rules": [r for r in shipped.rules if r.id == "teams-premium-ai-attested"]})
    [unattested] = evaluate(snap, only, TODAY)
    assert unattested.status is Status.MANUAL and unattested.attestation is None
    assert [o.id for o in unattested.objects] == ["TEAMSPRO_MGMT"] and "check by hand" in unattested.message.en
    attested = only.model_copy(update={"attestations": [Attestation(
        rule="teams-premium-ai-attested", statement="Transcription and recap off in all meeting policies",
        attested_by="fb@voorbeeld.nl", date=date(2026, 11, 1), expires=date(2027, 2, 1))]})
    [finding] = evaluate(snap, attested, TODAY)
    assert finding.status is Status.MANUAL and finding.attestation is not None
    assert "1 user holds" in finding.message.en and "Attested until 2027-02-01" in finding.message.en
    broken = snap.model_copy(update={"sources": {**snap.sources, "users": SourceResult(
        key="users", ok=False, url="/x", error=SourceError(message="503", code="ServiceUnavailable"))}})
    [error] = evaluate(broken, attested, TODAY)
    assert error.status is Status.ERROR, "who holds the plan could not be read: not a manual, not a pass"


# --------------------------------------------------------------------------- issue 13: narrowing, truncation, sums


@pytest.mark.parametrize("member, value", [
    ("platforms", {"includePlatforms": ["android"], "excludePlatforms": []}),
    ("platforms", {"includePlatforms": ["all"], "excludePlatforms": ["iOS"]}),
    ("locations", {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
    ("devices", {"deviceFilter": {"mode": "include", "rule": "device.isCompliant -eq False"}}),
    ("insiderRiskLevels", "elevated"),
    ("authenticationFlows", {"transferMethods": "deviceCodeFlow"}),
    ("clientApplications", {"includeServicePrincipals": ["x"]}),
    ("signInRiskLevels", ["high"]),
    ("clientAppTypes", ["browser"]),
    ("timeOfDay", {"from": "08:00"}),  # a member this check does not know narrows too
    ("signInRiskLevels", "high"),      # a value of another shape cannot be proven harmless
])
def test_ca_every_set_condition_narrows_the_block(member: str, value: Any) -> None:
    """Class 2: a block that only some sign-ins meet is not a block for everyone."""
    policy = ca_policy("p1")
    policy["conditions"][member] = value
    out = run("ca-blocks-copilot-apps", {"conditional_access": [policy]})
    assert out.status is Status.FAIL
    assert "p1" in ids(out)


def test_ca_application_filter_and_unknown_users_member_narrow() -> None:
    filtered = ca_policy("p1")
    filtered["conditions"]["applications"]["applicationFilter"] = {"mode": "exclude", "rule": "x"}
    agents = ca_policy("p2")
    agents["conditions"]["users"]["includeAgentIdentities"] = ["All"]
    for policy in (filtered, agents):
        assert run("ca-blocks-copilot-apps", {"conditional_access": [policy]}).status is Status.FAIL


def test_ca_conditions_proven_harmless_still_count() -> None:
    policy = ca_policy("p1")
    policy["conditions"].update({"platforms": {"includePlatforms": ["all"], "excludePlatforms": []},
                                 "locations": {"includeLocations": ["All"], "excludeLocations": []},
                                 "devices": {"deviceFilter": None}, "insiderRiskLevels": None})
    assert run("ca-blocks-copilot-apps", {"conditional_access": [policy]}).status is Status.PASS


@pytest.mark.parametrize("assignment", [
    target("allDevicesAssignmentTarget", None, "include", "f1"),
    target("allDevicesAssignmentTarget", None, "exclude", "f1"),
    target("groupAssignmentTarget", "grp", "none", "f1"),  # a filter id with type none: not proven unfiltered
    target("configurationManagerCollectionAssignmentTarget", None),
])
def test_intune_filtered_or_unknown_assignment_does_not_enforce(assignment: dict[str, Any]) -> None:
    """Class 2: an assignment filter (include or exclude) narrows the assignment: it does not count."""
    out = run("endpoint-recall-disabled", {"intune_policies": [intune("p1", [choice(RECALL, "0")], [assignment])]})
    assert out.status is Status.FAIL
    assert "not counted" in out.objects[0].detail


def test_intune_exclusion_narrows_every_assignment_and_groups_are_named_as_scope() -> None:
    narrowed = intune("p1", [choice(RECALL, "0")], [target("allDevicesAssignmentTarget", None),
                                                    target("exclusionGroupAssignmentTarget", "kiosk")])
    out = run("endpoint-recall-disabled", {"intune_policies": [narrowed]})
    assert out.status is Status.FAIL and "excludes group kiosk" in out.objects[0].detail
    grouped = intune("p2", [choice(RECALL, "0")], [target("groupAssignmentTarget", "werkplekken")])
    out = run("endpoint-recall-disabled", {"intune_policies": [grouped]})
    assert out.status is Status.PASS and "assigned to group werkplekken" in out.objects[0].detail


def test_intune_opposite_policy_with_a_filter_still_reaches_someone() -> None:
    good = intune("p1", [choice(RECALL, "0")], [target("allDevicesAssignmentTarget", None)])
    bad = intune("p2", [choice(RECALL, "1")], [target("allDevicesAssignmentTarget", None, "include", "f1")])
    assert run("endpoint-recall-disabled", {"intune_policies": [good, bad]}).status is Status.FAIL


def test_intune_nested_compliant_value_counts_but_a_truncated_policy_is_error() -> None:
    """Class 3: a value inside a group setting counts; a settingCount that differs from what was read is error."""
    nested = {"id": "0", "settingInstance": {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance",
        "settingDefinitionId": "device_vendor_msft_policy_config_windowsai_group",
        "groupSettingCollectionValue": [{"children": [choice(RECALL, "0")["settingInstance"]]}]}}
    policy = intune("p1", [nested], [target("allDevicesAssignmentTarget", None)])
    assert run("endpoint-recall-disabled", {"intune_policies": [policy]}).status is Status.PASS
    for count in (2, None, -1, "1"):
        out = run("endpoint-recall-disabled", {"intune_policies": [{**policy, "settingCount": count}]})
        assert out.status is Status.ERROR and "settingCount" in out.message.en
    cut = {**policy, "settings@odata.nextLink": "https://graph.microsoft.com/beta/next"}
    assert run("endpoint-recall-disabled", {"intune_policies": [cut]}).status is Status.ERROR


@pytest.mark.parametrize("units, consumed", [
    ({"enabled": 5, "suspended": 0, "warning": -5, "lockedOut": 0}, 0),   # -5 would cancel 5 in a sum
    ({"enabled": 0, "suspended": -1, "warning": 0, "lockedOut": 0}, 0),   # negative in a state not counted
    ({"enabled": 0, "suspended": 0, "warning": 0}, 0),                    # lockedOut missing
    ({"enabled": 0.5, "suspended": 0, "warning": 0, "lockedOut": 0}, 0),  # not a whole number
    ({"enabled": 0, "suspended": 0, "warning": 0, "lockedOut": 0}, -3),   # consumed cannot be negative
    ({"enabled": 0, "suspended": 0, "warning": 0, "lockedOut": 0}, None),
])
def test_copilot_units_cannot_cancel_and_impossible_numbers_are_error(units: dict[str, Any], consumed: Any) -> None:
    """Class 4: a negative, fractional or missing count is malformed data naming the SKU, never a pass."""
    sku = {**copilot_sku(), "prepaidUnits": units, "consumedUnits": consumed}
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [sku]})
    assert out.status is Status.ERROR and "Microsoft_365_Copilot" in out.message.en


def test_copilot_units_param_must_name_real_states() -> None:
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [copilot_sku(enabled=25)]},
              params={"unit_states": ["enabeld"]})
    assert out.status is Status.ERROR


def test_licence_status_or_sku_that_is_not_classified_is_error() -> None:
    """Class 1: an unknown capabilityStatus, or a licence for a SKU that subscribedSkus does not list."""
    out = run("copilot-plans-not-assigned", plans_data([user("u1", [licence(COPILOT_SKU)])],
                                                       [copilot_sku(status="unknownFutureValue"), e5_sku()]))
    assert out.status is Status.ERROR and "capabilityStatus" in out.message.en
    out = run("copilot-plans-not-assigned", plans_data([user("u1", [licence("0b0b0b0b-0000-4000-8000-000000000000")])]))
    assert out.status is Status.ERROR and "subscribedSkus does not list" in out.message.en


def test_a_fault_in_a_check_is_error_for_that_rule_not_a_lost_night(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one check (here: an AttributeError a shape the code did not foresee would raise) is that rule's
    error, in both languages, and never a pass; the audit goes on and keeps its run folder."""
    import m365audit.evaluate.checks.licences as licences

    def broken(users: Any) -> Any:
        raise AttributeError("'int' object has no attribute 'lower'")

    monkeypatch.setattr(licences, "licence_facts", broken)
    out = run("copilot-plans-not-assigned", {"users": [{"id": "u1"}], "subscribed_skus": []})
    assert out.status is Status.ERROR
    assert "fault in the check itself" in out.message.en and "AttributeError" in out.message.en
    assert "Fout in de controle zelf" in out.message.nl
