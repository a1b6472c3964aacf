"""snapshot.json written and read a page at a time: the same Snapshot back, damage named by line."""

from __future__ import annotations

import io
import json
import shutil
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from m365audit.evidence import ItemsWriter, PagedItems, moved, read_head, read_snapshot, rebound, write_snapshot
from m365audit.evidence.items import PageRef
from m365audit.evidence.snapshot_file import SnapshotFileError
from m365audit.models import Snapshot, SourceError, SourceResult


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


# --------------------------------------------------------------------------- the line layout, read back


def _snapshot(tmp_path: Path) -> Snapshot:
    writer = ItemsWriter(tmp_path / "spool" / "users.items")
    writer.add_page([{"id": f"u{n}", "displayName": f"Medewerker {n}\n⟨é⟩"} for n in range(3)])
    writer.add_page([{"id": "u3", "displayName": "Laatste"}])
    sources = {
        "organization": SourceResult(key="organization", ok=True, url="/v1.0/organization",
                                     data=[{"id": "t", "displayName": "Gemeente Voorbeeld"}]),
        "users": SourceResult(key="users", ok=True, url="/v1.0/users", requests=2, data=writer.finish()),
        "authorization_policy": SourceResult(key="authorization_policy", ok=True, url="/v1.0/policies/x",
                                             data={"a": [1, 2.5, True, None]}),
        "copilot_usage": SourceResult(key="copilot_usage", ok=True, url="/v1.0/copilot", data=[]),
        "big_list": SourceResult(key="big_list", ok=True, url="/v1.0/x", data=list(range(2500))),
        "conditional_access": SourceResult(key="conditional_access", ok=False, url="/v1.0/identity",
                                           error=SourceError(message="403", status=403, hint="grant it")),
    }
    return Snapshot(tenant_id="t", tenant_name="Gemeente Voorbeeld",
                    collected_at=datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc), tool_version="0.1.0",
                    sources=sources)


