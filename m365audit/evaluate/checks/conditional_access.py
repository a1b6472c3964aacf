"""Conditional Access check: an enabled policy blocks the Copilot apps for everyone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_ids,
    failed,
    items_of,
    list_of,
    lowered,
    passed,
    plural,
)
from m365audit.models import CheckOutcome, FindingObject, Text

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


def _unset(value: Any) -> bool:
    """Graph's 'not set' for a condition: null, an empty list, or an object whose members are all not set."""
    if value is None or value == []:
        return True
    if isinstance(value, dict):
        return all(_unset(v) for k, v in value.items() if not str(k).startswith("@odata."))
    return False


def _strings(value: Any) -> list[str] | None:
    """A list of strings, lower-cased; None when it is anything else (the condition cannot be proven harmless)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.lower() for v in value]
    return None


def _all_and_nothing_excluded(value: Any, include: str, exclude: str) -> bool:
    """platforms/locations that include 'all' and exclude nothing: set, but narrowing nothing."""
    if not isinstance(value, dict):
        return False
    included, excluded = _strings(value.get(include)), value.get(exclude)
    rest = {k: v for k, v in value.items() if k not in (include, exclude) and not str(k).startswith("@odata.")}
    return included is not None and "all" in included and _unset(excluded) and _unset(rest)


# conditionalAccessConditionSet members the check proves harmless when set: the member -> the proof
_HARMLESS: dict[str, Callable[[Any], bool]] = {
    "clientAppTypes": lambda v: (types := _strings(v)) is not None and "all" in types,
    "platforms": lambda v: _all_and_nothing_excluded(v, "includePlatforms", "excludePlatforms"),
    "locations": lambda v: _all_and_nothing_excluded(v, "includeLocations", "excludeLocations"),
}
_HANDLED = frozenset({"applications", "users"})  # read by the check itself: who and which apps


def _ca_narrowing(policy: Obj) -> list[str]:
    """Every condition that makes a block apply to only some sign-ins (so it is not a block for everyone).

    Each member of conditionalAccessConditionSet that is set narrows unless the check proves it does not
    (clientAppTypes with 'all', platforms or locations that include all and exclude nothing); null or empty is
    not set. A member this check does not know narrows too: a new kind of condition never counts as harmless.
    """
    conditions = policy["conditions"]
    found = []
    for key, value in conditions.items():
        if key in _HANDLED or str(key).startswith("@odata.") or _unset(value):
            continue
        proof = _HARMLESS.get(key)
        if proof is None or not proof(value):
            found.append(f"{key} condition" if key in _KNOWN_CONDITIONS
                         else f"condition {key!r} this check does not know")
    apps = conditions["applications"]
    for key, value in apps.items():
        if key not in ("includeApplications", "excludeApplications") and not str(key).startswith("@odata.") \
                and not _unset(value):
            found.append(f"applications.{key} set")
    return found


_KNOWN_CONDITIONS = frozenset({
    "clientAppTypes", "platforms", "locations", "devices", "signInRiskLevels", "userRiskLevels",
    "servicePrincipalRiskLevels", "insiderRiskLevels", "clientApplications", "authenticationFlows",
})


_USERS_READ = frozenset({"includeUsers", "excludeUsers", "excludeGroups", "excludeRoles",
                         "excludeGuestsOrExternalUsers"})
_USERS_WIDENING = frozenset({"includeGroups", "includeRoles", "includeGuestsOrExternalUsers"})  # moot with All


def _users_narrowing(users: Obj) -> list[str]:
    """A member of conditions.users the check does not read (beyond inclusions, moot with All) narrows."""
    return [f"users.{k} this check does not know" for k, v in users.items()
            if k not in _USERS_READ | _USERS_WIDENING and not str(k).startswith("@odata.") and not _unset(v)]


def ca_blocks_copilot_apps(inp: CheckInput) -> CheckOutcome:
    """An enabled CA policy blocks every ca_target Copilot app for all users; exclusions are residual exposure."""
    targets = {k: e for k, e in catalog_ids(inp, "copilot-first-party-apps", "app_id").items() if e.get("ca_target")}
    if not targets:
        raise ShapeError("catalog 'copilot-first-party-apps' marks no app with ca_target: true")
    blocked: dict[str, list[str]] = {}
    residual: list[FindingObject] = []
    not_counted: list[FindingObject] = []
    for policy in items_of(inp, "conditional_access"):
        name = str(policy.get("displayName") or policy.get("id"))
        controls = policy.get("grantControls")
        built_in = list_of(controls, "builtInControls", name) if isinstance(controls, dict) else []
        apps = _ca_lists(policy, "applications")
        include = {lowered(a) for a in list_of(apps, "includeApplications", name)}
        exclude = {lowered(a) for a in list_of(apps, "excludeApplications", name)}
        covered = [t for t in targets if (t in include or "all" in include) and t not in exclude]
        if "block" not in [lowered(c) for c in built_in] or not covered:
            continue
        users = _ca_lists(policy, "users")
        why = [] if "all" in {lowered(u) for u in list_of(users, "includeUsers", name)} else ["not for all users"]
        why += _ca_narrowing(policy) + _users_narrowing(users)
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
                         for x in list_of(users, field, name)]
        if not _unset(users.get("excludeGuestsOrExternalUsers")):
            residual.append(FindingObject(id="guests-or-external-users", name="excluded guests or external users",
                                          detail=f"excluded from '{name}'"))
    missing = [FindingObject(id=t, name=str(targets[t].get("name") or t),
                             detail="no enabled Conditional Access policy blocks it for all users")
               for t in targets if t not in blocked]
    if missing:
        return failed(
            f"{plural(len(missing), 'Copilot-app is', 'Copilot-apps zijn')} niet geblokkeerd voor alle"
            f" gebruikers. {_STANDALONE.nl}",
            f"{plural(len(missing), 'Copilot app is', 'Copilot apps are')} not blocked for all users."
            f" {_STANDALONE.en}",
            missing + not_counted,
        )
    policies = sorted({n for names in blocked.values() for n in names})
    return passed(
        f"Geblokkeerd door {', '.join(policies)}; {plural(len(residual), 'uitzondering', 'uitzonderingen')}"
        f" (restrisico). {_STANDALONE.nl}",
        f"Blocked by {', '.join(policies)}; {plural(len(residual), 'exclusion', 'exclusions')}"
        f" (residual exposure). {_STANDALONE.en}",
        residual,
    )
