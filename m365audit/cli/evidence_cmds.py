"""Commands about stored runs: verify, record, prune, drift, history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365audit.cli.base import (
    as_lang,
    device_code_prompt,
    echo,
    echo_json,
    lang_option,
    policies_option,
    reports_option,
    run_coro,
)
from m365audit.errors import EXIT_FAIL, EXIT_PASS, AuditError, UsageError

if TYPE_CHECKING:
    from m365audit.models import Lang

@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--chain", is_flag=True, help="RUN_DIR is a tenant folder: verify every run and every link.")
@click.option("--key", "key_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Ed25519 public key (PEM, KEY.pub from keygen; repeatable): manifest.sig must be a valid "
                   "signature by it (with --chain: the newest run and every run from the first signed one on).")
def verify(run_dir: Path, chain: bool, key_files: tuple[Path, ...] = ()) -> None:
    """Check a run folder against its manifest (and the hash chain, and signatures): exit 0 intact, 1 tampered."""
    from m365audit.evidence import load_public_keys, verify_run
    from m365audit.evidence import verify_chain_with_ledger as verify_chain

    keys = load_public_keys(key_files) if key_files else None
    reports = verify_chain(run_dir, keys) if chain else [verify_run(run_dir, keys=keys)]
    if chain and not reports:
        raise AuditError(f"{run_dir} holds no complete runs", hint="give reports/<tenant>/ with --chain")
    bad = 0
    for report in reports:
        if report.ok:
            echo(f"OK       {report.run}")
        else:
            bad += 1
            echo(f"TAMPERED {report.run}")
            for problem in report.problems:
                echo(f"  {problem}")
        for note in report.notes:
            echo(f"  note: {note}")
    sys.exit(EXIT_FAIL if bad else EXIT_PASS)




@click.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
def keygen(out: Path) -> None:
    """Make an Ed25519 key pair for --sign-key: OUT (private, mode 600) and OUT.pub (public, for verify --key)."""
    from m365audit.evidence import generate_key_pair

    fingerprint = generate_key_pair(out)
    echo(f"Private key: {out} (for audit --sign-key; keep it on the audit host only, readable by the audit user)")
    echo(f"Public key:  {out}.pub (for verify --key; keep a copy away from the audit host)")
    echo(f"Fingerprint: {fingerprint}")


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
    echo(f"Wrote {summary.exchanges} exchanges to {summary.out}: {summary.people} names and addresses and "
               f"{summary.domains} domains pseudonymised; tenant id {summary.tenant_id}")
    echo("Check before sharing: free text (descriptions, policy names) is kept as Graph sent it.")


@click.command()
@click.option("--keep-days", type=click.IntRange(1, 36500), required=True, help="Keep runs younger than this.")
@click.option("--tenant", default=None,
              help="Only this tenant: its id, a verified domain or its display name (default: every tenant).")
@reports_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def prune(keep_days: int, tenant: str | None, reports: Path, dry_run: bool) -> None:
    """Delete old runs; each removal is recorded in <tenant>/pruned.json so verify --chain still holds."""
    from m365audit.evidence import prune_tenant, tenant_dirs

    total = 0
    for folder in tenant_dirs(reports, tenant):
        for entry in prune_tenant(folder, keep_days, dry_run=dry_run):
            total += 1
            echo(f"{'would remove' if dry_run else 'removed'} {folder.name}/{entry.run_id} "
                       f"(manifest sha256 {entry.manifest_sha256[:16]})")
    echo(f"{total} run(s) {'would be ' if dry_run else ''}pruned; the newest run of every tenant is kept")




@click.command("drift")
@click.argument("old_run", required=False)
@click.argument("new_run", required=False)
@click.option("--tenant", default=None,
              help="Tenant id, verified domain or display name of a tenant under --reports (default: every tenant).")
@reports_option
@lang_option
@click.option("--json", "as_json", is_flag=True, help="Print the DriftReport as JSON (the drift.json format).")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when something got worse in any tenant (a regression or new offending objects), else 0.")
def drift_cmd(old_run: str | None, new_run: str | None, tenant: str | None, reports: Path, lang: str,
              as_json: bool, exit_code: bool) -> None:
    """What changed between two runs (default: each tenant's two latest; one RUN: it and the run before it).

    OLD_RUN and NEW_RUN are run folders or run ids. Without them every tenant (or --tenant) is judged on its
    two latest runs; a tenant's first run is not an error. Exit codes: 0 (with --exit-code: no regression),
    1 (--exit-code only) a regression in any tenant, 2 usage error. Nothing is written.
    """
    from m365audit.drift import compare, load_run
    from m365audit.evidence import describe_tenant, find_tenant, resolve_pair, runs, stored_tenants

    if old_run is None and new_run is None:
        dirs = [find_tenant(reports, tenant)] if tenant else stored_tenants(reports)
        if as_json and len(dirs) != 1:
            raise UsageError(f"{reports} holds runs of {len(dirs)} tenants; --json shows one",
                             hint="add --tenant (a tenant id, verified domain or display name)")
        regressed = False
        for tenant_dir in dirs:
            label = describe_tenant(tenant_dir)
            found = runs(tenant_dir)
            if len(found) < 2:
                echo(WORDS["first"][as_lang(lang)].format(tenant=label), err=as_json)
                continue
            report = compare(load_run(found[-2]), load_run(found[-1]))
            regressed |= report.alert
            _show_drift(report, lang, as_json, label if len(dirs) > 1 else None)
        if not dirs:
            echo(WORDS["no_runs"][as_lang(lang)].format(reports=reports), err=as_json)
        sys.exit(EXIT_FAIL if exit_code and regressed else EXIT_PASS)
    if old_run is not None and new_run is None:
        old_dir, new_dir = resolve_pair(reports, tenant, None, old_run)
    else:
        old_dir, new_dir = resolve_pair(reports, tenant, old_run, new_run)
    report = compare(load_run(old_dir), load_run(new_dir))
    _show_drift(report, lang, as_json, None)
    sys.exit(EXIT_FAIL if exit_code and report.alert else EXIT_PASS)


def _show_drift(report: Any, lang: str, as_json: bool, label: str | None) -> None:
    from m365audit.drift import headline, summary_lines

    if as_json:
        echo_json(report.model_dump_json(indent=2))
        return
    if label is not None:
        echo(f"{label}:")
    echo(headline(report, as_lang(lang)))
    for line in summary_lines(report, as_lang(lang)):
        echo(f"  {line}")


WORDS: dict[str, dict[Lang, str]] = {
    "first": {"nl": "{tenant}: eerste controle van deze tenant; er is nog niets om mee te vergelijken.",
              "en": "{tenant}: first run of this tenant; there is nothing to compare with yet."},
    "no_runs": {"nl": "Er zijn nog geen complete controles in {reports}; voer eerst `m365audit audit` uit.",
                "en": "There are no complete runs in {reports} yet; run `m365audit audit` first."},
    "run": {"nl": "controle", "en": "run"},
    "verdict": {"nl": "oordeel", "en": "verdict"},
    "fail": {"nl": "voldoet niet", "en": "fail"},
    "error": {"nl": "niet te beoordelen", "en": "error"},
    "waived": {"nl": "uitzondering", "en": "waived"},
    "manual": {"nl": "handmatig", "en": "manual"},
    "pass": {"nl": "voldoet", "en": "pass"},
    "regressions": {"nl": "verslechterd", "en": "regressions"},
}


@click.command("history")
@click.argument("tenant", required=False)
@reports_option
@lang_option
@click.option("--html", "write_html", is_flag=True, help="Also rewrite reports/<tenant>/index.html.")
@click.option("--all", "overview", is_flag=True,
              help="Write reports/index.html: every tenant's latest verdict, open regressions, evidence age and links "
                   "(and rewrite each tenant's index.html).")
def history_cmd(tenant: str | None, reports: Path, lang: str, write_html: bool, overview: bool = False) -> None:
    """List a tenant's runs (default: every tenant) with verdict counts and regressions since the run before.

    TENANT is a tenant id, a verified domain or the display name of a tenant under --reports.
    """
    from m365audit.cli.tables import table
    from m365audit.drift import resolve_tenant, tenant_history, tenant_name, write_index, write_overview

    if overview:
        if tenant is not None:
            raise UsageError("--all covers every tenant; leave out TENANT", hint="m365audit history --all")
        echo(f"{'Overzicht' if lang == 'nl' else 'Overview'}: {write_overview(reports, as_lang(lang))}")
        return
    L = as_lang(lang)
    tenants = resolve_tenant(reports, tenant)
    if not tenants:
        echo(WORDS["no_runs"][L].format(reports=reports))
        return
    columns = ("run", "verdict", "fail", "error", "waived", "manual", "pass", "regressions")
    for tenant_dir in tenants:
        name = tenant_name(tenant_dir)
        echo(f"{tenant_dir.name}" + (f"  {name}" if name else ""))
        rows = [[run.run_id, run.verdict, *(str(run.counts.get(k, 0)) for k in columns[2:7]),
                 "-" if run.regressions is None else str(run.regressions)] for run in tenant_history(tenant_dir)]
        for line in table([WORDS[c][L] for c in columns], rows, indent="  ", right=range(2, 8)):
            echo(line)
        if write_html:
            echo(f"  index: {write_index(tenant_dir, L)}")
