"""App checks: which apps hold permissions that reach organisation data, and whether they are approved."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_of,
    dicts_of,
    failed,
    guid_of,
    items_of,
    list_of,
    lowered,
    passed,
    plural,
    str_of,
)
from m365audit.evaluate.checks.firstparty import microsoft_owned
from m365audit.models import CheckOutcome, FindingObject

# --------------------------------------------------------------------------- apps and their access


@dataclass(frozen=True)
class _Access:
    """One permission that reaches organisation data, held by one client service principal."""

    client: str  # client service principal object id, lower-cased
    permission: str
    resource: str
    kind: str  # "application", "all users" (admin consent) or "user" (one user's consent)
    principal: str = ""


def _resources(inp: CheckInput) -> dict[str, Obj]:
    """The Graph, SharePoint and Exchange service principals, keyed by object id (lower-cased).

    Each must be a resource the permission catalog knows: a resource under another appId would make every
    permission on it count as nothing.
    """
    known = {str_of(e, "resource_app_id", "org-data-permissions").lower()
             for e in catalog_of(inp, "org-data-permissions")}
    resources = {}
    for r in items_of(inp, "resource_permissions"):
        app_id = guid_of(r, "appId", "resource service principal")
        if app_id not in known:
            raise ShapeError(f"resource service principal {r.get('displayName')!r} has appId {app_id}, which the "
                             "catalog org-data-permissions does not know: cannot tell what its permissions reach")
        resources[str_of(r, "id", "resource service principal").lower()] = r
    return resources


def _org_permissions(inp: CheckInput) -> dict[tuple[str, str, str], str]:
    """(resource appId, permission, kind), lower-cased -> the permission's name as the catalog spells it."""
    result = {}
    for entry in catalog_of(inp, "org-data-permissions"):
        app = str_of(entry, "resource_app_id", "org-data-permissions").lower()
        value = str_of(entry, "value", "org-data-permissions")
        for kind in list_of(entry, "kinds", f"org-data-permissions {value}", required=True):
            result[(app, value.lower(), lowered(kind))] = value
    return result


def _role_names(resources: Mapping[str, Obj]) -> dict[tuple[str, str], str]:
    """(resource object id, app role id), lower-cased -> the role's name, e.g. 'Mail.Read'."""
    names = {}
    for res_id, resource in resources.items():
        where = f"resource {resource.get('displayName') or resource.get('appId')}"
        for role in dicts_of(resource, "appRoles", where):
            names[(res_id, lowered(role.get("id")))] = str_of(role, "value", f"{where} app role {role.get('id')}")
    return names


def _accesses(inp: CheckInput) -> list[_Access]:
    """Every application role and delegated grant on Graph, SharePoint or Exchange that reaches org data."""
    resources = _resources(inp)
    roles = _role_names(resources)
    org = _org_permissions(inp)
    found = []
    for assignment in items_of(inp, "app_role_assignments"):
        res_id = lowered(assignment.get("resourceId"))
        resource = resources.get(res_id)
        if resource is None:
            raise ShapeError(f"app role assignment {assignment.get('id')} is on an unknown resource")
        role_id = str_of(assignment, "appRoleId", "app role assignment").lower()
        if role_id == "00000000-0000-0000-0000-000000000000":
            continue  # the default role: access to the app, no permission
        role = roles.get((res_id, role_id))
        if role is None:
            raise ShapeError(f"app role {role_id} is not defined on {resource.get('displayName')}: "
                             "cannot tell what it grants")
        name = org.get((str_of(resource, "appId", "resource service principal").lower(), role.lower(), "application"))
        if name:
            found.append(_Access(str_of(assignment, "principalId", "app role assignment").lower(), name,
                                 str(resource.get("displayName") or resource.get("appId")), "application"))
    known_sps = {str_of(sp, "id", "service principal").lower() for sp in items_of(inp, "service_principals")}
    for grant in items_of(inp, "delegated_grants"):
        resource_id = str_of(grant, "resourceId", f"delegated grant {grant.get('id')}").lower()
        resource = resources.get(resource_id)
        if resource is None:
            if resource_id not in known_sps:
                raise ShapeError(f"delegated grant {grant.get('id')} is on resource {resource_id}, which is not "
                                 "among the service principals: cannot tell which API it opens")
            continue  # a grant on some other API (often the app's own): not Graph, SharePoint or Exchange
        scope = grant.get("scope")
        consent = grant.get("consentType")
        if not isinstance(scope, str) or consent not in ("AllPrincipals", "Principal"):
            raise ShapeError(f"delegated grant {grant.get('id')} has an unexpected scope or consentType")
        kind = "all users" if consent == "AllPrincipals" else "user"
        for scope_name in scope.split():
            name = org.get((str_of(resource, "appId", "resource service principal").lower(), scope_name.lower(),
                            "delegated"))
            if name:
                found.append(_Access(str_of(grant, "clientId", "delegated grant").lower(), name,
                                     str(resource.get("displayName") or resource.get("appId")), kind,
                                     str(grant.get("principalId") or "")))
    return found


