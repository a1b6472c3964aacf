"""The guard for issue 13, class 1: break one property a passing rule reads, and the rule must stop passing.

For every fixture tenant and every rule that passes there, the rule is run once on the snapshot with every
item wrapped in a recorder that notes each property the check reads. For one in-scope item of each source
(the first whose removal changes the verdict, else the most-read one), every property read is mutated one at a
time: removed, set to null, set to another type, set to an unknown enum string. Each mutation that leaves the
rule at `pass` must be declared in OPTIONAL below, with the reason; anything else fails this test. Evaluation
is pure, so this runs in process on the snapshot, collected once per tenant from its recording.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.evaluate import load_pack
from m365audit.evaluate.engine import run_check
from m365audit.evidence import PagedItems
from m365audit.models import PolicyPack, Rule, Snapshot, Status
from tests.conftest import FIXED_NOW, tenant_dirs

TENANTS = tenant_dirs()
TODAY: date = FIXED_NOW.date()
UNKNOWN = "unknownFutureValue"

Path_ = tuple[Any, ...]  # keys and list indexes from the item (or the whole object of a single-object source)

# (rule id pattern, source, property pattern, mutations) -> why the rule may keep passing. Property patterns are
# dotted with [] for any list index; mutations are "remove", "null", "type", "enum", or "*" for all.
OPTIONAL: dict[tuple[str, str, str, str], str] = {
    # --- naming only: these only label an object in a finding, they never decide a verdict
    ("*", "*", "displayName", "*"): "names the object in a finding only",
    ("*", "*", "name", "*"): "names the object in a finding only",
    ("*", "*", "id", "*"): "names the object in a finding only",
    ("*", "*", "skuPartNumber", "*"): "names the SKU in a finding only (skuId identifies it)",
    ("*", "*", "userPrincipalName", "*"): "names the user in a finding only",
    ("*", "*", "accountEnabled", "*"): "users and service principals: marks a disabled account in a finding; "
                                       "a plan or a grant counts whether or not the account is enabled",
    ("*", "subscribed_skus", "servicePlans[].servicePlanName", "*"):
        "names the plan only; the plan is identified by servicePlanId",
    ("copilot-catalog-current", "subscribed_skus", "servicePlans[].servicePlanName", "*"):
        "an AI-like name is what makes a plan in scope: a name that no longer looks like AI drops it out of scope "
        "(the rule reads names precisely to find plans it does not know)",
    # --- Graph's 'not set': null or absent members of conditionalAccessConditionSet narrow nothing
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.*", "remove"):
        "an absent condition is Graph's 'not set': it narrows nothing",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.*", "null"):
        "a null condition is Graph's 'not set': it narrows nothing",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.applications.excludeApplications", "null"):
        "null is Graph's 'not set': nothing excluded",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.applications.excludeApplications", "remove"):
        "absent is Graph's 'not set': nothing excluded",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.applications.excludeApplications[]", "*"):
        "an excluded app other than the Copilot apps does not narrow the Copilot block",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.users.exclude*", "*"):
        "user, group and role exclusions are residual exposure: named on the pass, they do not make it fail "
        "(POLICY-PACK.md); null or absent is Graph's 'not set'",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.users.include*", "*"):
        "moot once includeUsers holds All (only includeUsers decides 'all users')",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.clientAppTypes", "remove"):
        "absent is Graph's 'not set': all client apps",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.clientAppTypes", "null"):
        "null is Graph's 'not set': all client apps",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.*RiskLevels", "remove"):
        "absent is Graph's 'not set': no risk condition",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.*RiskLevels", "null"):
        "null is Graph's 'not set': no risk condition",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.applications.includeApplications[]", "*"):
        "the policy holds another app id besides the Copilot app; the Copilot app is still blocked",
    # --- Intune: the check finds a setting by its key and value, not by annotations
    ("endpoint-*", "intune_policies", "settings[].id", "*"): "the id of a setting instance names nothing checked",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.@odata.type", "*"):
        "the value is read by its key (choiceSettingValue, simpleSettingValue), not by the type annotation",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.choiceSettingValue.@odata.type", "*"):
        "the value is read by its key, not by the type annotation",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.*TemplateReference", "*"):
        "template references say which template a setting came from, not what it sets",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.choiceSettingValue.*TemplateReference", "*"):
        "template references say which template a value came from, not what it sets",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.choiceSettingValue.children", "*"):
        "children of a setting that is itself compliant: only searched for further catalog settings",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.settingDefinitionId", "enum"):
        "a sibling setting of the enforcing one renamed to an id no catalog entry names: a setting the rule does "
        "not read (the enforcing setting renamed stops the pass)",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.choiceSettingValue.value", "enum"):
        "an unknown option of a sibling setting the rule does not read (the enforcing one becomes not compliant)",
    ("endpoint-*", "intune_policies", "settings[].settingInstance.choiceSettingValue.children?*", "*"):
        "inside the children of an Edge list policy (its URL list): no rule reads list entries, only the list "
        "setting's own choice (one '[]' only in the pattern: fnmatch reads a second as a character class)",
    ("endpoint-*", "intune_policies", "assignments[].target.@odata.type", "enum"):
        "an unknown target type does not count: the policy still enforces through its other assignment",
    ("endpoint-*", "intune_policies", "assignments[].target.@odata.type", "type"):
        "an unreadable target does not count: the policy still enforces through its other assignment",
    ("endpoint-*", "intune_policies", "assignments[].target.deviceAndAppManagementAssignment*", "*"):
        "a filter on one assignment makes that one not count: the policy still enforces through its other one",
    ("endpoint-*", "intune_policies", "assignments[].target", "*"):
        "the other assignment of the policy still counts",
    ("endpoint-*", "intune_policies", "assignments[].target.groupId", "enum"):
        "any group id is a group: the finding names it as the scope",
    ("ca-blocks-copilot-apps", "conditional_access", "conditions.applications.excludeApplications", "enum"):
        "an excluded app other than the Copilot apps does not narrow the Copilot block",
    # --- redundant guards: each alone already decides the item (three-valued AND: one false is enough)
    ("copilot-agents-not-deployed", "copilot_packages", "isBlocked", "*"):
        "the package is also available to no one and deployed to no one: harmless whatever isBlocked says",
    ("copilot-agents-not-deployed", "copilot_packages", "type", "*"):
        "the package is also blocked, or available and deployed to no one: harmless whatever its type",
    ("endpoint-recall-disabled", "intune_policies", "settings[].settingInstance*", "*"):
        "the policy sets both Recall settings compliantly; either alone makes Recall unavailable (catalog)",
    ("copilot*-plans-not-assigned", "users", "assignedLicenses[].disabledPlans", "*"):
        "assignedPlans shows the same plans as Deleted, which overrides the licence (docs/rules.md)",
    ("copilot*-plans-not-assigned", "subscribed_skus", "capabilityStatus", "*"):
        "the SKU carries no plan of the rule's catalog: usable or not, it grants none",
    ("teams-premium-ai-attested", "subscribed_skus", "capabilityStatus", "*"):
        "the SKU carries no plan of the rule's catalog (ai-plans-attested): usable or not, it grants none",
    # --- text and names that decide nothing
    ("consent-users-cannot-grant-org-data", "authorization_policy", "allowUserConsentForRiskyApps", "*"):
        "adds a note to the pass only; the verdict rests on permissionGrantPoliciesAssigned",
    ("copilot-usage-none", "copilot_usage", "?* Last Activity Date", "remove"):
        "the overall 'Last Activity Date' column covers every app; the per-app columns only detail a finding",
    ("copilot-usage-none", "copilot_usage", "Display Name", "*"): "names the user in a finding only",
    ("copilot-usage-none", "copilot_usage", "User Principal Name", "*"): "names the user in a finding only",
    ("copilot-*", "copilot_policy_settings", "policyId", "*"): "names the tenant policy in the finding only",
    ("*", "delegated_grants", "principalId", "*"): "counts the users of a grant in a finding only",
    ("*", "delegated_grants", "scope", "enum"):
        "scopes are open-ended names: one that is no organisation-data permission grants nothing counted",
    ("apps-tenant-wide-data-access-approved", "delegated_grants", "clientId", "*"):
        "a single user's grant is not tenant-wide: its client decides nothing for this rule",
    ("ai-apps-*", "resource_permissions", "appRoles[].*", "*"):
        "a role no assignment refers to decides nothing (a referenced role that is broken makes the rule error)",
    ("apps-*", "resource_permissions", "appRoles[].*", "*"):
        "a role no assignment refers to decides nothing (a referenced role that is broken makes the rule error)",
    ("*", "service_principals", "verifiedPublisher", "null"): "null is Graph's 'not verified'",
    ("*", "service_principals", "verifiedPublisher", "remove"): "absent is Graph's 'not verified'",
    ("*", "service_principals", "verifiedPublisher.displayName", "*"):
        "a publisher name is free text: a name no AI pattern matches is a fact, not an unknown value",
    # --- licences and apps: values that only widen what counts, never narrow it
    ("copilot-*plans-not-assigned", "users", "assignedLicenses[].disabledPlans[]", "*"):
        "the user's licence carries no catalog plan (an F3 or E3 plan is disabled): nothing to switch on",
    ("*", "service_principals", "appOwnerOrganizationId", "*"):
        "null or an unknown owner tenant makes an app third-party, which widens what the AI-app patterns test",
    # --- policy-pack-v2 routes: values that cannot change a verdict (the code was read for each)
    ("consent-users-cannot-grant-org-data", "permission_classifications", "permissionName", "enum"):
        "a classification of a permission that is no organisation-data permission changes nothing: only names "
        "the catalog org-data-permissions lists can raise a finding (classification and resourceAppId are checked)",
    ("copilot-metered-usage-none", "copilot_metered_usage", "serviceId", "enum"):
        "any consumption above zero fails the rule whatever its serviceId (no id is skipped); the id only names "
        "the service in a finding",
}


# --------------------------------------------------------------------------- recording what a check reads


class _Log:
    def __init__(self) -> None:
        self.paths: set[Path_] = set()


def _wrap(value: Any, path: Path_, log: _Log) -> Any:
    if isinstance(value, dict) and not isinstance(value, _RDict):
        return _RDict(value, path, log)
    if isinstance(value, list) and not isinstance(value, _RList):
        return _RList(value, path, log)
    return value


class _RDict(dict):  # type: ignore[type-arg]
    """A JSON object that notes every key a check reads (get, [], in, items, values)."""

    def __init__(self, data: dict[str, Any], path: Path_, log: _Log) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def _seen(self, key: Any) -> Path_:
        path = (*self._path, key)
        self._log.paths.add(path)
        return path

    def __getitem__(self, key: Any) -> Any:
        return _wrap(super().__getitem__(key), self._seen(key), self._log)

    def get(self, key: Any, default: Any = None) -> Any:
        path = self._seen(key)
        return _wrap(super().__getitem__(key), path, self._log) if super().__contains__(key) else default

    def __contains__(self, key: object) -> bool:
        self._seen(key)
        return super().__contains__(key)

    def items(self) -> Any:
        return [(k, _wrap(v, self._seen(k), self._log)) for k, v in super().items()]

    def values(self) -> Any:
        return [_wrap(v, self._seen(k), self._log) for k, v in super().items()]


class _RList(list):  # type: ignore[type-arg]
    """A JSON array whose elements record what is read of them."""

    def __init__(self, data: list[Any], path: Path_, log: _Log) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = index if index >= 0 else len(self) + index
        return _wrap(super().__getitem__(index), (*self._path, i), self._log)

    def __iter__(self) -> Iterator[Any]:
        for i, v in enumerate(super().__iter__()):
            yield _wrap(v, (*self._path, i), self._log)


# --------------------------------------------------------------------------- the snapshots


@pytest.fixture(scope="session")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Snapshot, PolicyPack]]:
    """Each fixture tenant collected once from its recording (no network), its lists held in memory."""
    out = {}
    for tenant in TENANTS:
        local = tenant / "local" if (tenant / "local").is_dir() else None
        result = asyncio.run(run_audit(AuditOptions(reports=tmp_path_factory.mktemp(tenant.name), replay=tenant,
                                                    local=local, now=FIXED_NOW)))
        sources = {k: r.model_copy(update={"data": list(r.data) if isinstance(r.data, PagedItems) else r.data})
                   for k, r in result.snapshot.sources.items()}
        out[tenant.name] = (result.snapshot.model_copy(update={"sources": sources}), load_pack(None, local))
    return out


def _with(snapshot: Snapshot, key: str, data: Any) -> Snapshot:
    source = snapshot.sources[key].model_copy(update={"data": data})
    return snapshot.model_copy(update={"sources": {**snapshot.sources, key: source}})


def _status(rule: Rule, snapshot: Snapshot, pack: PolicyPack) -> Status:
    return run_check(rule, snapshot, pack, TODAY).status


def _reads(rule: Rule, snapshot: Snapshot, pack: PolicyPack) -> dict[str, set[Path_]]:
    """Source key -> every path the rule's check reads, from one recorded run."""
    logs = {key: _Log() for key in rule.sources}
    recorded = snapshot
    for key in rule.sources:
        recorded = _with(recorded, key, _wrap(snapshot.sources[key].data, (), logs[key]))
    assert _status(rule, recorded, pack) is Status.PASS, "recording must not change the verdict"
    return {key: log.paths for key, log in logs.items()}


