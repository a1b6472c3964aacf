"""Run one audit end to end: sign in (or replay), collect, evaluate, and write the run folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import httpx

from m365audit import __version__
from m365audit.audit.alerting import AlertPlan, Tonight, failed_alert, run_alert, tenant_of
from m365audit.audit.early import EarlyEvaluation
from m365audit.audit.pace import fewer_collections
from m365audit.collect import (
    AI_AUDIT_RECORD_TYPES,
    AUDIT_POLL_INTERVAL,
    DEPENDENCY_FAILED,
    SOURCES,
    FetchContext,
    app_only,
    build_snapshot,
    collect,
    delegated_answers,
    with_dependencies,
)
from m365audit.drift import (
    INCOMPLETE_NIGHTS,
    REMIND_EVERY,
    DriftReport,
    NotifyRecord,
    check_targets,
    compare_with_previous,
    current_run,
    drift_bytes,
    failed_record,
    record_bytes,
    refresh_index,
)
from m365audit.drift import context as drift_context
from m365audit.errors import (
    EXIT_FAIL,
    EXIT_INCOMPLETE,
    EXIT_PASS,
    AuditError,
    AuthError,
    PolicyFileError,
    UsageError,
)
from m365audit.evaluate import PAGE_FACTS, load_pack
from m365audit.evidence import (
    ExchangeStore,
    RecordedExchange,
    RunFolder,
    Signer,
    interrupted_runs,
    moved,
    new_run_id,
    policy_copies,
    rebound,
    safe_name,
    write_snapshot,
)
from m365audit.graph import (
    DELEGATED_METHODS,
    GRAPH_ROOT,
    CredentialSettings,
    DeviceCodePrompt,
    GraphSession,
    PlaceholderCredential,
    ReplayTransport,
    build_credential,
    check_tenant_id,
    recorded_paths,
    tenant_metadata,
)
from m365audit.models import Finding, Lang, PolicyPack, Snapshot, SourceError
from m365audit.policy import default_policy_dir, rule_params
from m365audit.report import Evidence, Pseudonymiser, verdict, write_reports

EXIT_BY_VERDICT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "error": EXIT_INCOMPLETE}
ENVIRONMENT_CODES = {"NetworkError", "Timeout"}


class ProgressSink(Protocol):
    """What run_audit tells about a run in flight (the CLI decides how to show it)."""

    def note(self, text: str) -> None: ...

    def begin(self, sources: int) -> None: ...

    def exchange(self, exchange: RecordedExchange) -> None: ...

    def source_done(self, key: str, ok: bool) -> None: ...

    def end(self) -> None: ...


@dataclass(frozen=True)
class AuditOptions:
    """Everything one audit needs; the CLI builds it from options and the environment."""

    reports: Path
    policies: Path | None = None
    local: Path | None = None
    replay: Path | None = None
    credential: CredentialSettings = field(default_factory=CredentialSettings)
    lang: Lang = "nl"
    concurrency: int = 4
    timeout: float = 60.0
    audit_wait: float = 600.0
    graph_root: str = "https://graph.microsoft.com"
    now: datetime | None = None
    as_of: date | None = None
    transport: httpx.AsyncBaseTransport | None = None
    pseudonym_key: bytes | None = field(default=None, repr=False)
    """--pseudonymise: the admin's HMAC key; reports (not the evidence) show user-<hmac> instead of people."""
    env: dict[str, str] | None = None
    """Environment for the credential (None: os.environ); tenants.py passes each tenant's own."""
    progress: ProgressSink | None = None
    device_code_prompt: DeviceCodePrompt | None = None
    """How a person is shown the device code (--auth device-code); the CLI prints it."""
    notify: tuple[str, ...] = ()
    """Alert targets (webhook URLs, mailto:) told when a night needs a human (audit/alerting.py)."""
    notify_secret: str | None = field(default=None, repr=False)
    """HMAC key for generic webhooks, from the environment only (never printed)."""
    sign_key: Signer | None = field(default=None, repr=False)
    """--sign-key: the Ed25519 key that signs the manifest (manifest.sig); loaded before the run starts."""
    report_url: str | None = None
    """Base URL under which reports/ is published; alerts link <base>/<tenant>/<run>/report.html."""
    remind_every: int = REMIND_EVERY
    incomplete_nights: int = INCOMPLETE_NIGHTS


