"""The evidence: exchange store, run folders written atomically, SHA-256 manifest, hash chain, verify."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from m365audit.errors import RunFolderError
from m365audit.graph.client import RecordedExchange

try:
    import fcntl

    HAVE_FLOCK = True
except ImportError:  # pragma: no cover - Windows: fall back to an O_EXCL pid file
    HAVE_FLOCK = False

RUN_ID = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MANIFEST = "manifest.json"
SEAL = "manifest.sha256"
INCOMPLETE = ".incomplete"
WORK = ".work"
"""Inside a run being written: large collections spooled page by page; removed before the manifest."""
LOCK = ".lock"
FINALISE_WAIT = 30.0


def new_run_id(now: datetime) -> str:
    """UTC basic ISO-8601: sortable, no colons."""
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_name(text: str) -> str:
    """A file- and folder-safe version of a tenant id or source key."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return cleaned or "unknown"


def seal_line(manifest_sha256: str) -> str:
    """manifest.sha256 in sha256sum format, so `sha256sum -c manifest.sha256` checks it too."""
    return f"{manifest_sha256}  {MANIFEST}\n"


# --------------------------------------------------------------------------- exchanges


@dataclass(frozen=True)
class ExchangeRef:
    """Where the evidence for a source is: the exchange file and what Graph said about the request."""

    file: str
    request_id: str | None
    status: int
    attempt: int = 1


class ExchangeStore:
    """Writes every Graph attempt as a FIXTURES.md exchange with its exact body bytes beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._count = 0
        self.refs: dict[str, list[ExchangeRef]] = {}

    @property
    def names(self) -> dict[str, list[str]]:
        """Exchange file names per source, in the order they were recorded."""
        return {source: [r.file for r in refs] for source, refs in self.refs.items()}

    def record(self, exchange: RecordedExchange) -> None:
        with self._lock:
            self._count += 1
            stem = f"{self._count:05d}-{safe_name(exchange.source or 'graph')}"
            self.refs.setdefault(exchange.source or "", []).append(
                ExchangeRef(f"{stem}.json", exchange.request_id, exchange.status, exchange.attempt))
        body_name = f"{stem}.body"
        _write_new(self.folder / body_name, exchange.body)
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
            "path": urlsplit(exchange.url).path,
            "recorded_at": exchange.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sha256": exchange.sha256,
            "attempt": exchange.attempt,
            "request_id": exchange.request_id,
        }
        _write_new(self.folder / f"{stem}.json", json.dumps(doc, indent=2, ensure_ascii=False).encode())

    @property
    def count(self) -> int:
        return self._count


def exchange_refs(folder: Path) -> dict[str, list[ExchangeRef]]:
    """The evidence index of a stored run (its exchanges/ folder), as ExchangeStore.refs had it."""
    refs: dict[str, list[ExchangeRef]] = {}
    for path in sorted((folder / "exchanges").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            ref = ExchangeRef(path.name, doc.get("request_id"), int(doc["response"]["status"]),
                              int(doc.get("attempt", 1)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        refs.setdefault(str(doc.get("source") or ""), []).append(ref)
    return refs


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet: evidence is never overwritten."""
    with path.open("xb") as f:
        f.write(data)


# --------------------------------------------------------------------------- tenant lock


