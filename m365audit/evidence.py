"""The evidence: exchange store, run folders written atomically, SHA-256 manifest, hash chain, verify."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from m365audit.errors import RunFolderError
from m365audit.graph import RecordedExchange

RUN_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MANIFEST = "manifest.json"
INCOMPLETE = ".incomplete"


def new_run_id(now: datetime) -> str:
    """UTC basic ISO-8601: sortable, no colons."""
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_name(text: str) -> str:
    """A file- and folder-safe version of a tenant id or source key."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return cleaned or "unknown"


# --------------------------------------------------------------------------- exchanges


class ExchangeStore:
    """Writes every Graph attempt as a FIXTURES.md exchange with its exact body bytes beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._count = 0
        self.names: dict[str, list[str]] = {}

    def record(self, exchange: RecordedExchange) -> None:
        with self._lock:
            self._count += 1
            stem = f"{self._count:05d}-{safe_name(exchange.source or 'graph')}"
            self.names.setdefault(exchange.source or "", []).append(f"{stem}.json")
        body_name = f"{stem}.body"
        (self.folder / body_name).write_bytes(exchange.body)
        parts = urlsplit(exchange.url)
        request: dict[str, Any] = {"method": exchange.method, "url": exchange.url}
        if exchange.request_body:
            try:
                request["body"] = json.loads(exchange.request_body)
            except (ValueError, UnicodeDecodeError):
                request["body_sha256"] = hashlib.sha256(exchange.request_body).hexdigest()
        doc = {
            "request": request,
            "response": {"status": exchange.status, "headers": exchange.headers, "body_file": body_name},
            "source": exchange.source,
            "path": parts.path,
            "recorded_at": exchange.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sha256": exchange.sha256,
            "attempt": exchange.attempt,
            "request_id": exchange.request_id,
        }
        _write_new(self.folder / f"{stem}.json", json.dumps(doc, indent=2, ensure_ascii=False).encode())

    @property
    def count(self) -> int:
        return self._count


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet: evidence is never overwritten."""
    with path.open("xb") as f:
        f.write(data)


# --------------------------------------------------------------------------- run folders


@dataclass
class RunFolder:
    """A run being written: a hidden temporary folder, renamed into place only when complete."""

    reports: Path
    run_id: str
    started_at: datetime
    tmp: Path = field(init=False)

    def __post_init__(self) -> None:
        base = self.reports / INCOMPLETE
        base.mkdir(parents=True, exist_ok=True)
        self.run_id = _free_run_id(self.reports, self.run_id)
        self.tmp = base / f"{self.run_id}-{os.getpid()}"
        self.tmp.mkdir(exist_ok=False)

    def write(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, data)
        return path

    def finalise(self, tenant: str, manifest: dict[str, Any]) -> Path:
        """Hash every file, chain to the previous run, write manifest.json last and rename into place."""
        tenant_dir = self.reports / safe_name(tenant)
        tenant_dir.mkdir(parents=True, exist_ok=True)
        with tenant_lock(tenant_dir):
            final = tenant_dir / self.run_id
            if final.exists():
                raise RunFolderError(f"a run {self.run_id} already exists for {tenant}; runs are never overwritten",
                                     hint="wait a second and run again")
            previous = latest_run(tenant_dir)
            manifest = {
                **manifest,
                "run_id": self.run_id,
                "files": {rel: sha256_file(self.tmp / rel) for rel in _files(self.tmp)},
                "previous_run_id": previous.name if previous else None,
                "previous_manifest_sha256": sha256_file(previous / MANIFEST) if previous else None,
            }
            _write_new(self.tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode())
            os.rename(self.tmp, final)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _free_run_id(reports: Path, run_id: str) -> str:
    """The run id, or run id -2, -3 … when a run of this second exists already (runs are never overwritten)."""
    def taken(candidate: str) -> bool:
        return any(reports.glob(f"*/{candidate}")) or any((reports / INCOMPLETE).glob(f"{candidate}-[0-9]*"))

    candidate, n = run_id, 1
    while taken(candidate):
        n += 1
        candidate = f"{run_id}-{n}"
    return candidate


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def runs(tenant_dir: Path) -> list[Path]:
    """Complete runs of a tenant (those with a manifest), oldest first."""
    if not tenant_dir.is_dir():
        return []
    return sorted(p for p in tenant_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name) and (p / MANIFEST).is_file())


def latest_run(tenant_dir: Path) -> Path | None:
    found = runs(tenant_dir)
    return found[-1] if found else None


@contextmanager
def tenant_lock(tenant_dir: Path) -> Iterator[None]:
    """One writer per tenant at a time; a lock left by a dead process is taken over."""
    lock = tenant_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and _alive(holder):
                raise RunFolderError(f"another audit of this tenant is running (process {holder}); "
                                     f"lock file {lock}", hint="wait for it to finish; runs never overwrite") from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
        return
    raise RunFolderError(f"could not take the lock {lock}", hint="remove it if no audit is running")


def _lock_holder(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """What verify found: an empty list of problems means the evidence is intact."""

    run: Path
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(run: Path, previous: Path | None = None, check_link: bool = False) -> VerifyReport:
    """Every file hashed against the manifest: changed, missing and extra files; optionally the chain link."""
    report = VerifyReport(run)
    manifest_path = run / MANIFEST
    if not manifest_path.is_file():
        report.problems.append(f"{run}: no {MANIFEST}: the run is incomplete or not a run folder")
        return report
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        recorded: dict[str, str] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"{MANIFEST}: unreadable ({exc})")
        return report
    present = set(_files(run)) - {MANIFEST}
    for rel in sorted(set(recorded) - present):
        report.problems.append(f"missing: {rel}")
    for rel in sorted(present - set(recorded)):
        report.problems.append(f"extra (not in the manifest): {rel}")
    for rel in sorted(present & set(recorded)):
        if sha256_file(run / rel) != recorded[rel]:
            report.problems.append(f"changed: {rel}")
    if check_link:
        want = manifest.get("previous_manifest_sha256")
        if previous is None and want is not None:
            report.problems.append(f"chain: the previous run {manifest.get('previous_run_id')} is missing")
        elif previous is not None:
            if manifest.get("previous_run_id") != previous.name:
                report.problems.append(f"chain: links to {manifest.get('previous_run_id')}, "
                                       f"but the run before it is {previous.name}")
            elif want != sha256_file(previous / MANIFEST):
                report.problems.append(f"chain: the manifest of {previous.name} changed since this run linked to it")
    return report


def verify_chain(tenant_dir: Path) -> list[VerifyReport]:
    """Verify every run of a tenant and every link between consecutive runs."""
    found = runs(tenant_dir)
    return [verify_run(run, found[i - 1] if i else None, check_link=True) for i, run in enumerate(found)]
