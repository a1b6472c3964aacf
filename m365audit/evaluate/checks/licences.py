"""Licence checks: Copilot and Copilot Studio plans held by users, Copilot subscriptions, unknown AI plans."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_ids,
    catalog_of,
    dicts_of,
    failed,
    guid_of,
    items_of,
    list_of,
    lowered,
    outcome,
    param_of,
    passed,
    plural,
    str_list_param,
    str_of,
)
from m365audit.evaluate.checks.licence_facts import licence_facts
from m365audit.models import CheckOutcome, FindingObject, Status

# --------------------------------------------------------------------------- licences

_USABLE = frozenset({"enabled", "warning"})  # Warning is the grace period: still usable
_NOT_USABLE = frozenset({"suspended", "lockedout", "deleted", "disabled"})
UNIT_STATES = ("enabled", "suspended", "warning", "lockedOut")  # prepaidUnits (graph-surface.md §2.1)


def _usable(status: object, where: str) -> bool:
    """Enabled and Warning (grace period) are usable; Suspended, LockedOut, Deleted are not; anything else is error."""
    if lowered(status) in _USABLE:
        return True
    if lowered(status) in _NOT_USABLE:
        return False
    shown = "missing" if status is None else repr(status)
    raise ShapeError(f"{where}: capabilityStatus is {shown}, not a status this check classifies "
                     "(Enabled, Warning, Suspended, LockedOut, Deleted)")


def _plan_id(plan: Obj, where: str) -> str:
    """A service plan's id, a required GUID: a plan without one could be any plan, a Copilot plan too."""
    return guid_of(plan, "servicePlanId", where)


