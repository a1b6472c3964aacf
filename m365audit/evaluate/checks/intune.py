"""Intune check: an assigned settings-catalog policy enforces a compliant Windows AI or Edge Copilot setting."""

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
    outcome,
    param_of,
    passed,
    str_of,
)
from m365audit.models import CheckOutcome, FindingObject, Status

# --------------------------------------------------------------------------- Intune


def _setting_key(setting_id: str) -> str:
    """Edge ids carry an ADMX version (edgev99, edgev130): compare on the part after '~policy~'."""
    return setting_id.lower().rsplit("~policy~", 1)[-1]


_VALUE_KEYS = ("choiceSettingValue", "simpleSettingValue", "choiceSettingCollectionValue",
               "simpleSettingCollectionValue", "groupSettingValue", "groupSettingCollectionValue")


def _configured(node: Any, where: str) -> Iterable[tuple[str, str]]:
    """(settingDefinitionId, chosen value) for every setting instance, at any depth (group settings nest).

    An instance whose id or value cannot be read may be the very setting a rule looks for: a shape error.
    """
    if isinstance(node, list):
        for child in node:
            yield from _configured(child, where)
    elif isinstance(node, dict):
        definition = node.get("settingDefinitionId")
        if "settingDefinitionId" in node:
            if not isinstance(definition, str) or not definition:
                raise ShapeError(f"{where}: a setting instance has no readable settingDefinitionId")
            present = [k for k in _VALUE_KEYS if k in node]
            if not present or any(not isinstance(node[k], list if k.endswith("CollectionValue") else dict)
                                  for k in present):
                raise ShapeError(f"{where}: setting {definition} has no readable value")
            for key in ("choiceSettingValue", "simpleSettingValue"):
                value = node.get(key)
                if isinstance(value, dict):
                    chosen = value.get("value")  # a choice is an option id (text); a simple value may be a number
                    if not isinstance(chosen, str) if key == "choiceSettingValue" else \
                            isinstance(chosen, (dict, list)):
                        raise ShapeError(f"{where}: setting {definition} has no readable {key}.value")
                    if chosen is not None:  # a secret simple value may come back empty: it proves nothing
                        yield definition, str(chosen)
        for child in node.values():
            yield from _configured(child, where)


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
    if not all(isinstance(s, dict) and isinstance(s.get("settingInstance"), dict)
               and "settingDefinitionId" in s["settingInstance"] for s in settings):
        raise ShapeError(f"Intune policy {name!r}: a setting has no readable settingInstance or settingDefinitionId")
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


@dataclass(frozen=True)
class _Setting:
    """What each value of one catalog setting means for the rule (keys compared as _setting_key gives them)."""

    compliant: set[str]
    neutral: set[str]
    unconfirmed: set[str]
    confirmed: bool  # false: the settingDefinitionId itself is inferred: every value is unconfirmed

    def verdict(self, value: str) -> str:
        key = _setting_key(value)
        if not self.confirmed or key in self.unconfirmed:
            return "unconfirmed"
        return "compliant" if key in self.compliant else "neutral" if key in self.neutral else "not compliant"


def _catalog_settings(inp: CheckInput) -> dict[str, _Setting]:
    """The rule's settings from catalog intune-settings; at least one of them must have a compliant value."""
    wanted: dict[str, _Setting] = {}
    for entry in catalog_of(inp, "intune-settings"):
        if entry.get("rule") != inp.rule.id:
            continue
        where = f"intune-settings {entry.get('setting')}"
        unconfirmed = dicts_of(entry, "unconfirmed", where)
        confirmed = entry.get("confirmed", True)
        if not isinstance(confirmed, bool):
            raise ShapeError(f"{where}: 'confirmed' is {confirmed!r}, not true or false")
        wanted[_setting_key(str_of(entry, "setting", "intune-settings"))] = _Setting(
            {_setting_key(str(v)) for v in list_of(entry, "compliant", where, required=True)},
            {_setting_key(str(v)) for v in list_of(entry, "neutral", where)},
            {_setting_key(str_of(u, "value", where)) for u in unconfirmed}, confirmed)
    if not any(s.compliant for s in wanted.values()):
        raise ShapeError(f"catalog 'intune-settings' has no compliant value for rule {inp.rule.id}")
    return wanted


