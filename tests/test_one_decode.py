"""Every Graph page of tonight's audit is decoded once; the licence rules judge the same from that one pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.evaluate import evaluate, load_pack
from m365audit.evaluate.checks.licence_facts import FACTS_KEY, LicenceFacts, licence_facts
from m365audit.evidence import PagedItems
from m365audit.evidence.strictjson import DECODES
from m365audit.graph import ReplayTransport
from tests.conftest import FIXED_NOW, TENANTS, real_transport


@pytest.mark.parametrize("tenant", ["throttled-paging", "copilot-pilot", "grace-period-and-conflicts", "edge-cases"])
def test_an_audit_decodes_each_graph_page_once_and_judges_as_a_stored_snapshot_does(
        tenant: str, tmp_path: Path, serve_recording: Callable[[Path], ReplayTransport]) -> None:
    folder = TENANTS / tenant
    serve_recording(folder)
    for key in DECODES:
        DECODES[key] = 0
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=folder, now=FIXED_NOW,
                                                transport=real_transport())))
    assert DECODES["graph_bodies"] > 0 and DECODES["stored_pages"] == 0  # no JSON page decoded a second time

    users = result.snapshot.sources["users"].data
    assert isinstance(users, PagedItems) and users.facts == {}  # the stored snapshot: no facts of tonight
    again = evaluate(result.snapshot, load_pack(None, None), FIXED_NOW.date())  # as `evaluate RUN_DIR` does
    assert [f.model_dump() for f in again] == [f.model_dump() for f in result.findings]
    assert isinstance(users.facts.get(FACTS_KEY), LicenceFacts)  # taken once, kept for the next rule


def test_users_with_equal_licences_share_a_shape_and_odd_ones_keep_their_raw_values() -> None:
    plan = {"servicePlanId": "a", "capabilityStatus": "Enabled", "assignedDateTime": "2026-01-01T00:00:00Z"}
    users = [
        {"id": "1", "assignedLicenses": [{"skuId": "s", "disabledPlans": []}], "assignedPlans": [plan]},
        {"id": "2", "assignedLicenses": [{"skuId": "s", "disabledPlans": []}],
         "assignedPlans": [{**plan, "assignedDateTime": "2026-02-02T00:00:00Z"}]},  # a field no check reads
        {"id": "3", "assignedLicenses": [{"skuId": "s", "disabledPlans": []}],
         "assignedPlans": [{**plan, "capabilityStatus": True}]},  # typed: True is not "Enabled", nor 1
        {"id": "4", "assignedLicenses": "s", "assignedPlans": [plan]},  # not a list: its own shape, raw
        {"id": "5", "assignedLicenses": "s", "assignedPlans": [plan]},
    ]
    facts = licence_facts(users)
    assert [shape for _, shape in facts.users()] == [0, 0, 1, 2, 3]
    assert facts.shapes[2]["assignedLicenses"] == "s" and facts.shapes[2]["id"] == "4"
    assert [user["id"] for user, _ in facts.users()] == ["1", "2", "3", "4", "5"]
