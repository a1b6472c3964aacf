"""Consent checks: what users and team or chat owners can grant to apps themselves."""

from __future__ import annotations

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_of,
    failed,
    guid_of,
    items_of,
    list_of,
    lowered,
    passed,
    single_of,
    str_list_param,
    str_of,
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
    low = _low_org_permissions(inp)
    if low:
        return failed(
            f"Toestemming door gebruikers is beperkt tot {names}, maar beheerders classificeerden "
            f"{len(low)} machtiging(en) met toegang tot organisatiegegevens als 'laag': daarvoor kan elke "
            "gebruiker zelf toestemming geven.",
            f"User consent is limited to {names}, but admins classified {len(low)} permission(s) that reach "
            "organisation data as 'low': every user can consent to those.", low)
    risky = policy.get("allowUserConsentForRiskyApps") is True
    return passed(
        f"Toestemming door gebruikers is beperkt tot {names}."
        + (" Let op: allowUserConsentForRiskyApps staat aan (ook apps die Microsoft riskant vindt)." if risky else ""),
        f"User consent is limited to {names}."
        + (" Note: allowUserConsentForRiskyApps is on (apps Microsoft flags as risky too)." if risky else ""),
    )


_LEVELS = ("low", "medium", "high")


def _low_org_permissions(inp: CheckInput) -> list[FindingObject]:
    """Permissions classified 'low' (what microsoft-user-default-low lets users grant) that reach org data."""
    org = set()
    resources = set()
    for entry in catalog_of(inp, "org-data-permissions"):
        resources.add(str_of(entry, "resource_app_id", "org-data-permissions").lower())
        kinds = {lowered(k) for k in list_of(entry, "kinds", "org-data-permissions", required=True)}
        if "delegated" in kinds:
            org.add((str_of(entry, "resource_app_id", "org-data-permissions").lower(),
                     str_of(entry, "value", "org-data-permissions").lower()))
    found = []
    for item in items_of(inp, "permission_classifications"):
        where = f"permission classification {item.get('id')}"
        level = str_of(item, "classification", where)
        if level.lower() not in _LEVELS:
            raise ShapeError(f"{where}: 'classification' is {level[:60]!r}, expected one of {', '.join(_LEVELS)}")
        # a permission name the catalog does not know is no organisation-data permission: no finding either way
        name = str_of(item, "permissionName", where)
        app = guid_of(item, "resourceAppId", where)
        if app not in resources:
            raise ShapeError(f"{where}: 'resourceAppId' is {app}, a resource the catalog org-data-permissions "
                             "does not know: cannot tell what its permissions reach")
        if level.lower() == "low" and (app, name.lower()) in org:
            found.append(FindingObject(id=str(item.get("permissionId") or name), name=name,
                                       detail=f"classified low on {app}: users may consent to it themselves"))
    return found


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
