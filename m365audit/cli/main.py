"""The command line: the only module that prints, exits, calls asyncio.run or maps errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from m365audit import __version__
from m365audit.errors import EXIT_FAIL, EXIT_PASS, AuditError, UsageError

if TYPE_CHECKING:
    from m365audit.models import Lang

LANGS = ("nl", "en")


class AuditClickError(click.ClickException):
    """Shows an AuditError as 'Error: …' and 'Hint: …' and exits with its code."""

    def __init__(self, error: AuditError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code  # type: ignore[misc]  # click keeps it per class; ours is per error
        self.hint = error.hint

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.message}", err=True)
        if self.hint:
            click.echo(f"Hint: {self.hint}", err=True)


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command its pipe reader closed on (128 + SIGPIPE); not a verdict."""


class AuditGroup(click.Group):
    """Turns our errors into clean messages with their exit codes; --debug shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditError as exc:
            if ctx.params.get("debug"):
                raise
            raise AuditClickError(exc) from exc
        except BrokenPipeError:  # `m365audit … | head`: the reader left; nothing to tell it, and the run is written
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as exc:  # a full disk, a folder we may not write: a clear line, not a traceback
            if ctx.params.get("debug"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise AuditClickError(AuditError(
                f"{where}{exc.strerror or exc}", hint="check the free space and the permissions of the reports "
                "folder; an unfinished run is never left looking complete")) from exc


def _run(coro: Any) -> Any:
    import asyncio  # here, not at the top: --help stays fast

    return asyncio.run(coro)


policies_option = click.option(
    "--policies", "policies", type=click.Path(path_type=Path, file_okay=False), default=None,
    envvar="M365AUDIT_POLICIES", help="Policy folder (default: the pack shipped with m365audit).")
local_option = click.option(
    "--local", "local", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
    envvar="M365AUDIT_LOCAL",
    help="Your own waivers.yaml, attestations.yaml, approved-apps.yaml and params.yaml (replace the pack's).")
lang_option = click.option("--lang", type=click.Choice(LANGS), default="nl", show_default=True,
                           help="Language of reports and messages.")
def pseudonymise_options(f: Any) -> Any:
    """--pseudonymise and --pseudonym-key-file: user names and addresses in reports become user-<hmac>."""
    f = click.option("--pseudonym-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="File holding the pseudonym key (else $M365AUDIT_PSEUDONYM_KEY); implies --pseudonymise.")(f)
    return click.option("--pseudonymise", is_flag=True,
                        help="Replace user names and addresses in the reports (not in the evidence) by stable keyed "
                             "pseudonyms (HMAC-SHA256; the key stays with you).")(f)


def _pseudonym_key(pseudonymise: bool, key_file: Path | None) -> bytes | None:
    """The key when pseudonymising was asked for; a clear usage error when there is none."""
    if not pseudonymise and key_file is None:
        return None
    from m365audit.report import load_key

    return load_key(key_file)


reports_option = click.option(
    "--reports", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"), show_default=True,
    envvar="M365AUDIT_REPORTS", help="Folder that holds reports/<tenant>/<run-id>/.")


def as_lang(value: str) -> Lang:
    """A --lang choice as the Lang type."""
    return "nl" if value == "nl" else "en"


def _as_of(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="m365audit")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
def cli(debug: bool) -> None:
    """Prove every night that no generative AI reaches organisation or resident data in a Microsoft 365 tenant.

    Exit codes: 0 all pass, waived or attested; 1 a rule fails; 2 usage or policy-file error; 3 no fail but
    evidence incomplete (a source could not be read); 4 sign-in, network or environment failure.
    """


def _device_code_prompt(lang: str) -> Callable[[str, str], None]:
    """How a person sees where to sign in with --auth device-code (on stderr: stdout stays the verdict)."""
    def show(verification_uri: str, user_code: str) -> None:
        text = (f"Meld u aan: open {verification_uri} en voer de code {user_code} in" if lang == "nl" else
                f"To sign in, open {verification_uri} and enter the code {user_code}")
        click.echo(text, err=True)
    return show


@cli.command()
@click.option("--replay", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Answer Graph from a recording (fixture tenant, run folder or exchanges/): offline, no login.")
@policies_option
@local_option
@reports_option
@lang_option
@click.option("--auth", type=click.Choice(["auto", "certificate", "secret", "managed-identity",
                                           "workload-identity", "azure-pipelines", "azure-cli", "device-code",
                                           "none"]),
              default="auto", show_default=True, envvar="M365AUDIT_AUTH",
              help="How to sign in (auto: from the AZURE_* environment variables; device-code: a person, delegated; "
                   "none: a placeholder token, only with a local --graph-url).")
@click.option("--graph-url", default="https://graph.microsoft.com", show_default=True, envvar="M365AUDIT_GRAPH_URL",
              help="Graph root: Microsoft Graph, or a local simulator on http://127.0.0.1 (tests and benchmarks).")
@click.option("--tenant-id", envvar="AZURE_TENANT_ID", default=None, help="Directory (tenant) id.")
@click.option("--client-id", envvar="AZURE_CLIENT_ID", default=None, help="Application (client) id.")
@click.option("--certificate", type=click.Path(path_type=Path, dir_okay=False), envvar="AZURE_CLIENT_CERTIFICATE_PATH",
              default=None, help="PEM/PKCS12 certificate with private key (the secret is read from "
                                 "AZURE_CLIENT_SECRET only, never from the command line).")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Graph requests in flight at once, per tenant; after a 429 the tenant drops to one and "
                   "climbs back (README: requests in flight and throttling).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="Seconds to wait for one Graph response.")
@click.option("--audit-wait", type=click.FloatRange(0, 3600), default=600.0, show_default=True,
              help="Seconds to wait for the Purview audit query to finish before the rule is 'error'.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Judge waiver and attestation expiry as of this date (default: today, UTC).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line (for cron); no progress.")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              envvar="M365AUDIT_CONFIG", help="Audit every tenant of this TOML file (docs/operations.md).")
@click.option("--notify", "notify", multiple=True, metavar="URL",
              help="POST the drift summary here when tonight has regressions (repeatable; Teams Workflows URLs get "
                   "an Adaptive Card; generic ones are HMAC-signed with $M365AUDIT_NOTIFY_SECRET when it is set).")
@pseudonymise_options
def audit(replay: Path | None, policies: Path | None, local: Path | None, reports: Path, lang: str, auth: str,
          graph_url: str, tenant_id: str | None, client_id: str | None, certificate: Path | None, concurrency: int,
          timeout: float, audit_wait: float, as_of: datetime | None, quiet: bool, notify: tuple[str, ...] = (),
          config: Path | None = None, pseudonymise: bool = False, pseudonym_key_file: Path | None = None) -> None:
    """Audit a tenant (or replay a recording) and write a dated, hash-chained run folder."""
    from m365audit.audit import AuditOptions, run_audit
    from m365audit.cli.progress import for_cli
    from m365audit.graph import CredentialSettings

    if config is not None:
        _audit_config(config, quiet)
    options = AuditOptions(
        reports=reports, policies=policies, local=local, replay=replay, lang=as_lang(lang),
        credential=CredentialSettings(method=auth, tenant_id=tenant_id, client_id=client_id,
                                      certificate_path=str(certificate) if certificate else None),
        concurrency=concurrency, timeout=timeout, audit_wait=audit_wait, as_of=_as_of(as_of), graph_root=graph_url,
        notify=notify, notify_secret=_notify_secret(),
        progress=None if replay is not None else for_cli(sys.stderr, quiet),
        device_code_prompt=_device_code_prompt(as_lang(lang)),
        pseudonym_key=_pseudonym_key(pseudonymise, pseudonym_key_file))
    result = _run(run_audit(options))
    _print_summary(result.snapshot.tenant_name, result.snapshot.tenant_id, result.run_dir.name,
                   _for_print(result.findings, result.snapshot, options.pseudonym_key), result.verdict, lang, quiet)
    if not quiet:
        click.echo(f"Run folder: {result.run_dir}")
        click.echo(f"Report:     {result.run_dir / 'report.html'}")
        click.echo(f"Manifest:   {(result.run_dir / 'manifest.sha256').read_text().split()[0]} "
                   "(sha256; keep it outside the reports folder: it anchors the hash chain)")
    _print_drift(result, lang, quiet)
    if result.unmatched:
        click.echo(f"Warning: {len(result.unmatched)} request(s) had no recorded answer and count as errors: "
                   + "; ".join(result.unmatched[:3]), err=True)
    sys.exit(result.exit_code)


def _for_print(findings: list[Any], snapshot: Any, key: bytes | None) -> list[Any]:
    """Findings as stdout may show them: pseudonymised like the reports when a key was given."""
    if key is None:
        return findings
    from m365audit.report import Pseudonymiser

    pseudonymiser = Pseudonymiser(key, snapshot)
    return [pseudonymiser.finding(f) for f in findings]


VERDICT_TEXT = {"pass": "COMPLIANT", "fail": "NOT COMPLIANT", "error": "INCOMPLETE (not a pass)"}


def _audit_config(config: Path, quiet: bool) -> None:
    """Every tenant of a TOML file, a bounded number at a time; one summary table; exit with the worst code."""
    from m365audit.operations import audit_all, load_config, summary_table, worst

    loaded = load_config(config)
    outcomes = _run(audit_all(loaded))
    for line in summary_table(outcomes)[(1 if quiet else 0):]:
        click.echo(line)
    sys.exit(worst([o.exit_code for o in outcomes]))


def _print_summary(tenant_name: str, tenant_id: str, run_id: str, findings: list[Any], verdict: str, lang: str,
                   quiet: bool) -> None:
    from m365audit.report import counts, ordered

    c = counts(findings)
    line = " · ".join(f"{k} {v}" for k, v in c.items())
    click.echo(f"{VERDICT_TEXT[verdict]}: {tenant_name or tenant_id} run {run_id}: {line}")
    if quiet:
        return
    for f in ordered(findings):
        if f.status.value in ("fail", "error", "waived"):
            click.echo(f"  {f.status.value.upper():6} {f.severity.value:8} {f.rule_id}: {f.message.get(as_lang(lang))}")


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@policies_option
@local_option
@lang_option
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Judge waiver and attestation expiry as of this date (default: today, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print findings.json to stdout instead of a summary.")
@click.option("--output", "-o", "output", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also write findings.json, report.html, report.md and junit.xml into this new folder.")
@pseudonymise_options
def evaluate_cmd(run_dir: Path, policies: Path | None, local: Path | None, lang: str, as_of: datetime | None,
                 as_json: bool, output: Path | None = None, pseudonymise: bool = False,
                 pseudonym_key_file: Path | None = None) -> None:
    """Re-check a stored snapshot with today's policies, waivers and attestations (no Graph calls)."""
    from m365audit.evaluate import evaluate, load_pack
    from m365audit.evidence import read_snapshot
    from m365audit.report import findings_document, verdict

    snapshot_file = run_dir / "snapshot.json"
    if not snapshot_file.is_file():
        raise AuditError(f"{run_dir} has no snapshot.json", hint="give a run folder: reports/<tenant>/<run-id>")
    try:
        snapshot = read_snapshot(snapshot_file)  # lists stay on disk: a 300,000-user run is read page by page
    except ValueError as exc:  # SnapshotFileError names the file and the line
        raise AuditError(f"the stored snapshot cannot be read: {str(exc).splitlines()[0]}",
                         hint="run `m365audit verify` on the run folder") from exc
    key = _pseudonym_key(pseudonymise, pseudonym_key_file)
    pack = load_pack(policies, local)
    for rejected in pack.rejected:
        click.echo(f"Warning: not applied (covers nothing): {rejected.problem}", err=True)
    findings = evaluate(snapshot, pack, _as_of(as_of) or datetime.now(timezone.utc).date())
    result = verdict(findings)
    if output is not None:
        _write_evaluation(output, run_dir, snapshot, findings, pack, as_lang(lang), key)
    shown = _for_print(findings, snapshot, key)
    if as_json:
        from m365audit.report import Pseudonymiser

        view = Pseudonymiser(key, snapshot).snapshot(snapshot) if key else snapshot
        doc = findings_document(view, shown, run_dir.name, as_lang(lang), pseudonymised=key is not None)
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_summary(snapshot.tenant_name, snapshot.tenant_id, run_dir.name, shown, result, lang, False)
        if output is not None:
            click.echo(f"Report:     {output / 'report.html'}")
    from m365audit.audit import EXIT_BY_VERDICT

    sys.exit(EXIT_BY_VERDICT[result])


