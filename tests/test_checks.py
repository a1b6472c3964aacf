"""Unit tests of the check functions in m365audit/checks.py, with inline data and the shipped catalogs."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from m365audit.checks import CHECKS, CheckInput
from m365audit.models import ApprovedApp, CheckOutcome, Rule, Status

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
        approved: list[ApprovedApp] | None = None, today: date = TODAY) -> CheckOutcome:
    """Run a shipped rule's check function the way the engine does."""
    rule = RULES[rule_id]
    assert rule.check is not None and rule.check.function is not None
    return CHECKS[rule.check.function](CheckInput(
        rule=rule, data=data, catalogs=CATALOGS, params={**rule.params, **(params or {})},
        approved_apps=approved or [], today=today,
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
    assert "M365_COPILOT_BUSINESS_CHAT via Microsoft_365_Copilot" in detail
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


def test_copilot_subscriptions_warning_units_count() -> None:
    out = run("copilot-subscriptions-absent", {"subscribed_skus": [copilot_sku(enabled=0, warning=5)]})
    assert out.status is Status.FAIL


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
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(*assignments)})
    assert out.status is Status.PASS


@pytest.mark.parametrize("value", [
    "ManagePermissionGrantsForSelf.microsoft-user-default-legacy",
    "managePermissionGrantsForSelf.microsoft-user-default-recommended",
])
def test_consent_users_fail(value: str) -> None:
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(value)})
    assert out.status is Status.FAIL
    assert ids(out) == [value]


def test_consent_users_risky_apps_fail_only_when_consent_is_on() -> None:
    low = "ManagePermissionGrantsForSelf.microsoft-user-default-low"
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(low, risky=True)})
    assert out.status is Status.FAIL
    assert ids(out) == ["allowUserConsentForRiskyApps"]
    out = run("consent-users-cannot-grant-org-data", {"authorization_policy": auth_policy(risky=True)})
    assert out.status is Status.PASS


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