@dataclass(repr=False)
class AuditResult:
    """What the CLI reports: where the run went and what it found."""

    run_dir: Path
    snapshot: Snapshot
    findings: list[Finding]
    verdict: str
    unmatched: list[str]
    drift: DriftReport | None = None
    notify: NotifyRecord | None = None
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # asyncio.run formats its result; the snapshot of a large tenant would make that a string of 80 MB
        return f"AuditResult(run_dir={str(self.run_dir)!r}, verdict={self.verdict!r}, findings={len(self.findings)})"

    @property
    def exit_code(self) -> int:
        return EXIT_BY_VERDICT[self.verdict]


def needed_sources(pack: PolicyPack, delegated: bool = False) -> list[str]:
    """Every source the rules read, plus organization; delegated-only sources only for a person's sign-in."""
    keys = {"organization"}
    for rule in pack.rules:
        if rule_params(rule, pack).get("collect") is False:
            continue  # switched off in params (teams-rsc-grants-none): a manual rule, its sources not read
        keys.update(rule.sources)
    return sorted(keys) if delegated else app_only(sorted(keys))


def _environment_failure(snapshot: Snapshot) -> AuthError | None:
    """No source read and every error a network or sign-in failure: no evidence was taken at all."""
    results = list(snapshot.sources.values())
    if any(r.ok for r in results) or not results:
        return None
    errors = [r.error for r in results if r.error is not None and r.error.code != DEPENDENCY_FAILED]
    if errors and all(e.code in ENVIRONMENT_CODES or e.status == 401 for e in errors):
        first = errors[0]
        return AuthError(f"no source could be read: {first.message}", hint=first.hint)
    return None


def write_outputs(folder: RunFolder, snapshot: Snapshot, findings: list[Finding], pack: PolicyPack, lang: Lang,
                  evidence: Evidence, generated_at: datetime, drift: dict[str, Any] | None = None,
                  pseudonymiser: Pseudonymiser | None = None) -> Snapshot:
    """snapshot.json, findings.json, report.html, report.md and junit.xml into the (temporary) run folder.

    Returns the snapshot reading its on-disk lists from the snapshot.json just written (the spool can go).
    """
    with folder.open_new("snapshot.json") as out:
        pages = write_snapshot(snapshot, out)  # a page at a time: a large tenant is never held in memory
    write_reports(folder.write, snapshot, findings, pack, folder.run_id, lang, evidence, generated_at,
                  pseudonymiser, drift)
    return rebound(snapshot, folder.tmp / "snapshot.json", pages)


def _plan(options: AuditOptions) -> AlertPlan:
    return AlertPlan(targets=options.notify, secret=options.notify_secret, report_url=options.report_url,
                     remind_every=options.remind_every, incomplete_nights=options.incomplete_nights,
                     lang=options.lang, env=options.env)


async def run_audit(options: AuditOptions) -> AuditResult:
    """Collect, evaluate and write one run folder; a night that fails before any evidence still alerts."""
    check_tenant_id(options.credential.tenant_id)  # it names the tenant's folder and lock: checked before either
    check_targets(options.notify)  # before any lock, evidence or alert state: a bad target is a usage error (exit 2)
    try:
        with fewer_collections():
            return await _run_audit(options)
    except (AuditError, OSError) as exc:
        if options.notify:
            try:
                tenant = tenant_of(options.credential.tenant_id, options.env)
                if tenant is None and options.replay is not None:
                    tenant = _replay_tenant(options.replay)
                night = (options.now or datetime.now(timezone.utc)).date().isoformat()
                told = await failed_alert(_plan(options), options.reports, tenant, night, exc)
                exc.alert = told.record  # type: ignore[union-attr]
            except Exception:  # an alert that fails must not hide why the night failed
                pass
        raise


def _replay_tenant(replay: Path) -> str | None:
    try:
        return str(tenant_metadata(replay).get("tenant_id") or "") or None
    except Exception:  # the recording itself may be what failed
        return None