def _write_evaluation(output: Path, run_dir: Path, snapshot: Any, findings: list[Any], pack: Any, lang: Lang,
                      key: bytes | None) -> None:
    """The reports of a re-evaluation into a new folder (never over an existing report)."""
    from m365audit.evidence import exchange_refs
    from m365audit.report import Pseudonymiser, write_reports

    if output.exists() and any(output.iterdir()):
        raise AuditError(f"{output} exists and is not empty", hint="give a new folder; reports are never overwritten")
    output.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> None:
        (output / name).write_bytes(data)

    write_reports(write, snapshot, findings, pack, run_dir.name, lang, exchange_refs(run_dir),
                  datetime.now(timezone.utc), Pseudonymiser(key, snapshot) if key else None)


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path, file_okay=False))
@local_option
def validate(folder: Path | None, local: Path | None) -> None:
    """Check a policy folder (default: the shipped pack) and your local files without touching a tenant."""
    from m365audit.evaluate import load_pack

    pack = load_pack(folder, local, strict=True)
    manual = sum(1 for r in pack.rules if r.manual)
    click.echo(f"OK: {len(pack.rules)} rules ({manual} manual), {len(pack.catalogs)} catalogs, "
               f"{len(pack.waivers)} waivers, {len(pack.attestations)} attestations, "
               f"{len(pack.approved_apps)} approved apps; digest {pack.digest[:16]}")


