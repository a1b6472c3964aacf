"""Commands about stored runs: verify, record, prune, drift, history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from m365audit.cli.base import as_lang, device_code_prompt, lang_option, policies_option, reports_option, run_coro
from m365audit.errors import EXIT_FAIL, EXIT_PASS, AuditError, UsageError

if TYPE_CHECKING:
    pass

@click.command()
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




@click.command()
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
            result = run_coro(run_audit(AuditOptions(
                reports=Path(tmp), policies=policies, progress=for_cli(sys.stderr, False),
                device_code_prompt=device_code_prompt("en"),
                credential=CredentialSettings(method=auth, tenant_id=tenant_id, client_id=client_id))))
            summary = pseudonymise(result.run_dir, out_dir)
    click.echo(f"Wrote {summary.exchanges} exchanges to {summary.out}: {summary.people} names and addresses and "
               f"{summary.domains} domains pseudonymised; tenant id {summary.tenant_id}")
    click.echo("Check before sharing: free text (descriptions, policy names) is kept as Graph sent it.")


@click.command()
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




@click.command("drift")
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
        click.echo(headline(report, as_lang(lang)))
        for line in summary_lines(report, as_lang(lang)):
            click.echo(f"  {line}")
    sys.exit(EXIT_FAIL if exit_code and report.alert else EXIT_PASS)


@click.command("history")
@click.argument("tenant", required=False)
@reports_option
@lang_option
@click.option("--html", "write_html", is_flag=True, help="Also rewrite reports/<tenant>/index.html.")
@click.option("--all", "overview", is_flag=True,
              help="Write reports/index.html: every tenant's latest verdict, open regressions, evidence age and links "
                   "(and rewrite each tenant's index.html).")
def history_cmd(tenant: str | None, reports: Path, lang: str, write_html: bool, overview: bool = False) -> None:
    """List a tenant's runs (default: every tenant) with verdict counts and regressions since the run before."""
    from m365audit.drift import resolve_tenant, tenant_history, tenant_name, write_index, write_overview

    if overview:
        if tenant is not None:
            raise UsageError("--all covers every tenant; leave out TENANT", hint="m365audit history --all")
        click.echo(f"{'Overzicht' if lang == 'nl' else 'Overview'}: {write_overview(reports, as_lang(lang))}")
        return
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
