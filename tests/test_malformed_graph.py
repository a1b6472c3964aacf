"""Issue 13, class 3: Graph data that parses but is ambiguous, pathological or cut short makes its source error.

Every case runs through the real msgraph-sdk stack (respx answers HTTP) or a full replayed audit, and checks that
the exchange keeps Graph's exact bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import respx

from m365audit.audit import AuditOptions, run_audit
from m365audit.errors import EXIT_INCOMPLETE, UsageError
from m365audit.evidence import ItemsError, ItemsWriter, read_snapshot, verify_run
from m365audit.graph import ReplayTransport
from tests.conftest import FIXED_NOW, TENANTS
from tests.test_graph import SKUS, USERS, ListSink, page, run

AUTHZ = "https://graph.microsoft.com/v1.0/policies/authorizationPolicy"
INTUNE = "https://graph.microsoft.com/beta/deviceManagement/configurationPolicies"
POLICY = "0f4a5c1e-6b2d-4e8f-9a3c-5d7e1b2f4a6c"
DEEP = b"[" * 150 + b"]" * 150


def serve(mock: respx.MockRouter, url: str, raw: bytes) -> None:
    mock.get(url).respond(200, content=raw, headers={"Content-Type": "application/json", "request-id": "r1"})


def failed(result: Any, code: str) -> str:
    assert not result.ok and result.data is None and result.error is not None
    assert result.error.code == code, result.error
    assert result.error.hint
    return str(result.error.message)


@pytest.mark.parametrize("raw, code", [
    (b'{"value":[{"skuId":"a","skuId":"b"}]}', "AmbiguousJson"),
    (b'{"value":[{"skuId":"a","servicePlans":[{"x":{"appliesTo":"User","appliesTo":"Company"}}]}]}',
     "AmbiguousJson"),
    (b'{"value":[],"value":[{"skuId":"a"}]}', "AmbiguousJson"),
    (b'{"value":[{"id":"a","\\ud800":1,"\\udbff":2}]}', "AmbiguousJson"),  # equal once repaired
    (b'{"value":[{"skuId":' + DEEP + b'}]}', "TooDeep"),
    (b"[" * 100_000, "MalformedBody"),  # json.loads would exhaust the recursion limit (a crash)
    (b'{"value":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "TooDeep"),
    (b'{"value":[{"prepaidUnits":' + b"9" * 5000 + b"}]}", "MalformedBody"),  # int() refuses: was a crash
    (b'{"value":[{"prepaidUnits":NaN}]}', "MalformedBody"),
    (b'{"value":[{"prepaidUnits":1e999}]}', "MalformedBody"),
    (b'{"value":[{"skuPartNumber":"\xed\xa0\x80"}]}', "MalformedBody"),  # surrogate bytes: not UTF-8
], ids=["dup-key", "dup-key-deep", "dup-value", "dup-after-surrogate-repair", "deep-150", "100k-open-brackets",
        "100k-balanced", "huge-int", "nan", "overflowing-float", "raw-surrogate-bytes"])
def test_ambiguous_or_pathological_json_is_an_error_and_the_bytes_are_kept(
        graph_mock: respx.MockRouter, raw: bytes, code: str) -> None:
    serve(graph_mock, SKUS, raw)
    sink = ListSink()
    failed(run(["subscribed_skus"], sink)["subscribed_skus"], code)
    [exchange] = sink.items
    assert exchange.body == raw and exchange.sha256 == hashlib.sha256(raw).hexdigest()


def test_brackets_and_quotes_inside_strings_are_not_nesting(graph_mock: respx.MockRouter) -> None:
    name = "[[[{{{" * 40 + '\\"' + "]]]" * 50
    raw = ('{"value":[{"skuId":"a","skuPartNumber":"' + name + '","x":[[[["\\\\"]]]]}]}').encode()
    serve(graph_mock, SKUS, raw)
    result = run(["subscribed_skus"])["subscribed_skus"]
    assert result.ok and result.data[0]["skuPartNumber"].startswith("[[[{{{")


def test_a_lone_surrogate_is_still_repaired(graph_mock: respx.MockRouter) -> None:
    serve(graph_mock, USERS, b'{"value":[{"id":"u1","displayName":"Jan \\ud800 Vries"}]}')
    users = run(["users"])["users"]
    assert users.ok and users.data[0]["displayName"] == "Jan \ufffd Vries"


def intune_page(policy: dict[str, Any]) -> bytes:
    return json.dumps({"@odata.context": "x", "value": [
        {"id": "1d3f5a7c-9e1b-4d2f-8a6c-3e5b7d9f1a2c", "name": "Ok", "settings": []}, policy]}).encode()


def intune_run(graph_mock: respx.MockRouter, policy: dict[str, Any]) -> Any:
    serve(graph_mock, INTUNE, intune_page(policy))
    graph_mock.get(url__regex=r".*/configurationPolicies/[^/]+/assignments").respond(200, json={"value": []})
    return run(["intune_policies"])["intune_policies"]


def test_an_expanded_collection_cut_short_is_an_error_naming_item_and_property(
        graph_mock: respx.MockRouter) -> None:
    policy = {"id": POLICY, "name": "Copilot uit", "settings": [{"id": "0"}],
              "settings@odata.nextLink": f"{INTUNE}('{POLICY}')/settings?$skiptoken=s2"}
    message = failed(intune_run(graph_mock, policy), "TruncatedExpand")
    assert POLICY in message and "'settings'" in message and "value[1]" in message


def test_an_expanded_collection_cut_short_deeper_down_is_an_error(graph_mock: respx.MockRouter) -> None:
    setting = {"id": "0", "settingInstance": {"children": [], "children@odata.nextLink": "https://x/y"}}
    message = failed(intune_run(graph_mock, {"id": POLICY, "settings": [setting]}), "TruncatedExpand")
    assert "value[1].settings[0].settingInstance" in message and "'children'" in message


@pytest.mark.parametrize("count, ok", [(1, True), (2, False), ("1", False)])
def test_an_expanded_count_must_match_its_items(graph_mock: respx.MockRouter, count: Any, ok: bool) -> None:
    result = intune_run(graph_mock, {"id": POLICY, "settings": [{"id": "0"}], "settings@odata.count": count})
    if ok:
        assert result.ok and len(result.data) == 2
    else:
        assert POLICY in failed(result, "CountMismatch")


def test_a_collection_count_that_does_not_match_the_items_read_is_an_error(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(200, json={**page([{"id": "u2"}]),
                                                                          "@odata.count": 3})
    graph_mock.get(USERS).respond(200, json={**page([{"id": "u1"}], "p2"), "@odata.count": 3})
    assert "says 3 items, the pages held 2" in failed(run(["users"])["users"], "CountMismatch")


def test_a_count_that_matches_across_pages_is_read(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(200, json=page([{"id": "u2"}]))
    graph_mock.get(USERS).respond(200, json={**page([{"id": "u1"}], "p2"), "@odata.count": 2})
    result = run(["users"])["users"]
    assert result.ok and [u["id"] for u in result.data] == ["u1", "u2"]


def test_a_count_that_changes_between_pages_is_an_error(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(200, json={**page([{"id": "u2"}]),
                                                                          "@odata.count": 3})
    graph_mock.get(USERS).respond(200, json={**page([{"id": "u1"}], "p2"), "@odata.count": 2})
    failed(run(["users"])["users"], "CountMismatch")


@pytest.mark.parametrize("annotation", ["@odata.nextLink", "@odata.deltaLink"])
def test_a_single_object_that_says_it_continues_is_an_error(graph_mock: respx.MockRouter, annotation: str) -> None:
    body = {"id": "authorizationPolicy", "allowInvitesFrom": "none", annotation: f"{AUTHZ}?$skiptoken=x"}
    graph_mock.get(AUTHZ).respond(200, json=body)
    failed(run(["authorization_policy"])["authorization_policy"], "UnexpectedPaging")


def test_a_page_with_a_delta_link_is_an_error(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS).respond(200, json={**page([{"id": "u1"}]), "@odata.deltaLink": f"{USERS}?$deltatoken=d"})
    failed(run(["users"])["users"], "UnexpectedPaging")


# --------------------------------------------------------------------------- the usage CSV report


USAGE = "https://graph.microsoft.com/v1.0/copilot/reports/getMicrosoft365CopilotUsageUserDetail(period='D30')"
HEADER = "Report Refresh Date,User Principal Name,Last Activity Date,Report Period\n"


@pytest.mark.parametrize("text", [
    HEADER + '2026-11-27,j.jansen@voorbeeld.nl,2026-11-20,"3',  # cut inside a quoted field
    HEADER.replace("Last Activity Date", "User Principal Name") + "2026-11-27,a@voorbeeld.nl,b@voorbeeld.nl,30\n",
], ids=["cut-inside-quotes", "repeated-column"])
def test_a_usage_report_cut_short_or_ambiguous_is_an_error(graph_mock: respx.MockRouter, text: str) -> None:
    graph_mock.get(USAGE).respond(200, content=text.encode(), headers={"Content-Type": "application/octet-stream"})
    failed(run(["copilot_usage"])["copilot_usage"], "UnexpectedData")


# --------------------------------------------------------------------------- stored pages and recordings


def test_a_stored_page_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    writer = ItemsWriter(tmp_path / "u.items")
    writer.add_page([{"id": "u1", "accountEnabled": False}])
    items = writer.finish()
    path = tmp_path / "u.items"
    path.write_bytes(path.read_bytes().replace(b'{"id"', b'{"accountEnabled":true,"id"'))
    ref = items.pages[0]
    items = items.moved_to(path, [type(ref)(ref.offset, ref.length + len(b'"accountEnabled":true,'), ref.count)])
    with pytest.raises(ItemsError, match="more than once"):
        list(items)


def test_a_snapshot_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=TENANTS / "gemeente-voorbeeld",
                                                now=FIXED_NOW)))
    snapshot = result.run_dir / "snapshot.json"
    copy = tmp_path / "snapshot.json"
    copy.write_bytes(snapshot.read_bytes().replace(b'"allowInvitesFrom":', b'"allowInvitesFrom":"none",'
                                                   b'"allowInvitesFrom":', 1))
    with pytest.raises(ValueError, match="more than once"):
        read_snapshot(copy)


def test_a_recording_with_a_repeated_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "exchanges"
    folder.mkdir()
    (folder / "010-skus.json").write_text('{"request": {"method": "GET", "url": "/v1.0/subscribedSkus"}, '
                                          '"response": {"status": 200, "body": {"value": [], "value": [1]}}}')
    with pytest.raises(UsageError, match="010-skus.json"):
        ReplayTransport.from_folder(tmp_path)


# --------------------------------------------------------------------------- a whole night


def test_a_malformed_night_exits_3_and_keeps_every_exchange(tmp_path: Path) -> None:
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "a", replay=TENANTS / "malformed-graph",
                                                now=FIXED_NOW)))
    codes = {k: s.error.code for k, s in result.snapshot.sources.items() if s.error is not None}
    assert codes == {"users": "AmbiguousJson", "conditional_access": "CountMismatch",
                     "authorization_policy": "UnexpectedPaging", "external_connections": "TooDeep",
                     "intune_policies": "TruncatedExpand", "copilot_usage": "UnexpectedData"}
    assert result.exit_code == EXIT_INCOMPLETE and result.verdict == "error"
    assert verify_run(result.run_dir).ok
    kept = {json.loads(p.read_text(encoding="utf-8"))["source"] for p in (result.run_dir / "exchanges").glob("*.json")}
    assert set(codes) <= kept
    again = asyncio.run(run_audit(AuditOptions(reports=tmp_path / "b", replay=result.run_dir, now=FIXED_NOW)))
    assert [f.status for f in again.findings] == [f.status for f in result.findings]
