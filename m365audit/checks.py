"""Check functions for rules YAML conditions cannot express: joins, licences, consent, CA, Intune, usage."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from m365audit.models import ApprovedApp, CheckOutcome, FindingObject, Rule, Status, Text


@dataclass(frozen=True)
class CheckInput:
    """Everything a check function may look at: no I/O, no clock."""

    rule: Rule
    data: Mapping[str, Any]  # source key -> that source's data (only the rule's sources; all read completely)
    catalogs: Mapping[str, Sequence[Any]]
    params: Mapping[str, Any]  # rule params merged with the user's overrides
    approved_apps: Sequence[ApprovedApp]
    today: date


CheckFn = Callable[[CheckInput], CheckOutcome]

Obj = dict[str, Any]


class ShapeError(Exception):
    """Data, a catalog or a parameter is not shaped as the check expects: the rule becomes error."""


# --------------------------------------------------------------------------- outcomes


def _outcome(status: Status, nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return CheckOutcome(status=status, message=Text(nl=nl, en=en), objects=list(objects))


def _pass(nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return _outcome(Status.PASS, nl, en, objects)


def _fail(nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return _outcome(Status.FAIL, nl, en, objects)


def _fail_closed(fn: CheckFn) -> CheckFn:
    """Wrap a check so that data of an unexpected shape gives error, never pass or fail."""

    def run(inp: CheckInput) -> CheckOutcome:
        try:
            return fn(inp)
        except ShapeError as exc:
            return _outcome(
                Status.ERROR,
                f"Onverwachte gegevens, de regel kan niet worden beoordeeld: {exc}",
                f"Unexpected data, the rule cannot be judged: {exc}",
            )

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


# --------------------------------------------------------------------------- reading data safely


def _items(inp: CheckInput, key: str) -> list[Obj]:
    """A source that must be a list of JSON objects."""
    if key not in inp.data:
        raise ShapeError(f"source '{key}' was not given to the check")
    data = inp.data[key]
    if not isinstance(data, list):
        raise ShapeError(f"source '{key}' is {type(data).__name__}, expected a list")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ShapeError(f"item {i} of source '{key}' is {type(item).__name__}, expected an object")
    return data


def _single(inp: CheckInput, key: str) -> Obj:
    """A source that must be one JSON object (a Graph singleton such as a policy)."""
    if key not in inp.data:
        raise ShapeError(f"source '{key}' was not given to the check")
    data = inp.data[key]
    if not isinstance(data, dict):
        raise ShapeError(f"source '{key}' is {type(data).__name__}, expected an object")
    return data


def _list(obj: Obj, field: str, where: str, required: bool = False) -> list[Any]:
    """A list field; missing or null is an empty list unless required."""
    value = obj.get(field)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{where}: '{field}' is {type(value).__name__}, expected a list")
    return value


def _dicts(obj: Obj, field: str, where: str) -> list[Obj]:
    values = _list(obj, field, where)
    if not all(isinstance(v, dict) for v in values):
        raise ShapeError(f"{where}: '{field}' holds something other than objects")
    return values


def _str(obj: Obj, field: str, where: str) -> str:
    """A required string field."""
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise ShapeError(f"{where}: '{field}' is missing or not a string")
    return value


def _catalog(inp: CheckInput, name: str) -> list[Obj]:
    if name not in inp.catalogs:
        raise ShapeError(f"catalog '{name}' is not loaded")
    entries = list(inp.catalogs[name])
    if not all(isinstance(e, dict) for e in entries):
        raise ShapeError(f"catalog '{name}' holds entries that are not objects")
    return entries


def _catalog_ids(inp: CheckInput, name: str, field: str) -> dict[str, Obj]:
    """Catalog entries keyed by a GUID-like field, lower-cased (Graph GUID casing varies)."""
    return {_str(e, field, f"catalog '{name}'").lower(): e for e in _catalog(inp, name) if e.get(field)}


def _param(inp: CheckInput, name: str, kind: type) -> Any:
    if name not in inp.params:
        raise ShapeError(f"parameter '{name}' is not set")
    value = inp.params[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ShapeError(f"parameter '{name}' is {type(value).__name__}, expected {kind.__name__}")
    return value


def _str_list_param(inp: CheckInput, name: str) -> list[str]:
    values = _param(inp, name, list)
    if not all(isinstance(v, str) for v in values):
        raise ShapeError(f"parameter '{name}' must be a list of strings")
    return list(values)


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# --------------------------------------------------------------------------- licences

_NOT_USABLE = frozenset({"suspended", "lockedout", "deleted", "disabled"})


def _usable(status: object) -> bool:
    """Enabled and Warning (grace period) are usable; an absent or unknown status counts as usable."""
    return _lower(status) not in _NOT_USABLE


def _user_name(user: Obj) -> str:
    return str(user.get("userPrincipalName") or user.get("displayName") or user.get("id") or "?")


@dataclass(frozen=True)
class _Sku:
    """What a subscribed SKU means for one plan catalog: computed once, used for every user."""

    part: str
    usable: bool
    grace: bool
    plans: dict[str, str]  # catalog plan id -> plan name, for the catalog plans this SKU carries


def _sku_index(inp: CheckInput, plans: Mapping[str, Obj]) -> dict[str, _Sku]:
    index = {}
    for sku in _items(inp, "subscribed_skus"):
        sku_id = _str(sku, "skuId", "subscribed SKU").lower()
        part = str(sku.get("skuPartNumber") or sku_id)
        carried = {}
        for plan in _dicts(sku, "servicePlans", f"SKU {part}"):
            plan_id = _lower(plan.get("servicePlanId"))
            if plan_id in plans:
                carried[plan_id] = str(plan.get("servicePlanName") or plans[plan_id].get("name") or plan_id)
        status = sku.get("capabilityStatus")
        index[sku_id] = _Sku(part, _usable(status), _lower(status) == "warning", carried)
    return index


def _held_plans(user: Obj, skus: Mapping[str, _Sku], plans: Mapping[str, Obj]) -> dict[str, tuple[str, str]]:
    """Plan id -> (plan name, how it reaches the user), for every catalog plan the user can use.

    A plan reaches a user through a licence (direct or group-based, both show in assignedLicenses)
    unless that licence lists it in disabledPlans or the SKU is Suspended/LockedOut/Deleted. An
    assignedPlans entry for the plan that is not usable overrides the licence; one that is usable
    counts on its own when no licence of the tenant carries the plan (fail closed).
    """
    where = f"user {_user_name(user)}"
    if "assignedLicenses" not in user and "assignedPlans" not in user:
        raise ShapeError(f"{where} has neither assignedLicenses nor assignedPlans ($select missing?)")
    held: dict[str, tuple[str, str]] = {}
    carried: set[str] = set()
    for licence in _dicts(user, "assignedLicenses", where):
        sku = skus.get(_lower(licence.get("skuId")))
        if sku is None or not sku.plans:
            continue
        carried.update(sku.plans)
        if not sku.usable:
            continue
        disabled = {_lower(p) for p in _list(licence, "disabledPlans", where)}
        for plan_id, name in sku.plans.items():
            if plan_id not in disabled:
                held[plan_id] = (name, sku.part + (" (grace period)" if sku.grace else ""))
    statuses: dict[str, list[object]] = {}
    for entry in _dicts(user, "assignedPlans", where):
        plan_id = _lower(entry.get("servicePlanId"))
        if plan_id in plans:
            statuses.setdefault(plan_id, []).append(entry.get("capabilityStatus"))
    for plan_id, found in statuses.items():
        usable = any(_usable(s) for s in found)
        if plan_id in held and not usable:
            del held[plan_id]
        elif plan_id not in carried and usable:
            held[plan_id] = (str(plans[plan_id].get("name") or plan_id), "assignedPlans only")
    return held


def service_plans_not_assigned(inp: CheckInput) -> CheckOutcome:
    """No user holds an enabled plan of the catalog named by the parameter plan_catalog."""
    catalog = _param(inp, "plan_catalog", str)
    plans = _catalog_ids(inp, catalog, "id")
    skus = _sku_index(inp, plans)
    users = _items(inp, "users")
    objects = []
    for user in users:
        held = _held_plans(user, skus, plans)
        if not held:
            continue
        via: dict[str, list[str]] = {}
        for name, source in held.values():
            via.setdefault(source, []).append(name)
        disabled = user.get("accountEnabled") is False
        detail = "; ".join(f"{source}: {', '.join(sorted(names))}" for source, names in sorted(via.items()))
        detail += "; account disabled" if disabled else ""
        objects.append(FindingObject(id=str(user.get("id")), name=_user_name(user), detail=detail))
    if not users:
        return _pass("0 in scope: de tenant heeft geen gebruikers.", "0 in scope: the tenant has no users.")
    if not objects:
        return _pass(
            f"Geen van de {len(users)} gebruikers heeft een ingeschakeld plan uit '{catalog}'.",
            f"None of the {len(users)} users holds an enabled plan from '{catalog}'.",
        )
    off = sum(1 for o in objects if o.detail.endswith("account disabled"))
    return _fail(
        f"{len(objects)} van de {len(users)} gebruikers {'heeft' if len(objects) == 1 else 'hebben'} een"
        f" ingeschakeld plan uit '{catalog}'" + (f" (waarvan {off} met een uitgeschakeld account)." if off else "."),
        f"{len(objects)} of {len(users)} users {'holds' if len(objects) == 1 else 'hold'} an enabled plan from"
        f" '{catalog}'" + (f" ({off} of them with a disabled account)." if off else "."),
        objects,
    )


def copilot_subscriptions_absent(inp: CheckInput) -> CheckOutcome:
    """No subscribed SKU that carries Copilot plans (or is a known Copilot SKU) has usable prepaid units."""
    plans = _catalog_ids(inp, _param(inp, "plan_catalog", str), "id")
    sku_ids = _catalog_ids(inp, _param(inp, "sku_catalog", str), "id")
    states = _str_list_param(inp, "unit_states")
    objects, in_scope = [], 0
    for sku in _items(inp, "subscribed_skus"):
        sku_id = _str(sku, "skuId", "subscribed SKU")
        part = str(sku.get("skuPartNumber") or sku_id)
        sku_plans = _dicts(sku, "servicePlans", f"SKU {part}")
        found = [p for p in sku_plans if _lower(p.get("servicePlanId")) in plans]
        if not found and sku_id.lower() not in sku_ids:
            continue
        in_scope += 1
        units = sku.get("prepaidUnits")
        if not isinstance(units, dict):
            raise ShapeError(f"SKU {part}: 'prepaidUnits' is missing or not an object")
        counts = {s: units.get(s, 0) for s in states}
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
            raise ShapeError(f"SKU {part}: prepaidUnits {states} are not all whole numbers")
        if sum(counts.values()) > 0:
            names = ", ".join(str(p.get("servicePlanName") or p.get("servicePlanId")) for p in found)
            units_text = ", ".join(f"{n} {s}" for s, n in counts.items())
            objects.append(FindingObject(
                id=sku_id, name=part,
                detail=f"prepaid units: {units_text}; consumed: {sku.get('consumedUnits', '?')}; "
                       f"Copilot plans: {names or 'SKU listed in the Copilot SKU catalog'}",
            ))
    if not in_scope:
        return _pass("0 in scope: geen abonnement met Copilot-plannen.",
                     "0 in scope: no subscription carries Copilot plans.")
    if not objects:
        return _pass(
            f"{_plural(in_scope, 'abonnement', 'abonnementen')} met Copilot-plannen, geen met bruikbare licenties"
            f" ({', '.join(states)}).",
            f"{_plural(in_scope, 'subscription carries', 'subscriptions carry')} Copilot plans,"
            f" none with usable units ({', '.join(states)}).",
        )
    return _fail(
        f"{_plural(len(objects), 'abonnement', 'abonnementen')} met Copilot-plannen"
        f" {'heeft' if len(objects) == 1 else 'hebben'} bruikbare licenties.",
        f"{_plural(len(objects), 'subscription', 'subscriptions')} with Copilot plans "
        f"{'has' if len(objects) == 1 else 'have'} usable units.",
        objects,
    )


def ai_plans_in_catalog(inp: CheckInput) -> CheckOutcome:
    """Every service plan whose name matches an AI pattern is classified in one of the known catalogs."""
    patterns = []
    for entry in _catalog(inp, _param(inp, "pattern_catalog", str)):
        try:
            patterns.append(re.compile(_str(entry, "pattern", "AI plan-name pattern"), re.IGNORECASE))
        except re.error as exc:
            raise ShapeError(f"AI plan-name pattern {entry.get('pattern')!r} is invalid: {exc}") from exc
    known: set[str] = set()
    for name in _str_list_param(inp, "known_catalogs"):
        known.update(_catalog_ids(inp, name, "id"))
    ai_plans: dict[str, tuple[str, list[str]]] = {}
    for sku in _items(inp, "subscribed_skus"):
        part = str(sku.get("skuPartNumber") or sku.get("skuId"))
        for plan in _dicts(sku, "servicePlans", f"SKU {part}"):
            name = _str(plan, "servicePlanName", f"SKU {part} service plan")
            if any(p.search(name) for p in patterns):
                plan_id = _str(plan, "servicePlanId", f"SKU {part} plan {name}").lower()
                ai_plans.setdefault(plan_id, (name, []))[1].append(part)
    unknown = [
        FindingObject(id=pid, name=name, detail=f"in {', '.join(parts)}: review and classify in a catalog")
        for pid, (name, parts) in sorted(ai_plans.items()) if pid not in known
    ]
    if unknown:
        return _fail(
            f"{_plural(len(unknown), 'serviceplan lijkt', 'serviceplannen lijken')} op AI maar"
            f" {'staat' if len(unknown) == 1 else 'staan'} in geen catalogus:"
            " beoordeel en classificeer.",
            f"{_plural(len(unknown), 'plan looks', 'plans look')} like AI but"
            f" {'is' if len(unknown) == 1 else 'are'} in no catalog: review and classify.",
            unknown,
        )
    if not ai_plans:
        return _pass("0 in scope: geen serviceplan heeft een AI-naam.",
                     "0 in scope: no service plan has an AI-like name.")
    return _pass(
        f"{_plural(len(ai_plans), 'serviceplan', 'serviceplannen')} met een AI-naam, alle geclassificeerd.",
        f"{_plural(len(ai_plans), 'service plan', 'service plans')} with an AI-like name, all classified.",
    )


# --------------------------------------------------------------------------- consent settings

_FOR_SELF = "managepermissiongrantsforself"
_FOR_OWNED = "managepermissiongrantsforownedresource"


def _grant_policy_assignments(policy: Obj) -> list[tuple[str, str, str]]:
    """(prefix lower-cased, policy id, raw value) for each permissionGrantPoliciesAssigned entry."""
    perms = policy.get("defaultUserRolePermissions")
    if not isinstance(perms, dict):
        raise ShapeError("authorizationPolicy has no 'defaultUserRolePermissions' object")
    values = _list(perms, "permissionGrantPoliciesAssigned", "defaultUserRolePermissions", required=True)
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
    policy = _single(inp, "authorization_policy")
    allowed = {p.lower() for p in _str_list_param(inp, "allowed_policies")}
    own = [(pid, raw) for prefix, pid, raw in _grant_policy_assignments(policy) if prefix == _FOR_SELF]
    objects = [
        FindingObject(id=raw, name=pid, detail="users may consent to apps for themselves under this policy")
        for pid, raw in own if pid.lower() not in allowed
    ]
    if objects:
        return _fail(
            "Gebruikers kunnen zelf apps toegang geven tot organisatiegegevens.",
            "Users can give apps access to organisation data themselves.",
            objects,
        )
    if not own:
        return _pass("Toestemming door gebruikers staat uit.", "User consent is off.")
    names = ", ".join(pid for pid, _ in own)
    risky = policy.get("allowUserConsentForRiskyApps") is True
    return _pass(
        f"Toestemming door gebruikers is beperkt tot {names}."
        + (" Let op: allowUserConsentForRiskyApps staat aan (ook apps die Microsoft riskant vindt)." if risky else ""),
        f"User consent is limited to {names}."
        + (" Note: allowUserConsentForRiskyApps is on (apps Microsoft flags as risky too)." if risky else ""),
    )


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
    """The Graph, SharePoint and Exchange service principals, keyed by object id (lower-cased)."""
    resources = _items(inp, "resource_permissions")
    return {_str(r, "id", "resource service principal").lower(): r for r in resources}


def _org_permissions(inp: CheckInput) -> dict[tuple[str, str, str], str]:
    """(resource appId, permission, kind), lower-cased -> the permission's name as the catalog spells it."""
    result = {}
    for entry in _catalog(inp, "org-data-permissions"):
        app = _str(entry, "resource_app_id", "org-data-permissions").lower()
        value = _str(entry, "value", "org-data-permissions")
        for kind in _list(entry, "kinds", f"org-data-permissions {value}", required=True):
            result[(app, value.lower(), _lower(kind))] = value
    return result