def _plain(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as one JSON value, with on-disk lists read into memory (for comparing)."""
    doc = snapshot.model_dump(mode="json", exclude={"sources"})
    doc["sources"] = {k: {**r.model_dump(mode="json", exclude={"data"}),
                          "data": list(r.data) if isinstance(r.data, PagedItems) else r.data}
                      for k, r in snapshot.sources.items()}
    return doc


def _written(tmp_path: Path, snapshot: Snapshot) -> tuple[Path, dict[str, list[PageRef]]]:
    path = tmp_path / "snapshot.json"
    with path.open("xb") as out:
        pages = write_snapshot(snapshot, out)
    return path, pages


def test_the_file_is_one_json_document_with_a_line_per_page(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    path, pages = _written(tmp_path, snapshot)
    assert json.loads(path.read_bytes()) == _plain(snapshot)
    lines = path.read_bytes().split(b"\n")
    assert lines[0].endswith(b'"sources":{') and lines[-2:] == [b"}}", b""]
    assert lines[lines.index(next(li for li in lines if li.startswith(b'"users"'))) + 1].startswith(b'{"id":"u0"')
    assert [p.count for p in pages["users"]] == [3, 1] and [p.count for p in pages["big_list"]] == [1000, 1000, 500]
    assert pages["copilot_usage"] == [] and "authorization_policy" not in pages


def test_a_stored_snapshot_reads_back_with_its_lists_on_disk(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    path, _ = _written(tmp_path, snapshot)
    back = read_snapshot(path)
    assert _plain(back) == _plain(snapshot)
    assert back.collected_at == snapshot.collected_at and back.sources["conditional_access"].error is not None
    users = back.sources["users"].data
    assert isinstance(users, PagedItems) and users.path == path and len(users) == 4 and users[3]["id"] == "u3"
    assert read_head(path) == {"schema_version": 1, "tenant_id": "t", "tenant_name": "Gemeente Voorbeeld",
                               "collected_at": "2026-11-28T02:15:00Z", "tool_version": "0.1.0"}


def test_rebound_lists_read_from_the_written_file_once_the_spool_is_gone(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    path, pages = _written(tmp_path, snapshot)
    expected = _plain(snapshot)
    again = rebound(snapshot, path, pages)
    shutil.rmtree(tmp_path / "spool")
    assert _plain(again) == expected
    (tmp_path / "final").mkdir()
    path.rename(tmp_path / "final" / "snapshot.json")
    assert _plain(moved(again, tmp_path / "final" / "snapshot.json")) == expected


def test_a_snapshot_written_on_one_line_still_reads(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_plain(snapshot)), encoding="utf-8")
    back = read_snapshot(path)
    assert _plain(back) == _plain(snapshot) and read_head(path)["tenant_id"] == "t"


@pytest.mark.parametrize(("damage", "line", "says"), [
    (lambda b: b[:b.index(b'{"id":"u3"') + 5], 7, "ends inside a list"),
    (lambda b: b.replace(b'{"id":"u3"', b'{"id":u3"'), 7, "a page of items is not valid JSON"),
    (lambda b: b.replace(b'"ok":true,"url":"/v1.0/users"', b'"ok":true,"url":/v1.0/users"'), 5, "not valid JSON"),
    (lambda b: b.replace(b'{"id":"u3"', b'{"id":"u3","x":[]]'), 7, "a page of items is not valid JSON"),
    (lambda b: b[:-3], 18, "ends before the snapshot does"),
    (lambda b: b + b"{}\n", 19, "follows the end"),
])
def test_a_damaged_snapshot_names_the_line(tmp_path: Path, damage: Callable[[bytes], bytes], line: int,
                                           says: str) -> None:
    path, _ = _written(tmp_path, _snapshot(tmp_path))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(SnapshotFileError) as caught:
        read_snapshot(path)
    assert f"{path}:{line}:" in str(caught.value) and says in str(caught.value)


def test_a_snapshot_whose_envelope_is_wrong_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps({"tenant_id": "t", "collected_at": "2026-11-28T02:15:00Z", "tool_version": "1",
                                "sources": {"users": {"key": "users", "ok": False, "url": "/v1.0/users"}}}))
    with pytest.raises(SnapshotFileError, match="not a snapshot"):
        read_snapshot(path)


def test_reading_a_large_snapshot_holds_pages_not_the_tenant(tmp_path: Path) -> None:
    writer = ItemsWriter(tmp_path / "spool" / "users.items")
    for start in range(0, 20_000, 999):
        writer.add_page([{"id": f"u{n}", "displayName": f"Medewerker {n}", "assignedPlans": [
            {"servicePlanId": f"plan-{p}", "capabilityStatus": "Enabled"} for p in range(5)]}
            for n in range(start, min(start + 999, 20_000))])
    snapshot = Snapshot(tenant_id="t", collected_at=datetime(2026, 11, 28, tzinfo=timezone.utc), tool_version="1",
                        sources={"users": SourceResult(key="users", ok=True, url="/u", data=writer.finish())})
    path, _ = _written(tmp_path, snapshot)
    tracemalloc.start()
    try:
        back = read_snapshot(path)
        enabled = sum(1 for u in back.sources["users"].data for p in u["assignedPlans"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tracemalloc.start()
    try:
        page = next(back.sources["users"].data.iter_pages())
        _, peak_page = tracemalloc.get_traced_memory()
        del page
        whole = json.loads(path.read_bytes())
        _, peak_whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert enabled == 100_000 and len(whole["sources"]["users"]["data"]) == 20_000
    assert peak < 1.5 * peak_page, (peak, peak_page)  # one page of the 21 at a time
    assert peak_whole > 10 * peak, (peak_whole, peak)


def test_a_lone_surrogate_in_any_source_survives_the_snapshot(tmp_path: Path) -> None:
    odd = "Jan \ud800 de Vries"
    snapshot = Snapshot(tenant_id="t", tenant_name=odd, collected_at=datetime(2026, 11, 28, tzinfo=timezone.utc),
                        tool_version="1", sources={
                            "authorization_policy": SourceResult(key="authorization_policy", ok=True, url="/p",
                                                                 data={"displayName": odd}),
                            "users": SourceResult(key="users", ok=True, url="/u", data=[{"displayName": odd}])})
    path, _ = _written(tmp_path, snapshot)
    back = read_snapshot(path)
    assert back.tenant_name == odd and _plain(back) == _plain(snapshot)
