"""Drift between two runs of a tenant: rule status transitions, objects in and out, rule and source changes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from m365audit.drift.snapdiff import PathChange, diff, diff_items, object_tally
from m365audit.errors import UsageError
from m365audit.evidence import MANIFEST, ItemsError, previous_run, read_snapshot
from m365audit.models import (
    Finding,
    FindingObject,
    Frozen,
    Severity,
    Snapshot,
    SourceResult,
    Status,
    Text,
)

STATUS_RANK = {Status.PASS: 0, Status.MANUAL: 0, Status.WAIVED: 1, Status.ERROR: 2, Status.FAIL: 3}
ALERT_KINDS = ("regression", "new-objects")
KIND_ORDER = {"regression": 0, "new-objects": 1, "rule-changed": 2, "changed": 3, "improvement": 4}
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}
PATH_CAP = 25

Kind = Literal["regression", "new-objects", "rule-changed", "changed", "improvement"]
SourceState = Literal["ok", "error", "absent"]


# --------------------------------------------------------------------------- the report


class RunRef(Frozen):
    """One side of the comparison."""

    run_id: str
    started_at: str | None = None
    as_of: str | None = None
    verdict: str | None = None
    counts: dict[str, int] = {}
    policy_digest: str | None = None


class ObjectChange(Frozen):
    """An object present in both runs whose detail or waiver changed."""

    id: str
    name: str = ""
    old_detail: str = ""
    new_detail: str = ""
    old_waived: bool = False
    new_waived: bool = False


class RuleDrift(Frozen):
    """A rule whose status or objects changed between the runs."""

    rule_id: str
    severity: Severity
    title: Text
    kind: Kind
    old_status: Status | None
    new_status: Status | None
    causes: list[Text] = []
    added: list[FindingObject] = []
    removed: list[FindingObject] = []
    changed: list[ObjectChange] = []


class RuleChange(Frozen):
    """The rule itself changed: new, removed, or a new version (not the tenant)."""

    rule_id: str
    change: Literal["added", "removed", "version"]
    old_version: int | None = None
    new_version: int | None = None


class SourceDrift(Frozen):
    """A source whose readability or data changed: objects added, removed and changed, and the first paths."""

    source: str
    old_state: SourceState
    new_state: SourceState
    old_error: str | None = None
    new_error: str | None = None
    added: int = 0
    removed: int = 0
    changed: int = 0
    paths: list[PathChange] = []
    more_paths: int = 0


class DriftReport(Frozen):
    """What changed between two runs of one tenant (drift.json)."""

    schema_version: Literal[1] = 1
    tenant_id: str
    tenant_name: str = ""
    old_run: RunRef
    new_run: RunRef
    policy_pack_changed: bool = False
    rules: list[RuleDrift] = []
    rule_changes: list[RuleChange] = []
    sources: list[SourceDrift] = []

    @property
    def regressions(self) -> list[RuleDrift]:
        """Rules that got worse, or still fail with new offending objects: what an alert is about."""
        return [r for r in self.rules if r.kind in ALERT_KINDS]

    @property
    def alert(self) -> bool:
        return bool(self.regressions)

    @property
    def quiet(self) -> bool:
        return not (self.rules or self.rule_changes or self.sources or self.policy_pack_changed)


# --------------------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class RunState:
    """What drift needs from one run: its manifest fields, findings and snapshot."""

    run_id: str
    manifest: dict[str, Any]
    findings: list[Finding]
    snapshot: Snapshot

    def ref(self) -> RunRef:
        pack = self.manifest.get("policy_pack")
        return RunRef(run_id=self.run_id, started_at=self.manifest.get("started_at"),
                      as_of=self.manifest.get("as_of"), verdict=self.manifest.get("verdict"),
                      counts={s.value: sum(f.status is s for f in self.findings) for s in Status},
                      policy_digest=pack.get("digest") if isinstance(pack, dict) else None)


def current_run(run_id: str, snapshot: Snapshot, findings: list[Finding], manifest: dict[str, Any]) -> RunState:
    """The run being written (not yet on disk) as a RunState."""
    return RunState(run_id=run_id, manifest=manifest, findings=findings, snapshot=snapshot)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path} is missing", hint="give a complete run folder: reports/<tenant>/<run-id>") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})", hint="run `m365audit verify` on the run folder") from exc


def _finding(doc: dict[str, Any]) -> Finding:
    """A findings.json entry back as a Finding (title and message from its i18n block)."""
    fields = {k: v for k, v in doc.items() if k in Finding.model_fields and k not in ("notes", "title", "message")}
    i18n = doc.get("i18n") or {}
    for key in ("title", "message"):
        text = doc.get(key, "")
        fields[key] = i18n.get(key) or {"nl": text, "en": text}
    return Finding.model_validate(fields)


def load_run(run_dir: Path) -> RunState:
    """Read a complete run folder (manifest, findings.json, snapshot.json)."""
    manifest = _read_json(run_dir / MANIFEST)
    doc = _read_json(run_dir / "findings.json")
    try:
        findings = [_finding(f) for f in doc["findings"]]
        snapshot = read_snapshot(run_dir / "snapshot.json")  # its lists stay on disk, read page by page
    except OSError as exc:
        raise UsageError(f"{run_dir} cannot be compared: {exc.strerror}: {exc.filename}",
                         hint="run `m365audit verify` on the run folder") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{run_dir} cannot be compared: {str(exc).splitlines()[0]}",
                         hint="run `m365audit verify` on the run folder") from exc
    return RunState(run_id=run_dir.name, manifest=manifest, findings=findings, snapshot=snapshot)


# --------------------------------------------------------------------------- comparing


def compare(old: RunState, new: RunState) -> DriftReport:
    """The DriftReport from old to new: quiet when only order, paging or timestamps changed."""
    if old.snapshot.tenant_id != new.snapshot.tenant_id:
        raise UsageError(f"{old.run_id} and {new.run_id} are runs of different tenants "
                         f"({old.snapshot.tenant_id}, {new.snapshot.tenant_id})",
                         hint="compare two runs of one tenant: reports/<tenant>/<run-id>")
    old_by = {f.rule_id: f for f in old.findings}
    new_by = {f.rule_id: f for f in new.findings}
    rule_changes = _rule_changes(old_by, new_by)
    changed_rules = {c.rule_id for c in rule_changes}
    as_of = _date(new.manifest.get("as_of"))
    rules = [d for rid in sorted(set(old_by) | set(new_by))
             if (d := _rule_drift(old_by.get(rid), new_by.get(rid), rid in changed_rules, as_of)) is not None]
    rules.sort(key=lambda r: (KIND_ORDER[r.kind], SEVERITY_RANK[r.severity], r.rule_id))
    old_ref, new_ref = old.ref(), new.ref()
    return DriftReport(
        tenant_id=new.snapshot.tenant_id, tenant_name=new.snapshot.tenant_name, old_run=old_ref, new_run=new_ref,
        policy_pack_changed=bool(old_ref.policy_digest and new_ref.policy_digest
                                 and old_ref.policy_digest != new_ref.policy_digest),
        rules=rules, rule_changes=rule_changes, sources=source_drift(old.snapshot, new.snapshot))


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _rule_changes(old: dict[str, Finding], new: dict[str, Finding]) -> list[RuleChange]:
    out = [RuleChange(rule_id=r, change="added", new_version=new[r].rule_version) for r in sorted(set(new) - set(old))]
    out += [RuleChange(rule_id=r, change="removed", old_version=old[r].rule_version)
            for r in sorted(set(old) - set(new))]
    out += [RuleChange(rule_id=r, change="version", old_version=old[r].rule_version, new_version=new[r].rule_version)
            for r in sorted(set(old) & set(new)) if old[r].rule_version != new[r].rule_version]
    return out


def _objects(finding: Finding | None) -> dict[str, FindingObject]:
    """Objects by id; several objects with one id are merged (details joined) so order never matters."""
    grouped: dict[str, list[FindingObject]] = {}
    for obj in finding.objects if finding else []:
        grouped.setdefault(obj.id, []).append(obj)
    return {i: objs[0] if len(objs) == 1 else FindingObject(
        id=i, name=objs[0].name, detail="; ".join(sorted({o.detail for o in objs})),
        waived=all(o.waived for o in objs)) for i, objs in grouped.items()}


def _detail_key(detail: str) -> list[str]:
    """A detail as its sorted words: a check that lists targets in Graph's (nightly varying) order is not drift."""
    return sorted(re.findall(r"[^\s,;]+", detail))