def _role_names(resources: Mapping[str, Obj]) -> dict[tuple[str, str], str]:
    """(resource object id, app role id), lower-cased -> the role's name, e.g. 'Mail.Read'."""
    names = {}
    for res_id, resource in resources.items():
        where = f"resource {resource.get('displayName') or resource.get('appId')}"
        for role in _dicts(resource, "appRoles", where):
            names[(res_id, _lower(role.get("id")))] = _str(role, "value", f"{where} app role {role.get('id')}")
    return names


def _accesses(inp: CheckInput) -> list[_Access]:
    """Every application role and delegated grant on Graph, SharePoint or Exchange that reaches org data."""
    resources = _resources(inp)
    roles = _role_names(resources)
    org = _org_permissions(inp)
    found = []
    for assignment in _items(inp, "app_role_assignments"):
        res_id = _lower(assignment.get("resourceId"))
        resource = resources.get(res_id)
        if resource is None:
            raise ShapeError(f"app role assignment {assignment.get('id')} is on an unknown resource")
        role_id = _str(assignment, "appRoleId", "app role assignment").lower()
        if role_id == "00000000-0000-0000-0000-000000000000":
            continue  # the default role: access to the app, no permission
        role = roles.get((res_id, role_id))
        if role is None:
            raise ShapeError(f"app role {role_id} is not defined on {resource.get('displayName')}: "
                             "cannot tell what it grants")
        name = org.get((_lower(resource.get("appId")), role.lower(), "application"))
        if name:
            found.append(_Access(_str(assignment, "principalId", "app role assignment").lower(), name,
                                 str(resource.get("displayName") or resource.get("appId")), "application"))
    for grant in _items(inp, "delegated_grants"):
        resource = resources.get(_lower(grant.get("resourceId")))
        if resource is None:
            continue  # a grant on some other API (often the app's own): not Graph, SharePoint or Exchange
        scope = grant.get("scope") or ""
        consent = grant.get("consentType")
        if not isinstance(scope, str) or consent not in ("AllPrincipals", "Principal"):
            raise ShapeError(f"delegated grant {grant.get('id')} has an unexpected scope or consentType")
        kind = "all users" if consent == "AllPrincipals" else "user"
        for scope_name in scope.split():
            name = org.get((_lower(resource.get("appId")), scope_name.lower(), "delegated"))
            if name:
                found.append(_Access(_str(grant, "clientId", "delegated grant").lower(), name,
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
            kind, f"user consent by {_plural(len(who), 'user', 'users')}")
        parts.append(f"{perm} ({res}, {how})")
    return "; ".join(parts)


def _service_principals(inp: CheckInput) -> dict[str, Obj]:
    return {_str(sp, "id", "service principal").lower(): sp for sp in _items(inp, "service_principals")}


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
    verified = sp.get("verifiedPublisher")
    name = verified.get("displayName") if isinstance(verified, dict) else None
    return str(name or sp.get("publisherName") or "")


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text, re.IGNORECASE) is not None
    except re.error as exc:
        raise ShapeError(f"catalog pattern {pattern!r} is not a valid regular expression: {exc}") from exc


