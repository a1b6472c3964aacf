"""Retention: delete old runs but keep the hash chain provable through a pruned.json ledger per tenant."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from m365audit.errors import RunFolderError, UsageError
from m365audit.evidence.files import MANIFEST, RUN_ID, latest_run, runs, sha256_file
from m365audit.evidence.lock import TenantLock
from m365audit.evidence.signing import PublicKeys
from m365audit.evidence.verify import VerifyReport, verify_chain

LEDGER = "pruned.json"
TRASH = ".pruning"
"""Runs being deleted: out of the chain (one rename), recorded in the ledger, removed file by file."""


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
    """Delete the runs older than keep_days (never the newest run), recording each in pruned.json first.

    Safe against kill -9 at any point, and idempotent: the ledger is replaced atomically before anything is
    deleted; each run then leaves the chain in one atomic rename (into .pruning/) before its files are removed.
    A rerun first finishes what an interrupted prune recorded, and never records a run twice.
    """
    if keep_days < 1:
        raise UsageError("--keep-days must be at least 1", hint="the newest run is always kept anyway")
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=keep_days)
    with _ledger_lock(tenant_dir):
        ledger = read_ledger(tenant_dir)
        if not dry_run:
            finish_interrupted(tenant_dir, ledger)
        recorded = {e.get("run_id") for e in ledger}
        found = [r for r in runs(tenant_dir) if r.name not in recorded]
        old = [r for r in found[:-1] if run_time(r) < cutoff]
        entries = [_entry(r, now) for r in old]
        if dry_run or not entries:
            return entries
        _write_ledger(tenant_dir, ledger + [e.as_dict() for e in entries])  # before anything is deleted
        for run in old:
            _remove(tenant_dir, run)
    return entries


def fs_step(op: str, path: Path, target: Path | None = None, data: bytes = b"") -> None:
    """Every change prune makes on disk, one step at a time (the tests interrupt prune at each of them)."""
    if op == "write":
        with path.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    elif op == "replace" and target is not None:
        os.replace(path, target)
    elif op == "rename" and target is not None:
        os.rename(path, target)
    elif op == "unlink":
        os.unlink(path)
    elif op == "rmdir":
        os.rmdir(path)
    else:
        raise ValueError(f"unknown step {op}")


def _write_ledger(tenant_dir: Path, ledger: list[dict[str, Any]]) -> None:
    tmp = tenant_dir / (LEDGER + ".tmp")
    data = json.dumps({"schema_version": 1, "pruned": ledger}, indent=2).encode() + b"\n"
    fs_step("write", tmp, data=data)
    fs_step("replace", tmp, tenant_dir / LEDGER)


def _remove(tenant_dir: Path, run: Path) -> None:
    """Out of the chain in one atomic rename, then deleted file by file (a kill leaves it in .pruning/)."""
    trash = tenant_dir / TRASH
    trash.mkdir(exist_ok=True)
    fs_step("rename", run, trash / run.name)
    _delete_tree(trash / run.name)
    with contextlib.suppress(OSError):
        fs_step("rmdir", trash)  # only when empty


def _delete_tree(top: Path) -> None:
    """Bottom-up, one file at a time; links are removed, never followed (a linked 'run' keeps its target)."""
    if top.is_symlink():
        fs_step("unlink", top)
        return
    for root, dirs, files in os.walk(top, topdown=False):
        for name in files:
            fs_step("unlink", Path(root) / name)
        for name in dirs:
            path = Path(root) / name
            fs_step("unlink" if path.is_symlink() else "rmdir", path)
    fs_step("rmdir", top)


def finish_interrupted(tenant_dir: Path, ledger: list[dict[str, Any]]) -> None:
    """Complete a prune that was killed: delete what pruned.json records and is still (partly) on disk.

    Only runs the ledger names are touched, and a run still in place only when its manifest is the one the ledger
    recorded (or is already gone): anything else is left alone and reported.
    """
    names = {str(e.get("run_id")) for e in ledger if RUN_ID.match(str(e.get("run_id")))}
    trash = tenant_dir / TRASH
    if trash.is_dir():
        for leftover in sorted(trash.iterdir()):
            if leftover.name not in names:
                raise RunFolderError(f"{leftover} is not recorded in {LEDGER}; prune deletes only what it recorded",
                                     hint="if it is a run, move it back into the tenant folder and run "
                                          "`m365audit verify --chain`")
            if leftover.is_dir():
                _delete_tree(leftover)
            else:
                fs_step("unlink", leftover)
    newest = latest_run(tenant_dir)
    for entry in ledger:
        run = tenant_dir / str(entry.get("run_id"))
        if run.name not in names or not run.is_dir():
            continue
        manifest = run / MANIFEST
        if run == newest or (manifest.is_file() and sha256_file(manifest) != entry.get("manifest_sha256")):
            raise RunFolderError(f"{run} is in {LEDGER} but is not the run recorded there (or is the newest run); "
                                 "nothing more is deleted", hint="run `m365audit verify --chain` on the tenant folder")
        _remove(tenant_dir, run)
    if trash.is_dir():
        with contextlib.suppress(OSError):
            fs_step("rmdir", trash)


@contextmanager
def _ledger_lock(tenant_dir: Path) -> Iterator[None]:
    """One prune per tenant at a time: a flock the OS releases when a prune is killed (audits need no lock: the
    newest run, which they link to, is never pruned)."""
    lock = TenantLock(tenant_dir, "prune", name=LEDGER + ".lock")
    try:
        lock.acquire(0.0)
    except RunFolderError:
        raise RunFolderError(f"another prune of {tenant_dir.name} is running (lock file {lock.path})",
                             hint="wait for it; a prune that was killed releases the lock by itself") from None
    try:
        yield
    finally:
        lock.release()


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


def verify_chain_with_ledger(tenant_dir: Path, keys: PublicKeys | None = None) -> list[VerifyReport]:
    """Like evidence.verify_chain, but a gap before the oldest run is accepted when pruned.json covers it exactly.

    The ledger must itself be a chain (each entry links to the one before), and its last entry for a run that is
    gone must be the run the oldest remaining run links to, with the same manifest SHA-256. Entries whose run is
    still there (a prune was interrupted before it removed them) must match that run's manifest.
    """
    reports = verify_chain(tenant_dir, keys)
    ledger = read_ledger(tenant_dir)
    present = {r.run.name: r for r in reports}
    gone = [e for e in ledger if e.get("run_id") not in present]
    for entry in ledger:
        report = present.get(str(entry.get("run_id")))
        if report is None:
            continue
        manifest = report.run / MANIFEST
        if manifest.is_file() and sha256_file(manifest) != entry.get("manifest_sha256"):
            report.problems.append(f"chain: {LEDGER} records this run with another manifest SHA-256")
        else:
            report.notes.append(f"{LEDGER} records this run as pruned: a prune was interrupted; run "
                                "`m365audit prune` again to finish it")
    first = next((r for r in reports if (r.run / MANIFEST).is_file()), None)
    if first is not None and (ledger or _links_back(first.run)):
        first.problems[:] = [p for p in first.problems if not p.startswith(FIRST_LINK_PROBLEM)]
        first.problems.extend(_first_link_problems(first.run, ledger, gone))
    return reports


FIRST_LINK_PROBLEM = "chain: the previous run "
"""How evidence.verify_chain reports a link to a run that is gone (replaced here by the ledger check)."""


def _links_back(run: Path) -> bool:
    try:
        return json.loads((run / MANIFEST).read_text(encoding="utf-8")).get("previous_manifest_sha256") is not None
    except (OSError, ValueError, AttributeError):
        return False


def _first_link_problems(first: Path, ledger: list[dict[str, Any]], gone: list[dict[str, Any]]) -> list[str]:
    try:
        manifest = json.loads((first / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # verify_run has reported the manifest already
    want_id, want_sha = manifest.get("previous_run_id"), manifest.get("previous_manifest_sha256")
    problems = [f"chain: pruned.json entry {b.get('run_id')} does not link to {a.get('run_id')}"
                for a, b in zip(ledger, ledger[1:], strict=False)
                if b.get("previous_manifest_sha256") != a.get("manifest_sha256")]
    if want_sha is None:
        extra = ["chain: pruned.json lists runs before the oldest run, but it links to none"] if gone else []
        return problems + extra
    if not gone:
        return problems + [f"chain: the previous run {want_id} is missing and pruned.json does not record it"]
    last = gone[-1]
    if last.get("run_id") != want_id or last.get("manifest_sha256") != want_sha:
        problems.append(f"chain: the oldest run links to {want_id}, which pruned.json does not record with "
                        f"that manifest SHA-256")
    return problems