def _rule_drift(old: Finding | None, new: Finding | None, rule_changed: bool, as_of: date | None) -> RuleDrift | None:
    before, after = _objects(old), _objects(new)
    added = [after[i] for i in sorted(set(after) - set(before))]
    removed = [before[i] for i in sorted(set(before) - set(after))]
    changed = [ObjectChange(id=i, name=after[i].name, old_detail=before[i].detail, new_detail=after[i].detail,
                            old_waived=before[i].waived, new_waived=after[i].waived)
               for i in sorted(set(before) & set(after))
               if before[i].waived != after[i].waived or _detail_key(before[i].detail) != _detail_key(after[i].detail)]
    old_status, new_status = (old.status if old else None), (new.status if new else None)
    if old_status == new_status and not (added or removed or changed):
        return None
    base = new or old
    assert base is not None
    kind = _kind(old_status, new_status, added, rule_changed)
    return RuleDrift(rule_id=base.rule_id, severity=base.severity, title=base.title, kind=kind,
                     old_status=old_status, new_status=new_status, causes=_causes(old, new, changed, as_of),
                     added=added, removed=removed, changed=changed)


def _kind(old: Status | None, new: Status | None, added: list[FindingObject], rule_changed: bool) -> Kind:
    if rule_changed or old is None or new is None:
        return "rule-changed"
    if old == new:
        return "new-objects" if new in (Status.FAIL, Status.ERROR) and any(not o.waived for o in added) else "changed"
    if old is Status.FAIL and new is Status.ERROR:
        return "changed"  # less is known, nothing got better
    return "regression" if STATUS_RANK[new] > STATUS_RANK[old] else "improvement" if STATUS_RANK[new] < \
        STATUS_RANK[old] else "changed"