async def _run_audit(options: AuditOptions) -> AuditResult:
    """Collect, evaluate and write one run folder; a failure leaves no run that looks complete."""
    pack = load_pack(options.policies, options.local)
    started = options.now or datetime.now(timezone.utc)
    today = options.as_of or started.date()
    meta: dict[str, Any] = {}
    transport = options.transport
    replay: ReplayTransport | None = None
    if options.replay is not None:
        if transport is None:
            replay = ReplayTransport.from_folder(options.replay)
            transport = replay
        meta = tenant_metadata(options.replay)
        credential: Any = PlaceholderCredential()
    else:
        credential = _live_credential(options)
    tenant_id, tenant_name = meta.get("tenant_id") or options.credential.tenant_id, meta.get("display_name")
    progress = options.progress
    early = EarlyEvaluation(pack, today, lambda done: build_snapshot(done, started, tenant_id, tenant_name),
                            tell=(lambda r: progress.source_done(r.key, r.ok)) if progress else None)
    folder = RunFolder(options.reports, new_run_id(started), started)
    try:
        known_tenant = meta.get("tenant_id") or options.credential.tenant_id
        if known_tenant:
            folder.hold(str(known_tenant))  # a second run for this tenant is refused now, not after collecting
        store = ExchangeStore(folder.tmp / "exchanges")
        lookback, record_types = _audit_query(pack)
        ctx = FetchContext(now=started, audit_lookback_days=lookback, audit_record_types=record_types,
                           teams_max=_teams_max(pack),
                           audit_poll_seconds=options.audit_wait,
                           audit_poll_interval=0.0 if options.replay is not None else AUDIT_POLL_INTERVAL)
        async with GraphSession(credential, sink=store, transport=transport, graph_root=options.graph_root,
                                concurrency=options.concurrency, timeout=options.timeout,
                                instant_retries=options.replay is not None,
                                observer=getattr(options.progress, "exchange", None)) as session:
            roles = await session.token_roles()
            delegated = delegated_answers(recorded_paths(options.replay)) if options.replay is not None else \
                options.credential.method in DELEGATED_METHODS
            keys = needed_sources(pack, delegated)
            refused = _preflight(keys, roles, options.progress) if options.replay is None else {}
            missing = sorted({SOURCES[k].permissions[0] for k in refused})
            sources = await collect(session, keys, ctx, refused=refused, spool=folder.work, on_done=early.source_done,
                                    page_facts=PAGE_FACTS)
            if options.progress is not None:
                options.progress.end()
        snapshot = build_snapshot(sources, started, tenant_id=tenant_id, tenant_name=tenant_name)
        failure = _environment_failure(snapshot)
        if failure is not None:
            raise failure
        findings = await early.findings(snapshot)  # most were judged during collection: only the last sources' wait
        finished = options.now or datetime.now(timezone.utc)
        for name, data in policy_copies(pack.files, options.policies or default_policy_dir(), options.local,
                                        options.policies is not None, default_policy_dir()).items():
            folder.write(name, data)  # the exact rules, catalogs, waivers and attestations, replayable with evaluate
        pseudonymiser = Pseudonymiser(options.pseudonym_key, snapshot) if options.pseudonym_key else None
        tonight = current_run(folder.run_id, snapshot, [pseudonymiser.finding(f) for f in findings]
                              if pseudonymiser else findings, {
            "started_at": started.isoformat(), "as_of": today.isoformat(), "verdict": verdict(findings),
            "policy_pack": {"digest": pack.digest}})
        drift, drift_warning = compare_with_previous(options.reports, tonight,
                                                     _scrubber(pseudonymiser, snapshot) if pseudonymiser else None)
        snapshot = write_outputs(folder, snapshot, findings, pack, options.lang, store.refs, finished,
                                 drift_context(drift, options.lang, drift_warning), pseudonymiser)
        if drift is not None:
            folder.write("drift.json", drift_bytes(drift))
        told: Tonight | None = None
        alerts: NotifyRecord | None = None
        if options.notify:
            try:
                told = await run_alert(
                    _plan(options), options.reports, tenant_id=snapshot.tenant_id, tenant_name=snapshot.tenant_name,
                    night=started.date().isoformat(), findings=findings, drift=drift, verdict=verdict(findings),
                    exit_code=EXIT_BY_VERDICT[verdict(findings)], run_id=folder.run_id,
                    run_dir=options.reports / safe_name(snapshot.tenant_id) / folder.run_id, work_dir=folder.tmp,
                    missing_permissions=missing)
                alerts = told.record
            except Exception as exc:  # the alert code failing in any way never costs the night's evidence
                told, alerts = None, failed_record(options.notify, exc)
            folder.write("notify.json", record_bytes(alerts))
        run_dir = folder.finalise(snapshot.tenant_id, {
            "schema_version": 1, "tool": "m365audit", "tool_version": __version__,
            "tenant_id": snapshot.tenant_id, "tenant_name": snapshot.tenant_name,
            "mode": "replay" if options.replay is not None else "live",
            "replay_of": str(options.replay) if options.replay is not None else None,
            "started_at": started.isoformat(), "finished_at": finished.isoformat(), "as_of": today.isoformat(),
            "lang": options.lang, "verdict": verdict(findings),
            "policy_pack": {"digest": pack.digest, "files": pack.files},
            "exchanges": store.count,
            "collector": {"auth": "replay" if options.replay is not None else options.credential.method,
                          "client_id": options.credential.client_id, "app_roles": roles},
            "reports_pseudonymised": pseudonymiser is not None,
        }, signer=options.sign_key)
    except BaseException:
        early.close()  # a failed run judges nothing more
        folder.discard()
        raise
    snapshot = moved(snapshot, run_dir / "snapshot.json")  # its lists are read from the finished run from now on
    alert_warnings = told.save(options.reports) if told is not None else []
    index_warning = refresh_index(run_dir.parent, options.lang)
    return AuditResult(run_dir=run_dir, snapshot=snapshot, findings=findings, verdict=verdict(findings),
                       unmatched=list(replay.unmatched) if replay else [], drift=drift,
                       notify=alerts,
                       warnings=[f"not applied (covers nothing): {r.problem}" for r in pack.rejected]
                       + [w for w in (drift_warning, index_warning) if w] + alert_warnings
                       + _interrupted(options.reports))


