"""Intune check: an assigned settings-catalog policy enforces a compliant Copilot, Recall or Edge setting."""

from __future__ import annotations

from collections.abc import Iterable
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


def _assigned_to(policy: Obj, where: str) -> list[str]:
    """Who an Intune policy is assigned to; exclusion targets assign it to no one."""
    targets = []
    for assignment in dicts_of(policy, "assignments", where):
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
        targets = _assigned_to(policy, f"Intune policy {name!r}")
        for definition, value in _configured(list_of(policy, "settings", name)):
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
