"""Tonight's alert: the causes of a run (or of a failure), the reminder rhythm, delivery and alert-state.json."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from m365audit.drift import (
    INCOMPLETE_NIGHTS,
    PERMISSION_MISSING,
    REMIND_EVERY,
    AlertMessage,
    AlertState,
    Cause,
    DriftReport,
    NotifyRecord,
    advance,
    default_settings,
    deliver,
    due,
    failed_cause,
    failed_record,
    load_state,
    report_link,
    run_causes,
    save_state,
    with_incomplete,
)
from m365audit.models import Finding, Lang, Status

UNKNOWN_TENANT = "unknown-tenant"


@dataclass(frozen=True)
class AlertPlan:
    """Where alerts go and how often a persisting cause is told again."""

    targets: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    report_url: str | None = None
    remind_every: int = REMIND_EVERY
    incomplete_nights: int = INCOMPLETE_NIGHTS
    lang: Lang = "nl"
    env: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass
class Tonight:
    """The outcome: the record for notify.json, and the state to save once the run is sealed."""

    record: NotifyRecord
    state: AlertState | None = None
    warnings: list[str] = field(default_factory=list)

    def save(self, reports: Path) -> list[str]:
        """Write alert-state.json; a failure is a warning, never a lost run or another verdict."""
        if self.state is None:
            return self.warnings
        try:
            save_state(reports, self.state)
        except OSError as exc:
            self.warnings.append(f"alert-state.json could not be written ({exc}); tomorrow may repeat an alert")
        return self.warnings


async def _tell(plan: AlertPlan, state: AlertState, causes: list[Cause], night: str, message: AlertMessage,
                streak: int, since: str | None, run_dir: str) -> Tonight:
    told = due(state, causes, night, plan.remind_every)
    if not told:
        persisting = len(causes)
        reason = ("nothing to tell tonight" if not persisting else
                  f"{persisting} cause(s) persist; already told, next reminder after {plan.remind_every} nights")
        record = NotifyRecord(alert=False, reason=reason)
        return Tonight(record, advance(state, causes, night, (), streak, since))
    msg = replace(message, causes=told)
    deliveries = await deliver(msg, default_settings(plan.targets, plan.secret, run_dir, plan.env))
    sent = [c.key for c in told] if any(d.ok for d in deliveries) else []  # nothing arrived: try again tomorrow
    record = NotifyRecord(alert=True, reason=", ".join(sorted({c.kind for c in told})),
                          causes=[c.key for c in told], deliveries=deliveries)
    return Tonight(record, advance(state, causes, night, sent, streak, since, record.model_dump(mode="json")))


async def run_alert(plan: AlertPlan, reports: Path, *, tenant_id: str, tenant_name: str, night: str,
                    findings: Sequence[Finding], drift: DriftReport | None, verdict: str, exit_code: int,
                    run_id: str, run_dir: Path, work_dir: Path, missing_permissions: Sequence[str]) -> Tonight:
    """A night with a run: its causes, what is due, delivered with the Markdown report and report.html."""
    try:
        state, warning = load_state(reports, tenant_id)
        causes = run_causes(findings, drift, missing_permissions)
        explained = bool(missing_permissions) and all(
            f.errors and all(e.code == PERMISSION_MISSING for e in f.errors) for f in findings
            if f.status == Status.ERROR)  # the permissions cause already says why, and how to fix it
        causes, streak, since = with_incomplete(state, causes, night, verdict == "error" and not explained, False,
                                                plan.incomplete_nights)
        md = work_dir / "report.md"
        message = AlertMessage(tenant_id=tenant_id, tenant_name=tenant_name, lang=plan.lang, causes=[],
                               verdict=verdict, exit_code=exit_code, run_id=run_id, run_dir=str(run_dir),
                               report_link=report_link(run_dir, tenant_id, run_id, plan.report_url), drift=drift,
                               markdown=md.read_text(encoding="utf-8") if md.is_file() else None,
                               html_file=work_dir / "report.html")
        tonight = await _tell(plan, state, causes, night, message, streak, since, str(run_dir))
        tonight.warnings += [warning] if warning else []
        return tonight
    except Exception as exc:  # the alert never loses the run nor changes its verdict; its text may quote a URL
        return Tonight(failed_record(plan.targets, exc),
                       warnings=[f"the alert failed ({type(exc).__name__}); recorded in notify.json"])


async def failed_alert(plan: AlertPlan, reports: Path, tenant_id: str | None, night: str,
                       exc: BaseException) -> Tonight:
    """A night that failed before any evidence (no run folder): the state file alone says what was told."""
    tenant = tenant_id or UNKNOWN_TENANT
    try:
        state, warning = load_state(reports, tenant)
        causes, streak, since = with_incomplete(state, [failed_cause(exc)], night, True, True, plan.incomplete_nights)
        message = AlertMessage(tenant_id=tenant, tenant_name="", lang=plan.lang, causes=[], verdict=None,
                               exit_code=getattr(exc, "exit_code", 4))
        tonight = await _tell(plan, state, causes, night, message, streak, since, "")
        tonight.warnings += [warning] if warning else []
        tonight.save(reports)
        return tonight
    except Exception as inner:  # never hide the night's own error behind the alert's
        return Tonight(failed_record(plan.targets, inner))  # its text may quote a URL: scrubbed there


def tenant_of(tenant_id: str | None, env: Mapping[str, str] | None) -> str | None:
    """The tenant a failed night belongs to: --tenant-id, else AZURE_TENANT_ID."""
    return tenant_id or (os.environ if env is None else env).get("AZURE_TENANT_ID") or None