def _causes(old: Finding | None, new: Finding | None, changed: list[ObjectChange], as_of: date | None) -> list[Text]:
    """Why a rule moved, where the findings say: rule version, waiver expiry, unreadable sources."""
    causes: list[Text] = []
    if old is None or new is None:
        causes.append(Text(en="new rule" if old is None else "rule removed from the policy pack",
                           nl="nieuwe regel" if old is None else "regel verwijderd uit het beleidspakket"))
        return causes
    if old.rule_version != new.rule_version:
        causes.append(Text(en=f"the rule changed (version {old.rule_version} → {new.rule_version}), not "
                              "necessarily the tenant", nl=f"de regel is gewijzigd (versie {old.rule_version} → "
                              f"{new.rule_version}), niet per se de tenant"))
    lost_waiver = old.status is Status.WAIVED and new.status in (Status.FAIL, Status.ERROR)
    if (lost_waiver or any(c.old_waived and not c.new_waived for c in changed)) and old.waiver is not None:
        until = old.waiver.expires
        if as_of is not None and as_of > until:
            causes.append(Text(en=f"waiver expired on {until.isoformat()} (approved by {old.waiver.approved_by})",
                               nl=f"uitzondering verlopen op {until.isoformat()} (goedgekeurd door "
                                  f"{old.waiver.approved_by})"))
        else:
            causes.append(Text(en="waiver removed or changed", nl="uitzondering verwijderd of gewijzigd"))
    old_errors = {e.source for e in old.errors}
    for e in new.errors:
        if e.source not in old_errors:
            code = " ".join(str(x) for x in (e.status, e.code) if x)
            causes.append(Text(en=f"source {e.source} could not be read tonight ({code or e.message})",
                               nl=f"bron {e.source} kon vannacht niet worden gelezen ({code or e.message})"))
    for source in sorted(old_errors - {e.source for e in new.errors}):
        causes.append(Text(en=f"source {source} readable again", nl=f"bron {source} weer leesbaar"))
    return causes


