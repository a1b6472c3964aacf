"""One writer per tenant: the flock on reports/<tenant>/.lock, released by the OS when the process dies."""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from m365audit.errors import RunFolderError
from m365audit.evidence.files import LOCK

try:
    import fcntl

    HAVE_FLOCK = True
except ImportError:  # pragma: no cover - Windows: fall back to an O_EXCL pid file
    HAVE_FLOCK = False


# --------------------------------------------------------------------------- tenant lock


class TenantLock:
    """One writer per tenant: flock on reports/<tenant>/.lock (released by the OS if the process dies).

    Where the OS has no flock, an O_EXCL pid file is used, and a lock left by a dead process is taken over.
    The file always names the holder (pid, host, run), so a refused run can say who holds it.
    """

    def __init__(self, tenant_dir: Path, run_id: str = "", name: str = LOCK) -> None:
        self.path = tenant_dir / name
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
        if not isinstance(pid, int) or holder.get("host") not in (None, socket.gethostname()) or process_alive(pid):
            return False
        stale = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
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


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
