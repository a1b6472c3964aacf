"""The simulator's answers for the issue-14 routes: Teams, classifications, AI APIs, Agent ID, cost and sign-ins."""

from __future__ import annotations

from typing import Any

from m365audit.collect import GRAPH_APP_ID, RESOURCE_APPS
from m365audit.simulator.shapes import Collection, Reply, error_body, guid

SimTenant = Any
"""The tenant (simulator.tenant.SimTenant); not imported, so that tenant.py can import this module."""

LIVENESS_TYPE = "azureactivedirectorystslogon"
_AI_APIS = ("fdcc1f02-fc51-4226-8753-f668596af7f7", "e8c77dc2-69b3-43f4-bc51-3213c9d915b4")


def add_collections(t: SimTenant) -> None:
    """Register the fixed-path collections of the new sources on a tenant."""
    s = t.spec
    t.collections.update({
        "/v1.0/appcatalogs/teamsapps": Collection("appCatalogs/teamsApps", s.org_apps, lambda k: _org_app(t, k)),
        "/v1.0/applications/microsoft.graph.agentidentityblueprint": Collection(
            "applications/microsoft.graph.agentIdentityBlueprint", s.agent_blueprints, lambda k: _blueprint(t, k),
            100, 100),
        "/v1.0/serviceprincipals/microsoft.graph.agentidentityblueprintprincipal": Collection(
            "servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal", s.agent_blueprints,
            lambda k: _blueprint_principal(t, k), 100, 100),
        "/v1.0/users/microsoft.graph.agentuser": Collection(
            "users/microsoft.graph.agentUser", s.agent_users, lambda k: _agent_user(t, k)),
        "/v1.0/teams": Collection("teams", s.teams, lambda k: _team(t, k)),
        "/beta/reports/serviceprincipalsigninactivities": Collection(
            "reports/servicePrincipalSignInActivities", t.n_sp, lambda k: _sign_in(t, k)),
    })
    for app in RESOURCE_APPS:
        t.collections[f"/v1.0/serviceprincipals(appid='{app}')/delegatedpermissionclassifications"] = Collection(
            f"servicePrincipals(appId='{app}')/delegatedPermissionClassifications", 1 if app == GRAPH_APP_ID else 0,
            _classification)


def answer(t: SimTenant, low: str, path: str, params: dict[str, str], base: str, request_id: str,
           page_cap: int | None) -> Reply | None:
    """Routes that depend on the query or on an id in the path; None for every other request."""
    if low == "/v1.0/serviceprincipals" and "appid in" in params.get("$filter", "").lower():
        reply: Reply = t.page(Collection("servicePrincipals", 0, lambda k: {}), path, params, base, request_id,
                              page_cap)
        return reply
    if low.startswith("/v1.0/teams/") and low.endswith("/permissiongrants"):
        team = low.split("/")[3]
        k = t.team_index.get(team)
        if k is None:
            return Reply(404, error_body("NotFound", f"Team '{team}' was not found.", request_id))
        grants: Reply = t.page(Collection(f"teams('{team}')/permissionGrants", 1 if k % 3 == 0 else 0,
                                          lambda i: _rsc_grant(t, k)), path, params, base, request_id, page_cap)
        return grants
    if low == "/beta/copilot/costmanagement/usagereports/serviceusagerecords":
        if not params.get("startdate") or not params.get("enddate"):
            return Reply(400, error_body("BadRequest", "startDate and endDate are required.", request_id))
        zero = {"serviceId": "workIQ", "consumedQuantity": 0.0, "unit": "copilotCredit"}
        usage: Reply = t.page(Collection("copilot/costManagement/usageReports/serviceUsageRecords", 1,
                                         lambda k: zero), path, params, base, request_id, page_cap)
        return usage
    return None


def sign_in_record(t: SimTenant, k: int) -> dict[str, Any]:
    """One Entra sign-in audit record (the liveness query's answer)."""
    upn = f"medewerker{k % max(t.spec.users, 1):06d}@voorbeeld.nl"
    return {"@odata.type": "#microsoft.graph.security.auditLogRecord", "id": guid(t.spec.seed, "signin", k),
            "createdDateTime": f"2026-11-27T08:0{k % 10}:12Z", "auditLogRecordType": "AzureActiveDirectoryStsLogon",
            "operation": "UserLoggedIn", "organizationId": t.tenant_id, "userType": "Regular", "userId": upn,
            "userPrincipalName": upn, "service": "AzureActiveDirectory", "objectId": None,
            "clientIp": "::ffff:10.11.0.17", "administrativeUnits": [],
            "auditData": {"@odata.type": "#microsoft.graph.security.azureActiveDirectoryStsLogonAuditRecord"}}