# --------------------------------------------------------------------------- sources


def _state(result: SourceResult | None) -> SourceState:
    return "absent" if result is None else "ok" if result.ok else "error"


def _error_text(result: SourceResult | None) -> str | None:
    if result is None or result.error is None:
        return None
    e = result.error
    return " ".join(str(x) for x in (e.status, e.code) if x) or e.message


def source_drift(old: Snapshot, new: Snapshot) -> list[SourceDrift]:
    """Sources whose readability or (normalised) data changed, sorted by key."""
    out = []
    for key in sorted(set(old.sources) | set(new.sources)):
        a, b = old.sources.get(key), new.sources.get(key)
        state_a, state_b = _state(a), _state(b)
        paths: list[PathChange] = []
        if a is not None and b is not None and a.ok and b.ok:
            old_items, new_items = (isinstance(x, Sequence) and not isinstance(x, (str, bytes))
                                    for x in (a.data, b.data))
            if old_items and new_items:  # lists, or collections kept on disk: streamed, not held
                paths = diff_items(a.data, b.data, key)
            else:  # a collection on one side only is diffed as the list it stands for (diff cannot print it)
                paths = diff(list(a.data) if old_items else a.data, list(b.data) if new_items else b.data, key)
            if not paths:
                continue
        elif state_a == state_b and _error_text(a) == _error_text(b):
            continue
        tally = object_tally(key, paths)
        out.append(SourceDrift(source=key, old_state=state_a, new_state=state_b, old_error=_error_text(a),
                               new_error=_error_text(b), added=tally["added"], removed=tally["removed"],
                               changed=tally["changed"], paths=paths[:PATH_CAP],
                               more_paths=max(0, len(paths) - PATH_CAP)))
    return out


def compare_with_previous(reports: Path, tonight: RunState,
                          scrubber: Callable[[Snapshot], Callable[[str], str]] | None = None,
                          ) -> tuple[DriftReport | None, str | None]:
    """Tonight against the tenant's newest complete run; (None, None) on a first run, (None, why) if unreadable.

    With a scrubber (pseudonymised reports), every text of the drift goes through the scrubbers built from
    both nights' snapshots, so a person who left since last night is replaced too. Tonight's findings must
    then be the pseudonymised ones, as the previous run's findings.json holds them.
    """
    previous = previous_run(reports, tonight.snapshot.tenant_id)
    if previous is None:
        return None, None
    try:
        old = load_run(previous)
        report = compare(old, tonight)
    except (UsageError, ItemsError) as exc:  # a run that cannot be read (or no longer): tonight is not compared
        return None, f"no drift against {previous.name}: {exc.message} ({exc.hint})"
    if scrubber is not None:
        texts = [scrubber(tonight.snapshot), scrubber(old.snapshot)]
        report = scrub(report, texts[:1] if texts[0] == texts[1] else texts)  # one table may know both nights
    return report, None


def scrub(report: DriftReport, texts: list[Callable[[str], str]]) -> DriftReport:
    """Every string of the report through each text function (e.g. Pseudonymiser.text): for drift.json,
    the drift section and the alerts of a pseudonymised run."""
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            for text in texts:
                value = text(value)
            return value
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return DriftReport.model_validate(walk(report.model_dump(mode="json")))