def whole_number(value: object, where: str) -> int:
    """A count from Graph: a non-negative whole number, or the data is malformed (one value must not cancel another)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        shown = "missing" if value is None else repr(value)
        raise ShapeError(f"{where} is {shown}, not a whole number of zero or more: malformed data")
    return value


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
    for sku in items_of(inp, "subscribed_skus"):
        sku_id = guid_of(sku, "skuId", "subscribed SKU")
        part = str(sku.get("skuPartNumber") or sku_id)
        carried = {}
        for plan in dicts_of(sku, "servicePlans", f"SKU {part}", required=True):
            plan_id = _plan_id(plan, f"SKU {part} service plan")
            if plan_id in plans:
                carried[plan_id] = str(plan.get("servicePlanName") or plans[plan_id].get("name") or plan_id)
        status = sku.get("capabilityStatus")
        usable = _usable(status, f"SKU {part}") if carried else False  # a SKU without catalog plans grants none
        index[sku_id] = _Sku(part, usable, lowered(status) == "warning", carried)
    return index


def _held_plans(user: Obj, skus: Mapping[str, _Sku], plans: Mapping[str, Obj]) -> dict[str, tuple[str, str]]:
    """Plan id -> (plan name, how it reaches the user), for every catalog plan the user can use.

    A plan reaches a user through a licence (direct or group-based, both show in assignedLicenses)
    unless that licence lists it in disabledPlans or the SKU is Suspended/LockedOut/Deleted. An
    assignedPlans entry for the plan that is not usable overrides the licence; one that is usable
    counts on its own when no licence of the tenant carries the plan (fail closed).
    """
    where = f"user {_user_name(user)}"
    held: dict[str, tuple[str, str]] = {}
    carried: set[str] = set()
    for licence in dicts_of(user, "assignedLicenses", where, required=True):
        sku_id = guid_of(licence, "skuId", f"{where} licence")
        sku = skus.get(sku_id)
        if sku is None:
            raise ShapeError(f"{where} holds a licence for SKU {sku_id}, which subscribedSkus does not list: "
                             "cannot tell which plans it carries")
        if not sku.plans:
            continue
        carried.update(sku.plans)
        if not sku.usable:
            continue
        disabled = {lowered(p) for p in list_of(licence, "disabledPlans", where)}
        for plan_id, name in sku.plans.items():
            if plan_id not in disabled:
                held[plan_id] = (name, sku.part + (" (grace period)" if sku.grace else ""))
    statuses: dict[str, list[object]] = {}
    for entry in dicts_of(user, "assignedPlans", where, required=True):
        plan_id = _plan_id(entry, f"{where} assigned plan")
        if plan_id in plans:
            statuses.setdefault(plan_id, []).append(entry.get("capabilityStatus"))
    for plan_id, found in statuses.items():
        usable = any([_usable(s, f"{where} assigned plan {plan_id}") for s in found])
        if plan_id in held and not usable:
            del held[plan_id]
        elif plan_id not in carried and usable:
            held[plan_id] = (str(plans[plan_id].get("name") or plan_id), "assignedPlans only")
    return held


def _holders(inp: CheckInput, plans: Mapping[str, Obj]) -> tuple[int, list[tuple[Obj, dict[str, tuple[str, str]]]]]:
    """How many users there are, and each user holding a catalog plan (in order) with what _held_plans found.

    Users are judged by licence shape (licence_facts.py), each shape once, in the order the shapes first appear:
    the first user whose data is malformed raises the same ShapeError a walk of every user would.
    """
    skus = _sku_index(inp, plans)
    facts = licence_facts(items_of(inp, "users"))
    held_by_shape = [_held_plans(first, skus, plans) for first in facts.shapes]
    if not any(held_by_shape):
        return facts.count, []
    return facts.count, [(user, held_by_shape[shape]) for user, shape in facts.users() if held_by_shape[shape]]


def service_plans_not_assigned(inp: CheckInput) -> CheckOutcome:
    """No user holds an enabled plan of the catalog named by the parameter plan_catalog."""
    catalog = param_of(inp, "plan_catalog", str)
    plans = catalog_ids(inp, catalog, "id")
    users, holders = _holders(inp, plans)
    objects = []
    for user, held in holders:
        via: dict[str, list[str]] = {}
        for name, source in held.values():
            via.setdefault(source, []).append(name)
        disabled = user.get("accountEnabled") is False
        detail = "; ".join(f"{source}: {', '.join(sorted(names))}" for source, names in sorted(via.items()))
        detail += "; account disabled" if disabled else ""
        objects.append(FindingObject(id=str(user.get("id")), name=_user_name(user), detail=detail))
    if not users:
        return passed("0 in scope: de tenant heeft geen gebruikers.", "0 in scope: the tenant has no users.")
    if not objects:
        return passed(
            f"Geen van de {users} gebruikers heeft een ingeschakeld plan uit '{catalog}'.",
            f"None of the {users} users holds an enabled plan from '{catalog}'.",
        )
    off = sum(1 for o in objects if o.detail.endswith("account disabled"))
    return failed(
        f"{len(objects)} van de {users} gebruikers {'heeft' if len(objects) == 1 else 'hebben'} een"
        f" ingeschakeld plan uit '{catalog}'" + (f" (waarvan {off} met een uitgeschakeld account)." if off else "."),
        f"{len(objects)} of {users} users {'holds' if len(objects) == 1 else 'hold'} an enabled plan from"
        f" '{catalog}'" + (f" ({off} of them with a disabled account)." if off else "."),
        objects,
    )


def copilot_subscriptions_absent(inp: CheckInput) -> CheckOutcome:
    """No subscribed SKU that carries Copilot plans (or is a known Copilot SKU) has usable prepaid units."""
    plans = catalog_ids(inp, param_of(inp, "plan_catalog", str), "id")
    sku_ids = catalog_ids(inp, param_of(inp, "sku_catalog", str), "id")
    states = str_list_param(inp, "unit_states")
    unknown_states = [st for st in states if st not in UNIT_STATES]
    if unknown_states:
        raise ShapeError(f"parameter 'unit_states' names {unknown_states[0]!r}; prepaidUnits has "
                         f"{', '.join(UNIT_STATES)}")
    objects, in_scope = [], 0
    for sku in items_of(inp, "subscribed_skus"):
        sku_id = guid_of(sku, "skuId", "subscribed SKU")
        part = str(sku.get("skuPartNumber") or sku_id)
        sku_plans = dicts_of(sku, "servicePlans", f"SKU {part}", required=True)
        found = [p for p in sku_plans if _plan_id(p, f"SKU {part} service plan") in plans]
        if not found and sku_id.lower() not in sku_ids:
            continue
        in_scope += 1
        units = sku.get("prepaidUnits")
        if not isinstance(units, dict):
            raise ShapeError(f"SKU {part}: 'prepaidUnits' is missing or not an object")
        # every state is read and checked, not only those counted: a negative number elsewhere is malformed data
        all_counts = {st: whole_number(units.get(st), f"SKU {part}: prepaidUnits.{st}") for st in UNIT_STATES}
        consumed = whole_number(sku.get("consumedUnits"), f"SKU {part}: consumedUnits")
        counts = {st: all_counts[st] for st in states}
        if any(n > 0 for n in counts.values()):  # no sum: one number cannot cancel another
            names = ", ".join(str(p.get("servicePlanName") or p.get("servicePlanId")) for p in found)
            units_text = ", ".join(f"{n} {s}" for s, n in counts.items())
            objects.append(FindingObject(
                id=sku_id, name=part,
                detail=f"prepaid units: {units_text}; consumed: {consumed}; "
                       f"Copilot plans: {names or 'SKU listed in the Copilot SKU catalog'}",
            ))
    if not in_scope:
        return passed("0 in scope: geen abonnement met Copilot-plannen.",
                     "0 in scope: no subscription carries Copilot plans.")
    if not objects:
        return passed(
            f"{plural(in_scope, 'abonnement', 'abonnementen')} met Copilot-plannen, geen met bruikbare licenties"
            f" ({', '.join(states)}).",
            f"{plural(in_scope, 'subscription carries', 'subscriptions carry')} Copilot plans,"
            f" none with usable units ({', '.join(states)}).",
        )
    return failed(
        f"{plural(len(objects), 'abonnement', 'abonnementen')} met Copilot-plannen"
        f" {'heeft' if len(objects) == 1 else 'hebben'} bruikbare licenties.",
        f"{plural(len(objects), 'subscription', 'subscriptions')} with Copilot plans "
        f"{'has' if len(objects) == 1 else 'have'} usable units.",
        objects,
    )


def ai_plans_in_catalog(inp: CheckInput) -> CheckOutcome:
    """Every service plan whose name matches an AI pattern is classified in one of the known catalogs."""
    patterns = []
    for entry in catalog_of(inp, param_of(inp, "pattern_catalog", str)):
        try:
            patterns.append(re.compile(str_of(entry, "pattern", "AI plan-name pattern"), re.IGNORECASE))
        except re.error as exc:
            raise ShapeError(f"AI plan-name pattern {entry.get('pattern')!r} is invalid: {exc}") from exc
    known: set[str] = set()
    for name in str_list_param(inp, "known_catalogs"):
        known.update(catalog_ids(inp, name, "id"))
    ai_plans: dict[str, tuple[str, list[str]]] = {}
    for sku in items_of(inp, "subscribed_skus"):
        part = str(sku.get("skuPartNumber") or sku.get("skuId"))
        for plan in dicts_of(sku, "servicePlans", f"SKU {part}", required=True):
            name = str_of(plan, "servicePlanName", f"SKU {part} service plan")
            if any(p.search(name) for p in patterns):
                plan_id = _plan_id(plan, f"SKU {part} plan {name}")
                ai_plans.setdefault(plan_id, (name, []))[1].append(part)
    unknown = [
        FindingObject(id=pid, name=name, detail=f"in {', '.join(parts)}: review and classify in a catalog")
        for pid, (name, parts) in sorted(ai_plans.items()) if pid not in known
    ]
    if unknown:
        return failed(
            f"{plural(len(unknown), 'serviceplan lijkt', 'serviceplannen lijken')} op AI maar"
            f" {'staat' if len(unknown) == 1 else 'staan'} in geen catalogus:"
            " beoordeel en classificeer.",
            f"{plural(len(unknown), 'plan looks', 'plans look')} like AI but"
            f" {'is' if len(unknown) == 1 else 'are'} in no catalog: review and classify.",
            unknown,
        )
    if not ai_plans:
        return passed("0 in scope: geen serviceplan heeft een AI-naam.",
                     "0 in scope: no service plan has an AI-like name.")
    return passed(
        f"{plural(len(ai_plans), 'serviceplan', 'serviceplannen')} met een AI-naam, alle geclassificeerd.",
        f"{plural(len(ai_plans), 'service plan', 'service plans')} with an AI-like name, all classified.",
    )


def plans_need_attestation(inp: CheckInput) -> CheckOutcome:
    """Users holding a plan of the catalog plan_catalog make the rule manual (an attestation is needed); none: pass.

    Such a plan can switch on generative AI through a setting Graph does not show, and it is also bought for other
    features, so holding it is not a violation: whether the setting is off is for a person to attest.
    """
    catalog = param_of(inp, "plan_catalog", str)
    plans = catalog_ids(inp, catalog, "id")
    holders: dict[str, list[str]] = {}
    for user, held in _holders(inp, plans)[1]:
        for name, _ in held.values():
            holders.setdefault(name, []).append(_user_name(user))
    if not holders:
        return passed("0 in scope: geen gebruiker heeft een plan dat hier een verklaring vraagt.",
                      "0 in scope: no user holds a plan that needs an attestation here.")
    objects = [FindingObject(id=name, name=name, detail=f"held by {plural(len(users), 'user', 'users')}")
               for name, users in sorted(holders.items())]
    total = len({u for users in holders.values() for u in users})
    return outcome(
        Status.MANUAL,
        f"{plural(total, 'gebruiker heeft', 'gebruikers hebben')} een plan met AI-functies die Graph niet toont:"
        " een verklaring is nodig.",
        f"{plural(total, 'user holds', 'users hold')} a plan with AI features that Graph does not show:"
        " an attestation is needed.",
        objects,
    )
