"""The Purview audit query asks for exactly what audit-no-ai-interactions judges, and a wider re-check is error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.evaluate import evaluate, load_pack
from m365audit.graph import ReplayTransport
from m365audit.models import Snapshot, Status
from tests.conftest import FIXED_NOW, TENANTS, real_transport

TENANT = TENANTS / "gemeente-voorbeeld"
RULE = "audit-no-ai-interactions"


def local(tmp_path: Path, params: str) -> Path:
    folder = tmp_path / "local"
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(f"params:\n  {RULE}:\n{params}")
    return folder


def audit(tmp_path: Path, serve: Callable[[Path], ReplayTransport], local_dir: Path | None) -> Path:
    serve(TENANT)
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "reports", replay=TENANT, local=local_dir,
                                                now=FIXED_NOW, transport=real_transport())))
    return result.run_dir


def query_body(run: Path) -> dict[str, object]:
    for file in sorted((run / "exchanges").glob("*.json")):
        doc = json.loads(file.read_text())
        if doc["request"]["method"] == "POST":
            body: dict[str, object] = doc["request"]["body"]
            return body
    raise AssertionError("no audit query was sent")


def test_the_query_asks_for_the_rules_record_types_and_window(
        tmp_path: Path, serve_recording: Callable[[Path], ReplayTransport]) -> None:
    params = "    lookback_days: 14\n    record_types: [CopilotInteraction, TeamCopilotInteraction]\n"
    run = audit(tmp_path, serve_recording, local(tmp_path, params))
    body = query_body(run)
    assert body["recordTypeFilters"] == ["CopilotInteraction", "TeamCopilotInteraction"]
    assert body["filterStartDateTime"] == "2026-11-14T02:15:00Z"


def re_evaluate(run: Path, params: str, tmp_path: Path) -> Status:
    snapshot = Snapshot.model_validate_json((run / "snapshot.json").read_bytes())
    pack = load_pack(None, local(tmp_path, params))
    return next(f.status for f in evaluate(snapshot, pack, date(2026, 11, 28)) if f.rule_id == RULE)


@pytest.mark.parametrize("params, status", [
    ("    lookback_days: 7\n", Status.PASS),
    ("    lookback_days: 3\n", Status.PASS),
    ("    lookback_days: 30\n", Status.ERROR),
    ("    record_types: [CopilotInteraction, TeamCopilotInteraction]\n", Status.ERROR),
])
def test_re_evaluating_with_a_wider_rule_than_was_queried_is_error(
        tmp_path: Path, serve_recording: Callable[[Path], ReplayTransport], params: str, status: Status) -> None:
    run = audit(tmp_path, serve_recording, None)
    assert re_evaluate(run, params, tmp_path / "again") is status


def test_bad_record_types_are_a_policy_error(tmp_path: Path,
                                             serve_recording: Callable[[Path], ReplayTransport]) -> None:
    from m365audit.errors import PolicyFileError

    with pytest.raises(PolicyFileError, match="record_types: must name at least one audit record type"):
        audit(tmp_path, serve_recording, local(tmp_path, "    record_types: []\n"))