def _ai_match(sp: Obj, catalog: Sequence[Obj], microsoft: set[str]) -> str | None:
    """The catalog name of the AI app this service principal is, or None."""
    app_id = _lower(sp.get("appId"))
    third_party = _lower(sp.get("appOwnerOrganizationId")) not in microsoft
    for entry in catalog:
        label = f"{entry.get('name')} ({entry.get('vendor')})"
        if entry.get("app_id") and _lower(entry["app_id"]) == app_id:
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
    microsoft = set(_catalog_ids(inp, "microsoft-tenant-ids", "id"))
    catalog = _catalog(inp, "ai-apps")
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
        return _fail(
            f"{_plural(len(objects), 'AI-app heeft', 'AI-apps hebben')} toegang tot organisatiegegevens.",
            f"{_plural(len(objects), 'AI app holds', 'AI apps hold')} access to organisation data.",
            objects,
        )
    if not ai_apps:
        return _pass("0 in scope: geen herkende AI-app in de tenant.",
                     "0 in scope: no recognised AI app in the tenant.")
    return _pass(
        f"{_plural(len(ai_apps), 'herkende AI-app', 'herkende AI-apps')}, geen met toegang tot organisatiegegevens.",
        f"{_plural(len(ai_apps), 'recognised AI app', 'recognised AI apps')}, none with access to organisation data.",
    )


