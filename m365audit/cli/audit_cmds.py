"""m365audit audit and evaluate: run or re-check an audit and print its verdict."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from m365audit.cli.base import (
    as_lang,
    as_of_date,
    device_code_prompt,
    echo,
    echo_json,
    lang_option,
    local_option,
    notify_secret,
    policies_option,
    pseudonym_key,
    pseudonymise_options,
    reports_option,
    run_coro,
)
from m365audit.errors import AuditError, UsageError

if TYPE_CHECKING:
    from m365audit.models import Lang

@click.command()
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
@click.option("--notify", "notify", multiple=True, metavar="TARGET",
              help="Tell someone when a night needs a human (a regression, new objects, a rule that became error, "
                   "evidence incomplete, missing permissions, a failed night): a webhook URL (Teams Workflows URLs get "
                   "an Adaptive Card; others JSON, HMAC-signed with $M365AUDIT_NOTIFY_SECRET when set) or "
                   "mailto:ADDRESS (SMTP from $M365AUDIT_SMTP_*). Repeatable.")
@click.option("--report-url", default=None, envvar="M365AUDIT_REPORT_URL", metavar="URL",
              help="Where reports/ is published (e.g. https://intranet/m365audit/): alerts link "
                   "URL/<tenant>/<run>/report.html instead of the path on this machine.")
@click.option("--remind-every", type=click.IntRange(1, 365), default=7, show_default=True, metavar="NIGHTS",
              help="Tell a cause that persists again after this many nights (not every night).")
@click.option("--incomplete-nights", type=click.IntRange(1, 365), default=3, show_default=True, metavar="NIGHTS",
              help="Alert when the evidence has been incomplete this many nights in a row.")
@click.option("--sign-key", "sign_key", type=click.Path(path_type=Path, dir_okay=False), default=None,
              envvar="M365AUDIT_SIGN_KEY", help="Sign each manifest with this Ed25519 private key (PEM, PKCS#8; "
                                                "`m365audit keygen`): manifest.sig, checked by verify --key.")
@pseudonymise_options
def audit(replay: Path | None, policies: Path | None, local: Path | None, reports: Path, lang: str, auth: str,
          graph_url: str, tenant_id: str | None, client_id: str | None, certificate: Path | None, concurrency: int,
          timeout: float, audit_wait: float, as_of: datetime | None, quiet: bool, notify: tuple[str, ...] = (),
          config: Path | None = None, pseudonymise: bool = False, pseudonym_key_file: Path | None = None,
          report_url: str | None = None, remind_every: int = 7, incomplete_nights: int = 3,
          sign_key: Path | None = None) -> None:
    """Audit a tenant (or replay a recording) and write a dated, hash-chained run folder."""
    from m365audit.audit import AuditOptions, run_audit
    from m365audit.cli.progress import for_cli
    from m365audit.drift import check_targets
    from m365audit.errors import UsageError
    from m365audit.evidence import load_signer
    from m365audit.graph import CredentialSettings

    check_targets(notify)  # exit 2 before any config, lock or evidence
    signer = load_signer(sign_key) if sign_key is not None else None  # a wrong key: exit 2 before any evidence
    if config is not None:
        if signer is not None:
            raise UsageError("--sign-key cannot be combined with --config yet",
                             hint="audit each tenant with its own command line to sign its runs")
        _audit_config(config, quiet)
    _check_report_url(report_url)
    options = AuditOptions(
        reports=reports, policies=policies, local=local, replay=replay, lang=as_lang(lang),
        credential=CredentialSettings(method=auth, tenant_id=tenant_id, client_id=client_id,
                                      certificate_path=str(certificate) if certificate else None),
        concurrency=concurrency, timeout=timeout, audit_wait=audit_wait, as_of=as_of_date(as_of), graph_root=graph_url,
        notify=notify, notify_secret=notify_secret(), report_url=report_url, remind_every=remind_every,
        incomplete_nights=incomplete_nights,
        progress=None if replay is not None else for_cli(sys.stderr, quiet),
        device_code_prompt=device_code_prompt(as_lang(lang)),
        pseudonym_key=pseudonym_key(pseudonymise, pseudonym_key_file), sign_key=signer)
    try:
        result = run_coro(run_audit(options))
    except AuditError as exc:
        print_deliveries(getattr(exc, "alert", None), quiet)  # the night failed; its alert is in alert-state.json
        raise
    _print_summary(result.snapshot.tenant_name, result.snapshot.tenant_id, result.run_dir.name,
                   _for_print(result.findings, result.snapshot, options.pseudonym_key), result.verdict, lang, quiet)
    if not quiet:
        echo(f"{cli_word('run_folder', lang)}{result.run_dir}")
        echo(f"{cli_word('report', lang)}{result.run_dir / 'report.html'}")
        echo(f"{cli_word('manifest', lang)}{(result.run_dir / 'manifest.sha256').read_text().split()[0]} "
                   + cli_word("manifest_note", lang))
        if signer is not None:
            echo(f"Signed:     manifest.sig, key {signer.fingerprint} (verify --key KEY.pub)")
    print_drift(result, lang, quiet)
    if result.unmatched:
        echo(f"Warning: {len(result.unmatched)} request(s) had no recorded answer and count as errors: "
                   + "; ".join(result.unmatched[:3]), err=True)
    sys.exit(result.exit_code)


def _for_print(findings: list[Any], snapshot: Any, key: bytes | None) -> list[Any]:
    """Findings as stdout may show them: pseudonymised like the reports when a key was given."""
    if key is None:
        return findings
    from m365audit.report import Pseudonymiser

    pseudonymiser = Pseudonymiser(key, snapshot)
    return [pseudonymiser.finding(f) for f in findings]


CLI_WORDS: dict[str, dict[str, str]] = {
    "not_a_pass": {"nl": " (geen bewijs van naleving)", "en": " (not a pass)"},
    "run": {"nl": "controle", "en": "run"},
    "run_folder": {"nl": "Bewijsmap: ", "en": "Run folder: "},
    "report": {"nl": "Rapport:   ", "en": "Report:     "},
    "manifest": {"nl": "Manifest:  ", "en": "Manifest:   "},
    "manifest_note": {"nl": "(sha256; bewaar deze buiten de map reports: hij verankert de hashketen)",
                      "en": "(sha256; keep it outside the reports folder: it anchors the hash chain)"},
}
"""What audit and evaluate print around the verdict, in both languages."""


def cli_word(key: str, lang: str) -> str:
    """One of the words above in ``lang``."""
    return CLI_WORDS[key]["nl" if lang == "nl" else "en"]


def _audit_config(config: Path, quiet: bool) -> None:
    """Every tenant of a TOML file, a bounded number at a time; one summary table; exit with the worst code."""
    from m365audit.operations import audit_all, load_config, summary_table, worst

    loaded = load_config(config)
    outcomes = run_coro(audit_all(loaded))
    for line in summary_table(outcomes)[(1 if quiet else 0):]:
        echo(line)
    sys.exit(worst([o.exit_code for o in outcomes]))


def _print_summary(tenant_name: str, tenant_id: str, run_id: str, findings: list[Any], verdict: str, lang: str,
                   quiet: bool) -> None:
    """The verdict line; then FAIL, ERROR and WAIVED lines (with --quiet: ERROR lines only, each with its fix)."""
    from m365audit.report import VERDICT_WORDS, counts, labels, ordered

    c, L = counts(findings), labels(as_lang(lang))
    line = " · ".join(f"{L[k]} {v}" for k, v in c.items())
    word = VERDICT_WORDS[verdict][as_lang(lang)] + (cli_word("not_a_pass", lang) if verdict == "error" else "")
    echo(f"{word}: {tenant_name or tenant_id} {cli_word('run', lang)} {run_id}: {line}")
    width = 18 if lang == "nl" else 6
    for f in ordered(findings):
        if f.status.value in ("fail", "error", "waived") and not (quiet and f.status.value != "error"):
            echo(f"  {L[f.status.value].upper():{width}} {L[f.severity.value]:8} {f.rule_id}: "
                 f"{f.message.get(as_lang(lang))}" + fix_of(f, lang))


def fix_of(finding: Any, lang: str) -> str:
    """' Fix: …' for an error rule: its hints (the missing permission, …) on the same line, for cron logs."""
    if finding.status.value != "error":
        return ""
    from m365audit.report import in_lang

    hints = list(dict.fromkeys(in_lang(e.hint, lang) for e in finding.errors if e.hint))
    if not hints:
        return ""
    return (" Oplossing: " if lang == "nl" else " Fix: ") + "; ".join(h.replace("\n", " ") for h in hints)


@click.command("evaluate")
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

    if output is not None:
        refuse_sealed_output(output)
    snapshot_file = run_dir / "snapshot.json"
    if not snapshot_file.is_file():
        raise AuditError(f"{run_dir} has no snapshot.json", hint="give a run folder: reports/<tenant>/<run-id>")
    try:
        snapshot = read_snapshot(snapshot_file)  # lists stay on disk: a 300,000-user run is read page by page
    except ValueError as exc:  # SnapshotFileError names the file and the line
        raise AuditError(f"the stored snapshot cannot be read: {str(exc).splitlines()[0]}",
                         hint="run `m365audit verify` on the run folder") from exc
    key = pseudonym_key(pseudonymise, pseudonym_key_file)
    pack = load_pack(policies, local)
    for rejected in pack.rejected:
        echo(f"Warning: not applied (covers nothing): {rejected.problem}", err=True)
    findings = evaluate(snapshot, pack, as_of_date(as_of) or datetime.now(timezone.utc).date())
    result = verdict(findings)
    if output is not None:
        _write_evaluation(output, run_dir, snapshot, findings, pack, as_lang(lang), key)
    shown = _for_print(findings, snapshot, key)
    if as_json:
        from m365audit.report import Pseudonymiser

        view = Pseudonymiser(key, snapshot).snapshot(snapshot) if key else snapshot
        doc = findings_document(view, shown, run_dir.name, as_lang(lang), pseudonymised=key is not None)
        echo_json(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_summary(snapshot.tenant_name, snapshot.tenant_id, run_dir.name, shown, result, lang, False)
        if output is not None:
            echo(f"Report:     {output / 'report.html'}")
    from m365audit.audit import EXIT_BY_VERDICT

    sys.exit(EXIT_BY_VERDICT[result])


def refuse_sealed_output(output: Path) -> None:
    """evaluate --output never writes into a sealed run (nor makes a run-named folder among a tenant's runs)."""
    from m365audit.errors import UsageError
    from m365audit.evidence import sealed_run_around

    sealed = sealed_run_around(output)
    if sealed is None:
        return
    if not any((sealed / name).exists() for name in ("manifest.json", "manifest.sha256")):
        raise UsageError(f"--output {output} is named like a run among the runs of {sealed.parent}",
                         hint="verify --chain would count it as a run without manifest; give a folder outside "
                              "reports/<tenant>/, e.g. --output evaluations/<date>")
    raise UsageError(f"--output {output} is inside the sealed run {sealed}",
                     hint="a run folder never changes after its manifest is written; give a folder outside "
                          "reports/<tenant>/<run-id>/, e.g. --output evaluations/<date>")


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




def print_drift(result: Any, lang: str, quiet: bool) -> None:
    """REGRESSION lines on stdout (also with --quiet); failed webhook deliveries and warnings on stderr."""
    from m365audit.drift import headline, is_regression_line, summary_lines

    drift = result.drift
    if drift is not None and (drift.alert or not quiet):
        echo(headline(drift, as_lang(lang)))
        for line in summary_lines(drift, as_lang(lang)):
            if not quiet or is_regression_line(line):
                echo(f"  {line}")
    print_deliveries(result.notify, quiet)
    for warning in result.warnings:
        echo(f"Warning: {warning}", err=True)


def _check_report_url(url: str | None) -> None:
    from urllib.parse import urlsplit

    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        raise UsageError(f"--report-url {url[:80]!r} is not an http(s) URL", hint="e.g. https://intranet/m365audit/")


def print_deliveries(record: Any, quiet: bool) -> None:
    """One line per alert delivery: delivered (unless --quiet) or NOT delivered (on stderr, always)."""
    for d in record.deliveries if record is not None else []:
        if d.ok:
            if not quiet:
                how = f"HTTP {d.status}, " if d.status else ""
                echo(f"Notified {d.target} ({d.form}, {how}{d.attempts} attempt(s))")
        else:
            echo(f"Warning: alert to {d.target} NOT delivered after {d.attempts} attempt(s): {d.error}; "
                       f"recorded in notify.json (the verdict is unchanged)", err=True)