@cli.command()
@policies_option
@lang_option
def rules(policies: Path | None, lang: str) -> None:
    """List the rules: id, severity, sources and title."""
    from m365audit.evaluate import load_pack

    pack = load_pack(policies)
    width = max(len(r.id) for r in pack.rules)
    for r in pack.rules:
        sources = ",".join(r.sources) if r.sources else ("(handmatig)" if lang == "nl" else "(manual)")
        click.echo(f"{r.id:<{width}}  {r.severity.value:<8}  {r.title.get(as_lang(lang))}  [{sources}]")


@cli.command()
@click.argument("rule_id")
@policies_option
@local_option
@lang_option
def explain(rule_id: str, policies: Path | None, local: Path | None, lang: str) -> None:
    """Explain one rule: rationale, remediation, sources, the Graph permissions it needs and its parameters."""
    import difflib

    from m365audit.collect import SOURCES
    from m365audit.evaluate import load_pack
    from m365audit.policy import rule_params

    pack = load_pack(policies, local)
    rule = pack.rule(rule_id)
    if rule is None:
        guess = difflib.get_close_matches(rule_id, [r.id for r in pack.rules], n=1)
        raise UsageError(f"unknown rule '{rule_id}'" + (f" (did you mean '{guess[0]}'?)" if guess else ""),
                         hint="`m365audit rules` lists them")
    L, nl = as_lang(lang), lang == "nl"
    click.echo(f"{rule.id} ({'versie' if nl else 'version'} {rule.version}, {'ernst' if nl else 'severity'} "
               f"{rule.severity.value})")
    click.echo(rule.title.get(L))
    click.echo("")
    click.echo(("Waarom: " if nl else "Why: ") + rule.rationale.get(L))
    click.echo(("Herstel: " if nl else "How to fix: ") + rule.remediation.get(L))
    if rule.manual:
        click.echo(("Waar: " if nl else "Where: ") + rule.manual.where.get(L))
        click.echo(("Controle: " if nl else "How to check: ") + rule.manual.how.get(L))
    for key in rule.sources:
        s = SOURCES[key]
        click.echo(f"{'Bron' if nl else 'Source'} {key}: {s.url.split('?')[0]} ({s.version}) "
                   f"{'vereist' if nl else 'needs'} {(' of ' if nl else ' or ').join(s.permissions)}")
    check = rule.active_check
    if check is not None and check.function:
        from m365audit.evaluate import CHECKS

        where = CHECKS[check.function].__module__.replace(".", "/") + ".py"
        click.echo(f"{'Controle in code' if nl else 'Checked in code'}: {where} {check.function}")
    params = rule_params(rule, pack)
    if params:
        click.echo("Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    for ref in rule.references:
        click.echo(f"{'Referentie' if nl else 'Reference'}: {ref.label}" + (f" <{ref.url}>" if ref.url else ""))


@cli.command()
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of policy files (kept in the repo as policies/schema.json)."""
    from m365audit.policy import pack_schema

    text = json.dumps(pack_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--chain", is_flag=True, help="RUN_DIR is a tenant folder: verify every run and every link.")
def verify(run_dir: Path, chain: bool) -> None:
    """Check a run folder against its manifest (and the hash chain): exit 0 intact, 1 tampered."""
    from m365audit.evidence import verify_chain_with_ledger as verify_chain
    from m365audit.evidence import verify_run

    reports = verify_chain(run_dir) if chain else [verify_run(run_dir)]
    if chain and not reports:
        raise AuditError(f"{run_dir} holds no complete runs", hint="give reports/<tenant>/ with --chain")
    bad = 0
    for report in reports:
        if report.ok:
            click.echo(f"OK       {report.run}")
        else:
            bad += 1
            click.echo(f"TAMPERED {report.run}")
            for problem in report.problems:
                click.echo(f"  {problem}")
    sys.exit(EXIT_FAIL if bad else EXIT_PASS)


@cli.command()
@policies_option
@click.option("--format", "fmt", type=click.Choice(["table", "manifest", "az", "az-managed-identity"]),
              default="table", show_default=True,
              help="table: what and why; manifest: requiredResourceAccess JSON; az: Azure CLI commands for an app "
                   "registration; az-managed-identity: app-role assignments for a managed identity.")
@click.option("--app-id", default="$APP_ID", show_default=True, help="Application (client) id for --format az.")
@click.option("--principal-id", default="$MI_ID", show_default=True,
              help="The managed identity's object id for --format az-managed-identity.")
def permissions(policies: Path | None, fmt: str, app_id: str, principal_id: str) -> None:
    """The least-privilege Graph application permissions the enabled rules need."""
    from m365audit.collect import az_commands, az_managed_identity_commands, manifest_fragment, requirements, table
    from m365audit.evaluate import load_pack

    reqs = requirements(load_pack(policies))
    if fmt == "manifest":
        click.echo(json.dumps(manifest_fragment(reqs), indent=2))
    elif fmt == "az":
        for line in az_commands(reqs, app_id):
            click.echo(line)
    elif fmt == "az-managed-identity":
        for line in az_managed_identity_commands(reqs, principal_id):
            click.echo(line)
    else:
        for line in table(reqs):
            click.echo(line)
        click.echo("\nDelegated only (--auth device-code): CopilotPolicySettings.Read. Deliberately never: "
                   "AiEnterpriseInteraction.Read.All (it reads prompts, i.e. resident data).")


@cli.command()
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--from", "source", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Pseudonymise an existing run folder (or exchanges/) instead of auditing live.")
@policies_option
@click.option("--auth", type=click.Choice(["auto", "certificate", "secret", "managed-identity", "workload-identity",
                                           "azure-pipelines", "azure-cli", "device-code"]), default="auto",
              show_default=True, envvar="M365AUDIT_AUTH", help="How to sign in for a live recording.")
@click.option("--tenant-id", envvar="AZURE_TENANT_ID", default=None, help="Directory (tenant) id.")
@click.option("--client-id", envvar="AZURE_CLIENT_ID", default=None, help="Application (client) id.")
def record(out_dir: Path, source: Path | None, policies: Path | None, auth: str, tenant_id: str | None,
           client_id: str | None) -> None:
    """Record a tenant as a shareable fixture: people, tenant id and domains pseudonymised (FIXTURES.md)."""
    import tempfile

    from m365audit.operations import pseudonymise

    if source is not None:
        summary = pseudonymise(source, out_dir)
    else:
        from m365audit.audit import AuditOptions, run_audit
        from m365audit.cli.progress import for_cli
        from m365audit.graph import CredentialSettings

        with tempfile.TemporaryDirectory(prefix="m365audit-record-") as tmp:  # the real names never stay on disk
            result = _run(run_audit(AuditOptions(
                reports=Path(tmp), policies=policies, progress=for_cli(sys.stderr, False),
                device_code_prompt=_device_code_prompt("en"),
                credential=CredentialSettings(method=auth, tenant_id=tenant_id, client_id=client_id))))
            summary = pseudonymise(result.run_dir, out_dir)
    click.echo(f"Wrote {summary.exchanges} exchanges to {summary.out}: {summary.people} names and addresses and "
               f"{summary.domains} domains pseudonymised; tenant id {summary.tenant_id}")
    click.echo("Check before sharing: free text (descriptions, policy names) is kept as Graph sent it.")


@cli.command()
@click.option("--keep-days", type=click.IntRange(1, 36500), required=True, help="Keep runs younger than this.")
@click.option("--tenant", default=None, help="Only this folder under --reports (default: every tenant).")
@reports_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def prune(keep_days: int, tenant: str | None, reports: Path, dry_run: bool) -> None:
    """Delete old runs; each removal is recorded in <tenant>/pruned.json so verify --chain still holds."""
    from m365audit.evidence import prune_tenant, tenant_dirs

    total = 0
    for folder in tenant_dirs(reports, tenant):
        for entry in prune_tenant(folder, keep_days, dry_run=dry_run):
            total += 1
            click.echo(f"{'would remove' if dry_run else 'removed'} {folder.name}/{entry.run_id} "
                       f"(manifest sha256 {entry.manifest_sha256[:16]})")
    click.echo(f"{total} run(s) {'would be ' if dry_run else ''}pruned; the newest run of every tenant is kept")


def _notify_secret() -> str | None:
    """The webhook HMAC key: from the environment only, never an option (it would show in ps and shell history)."""
    import os

    from m365audit.drift import SECRET_ENV

    return os.environ.get(SECRET_ENV) or None


def _print_drift(result: Any, lang: str, quiet: bool) -> None:
    """REGRESSION lines on stdout (also with --quiet); failed webhook deliveries and warnings on stderr."""
    from m365audit.drift import headline, summary_lines

    drift = result.drift
    if drift is not None and (drift.alert or not quiet):
        click.echo(headline(drift))
        for line in summary_lines(drift, as_lang(lang)):
            if not quiet or line.startswith("REGRESSION"):
                click.echo(f"  {line}")
    record = result.notify
    for d in record.deliveries if record is not None else []:
        if d.ok:
            if not quiet:
                click.echo(f"Notified {d.target} ({d.form}, HTTP {d.status}, {d.attempts} attempt(s))")
        else:
            click.echo(f"Warning: alert to {d.target} NOT delivered after {d.attempts} attempt(s): {d.error}; "
                       f"recorded in notify.json (the verdict is unchanged)", err=True)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)


@cli.command("drift")
@click.argument("old_run", required=False)
@click.argument("new_run", required=False)
@click.option("--tenant", default=None, help="Tenant id (folder under --reports); needed when it holds several.")
@reports_option
@lang_option
@click.option("--json", "as_json", is_flag=True, help="Print the DriftReport as JSON (the drift.json format).")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when something got worse (a regression or new offending objects), else 0.")
def drift_cmd(old_run: str | None, new_run: str | None, tenant: str | None, reports: Path, lang: str,
              as_json: bool, exit_code: bool) -> None:
    """What changed between two runs (default: the tenant's two latest; one RUN: it and the run before it).

    OLD_RUN and NEW_RUN are run folders or run ids. Exit codes: 0 (with --exit-code: no regression),
    1 (--exit-code only) a regression, 2 usage error. Run folders are sealed, so nothing is written.
    """
    from m365audit.drift import compare, headline, load_run, summary_lines
    from m365audit.evidence import resolve_pair

    if old_run is not None and new_run is None:
        old_dir, new_dir = resolve_pair(reports, tenant, None, old_run)
    else:
        old_dir, new_dir = resolve_pair(reports, tenant, old_run, new_run)
    report = compare(load_run(old_dir), load_run(new_dir))
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(headline(report))
        for line in summary_lines(report, as_lang(lang)):
            click.echo(f"  {line}")
    sys.exit(EXIT_FAIL if exit_code and report.alert else EXIT_PASS)


@cli.command("history")
@click.argument("tenant", required=False)
@reports_option
@lang_option
@click.option("--html", "write_html", is_flag=True, help="Also rewrite reports/<tenant>/index.html.")
def history_cmd(tenant: str | None, reports: Path, lang: str, write_html: bool) -> None:
    """List a tenant's runs (default: every tenant) with verdict counts and regressions since the run before."""
    from m365audit.drift import resolve_tenant, tenant_history, tenant_name, write_index

    tenants = resolve_tenant(reports, tenant)
    if not tenants:
        raise AuditError(f"no complete runs in {reports}", hint="run `m365audit audit` first, or pass --reports")
    for tenant_dir in tenants:
        history = tenant_history(tenant_dir)
        name = tenant_name(tenant_dir)
        click.echo(f"{tenant_dir.name}" + (f"  {name}" if name else ""))
        for run in history:
            c = run.counts
            news = "-" if run.regressions is None else str(run.regressions)
            click.echo(f"  {run.run_id:<20} {run.verdict:<6} fail {c['fail']:>3}  error {c['error']:>3}  "
                       f"waived {c['waived']:>3}  manual {c['manual']:>3}  pass {c['pass']:>3}  regressions {news}")
        if write_html:
            click.echo(f"  index: {write_index(tenant_dir, as_lang(lang))}")


def main() -> None:
    """Console script entry point."""
    cli(prog_name="m365audit")
