"""Names and primitives of the evidence tree: run ids, file names, SHA-256, write-once files, run listing."""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

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


def sha256_files(paths: list[Path]) -> list[str]:
    """sha256_file of each path, in order, on as many threads as there are processors (hashlib and file reads
    let go of the interpreter lock, so a night's evidence is hashed on every core at once)."""
    if len(paths) < 2:
        return [sha256_file(path) for path in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1),
                            thread_name_prefix="m365audit-hash") as pool:
        return list(pool.map(sha256_file, paths))


def safe_name(text: str) -> str:
    """A file- and folder-safe version of a tenant id or source key."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return cleaned or "unknown"


def seal_line(manifest_sha256: str) -> str:
    """manifest.sha256 in sha256sum format, so `sha256sum -c manifest.sha256` checks it too."""
    return f"{manifest_sha256}  {MANIFEST}\n"


def write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet: evidence is never overwritten."""
    with path.open("xb") as f:
        f.write(data)


def run_files(folder: Path) -> list[str]:
    """Every file under a run folder, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def run_dirs(tenant_dir: Path) -> list[Path]:
    """Every folder named like a run, complete or not, in run order."""
    if not tenant_dir.is_dir():
        return []
    return sorted((p for p in tenant_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name)), key=run_order)


def run_order(path: Path) -> tuple[str, int]:
    """Sort key of a run folder: its time, then the -N of a run started in the same second."""
    base, _, n = path.name.partition("-")
    return base, int(n or 1)


def runs(tenant_dir: Path) -> list[Path]:
    """Complete runs of a tenant (those with a manifest), oldest first."""
    return [p for p in run_dirs(tenant_dir) if (p / MANIFEST).is_file()]


def latest_run(tenant_dir: Path) -> Path | None:
    """The newest complete run of a tenant, or None."""
    found = runs(tenant_dir)
    return found[-1] if found else None


def sealed_run_around(path: Path) -> Path | None:
    """The sealed run folder that holds path (or is path): any ancestor with a manifest or a seal; else None.

    A sealed run never changes, so nothing may be written inside it. Symlinks are resolved first, so a link
    into a run does not slip past; a folder named like a run beside the runs of a tenant counts as well
    (verify --chain would report it as a run without manifest).
    """
    here = path.expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).exists() or (folder / SEAL).exists():
            return folder
    if RUN_ID.match(here.name) and runs(here.parent):
        return here
    return None