def apps_tenant_wide_data_access_approved(inp: CheckInput) -> CheckOutcome:
    """Every non-Microsoft app with tenant-wide org-data access is approved, its review date not passed."""
    sps = _service_principals(inp)
    microsoft = set(_catalog_ids(inp, "microsoft-tenant-ids", "id"))
    approved = {a.app_id.lower(): a for a in inp.approved_apps}
    by_client: dict[str, list[_Access]] = {}
    for access in _accesses(inp):
        if access.kind in ("application", "all users"):
            by_client.setdefault(access.client, []).append(access)
    objects, ok = [], 0
    for client, accesses in sorted(by_client.items()):
        sp = _client(sps, client)
        if _lower(sp.get("appOwnerOrganizationId")) in microsoft:
            continue
        approval = approved.get(_lower(sp.get("appId")))
        if approval is not None and approval.review_by >= inp.today:
            ok += 1
            continue
        why = (f"; approval expired: review was due {approval.review_by.isoformat()}" if approval
               else "; not on the approved-apps list")
        objects.append(_sp_object(sp, accesses, why))
    in_scope = ok + len(objects)
    if objects:
        return _fail(
            f"{len(objects)} van {in_scope} apps met tenantbrede toegang tot organisatiegegevens zijn niet"
            " (meer) goedgekeurd.",
            f"{len(objects)} of {in_scope} apps with tenant-wide access to organisation data "
            f"{'is' if len(objects) == 1 else 'are'} not (or no longer) approved.",
            objects,
        )
    if not in_scope:
        return _pass(
            "0 in scope: geen app van buiten Microsoft heeft tenantbrede toegang tot organisatiegegevens.",
            "0 in scope: no non-Microsoft app has tenant-wide access to organisation data.",
        )
    return _pass(
        f"Alle {in_scope} apps met tenantbrede toegang tot organisatiegegevens zijn goedgekeurd.",
        f"All {in_scope} apps with tenant-wide access to organisation data are approved.",
    )


