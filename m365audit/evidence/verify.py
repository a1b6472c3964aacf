"""Verify a run folder against its manifest and seal, and a tenant's hash chain run by run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m365audit.evidence.files import MANIFEST, SEAL, run_dirs, run_files, safe_name, seal_line, sha256_file
from m365audit.evidence.signing import SIGNATURE, PublicKeys, signature_check

# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """What verify found: an empty list of problems means the evidence is intact."""

    run: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Worth knowing, not tampering (an unfinished prune, a signature not checked for want of a key)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_manifest(run: Path, report: VerifyReport) -> dict[str, Any] | None:
    """The manifest, checked against its seal (manifest.sha256); None when it cannot be used at all."""
    manifest_path = run / MANIFEST
    if not manifest_path.is_file():
        report.problems.append(f"missing: {MANIFEST} (the run is incomplete, or not a run folder)")
        return None
    seal = run / SEAL
    if not seal.is_file():
        report.problems.append(f"missing: {SEAL}")
    elif seal.read_bytes() != seal_line(sha256_file(manifest_path)).encode():
        report.problems.append(f"changed: {MANIFEST} (or {SEAL}): the manifest no longer matches its seal")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no 'files' table")
    except (ValueError, UnicodeDecodeError) as exc:
        report.problems.append(f"{MANIFEST}: unreadable ({exc})")
        return None
    return manifest


def verify_run(run: Path, previous: Path | None = None, check_link: bool = False,
               tenant_folder: str | None = None, keys: PublicKeys | None = None,
               require_signature: bool = False) -> VerifyReport:
    """Every file hashed against the manifest: changed, missing and extra files; optionally the chain link.

    With tenant_folder (verify --chain), the manifest's tenant id must be the tenant of that folder: a run
    copied or moved in from another tenant's history is not evidence about this one. manifest.sig, when present,
    must sign this manifest; with keys (verify --key) it must be a valid signature by one of them, and a run
    that must be signed (require_signature) and is not is reported.
    """
    report = VerifyReport(run)
    manifest = _load_manifest(run, report)
    if manifest is None:
        return report
    recorded: dict[str, str] = {str(k): str(v) for k, v in manifest["files"].items()}
    present = set(run_files(run)) - {MANIFEST, SEAL, SIGNATURE}
    problems, notes = signature_check(run, keys, require_signature or keys is not None and previous is None
                                      and not check_link)
    report.problems.extend(problems)
    report.notes.extend(notes)
    for rel in sorted(set(recorded) - present):
        report.problems.append(f"missing: {rel}")
    for rel in sorted(present - set(recorded)):
        report.problems.append(f"extra (not in the manifest): {rel}")
    for rel in sorted(present & set(recorded)):
        if sha256_file(run / rel) != recorded[rel]:
            report.problems.append(f"changed: {rel}")
    if manifest.get("run_id") not in (None, run.name):
        report.problems.append(f"renamed: the manifest belongs to run {manifest.get('run_id')}")
    if tenant_folder is not None:
        report.problems.extend(_tenant_problems(manifest, tenant_folder))
    if check_link:
        report.problems.extend(_link_problems(manifest, previous))
    return report


def _tenant_problems(manifest: dict[str, Any], tenant_folder: str) -> list[str]:
    """A run belongs to the tenant whose folder holds it (the folder name is safe_name of the tenant id)."""
    tenant = manifest.get("tenant_id")
    if not isinstance(tenant, str) or not tenant:
        return [f"tenant: the manifest names no tenant, so it cannot be shown to belong to {tenant_folder}"]
    if safe_name(tenant) != tenant_folder:
        return [f"tenant: the manifest belongs to tenant {safe_name(tenant)}, not to {tenant_folder} "
                f"(a run of another tenant was copied or moved here)"]
    return []


def _link_problems(manifest: dict[str, Any], previous: Path | None) -> list[str]:
    """The hash-chain link from a run's manifest to the run before it."""
    want = manifest.get("previous_manifest_sha256")
    if previous is None:
        if want is None:
            return []
        return [f"chain: the previous run {manifest.get('previous_run_id')} is missing (deleted or moved)"]
    if manifest.get("previous_run_id") != previous.name:
        return [f"chain: links to {manifest.get('previous_run_id')}, but the run before it is {previous.name} "
                f"(a run was deleted or moved)"]
    if want != sha256_file(previous / MANIFEST):
        return [f"chain: the manifest of {previous.name} changed since this run linked to it"]
    return []


def verify_chain(tenant_dir: Path, keys: PublicKeys | None = None) -> list[VerifyReport]:
    """Verify every run of a tenant and every link between consecutive runs; a run without manifest is reported.

    With keys, the newest run and every run from the oldest signed one on must carry a valid signature: the runs
    before that are anchored by the signed manifests, which hold the hash of the manifest before them.
    """
    reports: list[VerifyReport] = []
    previous: Path | None = None
    folders = run_dirs(tenant_dir)
    complete = [r for r in folders if (r / MANIFEST).is_file()]
    signed = [i for i, r in enumerate(complete) if (r / SIGNATURE).exists()]
    must_sign = set(complete[min(signed):] if signed else complete[-1:]) if keys is not None else set()
    for run in folders:
        report = verify_run(run, previous, check_link=True, tenant_folder=tenant_dir.resolve().name, keys=keys,
                            require_signature=run in must_sign)
        reports.append(report)
        if (run / MANIFEST).is_file():
            previous = run
    return reports
