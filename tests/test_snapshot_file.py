"""snapshot.json written as a stream reads back as the same Snapshot."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from m365audit.models import Snapshot, SourceError, SourceResult
from m365audit.snapshot_file import write_snapshot


def test_a_streamed_snapshot_reads_back_identically() -> None:
    sources = {
        "users": SourceResult(key="users", ok=True, url="/v1.0/users", requests=2, request_ids=["a", "b"],
                              data=[{"id": "1", "displayName": "Jan \"de\" Vries ⟨é⟩"}, {"id": "2", "x": None}]),
        "authorization_policy": SourceResult(key="authorization_policy", ok=True, url="/v1.0/policies/x",
                                             data={"defaultUserRolePermissions": {"a": [1, 2.5, True]}}),
        "copilot_usage": SourceResult(key="copilot_usage", ok=True, url="/v1.0/copilot", data=[]),
        "conditional_access": SourceResult(key="conditional_access", ok=False, url="/v1.0/identity",
                                           error=SourceError(message="403", status=403, hint="grant it")),
    }
    snapshot = Snapshot(tenant_id="t", tenant_name="Gemeente Voorbeeld",
                        collected_at=datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc), tool_version="0.1.0",
                        sources=sources)
    out = io.BytesIO()
    write_snapshot(snapshot, out)
    assert Snapshot.model_validate_json(out.getvalue()) == snapshot
    assert json.loads(out.getvalue()) == json.loads(snapshot.model_dump_json())
