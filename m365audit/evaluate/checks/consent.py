"""Consent checks: what users and team or chat owners can grant to apps themselves."""

from __future__ import annotations

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    failed,
    list_of,
    passed,
    single_of,
    str_list_param,
)
from m365audit.models import CheckOutcome, FindingObject

# --------------------------------------------------------------------------- consent settings

_FOR_SELF = "managepermissiongrantsforself"
_FOR_OWNED = "managepermissiongrantsforownedresource"


def _grant_policy_assignments(policy: Obj) -> list[tuple[str, str, str]]:
    """(prefix lower-cased, policy id, raw value) for each permissionGrantPoliciesAssigned entry."""
    perms = policy.get("defaultUserRolePermissions")
    if not isinstance(perms, dict):
        raise ShapeError("authorizationPolicy has no 'defaultUserRolePermissions' object")
    values = list_of(perms, "permissionGrantPoliciesAssigned", "defaultUserRolePermissions", required=True)
    result = []
    for value in values:
        if not isinstance(value, str):
            raise ShapeError(f"permissionGrantPoliciesAssigned holds a {type(value).__name__}, not a string")
        prefix, _, policy_id = value.partition(".")
        if prefix.lower() not in (_FOR_SELF, _FOR_OWNED) or not policy_id:
            raise ShapeError(f"permissionGrantPoliciesAssigned holds '{value}', not a known assignment")
        result.append((prefix.lower(), policy_id, value))
    return result


def consent_users_cannot_grant_org_data(inp: CheckInput) -> CheckOutcome:
    """User consent is off, or limited to the allowed policies (by default microsoft-user-default-low)."""
    policy = single_of(inp, "authorization_policy")
    allowed = {p.lower() for p in str_list_param(inp, "allowed_policies")}
    own = [(pid, raw) for prefix, pid, raw in _grant_policy_assignments(policy) if prefix == _FOR_SELF]
    objects = [
        FindingObject(id=raw, name=pid, detail="users may consent to apps for themselves under this policy")
        for pid, raw in own if pid.lower() not in allowed
    ]
    if objects:
        return failed(
            "Gebruikers kunnen zelf apps toegang geven tot organisatiegegevens.",
            "Users can give apps access to organisation data themselves.",
            objects,
        )
    if not own:
        return passed("Toestemming door gebruikers staat uit.", "User consent is off.")
    names = ", ".join(pid for pid, _ in own)
    risky = policy.get("allowUserConsentForRiskyApps") is True
    return passed(
        f"Toestemming door gebruikers is beperkt tot {names}."
        + (" Let op: allowUserConsentForRiskyApps staat aan (ook apps die Microsoft riskant vindt)." if risky else ""),
        f"User consent is limited to {names}."
        + (" Note: allowUserConsentForRiskyApps is on (apps Microsoft flags as risky too)." if risky else ""),
    )



def consent_owners_cannot_grant_team_data(inp: CheckInput) -> CheckOutcome:
    """No resource-specific consent for team or chat owners, and personal-scope RSC in Teams is off."""
    policy = single_of(inp, "authorization_policy")
    settings = single_of(inp, "teams_app_settings")
    allowed = {p.lower() for p in str_list_param(inp, "allowed_policies")}
    objects = [
        FindingObject(id=raw, name=pid, detail="team and chat owners may consent to apps for their team/chat")
        for prefix, pid, raw in _grant_policy_assignments(policy)
        if prefix == _FOR_OWNED and pid.lower() not in allowed
    ]
    personal = settings.get("isUserPersonalScopeResourceSpecificConsentEnabled")
    if not isinstance(personal, bool):
        raise ShapeError("teamsAppSettings lacks a boolean isUserPersonalScopeResourceSpecificConsentEnabled")
    if personal:
        objects.append(FindingObject(
            id="isUserPersonalScopeResourceSpecificConsentEnabled", name="Teams personal-scope RSC",
            detail="true: users may let Teams apps read their own chats (resource-specific consent)",
        ))
    if objects:
        return failed(
            "Eigenaren of gebruikers kunnen Teams-apps toegang geven tot team- of chatgegevens.",
            "Owners or users can give Teams apps access to team or chat data.",
            objects,
        )
    return passed(
        "Geen resource-specifieke toestemming voor eigenaren; persoonlijke RSC in Teams staat uit.",
        "No resource-specific consent for owners; personal-scope RSC in Teams is off.",
    )
