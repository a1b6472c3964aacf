"""Bench helper: one live audit against a simulator URL, in its own process; prints one JSON line."""

from __future__ import annotations

import asyncio
import functools
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

START = time.perf_counter()
PHASES: dict[str, float] = {}
PEAK_AFTER: dict[str, float] = {}  # peak RSS (MiB) so far, when each stage ends


def _peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, fn: Any) -> Any:
    """Wrap one pipeline stage to time it; behaviour is unchanged."""
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - t
                PEAK_AFTER[name] = round(_peak())
        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - t
            PEAK_AFTER[name] = round(_peak())
    return run


def main() -> None:
    url, reports = sys.argv[1], Path(sys.argv[2])
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    small_result = "--small-result" in sys.argv[4:]  # what-if: asyncio.run returns a summary, not the snapshot
    key = b"bench-pseudonym-key-0123456789" if "--pseudonymise" in sys.argv[4:] else None
    from m365audit.audit import runner
    from m365audit.graph import PlaceholderCredential

    # The same run_audit the CLI calls (`m365audit audit --graph-url URL --auth none`), with a placeholder
    # token instead of an azure-identity sign-in, in-process so that each stage can be timed.
    runner.build_credential = lambda *args, **kwargs: PlaceholderCredential()
    for stage in ("load_pack", "collect", "evaluate", "compare_with_previous", "write_outputs"):
        if hasattr(runner, stage):
            setattr(runner, stage, _timed(stage, getattr(runner, stage)))
    imported = time.perf_counter()
    drift: dict[str, Any] | None = None
    options = runner.AuditOptions(reports=reports, graph_root=url, concurrency=concurrency, pseudonym_key=key)
    if small_result:
        async def summary() -> list[Any]:
            res = await _timed("run_audit", runner.run_audit)(options)
            return [res.verdict, res.exit_code, res.findings, res.run_dir]

        verdict, exit_code, findings, run_dir = asyncio.run(summary())
    else:  # exactly as cli.audit does: asyncio.run(run_audit(...)) returns the AuditResult
        result = asyncio.run(_timed("run_audit", runner.run_audit)(options))
        verdict, exit_code, findings, run_dir = result.verdict, result.exit_code, result.findings, result.run_dir
        if result.drift is not None:
            drift = {"regressions": len(result.drift.regressions),
                     "sources": {s.source: {"added": s.added, "removed": s.removed, "changed": s.changed}
                                 for s in result.drift.sources}}
    done = time.perf_counter()
    PHASES["asyncio.run teardown"] = done - imported - PHASES["run_audit"]
    PEAK_AFTER["asyncio.run teardown"] = round(_peak())
    statuses: dict[str, int] = {}
    for f in findings:
        statuses[f.status.value] = statuses.get(f.status.value, 0) + 1
    from m365audit.evidence.strictjson import DECODES  # Graph bodies decoded, and spooled pages read back

    print(json.dumps({"import_s": imported - START, "audit_s": done - imported, "verdict": verdict, "decodes": DECODES,
                      "exit_code": exit_code, "statuses": statuses, "run_dir": str(run_dir), "drift": drift,
                      "phases": {k: round(v, 3) for k, v in PHASES.items()}, "peak_mib_after": PEAK_AFTER}))


if __name__ == "__main__":
    main()