def consent_owners_cannot_grant_team_data(inp: CheckInput) -> CheckOutcome:
    """No resource-specific consent for team or chat owners, and personal-scope RSC in Teams is off."""
    policy = _single(inp, "authorization_policy")
    settings = _single(inp, "teams_app_settings")
    allowed = {p.lower() for p in _str_list_param(inp, "allowed_policies")}
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
        return _fail(
            "Eigenaren of gebruikers kunnen Teams-apps toegang geven tot team- of chatgegevens.",
            "Owners or users can give Teams apps access to team or chat data.",
            objects,
        )
    return _pass(
        "Geen resource-specifieke toestemming voor eigenaren; persoonlijke RSC in Teams staat uit.",
        "No resource-specific consent for owners; personal-scope RSC in Teams is off.",
    )

# --------------------------------------------------------------------------- Conditional Access

_STANDALONE = Text(
    nl="Dit dekt alleen de losstaande Copilot-ervaringen, niet Copilot in Word, Teams of Outlook.",
    en="This covers the standalone Copilot experiences only, not Copilot inside Word, Teams or Outlook.",
)


def _ca_lists(policy: Obj, part: str) -> Obj:
    conditions = policy.get("conditions")
    section = conditions.get(part) if isinstance(conditions, dict) else None
    if not isinstance(section, dict):
        raise ShapeError(f"CA policy {policy.get('displayName')!r} has no conditions.{part} object")
    return section


def _ca_narrowing(policy: Obj) -> list[str]:
    """Conditions that make a block apply to only some sign-ins (so it is not a block for everyone)."""
    conditions = policy["conditions"]
    found = []
    client_types = [_lower(t) for t in _list(conditions, "clientAppTypes", "CA conditions")]
    if client_types and "all" not in client_types:
        found.append(f"client apps {', '.join(client_types)} only")
    for field in ("signInRiskLevels", "userRiskLevels", "servicePrincipalRiskLevels"):
        if _list(conditions, field, "CA conditions"):
            found.append(f"{field} set")
    for field in ("platforms", "locations", "devices", "insiderRiskLevels"):
        if conditions.get(field) not in (None, [], {}):
            found.append(f"{field} condition")
    return found