_NOTE = {"compliant": "compliant", "not compliant": "not compliant", "neutral": "does not decide this rule",
         "unconfirmed": "meaning unconfirmed"}


def intune_setting_enforced(inp: CheckInput) -> CheckOutcome:
    """An assigned Intune policy sets one of the rule's catalog settings to a compliant value.

    An assigned policy that sets the opposite value turns the feature back on for someone: with the parameter
    fail_on_opposite (the pack's default) the rule fails; without it, it is residual exposure (objects on pass).
    An assigned policy that sets a value the catalog marks unconfirmed (or a setting whose id is unconfirmed)
    makes the rule error: what that value does is not known, so it is neither proof nor guessed failure.
    """
    fail_on_opposite = param_of(inp, "fail_on_opposite", bool)
    wanted = _catalog_settings(inp)
    good: list[FindingObject] = []
    bad: list[FindingObject] = []
    unsure: list[FindingObject] = []
    others: list[FindingObject] = []
    for policy in items_of(inp, "intune_policies"):
        name = str(policy.get("name") or policy.get("id"))
        if "assignments" not in policy or "settings" not in policy:
            raise ShapeError(f"Intune policy {name!r} has no 'settings' or 'assignments' list")
        scope = assignment_scope(policy, f"Intune policy {name!r}")
        targets = scope.enforcing
        for definition, value in _configured(_settings(policy, name), f"Intune policy {name!r}"):
            setting = wanted.get(_setting_key(definition))
            if setting is None:
                continue
            verdict = setting.verdict(value)
            obj = FindingObject(id=str(policy.get("id")), name=name, detail=(
                f"{definition} = {value.rsplit('_', 1)[-1]} ({_NOTE[verdict]}); "
                + (f"assigned to {', '.join(targets)}" if targets
                   else "no assignment that counts" + (": proves nothing" if verdict == "compliant" else ""))
                + (f"; not counted: {', '.join(scope.narrowed)}" if scope.narrowed else "")))
            if verdict == "compliant" and targets:
                good.append(obj)
            elif verdict == "unconfirmed" and scope.reaches_someone:
                unsure.append(obj)
            elif verdict == "not compliant" and scope.reaches_someone:  # filtered or narrowed, it still reaches
                bad.append(obj)
            else:
                others.append(obj)
    if unsure:
        return outcome(
            Status.ERROR,
            "Toegewezen Intune-beleid zet een instelling op een waarde waarvan niet vaststaat wat die doet (zie de"
            " objecten). Daarom is deze regel niet te beoordelen. Zoek op een testapparaat uit wat de waarde doet en"
            " leg dat vast in de catalogus 'intune-settings'.",
            "An assigned Intune policy sets a setting to a value whose effect is unconfirmed (see the objects), so"
            " the rule cannot be judged. Check on a test device what the value does and record it in the catalog"
            " 'intune-settings'.",
            unsure + good + bad + others,
        )
    if good and not (fail_on_opposite and bad):
        return passed(
            "Een toegewezen Intune-beleid dwingt de instelling af"
            + (f"; {len(bad)} toegewezen beleid zet het tegendeel (restrisico)." if bad else "."),
            "An assigned Intune policy enforces the setting"
            + (f"; {len(bad)} assigned policy sets the opposite (residual exposure)." if bad else "."),
            good + bad,
        )
    return failed(
        "Geen toegewezen Intune-beleid dwingt de instelling af"
        + (" zonder tegenstrijdig toegewezen beleid." if good else "."),
        "No assigned Intune policy enforces the setting"
        + (" without an opposite assigned policy." if good else "."),
        good + bad + others,
    )
