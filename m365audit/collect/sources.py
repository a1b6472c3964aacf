"""The SOURCES table: every Graph source the audit reads, with URL, paging and least-privilege permission."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from m365audit.collect import routes
from m365audit.collect.fetching import (
    GRAPH_APP_ID,
    RESOURCE_APPS,
    FetchContext,
    Fetched,
    GraphReader,
    Source,
    SourceFailure,
)

# --------------------------------------------------------------------------- fetchers


def _resource_sp_url(app_id: str) -> str:
    return f"/v1.0/servicePrincipals(appId='{app_id}')?$select=id,appId,displayName,appRoles,oauth2PermissionScopes"


async def fetch_resource_permissions(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """The Graph, SharePoint and Exchange service principals, to turn role and scope ids into names."""
    resources = await asyncio.gather(*(graph.get_object(_resource_sp_url(a)) for a in RESOURCE_APPS))
    return Fetched([_strip_odata(r) for r in resources])


async def fetch_app_role_assignments(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """Every application role granted on the three resources (who holds Mail.Read as an app)."""
    resources = deps["resource_permissions"]
    pages = await asyncio.gather(
        *(graph.get_collection(f"/v1.0/servicePrincipals/{r['id']}/appRoleAssignedTo?$top=999") for r in resources)
    )
    return Fetched([item for page in pages for item in page])


async def fetch_copilot_usage(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """The Copilot usage report: a CSV document turned into one dict per row."""
    text = await graph.get_text(source.url)
    return Fetched(parse_csv_report(text))


def parse_csv_report(text: str) -> list[dict[str, str]]:
    """Parse a Graph CSV report (with or without a byte-order mark) into rows keyed by header."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise SourceFailure("the report is empty: not even a header row came back")
    reader = csv.DictReader(io.StringIO(text), strict=True)  # strict: a file cut inside a quoted field is an error
    try:
        if not reader.fieldnames or "User Principal Name" not in reader.fieldnames:
            raise SourceFailure(
                "the report has no 'User Principal Name' column: it is not the Copilot usage CSV",
                hint="check the report URL and that the response was not an error page",
            )
        if len(set(reader.fieldnames)) != len(reader.fieldnames):
            raise SourceFailure("the report names a column twice: which value counts is ambiguous",
                                hint="keep the run folder: the exchanges show what Graph sent")
        rows = []
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise SourceFailure(f"row {reader.line_num} of the report does not match its header (truncated?)")
            rows.append(dict(row))
    except csv.Error as exc:
        raise SourceFailure(f"the report is not valid CSV after line {reader.line_num} ({exc}; truncated?)",
                            hint="keep the run folder: the exchanges show what Graph sent") from None
    return rows