def ca_blocks_copilot_apps(inp: CheckInput) -> CheckOutcome:
    """An enabled CA policy blocks every ca_target Copilot app for all users; exclusions are residual exposure."""
    targets = {k: e for k, e in _catalog_ids(inp, "copilot-first-party-apps", "app_id").items() if e.get("ca_target")}
    if not targets:
        raise ShapeError("catalog 'copilot-first-party-apps' marks no app with ca_target: true")
    blocked: dict[str, list[str]] = {}
    residual: list[FindingObject] = []
    not_counted: list[FindingObject] = []
    for policy in _items(inp, "conditional_access"):
        name = str(policy.get("displayName") or policy.get("id"))
        controls = policy.get("grantControls")
        built_in = _list(controls, "builtInControls", name) if isinstance(controls, dict) else []
        apps = _ca_lists(policy, "applications")
        include = {_lower(a) for a in _list(apps, "includeApplications", name)}
        exclude = {_lower(a) for a in _list(apps, "excludeApplications", name)}
        covered = [t for t in targets if (t in include or "all" in include) and t not in exclude]
        if "block" not in [_lower(c) for c in built_in] or not covered:
            continue
        users = _ca_lists(policy, "users")
        why = [] if "all" in {_lower(u) for u in _list(users, "includeUsers", name)} else ["not for all users"]
        why += _ca_narrowing(policy)
        state = policy.get("state")
        if state != "enabled":
            why.insert(0, "report-only" if state == "enabledForReportingButNotEnforced" else f"state {state}")
        if why:
            if any(t in include for t in covered):  # a general "All apps" policy says nothing about Copilot
                not_counted.append(FindingObject(id=str(policy.get("id")), name=name, detail="; ".join(why)))
            continue
        for t in covered:
            blocked.setdefault(t, []).append(name)
        for field, label in (("excludeUsers", "user"), ("excludeGroups", "group"), ("excludeRoles", "role")):
            residual += [FindingObject(id=str(x), name=f"excluded {label}", detail=f"excluded from '{name}'")
                         for x in _list(users, field, name)]
        if users.get("excludeGuestsOrExternalUsers"):
            residual.append(FindingObject(id="guests-or-external-users", name="excluded guests or external users",
                                          detail=f"excluded from '{name}'"))
    missing = [FindingObject(id=t, name=str(targets[t].get("name") or t),
                             detail="no enabled Conditional Access policy blocks it for all users")
               for t in targets if t not in blocked]
    if missing:
        return _fail(
            f"{_plural(len(missing), 'Copilot-app is', 'Copilot-apps zijn')} niet geblokkeerd voor alle"
            f" gebruikers. {_STANDALONE.nl}",
            f"{_plural(len(missing), 'Copilot app is', 'Copilot apps are')} not blocked for all users."
            f" {_STANDALONE.en}",
            missing + not_counted,
        )
    policies = sorted({n for names in blocked.values() for n in names})
    return _pass(
        f"Geblokkeerd door {', '.join(policies)}; {_plural(len(residual), 'uitzondering', 'uitzonderingen')}"
        f" (restrisico). {_STANDALONE.nl}",
        f"Blocked by {', '.join(policies)}; {_plural(len(residual), 'exclusion', 'exclusions')}"
        f" (residual exposure). {_STANDALONE.en}",
        residual,
    )


# --------------------------------------------------------------------------- Intune


def _setting_key(setting_id: str) -> str:
    """Edge ids carry an ADMX version (edgev99, edgev130): compare on the part after '~policy~'."""
    return setting_id.lower().rsplit("~policy~", 1)[-1]


def _configured(node: Any) -> Iterable[tuple[str, str]]:
    """(settingDefinitionId, chosen value) for every setting instance, at any depth (group settings nest)."""
    if isinstance(node, list):
        for child in node:
            yield from _configured(child)
    elif isinstance(node, dict):
        definition = node.get("settingDefinitionId")
        for key in ("choiceSettingValue", "simpleSettingValue"):
            value = node.get(key)
            if isinstance(definition, str) and isinstance(value, dict) and "value" in value:
                yield definition, str(value["value"])
        for child in node.values():
            yield from _configured(child)


def _assigned_to(policy: Obj, where: str) -> list[str]:
    """Who an Intune policy is assigned to; exclusion targets assign it to no one."""
    targets = []
    for assignment in _dicts(policy, "assignments", where):
        target = assignment.get("target")
        kind = target.get("@odata.type") if isinstance(target, dict) else None
        if not isinstance(kind, str):
            raise ShapeError(f"{where}: an assignment has no target type")
        if "exclusion" in kind.lower():
            continue
        group = target.get("groupId") if isinstance(target, dict) else None
        targets.append(f"group {group}" if group else kind.rsplit(".", 1)[-1].replace("AssignmentTarget", ""))
    return targets