def _describe(accesses: Iterable[_Access]) -> str:
    """E.g. 'Files.Read.All (Microsoft Graph, user consent by 2 users); Mail.Read (…, application permission)'."""
    users: dict[tuple[str, str, str], set[str]] = {}
    for a in accesses:
        users.setdefault((a.permission, a.resource, a.kind), set()).add(a.principal)
    parts = []
    for (perm, res, kind), who in sorted(users.items()):
        how = {"application": "application permission", "all users": "admin consent for all users"}.get(
            kind, f"user consent by {plural(len(who), 'user', 'users')}")
        parts.append(f"{perm} ({res}, {how})")
    return "; ".join(parts)


def _service_principals(inp: CheckInput) -> dict[str, Obj]:
    return {str_of(sp, "id", "service principal").lower(): sp for sp in items_of(inp, "service_principals")}


def _client(sps: Mapping[str, Obj], client: str) -> Obj:
    sp = sps.get(client)
    if sp is None:
        raise ShapeError(f"a grant belongs to service principal {client}, which is not in service_principals")
    return sp


def _sp_object(sp: Obj, accesses: Iterable[_Access], extra: str = "") -> FindingObject:
    disabled = "; service principal disabled" if sp.get("accountEnabled") is False else ""
    return FindingObject(id=str(sp.get("appId") or sp.get("id")), name=str(sp.get("displayName") or ""),
                         detail=_describe(accesses) + extra + disabled)


def _publisher(sp: Obj) -> str:
    """The verified publisher's name; null (not verified) is Graph's 'not set', any other shape is an error."""
    verified = sp.get("verifiedPublisher")
    if verified is not None and not isinstance(verified, dict):
        raise ShapeError(f"service principal {sp.get('appId')}: verifiedPublisher is not an object")
    name = verified.get("displayName") if isinstance(verified, dict) else None
    if name is not None and not isinstance(name, str):
        raise ShapeError(f"service principal {sp.get('appId')}: verifiedPublisher.displayName is not text")
    return str(name or sp.get("publisherName") or "")


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A catalog pattern compiled once per audit, not looked up in re's cache for every service principal."""
    return re.compile(pattern, re.IGNORECASE)


def _search(pattern: str, text: str) -> bool:
    try:
        return _compiled(pattern).search(text) is not None
    except re.error as exc:
        raise ShapeError(f"catalog pattern {pattern!r} is not a valid regular expression: {exc}") from exc


def _ai_match(sp: Obj, catalog: Sequence[Obj], microsoft: Callable[[Obj], bool]) -> str | None:
    """The catalog name of the AI app this service principal is, or None (names only match third-party apps)."""
    app_id = guid_of(sp, "appId", f"service principal {sp.get('id')}")
    if not isinstance(sp.get("displayName"), str):
        raise ShapeError(f"service principal {app_id}: displayName is missing or not text: cannot match it by name")
    third_party = not microsoft(sp)  # null owner and an unknown app id: not Microsoft, so the patterns apply
    for entry in catalog:
        label = f"{entry.get('name')} ({entry.get('vendor')})"
        if entry.get("app_id") and lowered(entry["app_id"]) == app_id:
            return label
        tests = ((entry.get("name_pattern"), str(sp.get("displayName") or "")),
                 (entry.get("publisher_pattern"), _publisher(sp)))
        for pattern, text in tests:
            if third_party and isinstance(pattern, str) and text and _search(pattern, text):
                return label
    return None


