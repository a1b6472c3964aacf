"""Least-privilege Graph application permissions: what the rules need, manifest and az CLI forms, and the preflight."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from m365audit.collect.collector import with_dependencies
from m365audit.collect.fetching import GRAPH_APP_ID
from m365audit.collect.sources import SOURCES, app_only
from m365audit.models import PolicyPack, SourceError

APP_ROLE_IDS: dict[str, str] = {
    # Microsoft Graph application role ids (appRoles[].id of the Graph service principal).
    # Source: merill/microsoft-info _info/GraphAppRoles.csv (graph-surface.md key MI) unless noted.
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    # Learn names LicenseAssignment.Read.All least privilege for GET /subscribedSkus; Organization.Read.All
    # (what earlier installs granted) is still accepted for it (SOURCES lists both).
    "LicenseAssignment.Read.All": "e2f98668-2877-4f38-a2f4-8202e0717aa1",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "DelegatedPermissionGrant.Read.All": "81b4724a-58aa-41c1-8a55-84ef97466587",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "TeamworkAppSettings.Read.All": "475ebe88-f071-4bd7-af2b-642952bd4986",  # graph-surface.md §4
    "ExternalConnection.Read.All": "1914711b-a1cb-4793-b019-c2ce0ed21b8c",
    "CopilotPackages.Read.All": "72f0655d-6228-4ddc-8e1b-164973b9213b",  # graph-surface.md §7.1
    "AgentIdentity.Read.All": "b2b8f011-2898-4234-9092-5059f6c1ebfa",  # Graph permissions reference
    "Reports.Read.All": "230c1aed-a721-4c5d-9cb4-a90514e508ef",
    "AuditLogsQuery.Read.All": "5e1e9171-754d-478c-812c-f1755a9a4c2d",
    "DeviceManagementConfiguration.Read.All": "dc377aa6-52d8-4e23-b271-2a7ae04cedf3",
    # issue 14 routes; ids from MI GraphAppRoles.csv 2026-08-20 (notes/issue14-facts.md §12)
    "AppCatalog.Read.All": "e12dae10-5a57-4817-b79d-dfbec5348930",
    "AgentIdentityBlueprint.Read.All": "7547a7d1-36fa-4479-9c31-559a600eaa4f",
    "AgentIdentityBlueprintPrincipal.Read.All": "9361dea9-4524-493d-941d-f1b65aaf6c7c",
    "Team.ReadBasic.All": "2280dda6-0bfd-44ee-a2f4-cb867cfc4c1e",
    "ResourceSpecificPermissionGrant.ReadForTeam.All": "ad4600ae-d900-42cb-a9a2-2415d05593d0",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    # accepted alternative for teams_rsc_grants (Learn's team-list-permissiongrants page); id from third-party
    # code that lists the Graph appRoles (exact-string search, 2026-12), not from MI
    "TeamsAppInstallation.ReadForTeam.All": "1f615aea-6bf9-4b05-84bd-46388e138537",
}

UNPUBLISHED_ROLE_IDS: dict[str, str] = {
    # Least-privilege permissions whose app-role id no published list holds yet: granted by name, never guessed.
    "CopilotCostManagement-Reports.Read.All": "not in the Graph service principal export of 2026-08-20 "
                                              "(the cost-management API is newer); grant it by name in the "
                                              "Entra admin center > App registrations > API permissions",
}

_DIRECTORY = ("Directory.Read.All", "Directory.ReadWrite.All")

ALSO_SATISFIED_BY: dict[str, tuple[str, ...]] = {
    # Broader application permissions that include the least-privileged one for every source that
    # asks for it (Graph permission pages, "higher privileged permissions"). Accepting one wrongly
    # costs nothing: Graph then answers 403 and the source is an error anyway; refusing wrongly would
    # hide evidence, so when in doubt a broader grant is listed here.
    "Organization.Read.All": ("Organization.ReadWrite.All", *_DIRECTORY),
    "LicenseAssignment.Read.All": ("LicenseAssignment.ReadWrite.All", *_DIRECTORY),
    "User.Read.All": ("User.ReadWrite.All", *_DIRECTORY),
    "Application.Read.All": ("Application.ReadWrite.All", *_DIRECTORY),
    "DelegatedPermissionGrant.Read.All": ("DelegatedPermissionGrant.ReadWrite.All", *_DIRECTORY),
    "TeamworkAppSettings.Read.All": ("TeamworkAppSettings.ReadWrite.All",),
    "ExternalConnection.Read.All": ("ExternalConnection.ReadWrite.All",),
    "CopilotPackages.Read.All": ("CopilotPackages.ReadWrite.All",),
    "AgentIdentity.Read.All": ("AgentIdentity.ReadWrite.All",),
    "DeviceManagementConfiguration.Read.All": ("DeviceManagementConfiguration.ReadWrite.All",),
    "AppCatalog.Read.All": ("AppCatalog.ReadWrite.All",),
    "ResourceSpecificPermissionGrant.ReadForTeam.All": ("TeamsAppInstallation.ReadForTeam.All",
                                                        "TeamsAppInstallation.ReadWriteForTeam.All"),
    "AgentIdentityBlueprint.Read.All": ("AgentIdentityBlueprint.ReadWrite.All",),
    "AgentIdentityBlueprintPrincipal.Read.All": ("AgentIdentityBlueprintPrincipal.ReadWrite.All",),
    "Team.ReadBasic.All": ("TeamSettings.Read.All", "TeamSettings.ReadWrite.All", *_DIRECTORY),
    "AuditLog.Read.All": _DIRECTORY,
    "CopilotCostManagement-Reports.Read.All": ("CopilotCostManagement.Read.All",),
}

SOURCE_ALSO_SATISFIED_BY: dict[str, tuple[str, ...]] = {
    # Narrower or write permissions that cover one source only (Policy.ReadWrite.X reads policy X).
    "conditional_access": ("Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"),
    "authorization_policy": ("Policy.ReadWrite.Authorization",),
    "admin_consent_policy": ("Policy.ReadWrite.ConsentRequest",),
    "app_role_assignments": ("AppRoleAssignment.ReadWrite.All",),
}


@dataclass(frozen=True)
class Requirement:
    """One application permission the enabled rules need, and why."""

    permission: str
    role_id: str | None
    sources: tuple[str, ...]
    rules: tuple[str, ...]


def rule_sources(pack: PolicyPack) -> dict[str, list[str]]:
    """Source key -> the rules that read it (organization is always read: the tenant's name and id)."""
    by_source: dict[str, list[str]] = {"organization": []}
    for rule in pack.rules:
        for key in with_dependencies(rule.sources):
            by_source.setdefault(key, []).append(rule.id)
    return by_source


def requirements(pack: PolicyPack) -> list[Requirement]:
    """The least-privilege application permissions of the pack's sources, in SOURCES order."""
    by_source = rule_sources(pack)
    perms: dict[str, tuple[list[str], list[str]]] = {}
    for key in app_only(with_dependencies(by_source)):
        for perm in SOURCES[key].permissions[:1]:
            sources, rules = perms.setdefault(perm, ([], []))
            sources.append(key)
            rules.extend(r for r in by_source.get(key, []) if r not in rules)
    return [Requirement(p, APP_ROLE_IDS.get(p), tuple(s), tuple(r)) for p, (s, r) in perms.items()]


def accepted_roles(source_key: str) -> set[str]:
    """Every application role that lets the token read this source."""
    accepted: set[str] = set(SOURCE_ALSO_SATISFIED_BY.get(source_key, ()))
    for perm in SOURCES[source_key].permissions:
        accepted.add(perm)
        accepted.update(ALSO_SATISFIED_BY.get(perm, ()))
    return accepted


def preflight(keys: Iterable[str], roles: list[str] | None) -> dict[str, SourceError]:
    """Sources the token cannot read, as errors naming the permission to grant; {} when roles are unknown.

    A token that is not a JWT (replay placeholder) or has no roles claim (delegated sign-in, or an app
    without any grant) gives no basis to refuse anything: Graph's own 403s then tell the story.
    """
    if not roles:
        return {}
    held = set(roles)
    refused: dict[str, SourceError] = {}
    for key in with_dependencies(keys):
        source = SOURCES[key]
        if held & accepted_roles(key):
            continue
        need = source.permissions[0]
        refused[key] = SourceError(
            message=f"not read: the token lacks the application permission {need} (checked before calling Graph)",
            code="PermissionMissing",
            hint=f"grant the application permission {need} to the audit app and give admin consent "
                 f"(`m365audit permissions` lists all of them with az CLI commands)")
    return refused


def preflight_summary(keys: Iterable[str], roles: list[str] | None, refused: dict[str, SourceError]) -> str:
    """The one line printed at the start of a live audit."""
    total = len(with_dependencies(keys))
    if not roles:
        return f"Preflight: token has no application roles claim; {total} sources will be tried as they are"
    if not refused:
        return f"Preflight: all {total} sources are covered by the token's {len(roles)} application roles"
    missing = sorted({SOURCES[k].permissions[0] for k in refused})
    return (f"Preflight: {len(refused)} of {total} sources refused before calling Graph; grant "
            + ", ".join(missing))


def manifest_fragment(reqs: list[Requirement]) -> dict[str, object]:
    """The app manifest's requiredResourceAccess entry for Microsoft Graph (application roles)."""
    return {"requiredResourceAccess": [{
        "resourceAppId": GRAPH_APP_ID,
        "resourceAccess": [{"id": r.role_id, "type": "Role"} for r in reqs if r.role_id],
    }]}


def az_commands(reqs: list[Requirement], app_id: str = "$APP_ID") -> list[str]:
    """Azure CLI commands that add the permissions to the app registration and grant admin consent."""
    pairs = " ".join(f"{r.role_id}=Role" for r in reqs if r.role_id)
    return [
        f"az ad app permission add --id {app_id} --api {GRAPH_APP_ID} --api-permissions {pairs}",
        f"az ad app permission admin-consent --id {app_id}",
    ]


def az_managed_identity_commands(reqs: list[Requirement], principal_id: str = "$MI_ID") -> list[str]:
    """For a managed identity (no app registration to add permissions to): one app-role assignment per role."""
    lines = [f"GRAPH_SP=$(az ad sp show --id {GRAPH_APP_ID} --query id -o tsv)"]
    for r in reqs:
        if not r.role_id:
            lines.append(f"# {r.permission}: app-role id unknown, "
                         f"{UNPUBLISHED_ROLE_IDS.get(r.permission, 'grant it by name')}")
        if r.role_id:
            body = f'{{\\"principalId\\":\\"{principal_id}\\",\\"resourceId\\":\\"$GRAPH_SP\\",' \
                   f'\\"appRoleId\\":\\"{r.role_id}\\"}}'
            lines.append(f"az rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/"
                         f'{principal_id}/appRoleAssignments --headers Content-Type=application/json --body "{body}"'
                         f"  # {r.permission}")
    return lines


def table(reqs: list[Requirement]) -> list[str]:
    """Plain-text table rows: permission, role id, sources, also satisfied by."""
    rows = [("permission", "app role id", "sources", "also satisfied by")]
    for r in reqs:
        rows.append((r.permission, r.role_id or "(unknown)", ",".join(r.sources),
                     ", ".join(ALSO_SATISFIED_BY.get(r.permission, ())) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