def intune_setting_enforced(inp: CheckInput) -> CheckOutcome:
    """An assigned Intune policy sets one of the rule's catalog settings to a compliant value.

    Assigned policies that set the opposite value are residual exposure (objects on pass); with the
    parameter fail_on_opposite they make the rule fail.
    """
    fail_on_opposite = _param(inp, "fail_on_opposite", bool)
    wanted: dict[str, set[str]] = {}
    for entry in _catalog(inp, "intune-settings"):
        if entry.get("rule") == inp.rule.id:
            values = _list(entry, "compliant", f"intune-settings {entry.get('setting')}", required=True)
            wanted[_setting_key(_str(entry, "setting", "intune-settings"))] = {_setting_key(str(v)) for v in values}
    if not wanted:
        raise ShapeError(f"catalog 'intune-settings' has no entry for rule {inp.rule.id}")
    good: dict[str, list[FindingObject]] = {}
    bad: dict[str, list[FindingObject]] = {}
    others: list[FindingObject] = []
    for policy in _items(inp, "intune_policies"):
        name = str(policy.get("name") or policy.get("id"))
        if "assignments" not in policy or "settings" not in policy:
            raise ShapeError(f"Intune policy {name!r} has no 'settings' or 'assignments' list")
        targets = _assigned_to(policy, f"Intune policy {name!r}")
        for definition, value in _configured(_list(policy, "settings", name)):
            key = _setting_key(definition)
            if key not in wanted:
                continue
            compliant = _setting_key(value) in wanted[key]
            obj = FindingObject(id=str(policy.get("id")), name=name, detail=(
                f"{definition} = {value.rsplit('_', 1)[-1]}"
                f" ({'compliant' if compliant else 'not compliant'}); "
                + (f"assigned to {', '.join(targets)}" if targets else "not assigned: proves nothing")))
            if not targets:
                others.append(obj)
            else:
                (good if compliant else bad).setdefault(key, []).append(obj)
    enforcing = [o for objs in good.values() for o in objs]
    opposite = [o for objs in bad.values() for o in objs]
    if enforcing and not (fail_on_opposite and opposite):
        return _pass(
            "Een toegewezen Intune-beleid dwingt de instelling af"
            + (f"; {len(opposite)} toegewezen beleid zet het tegendeel (restrisico)." if opposite else "."),
            "An assigned Intune policy enforces the setting"
            + (f"; {len(opposite)} assigned policy sets the opposite (residual exposure)." if opposite else "."),
            enforcing + opposite,
        )
    return _fail(
        "Geen toegewezen Intune-beleid dwingt de instelling af"
        + (" zonder tegenstrijdig toegewezen beleid." if enforcing else "."),
        "No assigned Intune policy enforces the setting"
        + (" without an opposite assigned policy." if enforcing else "."),
        enforcing + opposite + others,
    )


# --------------------------------------------------------------------------- evidence of use

_HASHED = re.compile(r"^[0-9a-f]{32}$", re.IGNORECASE)


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise ShapeError(f"{where}: {text!r} is not a date") from exc


def _active_columns(row: Obj, where: str) -> dict[str, date]:
    """'Word Copilot' -> date for every non-empty '... Last Activity Date' column within the report period."""
    columns = {k: v for k, v in row.items() if isinstance(k, str) and k.endswith("Last Activity Date")}
    if not columns:
        raise ShapeError(f"{where} has no 'Last Activity Date' column")
    refresh, period = row.get("Report Refresh Date"), row.get("Report Period")
    start = None
    if refresh and period:
        if not str(period).strip().isdigit():
            raise ShapeError(f"{where}: Report Period {period!r} is not a number of days")
        start = date.fromordinal(_date(str(refresh), where).toordinal() - int(str(period)))
    active = {}
    for column, value in columns.items():
        if value and str(value).strip():
            day = _date(str(value), f"{where} {column}")
            if start is None or day > start:
                active[column[: -len("Last Activity Date")].strip() or "any app"] = day
    return active


def copilot_usage_none(inp: CheckInput) -> CheckOutcome:
    """The Copilot usage report shows no activity within its period; concealed (hashed) names are marked."""
    rows = _items(inp, "copilot_usage")
    objects = []
    for i, row in enumerate(rows):
        upn = str(row.get("User Principal Name") or "")
        active = _active_columns(row, f"usage report row {i + 1}")
        if not active:
            continue
        concealed = bool(_HASHED.match(upn))
        overall = active.pop("any app", max(active.values()))
        apps = ", ".join(f"{app} {day.isoformat()}" for app, day in sorted(active.items()))
        objects.append(FindingObject(
            id=upn or f"row-{i + 1}",
            name=f"concealed name {upn}" if concealed else str(row.get("Display Name") or upn),
            detail=f"last activity {overall.isoformat()}" + (f" ({apps})" if apps else "")
            + ("; user name concealed (hashed) in the report" if concealed else ""),
        ))
    note_nl = "Het rapport toont alleen gebruikers met een Copilot-licentie."
    note_en = "The report only lists users with a Copilot licence."
    if objects:
        hashed = sum(1 for o in objects if o.name.startswith("concealed name"))
        return _fail(
            f"{_plural(len(objects), 'gebruiker gebruikte', 'gebruikers gebruikten')} Copilot in de"
            f" rapportperiode ({hashed} met verborgen naam)."
            f" {note_nl}",
            f"{_plural(len(objects), 'user', 'users')} used Copilot in the report period ({hashed} with a"
            f" concealed name). {note_en}",
            objects,
        )
    scope = "0 in scope: " if not rows else ""
    return _pass(
        f"{scope}Geen Copilot-activiteit in de rapportperiode ({_plural(len(rows), 'rij', 'rijen')}). {note_nl}",
        f"{scope}No Copilot activity in the report period ({_plural(len(rows), 'row', 'rows')}). {note_en}",
    )


