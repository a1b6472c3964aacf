"""Shared bench plumbing: a simulator in its own process, child processes timed with their peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the bench scripts run as `python bench/NAME.py` from anywhere
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def tenant_args(users: int) -> list[str]:
    """A municipality-shaped tenant: apps, grants and assignments grow with the number of users."""
    return ["--users", str(users), "--service-principals", str(max(50, users // 50)),
            "--grants", str(max(20, users // 100)), "--app-role-assignments", str(max(10, users // 500))]


class Simulator:
    """python -m m365audit.simulator in a child process (127.0.0.1, ephemeral port); stops with its stdin."""

    def __init__(self, users: int, latency_ms: float = 0.0, extra: list[str] | None = None) -> None:
        cmd = [PY, "-m", "m365audit.simulator", *tenant_args(users), "--latency-ms", str(latency_ms),
               "--audit-polls", "-1", *(extra or [])]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
                                     cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY" or not line[1].startswith("http://127.0.0.1:"):
            raise RuntimeError(f"simulator did not start: {line}")
        self.url = line[1]

    def stats(self, reset: bool = False) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.url}/_sim/{'reset' if reset else 'stats'}",
                                     method="POST" if reset else "GET")
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ChildRun:
    """One child process: wall time, peak RSS (MiB, from wait4), and the JSON line it printed last."""

    seconds: float
    max_rss_mib: float
    output: dict[str, Any]


def run_child(args: list[str], timeout: float = 900, code: Path | None = None) -> ChildRun:
    """Run a bench helper script in its own process; its peak RSS is its own, not the simulator's.

    ``code``: the m365audit tree the child imports (default: this one), e.g. another commit's, side by side.
    """
    start = time.perf_counter()
    env = ENV if code is None else {**ENV, "PYTHONPATH": str(code)}
    proc = subprocess.Popen([PY, *args], stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()  # the child prints little; reading to EOF first cannot deadlock
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            raise TimeoutError(f"{args} ran longer than {timeout} s")
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{args} printed no result (exit {proc.returncode}): {out[-2000:]}")
    return ChildRun(seconds, usage.ru_maxrss / 1024, json.loads(lines[-1]))


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"