def _scrubber(pseudonymiser: Pseudonymiser, tonight: Snapshot) -> Callable[[Snapshot], Callable[[str], str]]:
    """Drift's text scrubber: tonight's pseudonymiser, taught last night's people too (one table, not two)."""
    def for_snapshot(snapshot: Snapshot) -> Callable[[str], str]:
        return (pseudonymiser if snapshot is tonight else pseudonymiser.learn(snapshot)).text

    return for_snapshot


def _live_credential(options: AuditOptions) -> Any:
    """The credential of a live audit; 'none' (a placeholder token) only against a local simulator."""
    if options.credential.method != "none":
        return build_credential(options.credential, options.env, options.device_code_prompt)
    if options.graph_root.rstrip("/") == GRAPH_ROOT:
        raise UsageError("--auth none sends no real token: it only works with a local --graph-url",
                         hint="use it against the Graph simulator (m365audit/simulator.py); sign in for a real tenant")
    return PlaceholderCredential()


def _preflight(keys: list[str], roles: list[str] | None,
               progress: ProgressSink | None) -> dict[str, SourceError]:
    """Sources the token's roles cannot read, refused before any Graph call (permissions.py)."""
    from m365audit.collect import preflight, preflight_summary

    refused = preflight(keys, roles)
    if progress is not None:
        progress.note(preflight_summary(keys, roles, refused))
        progress.begin(len(with_dependencies(keys)))
    return refused


def _interrupted(reports: Path) -> list[str]:
    """One warning per run that was killed before it finished (its temporary folder is left for a look)."""
    return [f"an interrupted run left {tmp} (no manifest, so it is not evidence); look at it, then remove it"
            for tmp in interrupted_runs(reports)]


def _audit_query(pack: PolicyPack) -> tuple[int, tuple[str, ...]]:
    """The Purview query asks for what audit-no-ai-interactions judges: its look-back days and record types."""
    rule = pack.rule("audit-no-ai-interactions")
    if rule is None:
        return 7, AI_AUDIT_RECORD_TYPES
    params = rule_params(rule, pack)
    days = params.get("lookback_days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 180:
        raise PolicyFileError([f"params: audit-no-ai-interactions: lookback_days must be a whole number of days "
                               f"from 1 to 180 (Purview keeps audit records 180 days), got {days!r}"])
    types = params.get("record_types", list(AI_AUDIT_RECORD_TYPES))
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
        raise PolicyFileError([f"params: audit-no-ai-interactions: record_types must be a non-empty list of audit "
                               f"record types (e.g. CopilotInteraction), got {types!r}"])
    return days, tuple(types)


def _teams_max(pack: PolicyPack) -> int:
    """teams-rsc-grants-none reads one page per team: max_teams bounds how many (5000 when unset)."""
    rule = pack.rule("teams-rsc-grants-none")
    value = rule_params(rule, pack).get("max_teams", 5000) if rule is not None else 5000
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PolicyFileError([f"params: teams-rsc-grants-none: max_teams must be a whole number of teams, "
                               f"1 or more, got {value!r}"])
    return value
