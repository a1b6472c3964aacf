"""A synthetic Graph tenant of any size, generated from a seed, answering requests as Graph would."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from m365audit.collect import GRAPH_APP_ID, RESOURCE_APPS
from m365audit.simulator import routes
from m365audit.simulator.shapes import (
    COPILOT_PLANS,
    COPILOT_PLATFORM_APP_ID,
    COPILOT_SKU,
    E5_PLANS,
    E5_SKU,
    GRAPH_SCOPES,
    HARMLESS_ROLES,
    INTUNE_SETTINGS,
    MICROSOFT_TENANT,
    RESOURCE_ROLES,
    USAGE_HEADER,
    Collection,
    Reply,
    TenantSpec,
    error_body,
    guid,
    page_offset,
    page_token,
)


class SimTenant:
    """The tenant of a spec, and the Graph routes that serve it (pure: no sockets, no sleeping)."""

    def __init__(self, spec: TenantSpec) -> None:
        self.spec = spec
        s = spec.seed
        self.tenant_id = guid(s, "tenant")
        self.n_copilot = min(spec.copilot_users, spec.users)
        self._stride = spec.users // self.n_copilot if self.n_copilot else 0
        self.resource_ids = {app: guid(s, "resource", app) for app in RESOURCE_APPS}
        self.n_sp = max(spec.service_principals, len(RESOURCE_APPS))
        self.policy_ids = [guid(s, "intune", i) for i in range(spec.intune_policies)]
        self._queries: dict[str, int] = {}
        self._created: dict[str, float] = {}  # audit query id -> time.monotonic() of its creation
        self._query_types: dict[str, list[str]] = {}
        self.team_index = {self.team_id(k): k for k in range(spec.teams)}
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, ...], bytes] = {}
        self.collections: dict[str, Collection] = {
            "/v1.0/organization": Collection("organization", 1, self._organization),
            "/v1.0/subscribedskus": Collection("subscribedSkus", 2 if self.n_copilot else 1, self._sku),
            "/v1.0/users": Collection("users", spec.users, self.user,
                                      default_fields=frozenset({"id", "displayName", "userPrincipalName"})),
            "/v1.0/serviceprincipals": Collection("servicePrincipals", self.n_sp, self.service_principal),
            "/v1.0/serviceprincipals/microsoft.graph.agentidentity": Collection(
                "servicePrincipals/microsoft.graph.agentIdentity", spec.agent_identities, self._agent, 100,
                100),
            "/v1.0/oauth2permissiongrants": Collection("oauth2PermissionGrants", spec.grants, self._grant),
            "/v1.0/identity/conditionalaccess/policies": Collection(
                "identity/conditionalAccess/policies", 1, self._ca_policy),
            "/v1.0/external/connections": Collection("external/connections", 1, self._connection),
            "/v1.0/copilot/admin/catalog/packages": Collection("copilot/admin/catalog/packages", 2,
                                                               self._package),
            "/beta/devicemanagement/configurationpolicies": Collection(
                "deviceManagement/configurationPolicies", spec.intune_policies, self._intune_policy),
        }
        routes.add_collections(self)
        for app, sp_id in self.resource_ids.items():
            n = spec.app_role_assignments if app == GRAPH_APP_ID else 0
            self.collections[f"/v1.0/serviceprincipals/{sp_id}/approleassignedto"] = Collection(
                f"servicePrincipals('{sp_id}')/appRoleAssignedTo", n, self._assignment)
        for i, pid in enumerate(self.policy_ids):
            self.collections[f"/beta/devicemanagement/configurationpolicies/{pid}/assignments"] = Collection(
                f"deviceManagement/configurationPolicies('{pid}')/assignments",
                1 if i < len(INTUNE_SETTINGS) else 0,
                partial(self._intune_assignment, i))
        self.objects: dict[str, Callable[[], dict[str, Any]]] = {
            "/v1.0/policies/authorizationpolicy": self._authorization_policy,
            "/v1.0/policies/adminconsentrequestpolicy": self._admin_consent_policy,
            "/v1.0/teamwork/teamsappsettings": self._teams_app_settings,
        }
        for app in RESOURCE_APPS:
            self.objects[f"/v1.0/serviceprincipals(appid='{app}')"] = partial(self.resource_sp, app)

    # ------------------------------------------------------------------ the directory

    def is_copilot_user(self, i: int) -> bool:
        return bool(self._stride) and i % self._stride == 0 and i // self._stride < self.n_copilot

    def team_id(self, k: int) -> str:
        return guid(self.spec.seed, "team", k)

    def user_id(self, i: int) -> str:
        return guid(self.spec.seed, "user", i)

    def user(self, i: int) -> dict[str, Any]:
        plans = E5_PLANS + COPILOT_PLANS if self.is_copilot_user(i) else E5_PLANS
        licences = [{"skuId": E5_SKU[0], "disabledPlans": []}]
        if self.is_copilot_user(i):
            licences.append({"skuId": COPILOT_SKU[0], "disabledPlans": []})
        return {"id": self.user_id(i), "userPrincipalName": f"medewerker{i:06d}@voorbeeld.nl",
                "displayName": f"Medewerker {i:06d}", "accountEnabled": i % 40 != 7,
                "userType": "Guest" if i % 97 == 5 else "Member", "assignedLicenses": licences,
                "assignedPlans": [{"assignedDateTime": "2026-03-02T09:14:11Z", "capabilityStatus": "Enabled",
                                   "service": svc, "servicePlanId": pid} for pid, _, svc in plans]}

    def _sku(self, k: int) -> dict[str, Any]:
        (sku_id, part), plans, units = ((E5_SKU, E5_PLANS, self.spec.users + 10) if k == 0
                                        else (COPILOT_SKU, COPILOT_PLANS, self.n_copilot))
        return {"accountId": self.tenant_id, "accountName": self.spec.tenant_name, "appliesTo": "User",
                "capabilityStatus": "Enabled", "consumedUnits": units - 10 if k == 0 else units,
                "id": f"{self.tenant_id}_{sku_id}", "skuId": sku_id, "skuPartNumber": part,
                "subscriptionIds": [guid(self.spec.seed, "subscription", k)],
                "prepaidUnits": {"enabled": units, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": [{"servicePlanId": p, "servicePlanName": n, "provisioningStatus": "Success",
                                  "appliesTo": "User"} for p, n, _ in plans]}

    def _organization(self, k: int) -> dict[str, Any]:
        return {"id": self.tenant_id, "displayName": self.spec.tenant_name, "countryLetterCode": "NL",
                "tenantType": "AAD", "verifiedDomains": [{"name": "voorbeeld.nl", "type": "Managed",
                                                          "isDefault": True, "isInitial": False}]}

    def sp_id(self, i: int) -> str:
        apps = list(RESOURCE_APPS)
        return self.resource_ids[apps[i]] if i < len(apps) else guid(self.spec.seed, "sp", i)

    def service_principal(self, i: int) -> dict[str, Any]:
        apps = list(RESOURCE_APPS)
        ms = i < len(apps)
        return {"id": self.sp_id(i), "appId": apps[i] if ms else guid(self.spec.seed, "app", i),
                "displayName": RESOURCE_APPS[apps[i]] if ms else f"Voorbeeld Zaakapplicatie {i:05d}",
                "appOwnerOrganizationId": MICROSOFT_TENANT if ms else guid(self.spec.seed, "owner", i % 50),
                "accountEnabled": True, "servicePrincipalType": "Application",
                "tags": [] if ms else ["WindowsAzureActiveDirectoryIntegratedApp"],
                "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None,
                                      "addedDateTime": None}}

    def resource_sp(self, app: str) -> dict[str, Any]:
        roles = [{"allowedMemberTypes": ["Application"], "description": v, "displayName": v, "id": r,
                  "isEnabled": True, "origin": "Application", "value": v} for r, v in RESOURCE_ROLES[app]]
        scopes = [{"adminConsentDescription": v, "adminConsentDisplayName": v, "id": r, "isEnabled": True,
                   "type": "User", "userConsentDescription": v, "userConsentDisplayName": v, "value": v}
                  for r, v in (GRAPH_SCOPES if app == GRAPH_APP_ID else ())]
        return {"id": self.resource_ids[app], "appId": app, "displayName": RESOURCE_APPS[app],
                "appRoles": roles, "oauth2PermissionScopes": scopes}

    def _third_party(self, k: int) -> int:
        others = self.n_sp - len(RESOURCE_APPS)
        return len(RESOURCE_APPS) + k % others if others else 0

    def _grant(self, k: int) -> dict[str, Any]:
        everyone = k % 10 == 0 or not self.spec.users
        return {"id": base64.urlsafe_b64encode(bytes.fromhex(guid(self.spec.seed, "grant", k).replace("-",
                                                                                                      "")))
                .decode().rstrip("="), "clientId": self.sp_id(self._third_party(k)),
                "consentType": "AllPrincipals" if everyone else "Principal",
                "principalId": None if everyone else self.user_id(k % self.spec.users),
                "resourceId": self.resource_ids[GRAPH_APP_ID],
                "scope": "openid profile offline_access User.Read"}

    def _assignment(self, k: int) -> dict[str, Any]:
        principal = self._third_party(k)
        return {"id": guid(self.spec.seed, "assignment", k), "createdDateTime": "2025-06-01T10:00:00Z",
                "appRoleId": HARMLESS_ROLES[k % len(HARMLESS_ROLES)][0],
                "principalDisplayName": f"Voorbeeld Zaakapplicatie {principal:05d}",
                "principalId": self.sp_id(principal), "principalType": "ServicePrincipal",
                "resourceDisplayName": "Microsoft Graph", "resourceId": self.resource_ids[GRAPH_APP_ID]}

    def _agent(self, k: int) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.agentIdentity", "id": guid(self.spec.seed, "agent", k),
                "displayName": f"Voorbeeld agent {k:04d}", "accountEnabled": False,
                "servicePrincipalType": "ServiceIdentity"}

    # ------------------------------------------------------------------ policies and settings

    def _authorization_policy(self) -> dict[str, Any]:
        low = "ManagePermissionGrantsForSelf.microsoft-user-default-low"
        return {"id": "authorizationPolicy", "displayName": "Authorization Policy",
                "allowUserConsentForRiskyApps": False,
                "defaultUserRolePermissions": {"allowedToCreateApps": False,
                                               "permissionGrantPoliciesAssigned": [low]}}

    def _admin_consent_policy(self) -> dict[str, Any]:
        return {"isEnabled": True, "notifyReviewers": True, "remindersEnabled": True,
                "requestDurationInDays": 30,
                "version": 1, "reviewers": [{"query": f"/users/{self.user_id(0)}",
                                             "queryType": "MicrosoftGraph",
                                             "queryRoot": None}]}

    def _teams_app_settings(self) -> dict[str, Any]:
        return {"id": "teamsAppSettings", "allowUserRequestsForAppAccess": False,
                "isUserPersonalScopeResourceSpecificConsentEnabled": False,
                "isChatResourceSpecificConsentEnabled": False}

    def _ca_policy(self, k: int) -> dict[str, Any]:
        return {"id": guid(self.spec.seed, "ca", k), "displayName": "BLOCK - Generatieve AI - Copilot",
                "state": "enabled", "createdDateTime": "2026-05-12T08:01:22Z", "templateId": None,
                "conditions": {"clientAppTypes": ["all"], "applications": {
                    "includeApplications": [COPILOT_PLATFORM_APP_ID], "excludeApplications": []},
                    "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [],
                              "excludeGroups": [],
                              "includeRoles": [], "excludeRoles": []}},
                "grantControls": {"operator": "OR", "builtInControls": ["block"],
                                  "customAuthenticationFactors": [],
                                  "termsOfUse": [], "authenticationStrength": None}, "sessionControls": None}

    def _connection(self, k: int) -> dict[str, Any]:
        return {"id": "zaaksysteem", "name": "Zaaksysteem (voorbeeld)", "description": "Nog niet in gebruik",
                "state": "draft", "configuration": {"authorizedAppIds": []}}

    def _package(self, k: int) -> dict[str, Any]:
        return {"id": f"P_{guid(self.spec.seed, 'package', k)}", "displayName": f"Microsoft-app {k}",
                "type": "microsoft", "isBlocked": False, "supportedHosts": ["Copilot"], "availableTo": "all",
                "deployedTo": "none", "publisher": "Microsoft", "elementTypes": ["declarativeAgent"],
                "lastModifiedDateTime": "2026-01-06T00:07:20Z"}

    def _intune_policy(self, k: int) -> dict[str, Any]:
        name, chosen = INTUNE_SETTINGS[k] if k < len(INTUNE_SETTINGS) else (
            f"Ongebruikt profiel {k}", (("device_vendor_msft_policy_config_experience_allowcortana", "0"),))
        return {"id": self.policy_ids[k], "name": name, "description": "", "platforms": "windows10",
                "technologies": "mdm", "settingCount": len(chosen), "isAssigned": k < len(INTUNE_SETTINGS),
                "settings": [{"id": str(n), "settingInstance": {
                    "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                    "settingDefinitionId": setting, "choiceSettingValue": {
                        "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingValue",
                        "value": f"{setting}_{value}", "children": []}}} for n, (setting, value) in enumerate(chosen)]}

    def _intune_assignment(self, k: int, _: int) -> dict[str, Any]:
        target = "allLicensedUsersAssignmentTarget" if k == 0 else "allDevicesAssignmentTarget"
        return {"id": f"{self.policy_ids[k]}_all", "source": "direct", "sourceId": self.policy_ids[k],
                "target": {"@odata.type": f"#microsoft.graph.{target}",
                           "deviceAndAppManagementAssignmentFilterId": None,
                           "deviceAndAppManagementAssignmentFilterType": "none"}}

    # ------------------------------------------------------------------ evidence of use

    def usage_csv(self) -> str:
        rows = [f"2026-11-27,medewerker{i:06d}@voorbeeld.nl,Medewerker {i:06d},2026-11-25,2026-11-25"
                f",,,,,,,,30"
                for i in range(self.spec.users) if self.is_copilot_user(i)]
        return "\ufeff" + "\r\n".join([USAGE_HEADER, *rows]) + "\r\n"

    def n_audit_records(self) -> int:
        return self.n_copilot if self.spec.audit_records is None else self.spec.audit_records

    def _record(self, k: int) -> dict[str, Any]:
        upn = f"medewerker{(k * (self._stride or 1)) % max(self.spec.users, 1):06d}@voorbeeld.nl"
        return {"@odata.type": "#microsoft.graph.security.auditLogRecord", "id": guid(self.spec.seed,
                                                                                      "record", k),
                "createdDateTime": "2026-11-26T17:12:36Z", "auditLogRecordType": "CopilotInteraction",
                "operation": "CopilotInteraction", "organizationId": self.tenant_id, "userType": "Regular",
                "userId": upn, "userPrincipalName": upn, "service": "Copilot", "objectId": None,
                "clientIp": "::ffff:10.11.0.229", "administrativeUnits": [],
                "auditData": {"@odata.type": "#microsoft.graph.security.copilotInteractionAuditRecord",
                              "RecordType": 261, "Workload": "Copilot",
                              "CopilotEventData": {"AppHost": "bizchat", "AccessedResources": []}}}

    # ------------------------------------------------------------------ answering requests

    def answer(self, method: str, path: str, query: str, body: bytes, base: str, *,
               audit_polls: int = 0, page_cap: int | None = None, request_id: str = "",
               audit_seconds: float = 0.0) -> Reply:
        """Answer one request as Graph would; ``base`` is the scheme and host put into next links.

        ``audit_seconds`` > 0: an audit query runs that long after its creation (``audit_polls`` is then unused).
        """
        path = unquote(path)
        low = path.lower().rstrip("/")
        params = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
        if low.startswith("/v1.0/security/auditlog/queries"):
            return self._audit(method, low, params, body, base, audit_polls, request_id, page_cap, audit_seconds)
        if method != "GET":
            return Reply(405, error_body("Request_BadRequest", f"{method} is not supported here", request_id))
        if low in self.objects:
            _, version, rest = path.rstrip("/").split("/", 2)
            context = f"{base}/{version}/$metadata#{rest}/$entity"
            return Reply(200, json.dumps({"@odata.context": context, **self.objects[low]()}).encode())
        if low.startswith("/v1.0/copilot/reports/getmicrosoft365copilotusageuserdetail"):
            return Reply(200, self.usage_csv().encode(), "application/octet-stream")
        routed = routes.answer(self, low, path, params, base, request_id, page_cap)
        if routed is not None:
            return routed
        if low in self.collections:
            return self.page(self.collections[low], path, params, base, request_id, page_cap)
        return Reply(404, error_body("Request_ResourceNotFound", f"Resource '{path}' does not exist.",
                                     request_id))

    def page(self, coll: Collection, path: str, params: dict[str, str], base: str, request_id: str,
             cap: int | None = None) -> Reply:
        """One page of a collection: honours $top (within the endpoint's limit), $select and $skiptoken."""
        top_text = params.get("$top")
        if top_text is not None and not (top_text.isdigit() and 1 <= int(top_text) <= coll.max_top):
            return Reply(400, error_body("Request_BadRequest",
                                         f"Invalid page size specified: '{top_text}'. Must be "
                                         f"between 1 and {coll.max_top} inclusive.", request_id))
        top = int(top_text) if top_text else coll.default_top
        top = min(top, cap) if cap else top
        offset = page_offset(params["$skiptoken"]) if "$skiptoken" in params else 0
        if offset is None or offset > coll.count:
            return Reply(404, error_body("Directory_ExpiredPageToken",
                                         "The specified page token value has expired "
                                         "and can no longer be included in your request.", request_id))
        select = params.get("$select", "")
        key = (path.lower(), select, str(offset), str(top), base)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return Reply(200, cached, items=max(0, min(offset + top, coll.count) - offset))
        fields = frozenset(select.split(",")) | {"id"} if select else coll.default_fields
        items = [coll.item(i) for i in range(offset, min(offset + top, coll.count))]
        if fields is not None:
            items = [{k: v for k, v in it.items() if k in fields or k.startswith("@")} for it in items]
        version = path.split("/")[1]
        doc: dict[str, Any] = {"@odata.context": f"{base}/{version}/$metadata#{coll.context}", "value": items}
        if offset + top < coll.count:
            rest = "&".join(f"{k}={quote(v, safe='$,()=')}" for k, v in params.items() if k != "$skiptoken")
            rest = rest + "&" if rest else ""
            doc["@odata.nextLink"] = f"{base}{path}?{rest}$skiptoken={page_token(offset + top)}"
        data = json.dumps(doc, separators=(",", ":")).encode()
        with self._lock:
            self._cache[key] = data
        return Reply(200, data, items=len(items))

    def _audit(self, method: str, low: str, params: dict[str, str], body: bytes, base: str, polls: int,
               request_id: str, page_cap: int | None, seconds: float = 0.0) -> Reply:
        parts = low.split("/")  # ['', 'v1.0', 'security', 'auditlog', 'queries', id?, 'records'?]
        if method == "POST" and len(parts) == 5:
            try:
                req = json.loads(body)
            except ValueError:
                req = None
            if not isinstance(req, dict) or not req.get("recordTypeFilters"):
                return Reply(400, error_body("BadRequest", "The audit query needs recordTypeFilters.",
                                             request_id))
            with self._lock:
                qid = guid(self.spec.seed, "auditquery", len(self._queries))
                self._queries[qid] = 0
                self._created[qid] = time.monotonic()
                self._query_types[qid] = [str(t).lower() for t in req["recordTypeFilters"]]
            doc = {**req, "id": qid, "status": "succeeded" if polls < 0 and not seconds else "notStarted"}
            return Reply(201,
                         json.dumps({"@odata.context": f"{base}/v1.0/$metadata#security/auditLog/queries/"
                                          "$entity", **doc}).encode())
        qid = parts[5] if len(parts) > 5 else ""
        if method != "GET" or qid not in self._queries:
            return Reply(404, error_body("NotFound", f"Audit log query '{qid}' was not found.", request_id))
        if len(parts) == 6:
            with self._lock:
                self._queries[qid] += 1
                done = time.monotonic() - self._created[qid] >= seconds if seconds > 0 else self._queries[qid] > polls
            return Reply(200, json.dumps({"id": qid, "status": "succeeded" if done else "running"}).encode())
        if len(parts) == 7 and parts[6] == "records":
            coll = Collection(f"security/auditLog/queries('{qid}')/records", self.n_audit_records(),
                              self._record)
            if self._query_types.get(qid) == [routes.LIVENESS_TYPE]:
                coll = Collection(coll.context, self.spec.sign_in_records, partial(routes.sign_in_record, self))
            return self.page(coll, f"/v1.0/security/auditLog/queries/{qid}/records", params, base, request_id,
                             page_cap)
        return Reply(404, error_body("NotFound", f"Resource '{low}' does not exist.", request_id))

    def minimum_requests(self, audit_polls: int = 0) -> dict[str, int]:
        """Per source, the fewest requests a client can make: every page at the endpoint's maximum size."""
        def pages(coll: Collection) -> int:
            return max(1, -(-coll.count // coll.max_top))
        c = self.collections
        rec = Collection("records", self.n_audit_records(), self._record)
        return {
            "organization": pages(c["/v1.0/organization"]),
            "subscribed_skus": pages(c["/v1.0/subscribedskus"]),
            "users": pages(c["/v1.0/users"]), "service_principals": pages(c["/v1.0/serviceprincipals"]),
            "resource_permissions": len(RESOURCE_APPS),
            "delegated_grants": pages(c["/v1.0/oauth2permissiongrants"]),
            "app_role_assignments": sum(pages(c[f"/v1.0/serviceprincipals/{i}/approleassignedto"])
                                        for i in self.resource_ids.values()),
            "authorization_policy": 1, "admin_consent_policy": 1, "teams_app_settings": 1,
            "conditional_access": 1, "external_connections": 1, "copilot_packages": 1,
            "agent_identities": pages(c["/v1.0/serviceprincipals/microsoft.graph.agentidentity"]),
            "copilot_usage": 1, "audit_ai_interactions": 2 + 2 * max(audit_polls + 1, 0) + pages(rec) + 1,
            "intune_policies": pages(c["/beta/devicemanagement/configurationpolicies"])
            + len(self.policy_ids),
            **routes.minimum_requests(self),
        }
