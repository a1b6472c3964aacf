"""What the simulator answers with: Graph hosts and ids, SKUs and plans, page tokens, error bodies, tenant specs."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from m365audit.collect import EXCHANGE_APP_ID, GRAPH_APP_ID, SHAREPOINT_APP_ID

GRAPH_HOST = "https://graph.microsoft.com"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
COPILOT_PLATFORM_APP_ID = "fb8d773d-7ef8-4ec0-a117-179f88add510"
E5_SKU = ("06ebc4ee-1bb5-47dd-8120-11324bc54e06", "SPE_E5")
COPILOT_SKU = ("639dec6b-bb19-468b-871c-c5c441c4b0cb", "Microsoft_365_Copilot")
E5_PLANS = (("efb87545-963c-4e0d-99df-69c6916d9eb0", "EXCHANGE_S_ENTERPRISE", "exchange"),
            ("5dbe027f-2339-4123-9542-606e4d348a72", "SHAREPOINTENTERPRISE", "SharePoint"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1", "TeamspaceAPI"))
COPILOT_PLANS = (("3f30311c-6b1e-48a4-ab79-725b469da960", "M365_COPILOT_BUSINESS_CHAT", "M365CopilotChat"),
                 ("a62f8878-de10-42f3-b68f-6149a25ceb97", "M365_COPILOT_APPS", "M365CopilotApps"),
                 ("b95945de-b3bd-46db-8437-f2beb6ea2347", "M365_COPILOT_TEAMS", "M365CopilotTeams"))
# app roles and scopes of the resource service principals: (id, value, reaches organisation data)
RESOURCE_ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    GRAPH_APP_ID: (("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All"),
                   ("246dd0d5-5bd0-4def-940b-0421030a5b68", "Policy.Read.All"),
                   ("5e1e9171-754d-478c-812c-f1755a9a4c2d", "AuditLogsQuery.Read.All"),
                   ("810c84a8-4a9e-49e6-bf7d-12d183f40d01", "Mail.Read"),
                   ("01d4889c-1287-42c6-ac1f-5d1e02578ef6", "Files.Read.All"),
                   ("332a536c-c7ef-4017-ab91-336970924f0d", "Sites.Read.All"),
                   ("df021288-bdef-4463-88db-98f22de89214", "User.Read.All")),
    SHAREPOINT_APP_ID: (("d13f72ca-a275-4b96-b789-48ebcc4da984", "Sites.Read.All"),),
    EXCHANGE_APP_ID: (("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app"),),
}
GRAPH_SCOPES = (("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "User.Read"),
                ("37f7f235-527c-4136-accd-4a02d197296e", "openid"),
                ("14dad69e-099b-42c9-810b-d002981feec1", "profile"),
                ("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access"),
                ("570282fd-fa5c-430d-a7fd-fc8dc98a9dca", "Mail.Read"))
HARMLESS_ROLES = RESOURCE_ROLES[GRAPH_APP_ID][:3]
USAGE_HEADER = ",".join(["Report Refresh Date", "User Principal Name", "Display Name",
                         "Last Activity Date"] + [
    f"{app} Last Activity Date" for app in ("Copilot Chat", "Microsoft Teams Copilot", "Word Copilot",
                                            "Excel Copilot", "PowerPoint Copilot", "Outlook Copilot",
                                            "OneNote Copilot", "Loop Copilot")] + ["Report Period"])
INTUNE_SETTINGS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (  # (policy name, ((setting, value), ...))
    ("Windows - Copilot uit", (("user_vendor_msft_policy_config_windowsai_turnoffwindowscopilot", "1"),)),
    ("Windows - Recall en Click to Do uit", (
        ("device_vendor_msft_policy_config_windowsai_allowrecallenablement", "0"),
        ("device_vendor_msft_policy_config_windowsai_disableclicktodo", "1"))),
    ("Edge - Copilot leest geen pagina's en browst niet", (
        ("device_vendor_msft_policy_config_microsoft_edgev130~policy~microsoft_edge_edgeentracopilotpagecontext", "0"),
        ("device_vendor_msft_policy_config_microsoft_edgev148~policy~microsoft_edge_allowbrowsingwithcopilot", "0"))),
)
JSON_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
             "charset=utf-8")
# (path prefix, source key), longest first: which source a request path belongs to
SOURCE_PATHS: tuple[tuple[str, str], ...] = tuple(sorted((
    ("/v1.0/organization", "organization"), ("/v1.0/subscribedskus", "subscribed_skus"), ("/v1.0/users",
                                                                                          "users"),
    ("/v1.0/serviceprincipals", "service_principals"), ("/v1.0/serviceprincipals(appid=",
                                                        "resource_permissions"),
    ("/v1.0/serviceprincipals/microsoft.graph.agentidentity", "agent_identities"),
    ("/v1.0/oauth2permissiongrants", "delegated_grants"),
    ("/v1.0/policies/authorizationpolicy", "authorization_policy"),
    ("/v1.0/policies/adminconsentrequestpolicy", "admin_consent_policy"),
    ("/v1.0/teamwork/teamsappsettings", "teams_app_settings"),
    ("/v1.0/identity/conditionalaccess/policies", "conditional_access"),
    ("/v1.0/external/connections", "external_connections"),
    ("/v1.0/copilot/admin/catalog/packages", "copilot_packages"), ("/v1.0/copilot/reports/", "copilot_usage"),
    ("/v1.0/security/auditlog/queries", "audit_ai_interactions"),
    ("/beta/devicemanagement/configurationpolicies", "intune_policies"),
    ("/v1.0/appcatalogs/teamsapps", "teams_org_apps"),
    ("/v1.0/applications/microsoft.graph.agentidentityblueprint", "agent_blueprints"),
    ("/v1.0/serviceprincipals/microsoft.graph.agentidentityblueprintprincipal", "agent_blueprint_principals"),
    ("/v1.0/users/microsoft.graph.agentuser", "agent_users"), ("/v1.0/teams", "teams"),
    ("/beta/copilot/costmanagement/", "copilot_metered_usage"),
    ("/beta/reports/serviceprincipalsigninactivities", "sp_sign_in_activity"),
), key=lambda p: -len(p[0])))


def source_of(path: str, query: str = "") -> str | None:
    """The SOURCES key a request (path, and query where the path is shared) belongs to; None if no source sends it."""
    low = unquote(path).lower().rstrip("/")
    if low.startswith("/v1.0/serviceprincipals/") and low.endswith("/approleassignedto"):
        return "app_role_assignments"
    if low.endswith("/delegatedpermissionclassifications"):
        return "permission_classifications"
    if low.startswith("/v1.0/teams/") and low.endswith("/permissiongrants"):
        return "teams_rsc_grants"
    if low == "/v1.0/serviceprincipals" and "appid in" in unquote(query.replace("+", " ")).lower():
        return "microsoft_ai_apis"
    return next((key for prefix, key in SOURCE_PATHS if low.startswith(prefix)), None)


def guid(seed: int, *parts: object) -> str:
    """A valid, deterministic GUID for (seed, parts)."""
    digest = hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


@dataclass(frozen=True)
class TenantSpec:
    """What to generate: sizes, and how many users hold Copilot. One spec always gives the same tenant."""

    users: int = 50
    service_principals: int = 20
    grants: int = 10
    app_role_assignments: int = 5
    agent_identities: int = 0
    copilot_users: int = 0
    audit_records: int | None = None
    intune_policies: int = 3
    teams: int = 3
    org_apps: int = 0
    agent_blueprints: int = 0
    agent_users: int = 0
    sign_in_records: int = 3
    seed: int = 1
    tenant_name: str = "Gemeente Voorbeeld"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    items: int = 0  # items in a collection page: SimConfig.item_latency_ms waits this many times longer

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Collection:
    """A paged collection whose items are made on demand: item(i) for i in range(count)."""

    context: str
    count: int
    item: Callable[[int], dict[str, Any]]
    default_top: int = 100
    max_top: int = 999
    default_fields: frozenset[str] | None = None


def error_body(code: str, message: str, request_id: str) -> bytes:
    """A Graph error document, as Graph sends it."""
    inner = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
             "client-request-id": request_id}
    return json.dumps({"error": {"code": code, "message": message, "innerError": inner}}).encode()


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{offset}".encode()).decode().rstrip("=")


def page_offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        return None
    return int(text[4:]) if text.startswith("sim:") and text[4:].isdigit() else None
