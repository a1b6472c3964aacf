"""Bench helper: replay one stored run folder offline (as `m365audit audit --replay RUN_DIR`); prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path


def main() -> None:
    run_dir, reports, graph_url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    from m365audit.audit import AuditOptions, run_audit

    start = time.perf_counter()
    # the run was recorded from the simulator: its exchanges hold absolute 127.0.0.1 URLs (FIXTURES.md: an
    # absolute URL matches its own host), so the replay asks for the same host; nothing is sent anywhere
    result = asyncio.run(run_audit(AuditOptions(reports=reports, replay=run_dir, graph_root=graph_url)))
    statuses: dict[str, int] = {}
    for f in result.findings:
        statuses[f.status.value] = statuses.get(f.status.value, 0) + 1
    from m365audit.evidence.strictjson import DECODES

    print(json.dumps({"audit_s": time.perf_counter() - start, "verdict": result.verdict, "statuses": statuses,
                      "decodes": DECODES}))


if __name__ == "__main__":
    main()