async def fetch_audit_ai_interactions(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """Purview audit query for the AI record types (every page), and a small sign-in query (page 1 only).

    The second query proves the audit log is on: silence in the first is only evidence when the log holds
    anything at all (issue 14 item 3b). Only its first page is read; the snapshot keeps ids and times.
    """
    end = ctx.now.astimezone(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=ctx.audit_lookback_days)
    body = {
        "@odata.type": "#microsoft.graph.security.auditLogQuery",
        "displayName": f"m365audit-ai-{end:%Y%m%dT%H%M%SZ}",
        "filterStartDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "filterEndDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recordTypeFilters": list(ctx.audit_record_types),
    }
    query_id, status = await _create_query(graph, source.url, body)
    live_body = routes.liveness_body(ctx)
    live_id, live_status = await _create_query(graph, source.url, live_body)  # after the first: replay order
    if live_id == query_id:
        raise SourceFailure("the liveness query got the id of the AI query: not a second query")
    meta: dict[str, Any] = {"query_id": query_id, "window_start": body["filterStartDateTime"],
                            "window_end": body["filterEndDateTime"], "record_types": list(ctx.audit_record_types),
                            "lookback_days": ctx.audit_lookback_days}
    status, live_status = await asyncio.gather(_wait(graph, ctx, query_id, status),
                                               _wait(graph, ctx, live_id, live_status))
    records = await graph.get_collection(f"/v1.0/security/auditLog/queries/{query_id}/records")
    first_page = await routes.first_records(graph, f"/v1.0/security/auditLog/queries/{live_id}/records")
    meta["status"] = status
    meta["liveness"] = routes.liveness_meta(live_id, live_body, first_page)
    return Fetched(records, meta)


async def _create_query(graph: GraphReader, url: str, body: dict[str, Any]) -> tuple[str, Any]:
    query = await graph.post_object(url, body)
    query_id = query.get("id")
    if not isinstance(query_id, str) or not query_id:
        raise SourceFailure("the audit query was not created: the response has no id")
    asked = query.get("recordTypeFilters")
    if isinstance(asked, list) and [str(t).lower() for t in asked] != [t.lower() for t in body["recordTypeFilters"]]:
        raise SourceFailure(f"audit query {query_id} is not the query that was sent (other record types)")
    return query_id, query.get("status")


async def _wait(graph: GraphReader, ctx: FetchContext, query_id: str, status: Any) -> Any:
    """Poll one audit query until it succeeded; failed, cancelled or too slow is a SourceFailure."""
    polls = 0
    while status != "succeeded":
        if status in ("failed", "cancelled"):
            raise SourceFailure(f"audit query {query_id} ended '{status}'", hint="run the audit again")
        if polls >= ctx.audit_max_polls:
            raise SourceFailure(
                f"audit query {query_id} did not finish within {ctx.audit_poll_seconds:g} s (last status "
                f"'{status}')",
                hint="raise --audit-wait; Purview audit searches can take several minutes",
            )
        await ctx.sleep(ctx.audit_poll_interval)
        polls += 1
        status = (await graph.get_object(f"/v1.0/security/auditLog/queries/{query_id}")).get("status")
    return status


async def fetch_intune_policies(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """Settings-catalog policies with their settings (expanded) and their assignments (one call each)."""
    policies = await graph.get_collection(source.url)
    assignments = await asyncio.gather(
        *(graph.get_collection(f"/beta/deviceManagement/configurationPolicies/{p['id']}/assignments")
          for p in policies)
    )
    return Fetched([{**p, "assignments": a} for p, a in zip(policies, assignments, strict=True)])


COPILOT_POLICY_SETTINGS = ("microsoft.copilot.allowwebsearch", "microsoft.copilot.blockaccesstoopenfiles")
"""The Copilot admin policy settings the pack reads (graph-surface.md §7.3; beta, delegated only)."""


async def fetch_copilot_policy_settings(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """The tenant-level Copilot policy settings, one GET each; values are kept raw (encodings are unconfirmed)."""
    settings = await asyncio.gather(
        *(graph.get_object(f"/beta/copilot/admin/policySettings/{sid}") for sid in COPILOT_POLICY_SETTINGS))
    for sid, setting in zip(COPILOT_POLICY_SETTINGS, settings, strict=True):
        if setting.get("id") not in (None, sid) or "value" not in setting:
            raise SourceFailure(f"policy setting {sid}: the answer is not that setting (no 'value', or another id)")
    return Fetched([{**s, "id": s.get("id") or sid} for sid, s in zip(COPILOT_POLICY_SETTINGS, settings, strict=True)])


def _strip_odata(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("@odata.")}


# --------------------------------------------------------------------------- the table

_USER_FIELDS = "id,userPrincipalName,displayName,accountEnabled,userType,assignedLicenses,assignedPlans"
_SP_FIELDS = "id,appId,displayName,appOwnerOrganizationId,accountEnabled,servicePrincipalType,tags,verifiedPublisher"

SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("organization", "/v1.0/organization", ("Organization.Read.All",), "collection",
           "tenant name, id and verified domains"),
    Source("subscribed_skus", "/v1.0/subscribedSkus", ("LicenseAssignment.Read.All", "Organization.Read.All"),
           "collection",
           "licences the tenant has bought, with their service plans"),
    Source("users", f"/v1.0/users?$select={_USER_FIELDS}&$top=999", ("User.Read.All",), "collection",
           "users with their assigned licences and plans"),
    Source("service_principals", f"/v1.0/servicePrincipals?$select={_SP_FIELDS}&$top=999",
           ("Application.Read.All",), "collection", "every enterprise application in the tenant"),
    Source("resource_permissions", _resource_sp_url(GRAPH_APP_ID), ("Application.Read.All",), "custom",
           "names of the roles and scopes of Graph, SharePoint and Exchange",
           fetcher=fetch_resource_permissions),
    Source("delegated_grants", "/v1.0/oauth2PermissionGrants?$top=999", ("DelegatedPermissionGrant.Read.All",),
           "collection", "delegated permissions consented for all users or for one user"),
    Source("app_role_assignments", "/v1.0/servicePrincipals/{resource}/appRoleAssignedTo?$top=999",
           ("Application.Read.All",), "custom", "application permissions held on Graph, SharePoint and Exchange",
           depends_on=("resource_permissions",), fetcher=fetch_app_role_assignments),
    Source("authorization_policy", "/v1.0/policies/authorizationPolicy", ("Policy.Read.All",), "object",
           "user consent settings"),
    Source("admin_consent_policy", "/v1.0/policies/adminConsentRequestPolicy", ("Policy.Read.All",), "object",
           "the admin consent request workflow"),
    Source("teams_app_settings", "/v1.0/teamwork/teamsAppSettings", ("TeamworkAppSettings.Read.All",), "object",
           "Teams resource-specific consent settings"),
    Source("conditional_access", "/v1.0/identity/conditionalAccess/policies", ("Policy.Read.All",), "collection",
           "Conditional Access policies"),
    Source("external_connections", "/v1.0/external/connections", ("ExternalConnection.Read.All",), "collection",
           "Copilot connectors that index outside data"),
    Source("copilot_packages", "/v1.0/copilot/admin/catalog/packages", ("CopilotPackages.Read.All",),
           "collection", "agents and apps in the Copilot catalog (needs an Agent 365 licence)"),
    Source("agent_identities", "/v1.0/servicePrincipals/microsoft.graph.agentIdentity",
           ("AgentIdentity.Read.All",), "collection", "Entra agent identities"),
    Source("copilot_usage", "/v1.0/copilot/reports/getMicrosoft365CopilotUsageUserDetail(period='D30')",
           ("Reports.Read.All",), "csv", "Copilot usage per user over 30 days (CSV)",
           fetcher=fetch_copilot_usage),
    Source("audit_ai_interactions", "/v1.0/security/auditLog/queries", ("AuditLogsQuery.Read.All",), "custom",
           "Purview audit records of Copilot and AI app interactions", fetcher=fetch_audit_ai_interactions,
           long_chain=True),
    Source("teams_org_apps", "/v1.0/appCatalogs/teamsApps?$filter=distributionMethod eq 'organization'"
           "&$expand=appDefinitions", ("AppCatalog.Read.All",), "collection",
           "apps the organisation uploaded to its Teams app catalog"),
    Source("permission_classifications",
           f"/v1.0/servicePrincipals(appId='{GRAPH_APP_ID}')/delegatedPermissionClassifications",
           ("Application.Read.All",), "custom",
           "permissions the admins classified low (what users may consent to) on Graph, SharePoint, Exchange",
           fetcher=routes.fetch_permission_classifications),
    Source("microsoft_ai_apis", routes.MICROSOFT_AI_APIS_URL, ("Application.Read.All",), "custom",
           "the Work IQ API and Microsoft MCP Server for Enterprise in this tenant, with app-role assignments",
           fetcher=routes.fetch_microsoft_ai_apis),
    Source("agent_blueprints", "/v1.0/applications/microsoft.graph.agentIdentityBlueprint",
           ("AgentIdentityBlueprint.Read.All",), "collection", "Entra agent identity blueprints"),
    Source("agent_blueprint_principals", "/v1.0/servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal",
           ("AgentIdentityBlueprintPrincipal.Read.All",), "collection", "Entra agent identity blueprint principals"),
    Source("agent_users", "/v1.0/users/microsoft.graph.agentUser?$select=id,displayName,userPrincipalName,"
           "accountEnabled,identityParentId,assignedLicenses&$top=999", ("User.Read.All",), "collection",
           "Entra agent users (can hold licences and mailboxes)"),
    Source("teams", routes.TEAMS_URL, ("Team.ReadBasic.All",), "collection", "the teams (id and name only)"),
    Source("teams_rsc_grants", "/v1.0/teams/{team}/permissionGrants",
           ("ResourceSpecificPermissionGrant.ReadForTeam.All", "TeamsAppInstallation.ReadForTeam.All"), "custom",
           "resource-specific consent already granted in each team (one request per team)",
           depends_on=("teams",), fetcher=routes.fetch_teams_rsc_grants),
    Source("copilot_metered_usage", "/beta/copilot/costManagement/usageReports/serviceUsageRecords",
           ("CopilotCostManagement-Reports.Read.All",), "custom",
           "metered Copilot consumption (Copilot Credits, Work IQ) per completed day of the window",
           fetcher=routes.fetch_metered_usage),
    Source("sp_sign_in_activity", "/beta/reports/servicePrincipalSignInActivities", ("AuditLog.Read.All",),
           "collection", "last sign-in of every service principal (which apps were used)"),
    Source("intune_policies", "/beta/deviceManagement/configurationPolicies?$expand=settings",
           ("DeviceManagementConfiguration.Read.All",), "custom",
           "Intune settings-catalog policies with settings and assignments", fetcher=fetch_intune_policies),
    Source("copilot_policy_settings", f"/beta/copilot/admin/policySettings/{COPILOT_POLICY_SETTINGS[0]}",
           ("CopilotPolicySettings.Read",), "custom",
           "Copilot admin policy settings: web search, open content (delegated sign-in only)",
           fetcher=fetch_copilot_policy_settings, delegated=True),
)}


def app_only(keys: list[str]) -> list[str]:
    """The keys an application (app-only) token can read: every source but the delegated-only ones."""
    return [k for k in keys if not SOURCES[k].delegated]


def permission_hint(key: str) -> str:
    """The hint shown when a source is refused: which application permission to grant."""
    perms = " or ".join(SOURCES[key].permissions) if key in SOURCES else "the permission this source needs"
    return f"grant the application permission {perms} to the audit app and give admin consent"


def resolve_order(keys: list[str]) -> list[list[str]]:
    """Group source keys into waves so that every source runs after the sources it depends on."""
    remaining = list(keys)
    waves: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        wave = [k for k in remaining if all(d in done or d not in keys for d in SOURCES[k].depends_on)]
        if not wave:
            raise ValueError(f"circular source dependencies among {remaining}")
        waves.append(wave)
        done.update(wave)
        remaining = [k for k in remaining if k not in done]
    return waves


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: object) -> bool:
    """True for a string shaped like a GUID."""
    return isinstance(value, str) and bool(_GUID.match(value))


def delegated_answers(recorded: set[str]) -> bool:
    """Whether recorded URL paths answer a delegated-only source: then a replay is a person's (delegated) night."""
    prefixes = {urlsplit(s.url).path.rstrip("/").lower().rsplit("/", 1)[0] for s in SOURCES.values() if s.delegated}
    return any(path.rsplit("/", 1)[0] in prefixes for path in recorded)