def _org_app(t: SimTenant, k: int) -> dict[str, Any]:
    return {"id": guid(t.spec.seed, "teamsapp", k), "externalId": guid(t.spec.seed, "manifest", k),
            "displayName": f"Zaakinformatie {k}", "distributionMethod": "organization", "appDefinitions": []}


def _blueprint(t: SimTenant, k: int) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.agentIdentityBlueprint", "id": guid(t.spec.seed, "blueprint", k),
            "appId": guid(t.spec.seed, "blueprint-app", k), "displayName": f"Voorbeeld blauwdruk {k}",
            "createdDateTime": "2026-06-02T10:00:00Z", "isDisabled": True, "tags": []}


def _blueprint_principal(t: SimTenant, k: int) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.agentIdentityBlueprintPrincipal",
            "id": guid(t.spec.seed, "blueprint-sp", k), "appId": guid(t.spec.seed, "blueprint-app", k),
            "displayName": f"Voorbeeld blauwdruk {k}", "accountEnabled": False,
            "servicePrincipalType": "Application", "tags": []}


def _agent_user(t: SimTenant, k: int) -> dict[str, Any]:
    return {"id": guid(t.spec.seed, "agentuser", k), "displayName": f"Agentgebruiker {k}",
            "userPrincipalName": f"agent{k:04d}@voorbeeld.nl", "accountEnabled": False,
            "identityParentId": guid(t.spec.seed, "agent", k), "assignedLicenses": []}


def _team(t: SimTenant, k: int) -> dict[str, Any]:
    return {"id": t.team_id(k), "displayName": f"Team {k:05d}"}


def _rsc_grant(t: SimTenant, k: int) -> dict[str, Any]:
    app = guid(t.spec.seed, "app", len(RESOURCE_APPS) + k % max(t.n_sp - len(RESOURCE_APPS), 1))
    return {"id": guid(t.spec.seed, "rsc", k), "clientAppId": app, "clientId": guid(t.spec.seed, "rsc-client", k),
            "resourceAppId": GRAPH_APP_ID, "permissionType": "Application", "permission": "TeamMember.Read.Group"}


def _classification(k: int) -> dict[str, Any]:
    return {"id": "2G3-4TG6YU2J54hjnaRoPQE", "permissionId": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
            "permissionName": "User.Read", "classification": "low"}


def _sign_in(t: SimTenant, k: int) -> dict[str, Any]:
    app = t.service_principal(k)["appId"]
    when = {"lastSignInDateTime": "2026-11-26T03:00:00Z", "lastSignInRequestId": guid(t.spec.seed, "req", k)}
    return {"id": guid(t.spec.seed, "spsignin", k), "appId": app, "lastSignInActivity": when,
            "applicationAuthenticationClientSignInActivity": when, "delegatedClientSignInActivity": None,
            "delegatedResourceSignInActivity": None, "applicationAuthenticationResourceSignInActivity": None}


def minimum_requests(t: SimTenant) -> dict[str, int]:
    """Fewest requests of the new sources (cf. SimTenant.minimum_requests)."""
    def pages(key: str) -> int:
        coll: Collection = t.collections[key]
        return max(1, -(-coll.count // coll.max_top))
    return {"teams_org_apps": pages("/v1.0/appcatalogs/teamsapps"), "permission_classifications": len(RESOURCE_APPS),
            "microsoft_ai_apis": 1,
            "agent_blueprints": pages("/v1.0/applications/microsoft.graph.agentidentityblueprint"),
            "agent_blueprint_principals": pages(
                "/v1.0/serviceprincipals/microsoft.graph.agentidentityblueprintprincipal"),
            "agent_users": pages("/v1.0/users/microsoft.graph.agentuser"), "teams": pages("/v1.0/teams"),
            "teams_rsc_grants": t.spec.teams, "copilot_metered_usage": 7,
            "sp_sign_in_activity": pages("/beta/reports/serviceprincipalsigninactivities")}
