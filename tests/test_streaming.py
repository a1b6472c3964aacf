"""Large collections go to disk page by page during an audit and stay there: in the run, in drift, in evaluate."""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
import respx
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.collect import FetchContext, collect
from m365audit.evidence import PagedItems, verify_run
from m365audit.graph import GraphSession, ReplayTransport
from m365audit.models import SourceResult
from tests.conftest import FIXED_NOW, TENANTS, FakeCredential, real_transport
from tests.test_graph import USERS, page


def spooled(keys: list[str], spool: Path) -> dict[str, SourceResult]:
    async def go() -> dict[str, SourceResult]:
        async with GraphSession(FakeCredential()) as session:
            return await collect(session, keys, FetchContext(now=FIXED_NOW), spool=spool)

    return asyncio.run(go())


def test_a_collection_is_spooled_a_graph_page_per_line(graph_mock: respx.MockRouter, tmp_path: Path) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(200, json=page([{"id": "u3"}]))
    graph_mock.get(USERS).respond(200, json=page([{"id": "u1"}, {"id": "u2"}], "p2"))
    users = spooled(["users"], tmp_path)["users"]
    assert users.ok and isinstance(users.data, PagedItems) and users.data == [{"id": "u1"}, {"id": "u2"},
                                                                              {"id": "u3"}]
    assert (tmp_path / "users.items").read_bytes() == b'{"id":"u1"},{"id":"u2"}\n{"id":"u3"}\n'


def test_a_failing_later_page_leaves_no_spooled_half(graph_mock: respx.MockRouter, tmp_path: Path) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(503, json={"error": {"code": "x", "message": "y"}})
    graph_mock.get(USERS).respond(200, json=page([{"id": "u1"}], "p2"))
    users = spooled(["users"], tmp_path)["users"]
    assert not users.ok and users.data is None and users.error is not None and users.error.status == 503
    assert list(tmp_path.iterdir()) == []


def test_a_finished_run_reads_its_lists_from_its_own_snapshot(tmp_path: Path,
                                                               serve_recording: Callable[[Path], ReplayTransport],
                                                               ) -> None:
    tenant = TENANTS / "throttled-paging"
    serve_recording(tenant)
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW,
                                                transport=real_transport())))
    users = result.snapshot.sources["users"].data
    assert isinstance(users, PagedItems) and users.path == result.run_dir / "snapshot.json"
    assert len(users.pages) == 3  # one line per Graph page, as collected
    stored = json.loads((result.run_dir / "snapshot.json").read_bytes())["sources"]["users"]["data"]
    assert list(users) == stored and len(stored) > 3
    assert not (result.run_dir / ".work").exists() and not list(tmp_path.rglob("*.items"))
    manifest = json.loads((result.run_dir / "manifest.json").read_bytes())
    assert not [f for f in manifest["files"] if ".work" in f]
    assert verify_run(result.run_dir).ok


def test_evaluate_and_drift_read_a_stored_run_page_by_page(tmp_path: Path,
                                                           serve_recording: Callable[[Path], ReplayTransport]) -> None:
    tenant = TENANTS / "throttled-paging"
    replay = serve_recording(tenant)
    first = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW,
                                               transport=real_transport())))
    replay.rewind()  # the next night: both audit queries (AI records, sign-ins) are created again
    second = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant,
                                                now=datetime(2026, 11, 29, 2, 15, tzinfo=timezone.utc),
                                                transport=real_transport())))
    assert second.drift is not None and second.drift.sources == []  # same tenant, same data: no drift
    out = CliRunner().invoke(cli, ["evaluate", str(first.run_dir), "--json", "--as-of", "2026-11-28"])
    statuses = {f["rule_id"]: f["status"] for f in json.loads(out.output)["findings"]}
    assert statuses == {f.rule_id: f.status.value for f in first.findings}


def test_a_damaged_stored_snapshot_is_refused_with_its_line(tmp_path: Path,
                                                            serve_recording: Callable[[Path], ReplayTransport]) -> None:
    tenant = TENANTS / "throttled-paging"
    serve_recording(tenant)
    run = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW,
                                             transport=real_transport()))).run_dir
    path = run / "snapshot.json"
    lines = path.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(b'"users"')) + 2
    lines[number] = lines[number][:40]  # a page of users cut short
    path.write_bytes(b"\n".join(lines))
    out = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert out.exit_code == 4, out.output  # as any unreadable run folder
    assert f"snapshot.json:{number + 1}:" in out.output and "verify" in out.output


def test_a_spool_that_vanished_mid_evaluation_makes_the_rule_error(tmp_path: Path) -> None:
    from m365audit.evaluate import evaluate, load_pack
    from m365audit.evidence import ItemsWriter
    from m365audit.models import Snapshot

    writer = ItemsWriter(tmp_path / "users.items")
    writer.add_page([{"id": "u1", "assignedLicenses": [], "assignedPlans": []}])
    users = writer.finish()
    (tmp_path / "users.items").unlink()
    skus = SourceResult(key="subscribed_skus", ok=True, url="/s", data=[])
    snapshot = Snapshot(tenant_id="t", collected_at=FIXED_NOW, tool_version="1", sources={
        "users": SourceResult(key="users", ok=True, url="/u", data=users), "subscribed_skus": skus})
    findings = {f.rule_id: f for f in evaluate(snapshot, load_pack(), FIXED_NOW.date())}
    licence = findings["copilot-plans-not-assigned"]
    assert licence.status.value == "error" and "can no longer be read" in licence.message.en


def test_a_full_disk_while_spooling_is_a_clear_error_and_leaves_no_run(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from m365audit.evidence import items

    def full(self: items.ItemsWriter, page: list[object]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(items.ItemsWriter, "add_page", full)
    out = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"), "-q",
                                   "--reports", str(tmp_path / "reports")])
    assert out.exit_code == 4, out.output
    assert "No space left on device" in out.stderr and "Traceback" not in out.output
    assert "free space" in out.stderr
    assert not list((tmp_path / "reports").rglob("manifest.json"))
    assert not [p for p in (tmp_path / "reports" / ".incomplete").iterdir()]


def test_last_nights_data_unreadable_mid_drift_is_a_warning_not_a_crash(
        tmp_path: Path, serve_recording: Callable[[Path], ReplayTransport], monkeypatch: pytest.MonkeyPatch) -> None:
    from m365audit.drift import nights as drift
    from m365audit.evidence import moved, read_snapshot

    tenant = TENANTS / "throttled-paging"
    replay = serve_recording(tenant)
    asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW, transport=real_transport())))
    replay.rewind()  # the next night: both audit queries are created again
    monkeypatch.setattr(drift, "read_snapshot", lambda path: moved(read_snapshot(path), tmp_path / "gone.json"))
    second = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, transport=real_transport(),
                                                now=datetime(2026, 11, 29, 2, 15, tzinfo=timezone.utc))))
    assert second.drift is None and second.verdict == "pass"
    assert any("no drift against" in w and "gone.json" in w for w in second.warnings), second.warnings