# --------------------------------------------------------------------------- mutations


def _text(path: Path_) -> str:
    return "".join("[]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _other_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) or value is None:
        return 7
    if isinstance(value, list):
        return {"unexpected": True}
    return ["unexpected"]


def _mutations(value: Any, in_list: bool) -> Iterator[tuple[str, Any]]:
    if not in_list:
        yield "remove", None
    if value is not None:
        yield "null", None
    yield "type", _other_type(value)
    if isinstance(value, str) or value is None:
        yield "enum", UNKNOWN
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        yield "enum", [UNKNOWN]


def _get(obj: Any, path: Path_) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _mutated(item: Any, path: Path_, kind: str, new: Any) -> Any:
    item = copy.deepcopy(item)
    parent = _get(item, path[:-1])
    if kind == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return item


def _declared(rule_id: str, key: str, prop: str, kind: str) -> str | None:
    for (rule_pat, source, prop_pat, kinds), why in OPTIONAL.items():
        if fnmatch.fnmatchcase(rule_id, rule_pat) and source in ("*", key) and kinds in ("*", kind) \
                and fnmatch.fnmatchcase(prop, prop_pat):
            return why
    return None


@dataclass
class Tally:
    ran: int = 0
    declared: int = 0
    rules: int = 0
    survivors: list[str] = field(default_factory=list)


def _choose(rule: Rule, snapshot: Snapshot, pack: PolicyPack, key: str, reads: set[Path_]) -> Any:
    """The item of a list source to mutate: the first whose removal changes the verdict, else the most-read."""
    data = snapshot.sources[key].data
    if not isinstance(data, list):
        return None
    counts: dict[int, int] = {}
    for path in reads:
        if path and isinstance(path[0], int):
            counts[path[0]] = counts.get(path[0], 0) + 1
    ranked = sorted(counts, key=lambda i: (-counts[i], i))
    for i in ranked:
        if _status(rule, _with(snapshot, key, data[:i] + data[i + 1:]), pack) is not Status.PASS:
            return i
    return ranked[0] if ranked else None


def mutate_rule(rule: Rule, snapshot: Snapshot, pack: PolicyPack, tally: Tally) -> None:
    tally.rules += 1
    for key, reads in _reads(rule, snapshot, pack).items():
        data = snapshot.sources[key].data
        index = _choose(rule, snapshot, pack, key, reads)
        if isinstance(data, list) and index is None:
            continue  # an empty source: nothing in scope to break (its emptiness is a fact, read completely)
        item = data[index] if index is not None else data
        prefix: Path_ = (index,) if index is not None else ()
        for path in sorted((p[len(prefix):] for p in reads if p[:len(prefix)] == prefix and len(p) > len(prefix)),
                           key=repr):
            try:
                value = _get(item, path)
            except (KeyError, IndexError, TypeError):
                continue  # read but absent: there is nothing there to break
            prop = _text(path)
            for kind, new in _mutations(value, isinstance(path[-1], int)):
                broken = _mutated(item, path, kind, new)
                changed = data[:index] + [broken] + data[index + 1:] if index is not None else broken
                tally.ran += 1
                if _status(rule, _with(snapshot, key, changed), pack) is not Status.PASS:
                    continue
                if _declared(rule.id, key, prop, kind):
                    tally.declared += 1
                else:
                    survivor = f"{rule.id}: {key} item {index}: {prop} {kind} -> still pass"
                    if survivor not in tally.survivors:
                        tally.survivors.append(survivor)


@pytest.mark.parametrize("tenant", TENANTS, ids=[t.name for t in TENANTS])
def test_no_broken_property_keeps_a_rule_passing(tenant: Path, snapshots: dict[str, tuple[Snapshot, PolicyPack]],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    snapshot, pack = snapshots[tenant.name]
    tally = Tally()
    for rule in pack.rules:
        if rule.active_check is None or any(k not in snapshot.sources for k in rule.sources):
            continue
        if _status(rule, snapshot, pack) is Status.PASS:
            mutate_rule(rule, snapshot, pack, tally)
    with capsys.disabled():
        print(f"\n[mutations] {tenant.name}: {tally.rules} passing rules, {tally.ran} mutations, "
              f"{tally.declared} declared safe, {len(tally.survivors)} undeclared survivors")
    assert tally.survivors == [], "a broken property left the rule passing (fix the check, or declare it " \
                                  "in OPTIONAL with the reason):\n" + "\n".join(tally.survivors)


def test_the_optional_table_is_not_a_blanket() -> None:
    """No entry may cover every property of a rule: each names a property (pattern) and a reason."""
    for (rule_pat, source, prop, kinds), why in OPTIONAL.items():
        assert prop not in ("*", "") and why.strip(), (rule_pat, source, prop, kinds)