def audit_no_ai_interactions(inp: CheckInput) -> CheckOutcome:
    """The audit search over the look-back window holds no record of the AI record types."""
    types = {t.lower(): t for t in _str_list_param(inp, "record_types")}
    days = _param(inp, "lookback_days", int)
    per_user: dict[str, dict[str, int]] = {}
    last: dict[str, str] = {}
    for record in _items(inp, "audit_ai_interactions"):
        kind = record.get("auditLogRecordType") or record.get("operation")
        if kind is not None and _lower(kind) not in types:
            continue  # another record type: the query asks only for the AI types
        who = str(record.get("userPrincipalName") or record.get("userId") or "unknown user")
        label = types.get(_lower(kind), "record without a type")
        counts = per_user.setdefault(who, {})
        counts[label] = counts.get(label, 0) + 1
        last[who] = max(last.get(who, ""), str(record.get("createdDateTime") or ""))
    names = ", ".join(types.values())
    if not per_user:
        return _pass(
            f"Geen {names}-records in de laatste {days} dagen.",
            f"No {names} records in the last {days} days.",
        )
    objects = [
        FindingObject(id=who, name=who, detail=", ".join(f"{n} {t}" for t, n in sorted(c.items()))
                      + (f"; latest {last[who]}" if last[who] else ""))
        for who, c in sorted(per_user.items())
    ]
    total = sum(sum(c.values()) for c in per_user.values())
    return _fail(
        f"{_plural(total, 'AI-interactie', 'AI-interacties')} van {_plural(len(objects), 'gebruiker', 'gebruikers')}"
        f" in de laatste {days} dagen.",
        f"{_plural(total, 'AI interaction', 'AI interactions')} by {_plural(len(objects), 'user', 'users')}"
        f" in the last {days} days.",
        objects,
    )


# --------------------------------------------------------------------------- the table


# --------------------------------------------------------------------------- delegated-only Copilot settings


def copilot_policy_setting(inp: CheckInput) -> CheckOutcome:
    """A Copilot admin policy setting (delegated read) holds a value listed as compliant; unknown values are error.

    The value encodings are unconfirmed (graph-surface.md §7.3), so only values the rule lists count: a value in
    compliant_values passes, one in noncompliant_values (null = not configured, Microsoft's default) fails, any
    other value is error with the raw value, to be classified in params.yaml.
    """
    setting_id = _param(inp, "setting", str)
    compliant = _param(inp, "compliant_values", list)
    noncompliant = _param(inp, "noncompliant_values", list)
    found = [s for s in _items(inp, "copilot_policy_settings") if s.get("id") == setting_id]
    if len(found) != 1:
        raise ShapeError(f"setting {setting_id} was not in the answer (found {len(found)})")
    value, policy = found[0].get("value"), found[0].get("policyId")
    shown = "null (not configured)" if value is None else repr(value)
    obj = FindingObject(id=setting_id, name=setting_id, detail=f"value {shown}; tenant policy {policy or 'none'}")
    if value is not None and value in compliant:
        return _pass(f"{setting_id} staat op {shown} (tenantbeleid {policy or 'geen'}).",
                     f"{setting_id} is {shown} (tenant policy {policy or 'none'}).", [obj])
    if value in noncompliant:
        return _fail(f"{setting_id} staat op {shown}: Copilot mag dit.",
                     f"{setting_id} is {shown}: Copilot may do this.", [obj])
    return _outcome(
        Status.ERROR,
        f"Onbekende waarde {shown} voor {setting_id}: de codering is niet bevestigd. Classificeer haar in "
        "params.yaml (compliant_values of noncompliant_values).",
        f"Unknown value {shown} for {setting_id}: the encoding is unconfirmed. Classify it in params.yaml "
        "(compliant_values or noncompliant_values).", [obj])


CHECKS: dict[str, CheckFn] = {
    fn.__name__: _fail_closed(fn)
    for fn in (
        service_plans_not_assigned,
        copilot_subscriptions_absent,
        consent_users_cannot_grant_org_data,
        consent_owners_cannot_grant_team_data,
        ai_plans_in_catalog,
        ai_apps_no_org_data_access,
        apps_tenant_wide_data_access_approved,
        ca_blocks_copilot_apps,
        intune_setting_enforced,
        copilot_usage_none,
        audit_no_ai_interactions,
        copilot_policy_setting,
    )
}
