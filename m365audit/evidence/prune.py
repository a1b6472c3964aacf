"""Retention: delete old runs but keep the hash chain provable through a pruned.json ledger per tenant."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from m365audit.errors import RunFolderError, UsageError
from m365audit.evidence.files import MANIFEST, runs, sha256_file
from m365audit.evidence.verify import VerifyReport, verify_chain

LEDGER = "pruned.json"


@dataclass(frozen=True)
class Pruned:
    """One removed run, as the ledger keeps it."""

    run_id: str
    manifest_sha256: str
    previous_run_id: str | None
    previous_manifest_sha256: str | None
    started_at: str | None
    pruned_at: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_time(run: Path) -> datetime:
    """The UTC start of a run, from its id (20261128T021500Z or 20261128T021500Z-2)."""
    return datetime.strptime(run.name.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def read_ledger(tenant_dir: Path) -> list[dict[str, Any]]:
    """The ledger's entries, oldest first; [] when nothing was ever pruned."""
    path = tenant_dir / LEDGER
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries = doc["pruned"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{path} is unreadable ({exc})", hint="restore it from backup; it proves the chain") \
            from exc
    if not isinstance(entries, list):
        raise RunFolderError(f"{path}: 'pruned' is not a list", hint="restore it from backup")
    return entries


def prune_tenant(tenant_dir: Path, keep_days: int, now: datetime | None = None,
                 dry_run: bool = False) -> list[Pruned]:
    """Delete the runs older than keep_days (never the newest run), recording each in pruned.json first."""
    if keep_days < 1:
        raise UsageError("--keep-days must be at least 1", hint="the newest run is always kept anyway")
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=keep_days)
    with _ledger_lock(tenant_dir):
        found = runs(tenant_dir)
        old = [r for r in found[:-1] if run_time(r) < cutoff]
        entries = [_entry(r, now) for r in old]
        if dry_run or not entries:
            return entries
        ledger = read_ledger(tenant_dir) + [e.as_dict() for e in entries]
        tmp = tenant_dir / (LEDGER + ".tmp")
        tmp.write_text(json.dumps({"schema_version": 1, "pruned": ledger}, indent=2) + "\n", encoding="utf-8")
        tmp.replace(tenant_dir / LEDGER)  # the ledger is written before anything is deleted
        for run in old:
            shutil.rmtree(run)
    return entries


@contextmanager
def _ledger_lock(tenant_dir: Path) -> Iterator[None]:
    """One prune per tenant at a time (audits need no lock: the newest run, which they link to, is never pruned)."""
    lock = tenant_dir / (LEDGER + ".lock")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise RunFolderError(f"another prune of {tenant_dir.name} is running (lock file {lock})",
                             hint="wait for it; if none is running, remove the lock file") from None
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _entry(run: Path, now: datetime) -> Pruned:
    manifest = json.loads((run / MANIFEST).read_text(encoding="utf-8"))
    return Pruned(run_id=run.name, manifest_sha256=sha256_file(run / MANIFEST),
                  previous_run_id=manifest.get("previous_run_id"),
                  previous_manifest_sha256=manifest.get("previous_manifest_sha256"),
                  started_at=manifest.get("started_at"), pruned_at=now.isoformat())


def tenant_dirs(reports: Path, tenant: str | None) -> list[Path]:
    """The tenant folders to prune: one named tenant, or every folder of reports/ that holds runs."""
    if tenant is not None:
        from m365audit.evidence.tenant_lookup import find_tenant

        return [find_tenant(reports, tenant)]  # an id, a verified domain or a display name
    return sorted(p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".") and runs(p)) \
        if reports.is_dir() else []


def verify_chain_with_ledger(tenant_dir: Path) -> list[VerifyReport]:
    """Like evidence.verify_chain, but a gap before the oldest run is accepted when pruned.json covers it exactly.

    The ledger must itself be a chain (each entry links to the one before), and its last entry must be the
    run the oldest remaining run links to, with the same manifest SHA-256.
    """
    reports = verify_chain(tenant_dir)
    ledger = read_ledger(tenant_dir)
    first = next((r for r in reports if (r.run / MANIFEST).is_file()), None)
    if first is not None and (ledger or _links_back(first.run)):
        first.problems[:] = [p for p in first.problems if not p.startswith(FIRST_LINK_PROBLEM)]
        first.problems.extend(_first_link_problems(first.run, ledger))
    return reports


FIRST_LINK_PROBLEM = "chain: the previous run "
"""How evidence.verify_chain reports a link to a run that is gone (replaced here by the ledger check)."""


def _links_back(run: Path) -> bool:
    try:
        return json.loads((run / MANIFEST).read_text(encoding="utf-8")).get("previous_manifest_sha256") is not None
    except (OSError, ValueError, AttributeError):
        return False


def _first_link_problems(first: Path, ledger: list[dict[str, Any]]) -> list[str]:
    try:
        manifest = json.loads((first / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # verify_run has reported the manifest already
    want_id, want_sha = manifest.get("previous_run_id"), manifest.get("previous_manifest_sha256")
    if want_sha is None:
        return [] if not ledger else ["chain: pruned.json lists runs, but the oldest run links to none"]
    if not ledger:
        return [f"chain: the previous run {want_id} is missing and pruned.json does not record it"]
    problems = [f"chain: pruned.json entry {b.get('run_id')} does not link to {a.get('run_id')}"
                for a, b in zip(ledger, ledger[1:], strict=False)
                if b.get("previous_manifest_sha256") != a.get("manifest_sha256")]
    last = ledger[-1]
    if last.get("run_id") != want_id or last.get("manifest_sha256") != want_sha:
        problems.append(f"chain: the oldest run links to {want_id}, which pruned.json does not record with "
                        f"that manifest SHA-256")
    return problems
