"""Intune check: an assigned settings-catalog policy enforces a compliant Copilot, Recall or Edge setting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_of,
    dicts_of,
    failed,
    items_of,
    list_of,
    param_of,
    passed,
    str_of,
)
from m365audit.models import CheckOutcome, FindingObject

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


_EVERYONE = {"#microsoft.graph.alllicensedusersassignmenttarget": "all users",
             "#microsoft.graph.alldevicesassignmenttarget": "all devices"}
_GROUP = "#microsoft.graph.groupassignmenttarget"
_EXCLUSION = "#microsoft.graph.exclusiongroupassignmenttarget"


@dataclass(frozen=True)
class Scope:
    """Whom an Intune policy enforces for: the assignments that count, and why the others do not."""

    enforcing: list[str]  # "all devices", "all users", "group <id>"
    narrowed: list[str]  # assignments that do not count (filter, unknown target) and exclusions that narrow them
    reaches_someone: bool  # any assignment that is not an exclusion: a policy setting the opposite value counts


def assignment_scope(policy: Obj, where: str) -> Scope:
    """All users, all devices and groups count; a filter (include or exclude) or an unknown target makes that
    assignment not count, and an exclusion group narrows every assignment of the policy (docs/rules.md)."""
    counted: list[str] = []
    narrowed: list[str] = []
    for assignment in dicts_of(policy, "assignments", where):
        target = assignment.get("target")
        if not isinstance(target, dict) or not isinstance(target.get("@odata.type"), str):
            raise ShapeError(f"{where}: an assignment has no target type")
        kind = str(target["@odata.type"]).lower()
        group = target.get("groupId")
        if kind in (_GROUP, _EXCLUSION) and (not isinstance(group, str) or not group):
            raise ShapeError(f"{where}: a group assignment has no groupId")
        label = f"group {group}" if kind in (_GROUP, _EXCLUSION) else _EVERYONE.get(kind, kind.rsplit(".", 1)[-1])
        if kind == _EXCLUSION:
            narrowed.append(f"excludes {label}")
            continue
        filter_type = target.get("deviceAndAppManagementAssignmentFilterType")
        filter_id = target.get("deviceAndAppManagementAssignmentFilterId")
        if filter_type != "none" or filter_id is not None:
            shown = filter_type if isinstance(filter_type, str) else "missing" if filter_type is None else "unreadable"
            narrowed.append(f"{label} with assignment filter ({shown}"
                            + (f" {filter_id})" if isinstance(filter_id, str) else ")"))
        elif kind in _EVERYONE or kind == _GROUP:
            counted.append(label)
        else:
            narrowed.append(f"{label}: an assignment target this check does not know")
    reaches = bool(counted) or any(not n.startswith("excludes ") for n in narrowed)
    if any(n.startswith("excludes ") for n in narrowed):
        return Scope([], narrowed + [f"{c} (narrowed by the exclusion)" for c in counted], reaches)
    return Scope(counted, narrowed, reaches)


def _settings(policy: Obj, name: str) -> list[Any]:
    """The policy's settings, all of them: a settingCount that differs, or a next link, is a truncated read."""
    settings = list_of(policy, "settings", name, required=True)
    count = policy.get("settingCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ShapeError(f"Intune policy {name!r}: settingCount is {count!r}, not a whole number: "
                         "cannot tell whether every setting was read")
    if count != len(settings):
        raise ShapeError(f"Intune policy {name!r}: settingCount is {count}, {len(settings)} settings were read: "
                         "the settings are truncated")
    cut = [k for k in policy if isinstance(k, str) and k.endswith("@odata.nextLink")]
    if cut:
        raise ShapeError(f"Intune policy {name!r}: {cut[0]} is set: an expanded collection was cut short")
    return settings


def intune_setting_enforced(inp: CheckInput) -> CheckOutcome:
    """An assigned Intune policy sets one of the rule's catalog settings to a compliant value.

    An assigned policy that sets the opposite value turns the feature back on for someone: with the parameter
    fail_on_opposite (the pack's default) the rule fails; without it, it is residual exposure (objects on pass).
    """
    fail_on_opposite = param_of(inp, "fail_on_opposite", bool)
    wanted: dict[str, set[str]] = {}
    for entry in catalog_of(inp, "intune-settings"):
        if entry.get("rule") == inp.rule.id:
            values = list_of(entry, "compliant", f"intune-settings {entry.get('setting')}", required=True)
            wanted[_setting_key(str_of(entry, "setting", "intune-settings"))] = {_setting_key(str(v)) for v in values}
    if not wanted:
        raise ShapeError(f"catalog 'intune-settings' has no entry for rule {inp.rule.id}")
    good: dict[str, list[FindingObject]] = {}
    bad: dict[str, list[FindingObject]] = {}
    others: list[FindingObject] = []
    for policy in items_of(inp, "intune_policies"):
        name = str(policy.get("name") or policy.get("id"))
        if "assignments" not in policy or "settings" not in policy:
            raise ShapeError(f"Intune policy {name!r} has no 'settings' or 'assignments' list")
        scope = assignment_scope(policy, f"Intune policy {name!r}")
        targets = scope.enforcing
        for definition, value in _configured(_settings(policy, name)):
            key = _setting_key(definition)
            if key not in wanted:
                continue
            compliant = _setting_key(value) in wanted[key]
            obj = FindingObject(id=str(policy.get("id")), name=name, detail=(
                f"{definition} = {value.rsplit('_', 1)[-1]}"
                f" ({'compliant' if compliant else 'not compliant'}); "
                + (f"assigned to {', '.join(targets)}" if targets
                   else "no assignment that counts" + (": proves nothing" if compliant else ""))
                + (f"; not counted: {', '.join(scope.narrowed)}" if scope.narrowed else "")))
            if compliant and targets:
                good.setdefault(key, []).append(obj)
            elif not compliant and scope.reaches_someone:  # filtered or narrowed, it still reaches someone
                bad.setdefault(key, []).append(obj)
            else:
                others.append(obj)
    enforcing = [o for objs in good.values() for o in objs]
    opposite = [o for objs in bad.values() for o in objs]
    if enforcing and not (fail_on_opposite and opposite):
        return passed(
            "Een toegewezen Intune-beleid dwingt de instelling af"
            + (f"; {len(opposite)} toegewezen beleid zet het tegendeel (restrisico)." if opposite else "."),
            "An assigned Intune policy enforces the setting"
            + (f"; {len(opposite)} assigned policy sets the opposite (residual exposure)." if opposite else "."),
            enforcing + opposite,
        )
    return failed(
        "Geen toegewezen Intune-beleid dwingt de instelling af"
        + (" zonder tegenstrijdig toegewezen beleid." if enforcing else "."),
        "No assigned Intune policy enforces the setting"
        + (" without an opposite assigned policy." if enforcing else "."),
        enforcing + opposite + others,
    )