class TenantLock:
    """One writer per tenant: flock on reports/<tenant>/.lock (released by the OS if the process dies).

    Where the OS has no flock, an O_EXCL pid file is used, and a lock left by a dead process is taken over.
    The file always names the holder (pid, host, run), so a refused run can say who holds it.
    """

    def __init__(self, tenant_dir: Path, run_id: str = "") -> None:
        self.path = tenant_dir / LOCK
        self.run_id = run_id
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, retrying for up to `wait` seconds; RunFolderError names the holder otherwise."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        while not self._try():
            if time.monotonic() >= deadline:
                holder = self.holder()
                who = f"process {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
                run = f", run {holder['run_id']}" if holder.get("run_id") else ""
                raise RunFolderError(
                    f"another audit of this tenant is running ({who}{run}); lock file {self.path}",
                    hint="wait for it to finish and run again (runs never overwrite each other); if no audit is "
                         "running, the lock is stale: remove the file")
            time.sleep(0.1)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps(info).encode())

    def _try(self) -> bool:
        if HAVE_FLOCK:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        return self._try_pid_file()

    def _try_pid_file(self) -> bool:
        for _ in range(2):
            try:
                self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
                return True
            except FileExistsError:
                if not self._remove_stale():
                    return False
        return False

    def _remove_stale(self) -> bool:
        """Remove a pid-file lock whose process is dead (same host only); True when it was removed."""
        holder = self.holder()
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") not in (None, socket.gethostname()) or _alive(pid):
            return False
        stale = self.path.with_name(f"{LOCK}.stale-{os.getpid()}")
        try:
            os.rename(self.path, stale)  # of two takers, only one wins the rename
            stale.unlink()
        except OSError:
            return False
        return True

    def holder(self) -> dict[str, Any]:
        """Who holds (or last held) the lock, as written in the lock file; {} when unknown."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return {}
        if text.isdigit():
            return {"pid": int(text)}
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if HAVE_FLOCK:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:
            os.close(fd)
            self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        _write_new(path, data)
        return path

    @contextmanager
    def open_new(self, name: str) -> Iterator[IO[bytes]]:
        """A new file of the run to write as a stream (it must not exist yet)."""
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as f:
            yield f

    def finalise(self, tenant: str, manifest: dict[str, Any]) -> Path:
        """Hash every file, chain to the previous run, write manifest.json last and rename into place."""
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
            manifest = {
                **manifest,
                "run_id": self.run_id,
                "files": {rel: sha256_file(self.tmp / rel) for rel in _files(self.tmp)},
                "previous_run_id": previous.name if previous else None,
                "previous_manifest_sha256": sha256_file(previous / MANIFEST) if previous else None,
            }
            data = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
            _write_new(self.tmp / MANIFEST, data)
            _write_new(self.tmp / SEAL, seal_line(hashlib.sha256(data).hexdigest()).encode())
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
        if tmp.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
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


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _run_dirs(tenant_dir: Path) -> list[Path]:
    """Every folder named like a run, complete or not, in run order."""
    if not tenant_dir.is_dir():
        return []
    return sorted((p for p in tenant_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name)), key=_run_order)


def _run_order(path: Path) -> tuple[str, int]:
    base, _, n = path.name.partition("-")
    return base, int(n or 1)


def runs(tenant_dir: Path) -> list[Path]:
    """Complete runs of a tenant (those with a manifest), oldest first."""
    return [p for p in _run_dirs(tenant_dir) if (p / MANIFEST).is_file()]


def latest_run(tenant_dir: Path) -> Path | None:
    found = runs(tenant_dir)
    return found[-1] if found else None


# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """What verify found: an empty list of problems means the evidence is intact."""

    run: Path
    problems: list[str] = field(default_factory=list)

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


def verify_run(run: Path, previous: Path | None = None, check_link: bool = False) -> VerifyReport:
    """Every file hashed against the manifest: changed, missing and extra files; optionally the chain link."""
    report = VerifyReport(run)
    manifest = _load_manifest(run, report)
    if manifest is None:
        return report
    recorded: dict[str, str] = {str(k): str(v) for k, v in manifest["files"].items()}
    present = set(_files(run)) - {MANIFEST, SEAL}
    for rel in sorted(set(recorded) - present):
        report.problems.append(f"missing: {rel}")
    for rel in sorted(present - set(recorded)):
        report.problems.append(f"extra (not in the manifest): {rel}")
    for rel in sorted(present & set(recorded)):
        if sha256_file(run / rel) != recorded[rel]:
            report.problems.append(f"changed: {rel}")
    if manifest.get("run_id") not in (None, run.name):
        report.problems.append(f"renamed: the manifest belongs to run {manifest.get('run_id')}")
    if check_link:
        report.problems.extend(_link_problems(manifest, previous))
    return report


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


def verify_chain(tenant_dir: Path) -> list[VerifyReport]:
    """Verify every run of a tenant and every link between consecutive runs; a run without manifest is reported."""
    reports: list[VerifyReport] = []
    previous: Path | None = None
    for run in _run_dirs(tenant_dir):
        report = verify_run(run, previous, check_link=True)
        reports.append(report)
        if (run / MANIFEST).is_file():
            previous = run
    return reports
