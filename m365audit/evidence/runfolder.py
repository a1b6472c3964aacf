"""The evidence: exchange store, run folders written atomically, SHA-256 manifest, hash chain, verify."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from m365audit.errors import RunFolderError
from m365audit.evidence.files import (
    FINALISE_WAIT,
    INCOMPLETE,
    MANIFEST,
    SEAL,
    WORK,
    latest_run,
    run_files,
    safe_name,
    seal_line,
    sha256_file,
    sha256_files,
    write_new,
)
from m365audit.evidence.lock import TenantLock, process_alive
from m365audit.evidence.signing import SIGNATURE, Signer

# --------------------------------------------------------------------------- run folders


@dataclass
class RunFolder:
    """A run being written: a hidden temporary folder, renamed into place only when complete."""

    reports: Path
    run_id: str
    started_at: datetime
    tmp: Path = field(init=False)
    _locks: dict[Path, TenantLock] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        base = self.reports / INCOMPLETE
        base.mkdir(parents=True, exist_ok=True)
        self.run_id = _free_run_id(self.reports, self.run_id)
        self.tmp = base / f"{self.run_id}-{os.getpid()}"
        self.tmp.mkdir(exist_ok=False)

    def hold(self, tenant: str) -> None:
        """Lock the tenant for the whole run (when it is known up front): a second run is refused at once."""
        self._lock(self.reports / safe_name(tenant), wait=0.0)

    def _lock(self, tenant_dir: Path, wait: float) -> None:
        if tenant_dir not in self._locks:
            lock = TenantLock(tenant_dir, self.run_id)
            lock.acquire(wait)
            self._locks[tenant_dir] = lock

    @property
    def work(self) -> Path:
        """Scratch space of this run (spooled collections); never part of the finished run."""
        return self.tmp / WORK

    def write(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new(path, data)
        return path

    @contextmanager
    def open_new(self, name: str) -> Iterator[IO[bytes]]:
        """A new file of the run to write as a stream (it must not exist yet)."""
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as f:
            yield f

    def finalise(self, tenant: str, manifest: dict[str, Any], signer: Signer | None = None) -> Path:
        """Hash every file, chain to the previous run, write manifest.json last and rename into place.

        With a signer, manifest.sig (an Ed25519 signature over manifest.json) is written beside the seal.
        """
        tenant_dir = self.reports / safe_name(tenant)
        try:
            self._lock(tenant_dir, wait=FINALISE_WAIT)
            final = tenant_dir / self.run_id
            if final.exists():
                raise RunFolderError(f"a run {self.run_id} already exists for {tenant}; runs are never overwritten",
                                     hint="wait a second and run again")
            previous = latest_run(tenant_dir)
            if self.work.exists():
                shutil.rmtree(self.work)  # scratch, not evidence: the snapshot.json now holds those items
            names = run_files(self.tmp)
            manifest = {
                **manifest,
                "run_id": self.run_id,
                "files": dict(zip(names, sha256_files([self.tmp / rel for rel in names]), strict=True)),
                "previous_run_id": previous.name if previous else None,
                "previous_manifest_sha256": sha256_file(previous / MANIFEST) if previous else None,
            }
            data = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
            write_new(self.tmp / MANIFEST, data)
            write_new(self.tmp / SEAL, seal_line(hashlib.sha256(data).hexdigest()).encode())
            if signer is not None:
                write_new(self.tmp / SIGNATURE, signer.signature_file(data))
            os.rename(self.tmp, final)
        finally:
            self.release()
        return final

    def release(self) -> None:
        """Let go of every tenant lock this run holds."""
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()

    def discard(self) -> None:
        self.release()
        shutil.rmtree(self.tmp, ignore_errors=True)


def policy_copies(files: dict[str, str], folder: Path, local: Path | None, given: bool,
                  default: Path) -> dict[str, bytes]:
    """The exact policy files a run used, as policy/pack/… and policy/local/…, each checked against its digest.

    ``files`` is PolicyPack.files (label -> sha256); a file that changed since it was loaded is not copied,
    so a copy is always the bytes the run judged with.
    """
    copies: dict[str, bytes] = {}
    for label, digest in files.items():
        path, target = Path(label), ""
        if local is not None and path.is_relative_to(local):
            target = "policy/local/" + path.relative_to(local).as_posix()
        elif given and path.is_relative_to(folder):
            target = "policy/pack/" + path.relative_to(folder).as_posix()
        elif not given and path.is_relative_to("policies"):
            path = default / path.relative_to("policies")
            target = "policy/pack/" + Path(label).relative_to("policies").as_posix()
        try:
            data = path.read_bytes() if target else b""
        except OSError:
            continue
        if target and ".." not in Path(target).parts and hashlib.sha256(data).hexdigest() == digest:
            copies[target] = data
    return copies


def interrupted_runs(reports: Path) -> list[Path]:
    """Temporary run folders whose process is gone: an interrupted run, never evidence (it has no manifest)."""
    base = reports / INCOMPLETE
    if not base.is_dir():
        return []
    found = []
    for tmp in sorted(base.iterdir()):
        pid = tmp.name.rpartition("-")[2]
        if tmp.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            found.append(tmp)
    return found


def _free_run_id(reports: Path, run_id: str) -> str:
    """The run id, or run id -2, -3 … when a run of this second exists already (runs are never overwritten)."""
    def taken(candidate: str) -> bool:
        return any(reports.glob(f"*/{candidate}")) or any((reports / INCOMPLETE).glob(f"{candidate}-[0-9]*"))

    candidate, n = run_id, 1
    while taken(candidate):
        n += 1
        candidate = f"{run_id}-{n}"
    return candidate