def ai_apps_no_org_data_access(inp: CheckInput) -> CheckOutcome:
    """No app the AI-app catalog recognises holds a permission that reaches organisation data."""
    sps = _service_principals(inp)
    microsoft = microsoft_owned(inp)
    catalog = catalog_of(inp, "ai-apps")
    by_client: dict[str, list[_Access]] = {}
    for access in _accesses(inp):
        by_client.setdefault(access.client, []).append(access)
    ai_apps = {sid: label for sid, sp in sps.items() if (label := _ai_match(sp, catalog, microsoft))}
    objects = []
    for client, accesses in sorted(by_client.items()):
        sp = _client(sps, client)  # every grant must belong to a known service principal
        if client in ai_apps:
            objects.append(_sp_object(sp, accesses, f"; recognised as {ai_apps[client]}"))
    if objects:
        return failed(
            f"{plural(len(objects), 'AI-app heeft', 'AI-apps hebben')} toegang tot organisatiegegevens.",
            f"{plural(len(objects), 'AI app holds', 'AI apps hold')} access to organisation data.",
            objects,
        )
    if not ai_apps:
        return passed("0 in scope: geen herkende AI-app in de tenant.",
                     "0 in scope: no recognised AI app in the tenant.")
    return passed(
        f"{plural(len(ai_apps), 'herkende AI-app', 'herkende AI-apps')}, geen met toegang tot organisatiegegevens.",
        f"{plural(len(ai_apps), 'recognised AI app', 'recognised AI apps')}, none with access to organisation data.",
    )


def apps_tenant_wide_data_access_approved(inp: CheckInput) -> CheckOutcome:
    """Every non-Microsoft app with tenant-wide org-data access is approved, its review date not passed."""
    sps = _service_principals(inp)
    microsoft = microsoft_owned(inp)
    approved = {a.app_id.lower(): a for a in inp.approved_apps}
    by_client: dict[str, list[_Access]] = {}
    for access in _accesses(inp):
        if access.kind in ("application", "all users"):
            by_client.setdefault(access.client, []).append(access)
    objects, ok = [], 0
    for client, accesses in sorted(by_client.items()):
        sp = _client(sps, client)
        if microsoft(sp):
            continue
        approval = approved.get(guid_of(sp, "appId", f"service principal {client}"))
        if approval is not None and approval.review_by >= inp.today:
            ok += 1
            continue
        why = (f"; approval expired: review was due {approval.review_by.isoformat()}" if approval
               else "; not on the approved-apps list")
        objects.append(_sp_object(sp, accesses, why))
    in_scope = ok + len(objects)
    if objects:
        return failed(
            f"{len(objects)} van de {in_scope} apps met tenantbrede toegang tot organisatiegegevens "
            f"{'is' if len(objects) == 1 else 'zijn'} niet (meer) goedgekeurd.",
            f"{len(objects)} of {in_scope} apps with tenant-wide access to organisation data "
            f"{'is' if len(objects) == 1 else 'are'} not (or no longer) approved.",
            objects,
        )
    if not in_scope:
        return passed(
            "0 in scope: geen app van buiten Microsoft heeft tenantbrede toegang tot organisatiegegevens.",
            "0 in scope: no non-Microsoft app has tenant-wide access to organisation data.",
        )
    return passed(
        f"Alle {in_scope} apps met tenantbrede toegang tot organisatiegegevens zijn goedgekeurd.",
        f"All {in_scope} apps with tenant-wide access to organisation data are approved.",
    )


# public names for checks/routes.py (issue 14): the same readers, judged for the routes added there
org_data_accesses = _accesses
ai_app_label = _ai_match
service_principals_by_id = _service_principals
sp_finding = _sp_object
client_of = _client
