"""Check functions for rules YAML conditions cannot express: joins, licences, consent, CA, Intune, usage."""

from __future__ import annotations

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


def _opt_str(obj: Obj, field: str, where: str) -> str | None:
    value = obj.get(field)
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{where}: '{field}' is {type(value).__name__}, expected a string")
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


def _held_plans(user: Obj, skus: Mapping[str, Obj], plans: Mapping[str, Obj]) -> dict[str, str]:
    """Plan id -> a readable description, for every catalog plan the user can use.

    A plan reaches a user through a licence (direct or group-based, both show in assignedLicenses)
    unless that licence lists it in disabledPlans or the SKU is Suspended/LockedOut/Deleted. An
    assignedPlans entry for the plan that is not usable overrides the licence; one that is usable
    counts on its own when no licence of the tenant carries the plan (fail closed).
    """
    where = f"user {_user_name(user)}"
    if "assignedLicenses" not in user and "assignedPlans" not in user:
        raise ShapeError(f"{where} has neither assignedLicenses nor assignedPlans ($select missing?)")
    held: dict[str, str] = {}
    carried: set[str] = set()
    for licence in _dicts(user, "assignedLicenses", where):
        sku = skus.get(_lower(licence.get("skuId")))
        if sku is None:
            continue
        disabled = {_lower(p) for p in _list(licence, "disabledPlans", where)}
        part = str(sku.get("skuPartNumber") or sku.get("skuId"))
        grace = " (grace period)" if _lower(sku.get("capabilityStatus")) == "warning" else ""
        for plan in _dicts(sku, "servicePlans", f"SKU {part}"):
            plan_id = _lower(plan.get("servicePlanId"))
            if plan_id not in plans:
                continue
            carried.add(plan_id)
            if plan_id not in disabled and _usable(sku.get("capabilityStatus")):
                name = plan.get("servicePlanName") or plans[plan_id].get("name") or plan_id
                held[plan_id] = f"{name} via {part}{grace}"
    statuses: dict[str, list[object]] = {}
    for entry in _dicts(user, "assignedPlans", where):
        statuses.setdefault(_lower(entry.get("servicePlanId")), []).append(entry.get("capabilityStatus"))
    for plan_id, found in statuses.items():
        if plan_id not in plans:
            continue
        usable = any(_usable(s) for s in found)
        if plan_id in held and not usable:
            del held[plan_id]
        elif plan_id not in carried and usable:
            held[plan_id] = f"{plans[plan_id].get('name') or plan_id} (assignedPlans)"
    return held


def service_plans_not_assigned(inp: CheckInput) -> CheckOutcome:
    """No user holds an enabled plan of the catalog named by the parameter plan_catalog."""
    catalog = _param(inp, "plan_catalog", str)
    plans = _catalog_ids(inp, catalog, "id")
    skus = {_str(s, "skuId", "subscribed SKU").lower(): s for s in _items(inp, "subscribed_skus")}
    users = _items(inp, "users")
    objects = []
    for user in users:
        held = _held_plans(user, skus, plans)
        if not held:
            continue
        disabled = user.get("accountEnabled") is False
        detail = "; ".join(sorted(held.values())) + ("; account disabled" if disabled else "")
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
        f"{len(objects)} van de {len(users)} gebruikers hebben een ingeschakeld plan uit '{catalog}'"
        f" (waarvan {off} met een uitgeschakeld account).",
        f"{_plural(len(objects), 'user', 'users')} of {len(users)} hold an enabled plan from '{catalog}'"
        f" ({off} of them with a disabled account).",
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
            f"{in_scope} abonnement(en) met Copilot-plannen, geen met bruikbare licenties"
            f" ({', '.join(states)}).",
            f"{_plural(in_scope, 'subscription carries', 'subscriptions carry')} Copilot plans,"
            f" none with usable units ({', '.join(states)}).",
        )
    return _fail(
        f"{len(objects)} abonnement(en) met Copilot-plannen hebben bruikbare licenties.",
        f"{_plural(len(objects), 'subscription', 'subscriptions')} with Copilot plans "
        f"{'has' if len(objects) == 1 else 'have'} usable units.",
        objects,
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
    if own and policy.get("allowUserConsentForRiskyApps") is True:
        objects.append(FindingObject(
            id="allowUserConsentForRiskyApps", name="allowUserConsentForRiskyApps",
            detail="true: users may consent even to apps flagged as risky",
        ))
    if objects:
        return _fail(
            "Gebruikers kunnen zelf apps toegang geven tot organisatiegegevens.",
            "Users can give apps access to organisation data themselves.",
            objects,
        )
    if not own:
        return _pass("Toestemming door gebruikers staat uit.", "User consent is off.")
    names = ", ".join(pid for pid, _ in own)
    return _pass(
        f"Toestemming door gebruikers is beperkt tot {names}.",
        f"User consent is limited to {names}.",
    )


# --------------------------------------------------------------------------- the table

CHECKS: dict[str, CheckFn] = {
    fn.__name__: _fail_closed(fn)
    for fn in (
        service_plans_not_assigned,
        copilot_subscriptions_absent,
        consent_users_cannot_grant_org_data,
    )
}
