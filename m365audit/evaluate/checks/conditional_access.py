"""Conditional Access check: an enabled policy blocks the Copilot apps for everyone."""

from __future__ import annotations

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


def _ca_narrowing(policy: Obj) -> list[str]:
    """Conditions that make a block apply to only some sign-ins (so it is not a block for everyone)."""
    conditions = policy["conditions"]
    found = []
    client_types = [lowered(t) for t in list_of(conditions, "clientAppTypes", "CA conditions")]
    if client_types and "all" not in client_types:
        found.append(f"client apps {', '.join(client_types)} only")
    for field in ("signInRiskLevels", "userRiskLevels", "servicePrincipalRiskLevels"):
        if list_of(conditions, field, "CA conditions"):
            found.append(f"{field} set")
    for field in ("platforms", "locations", "devices", "insiderRiskLevels"):
        if conditions.get(field) not in (None, [], {}):
            found.append(f"{field} condition")
    return found


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
                         for x in list_of(users, field, name)]
        if users.get("excludeGuestsOrExternalUsers"):
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
