"""The pager asks for the next page before it decodes this one, and the spool keeps Graph's own bytes.

Issue 15: the next page's request must be on the wire while a page is decoded (a request merely scheduled
waits for the decode: the event loop is busy), a link guessed from the bytes must be checked against the
decoded page, and a page whose items are Graph's bytes as they came is spooled without serialising it again.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from m365audit.audit import pace
from m365audit.audit.runner import AuditOptions, run_audit
from m365audit.collect import SOURCES, FetchContext, collect
from m365audit.errors import GraphError
from m365audit.evidence import ItemsWriter, Page, RecordedExchange, loads_page, strict_loads
from m365audit.evidence.files import sha256_file, sha256_files
from m365audit.graph import CredentialSettings, GraphSession, PlaceholderCredential, jsonparse
from m365audit.graph import client as graph_client
from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec

ROOT = "https://graph.microsoft.com"
SPEC = TenantSpec(users=2500, service_principals=20, grants=5, copilot_users=3, seed=11)


def _users_pages_decoded_while_next_was_asked(sim: GraphSimulator, session_url: str) -> list[tuple[int, int]]:
    """For each users page: (its number, users requests the simulator had received when its decode began)."""
    seen: list[tuple[int, int]] = []
    real = jsonparse.parse_page

    def watched(raw: bytes, url: str, items: bool = True) -> tuple[Any, bytes | None]:
        if "/users" in url:
            # The event loop is held here, as a decode holds it: the pager can send nothing more now. A request
            # the simulator sees within the next second was therefore written before this decode began.
            number, deadline = len(seen) + 1, time.monotonic() + 1.0
            while jsonparse.NEXT_LINK.encode() in raw and sim.stats.by_source["users"] <= number \
                    and time.monotonic() < deadline:
                time.sleep(0.002)
            seen.append((number, sim.stats.by_source["users"]))
        return real(raw, url, items)

    async def go() -> None:
        transport = httpx.AsyncHTTPTransport()  # a real socket: the request is sent when httpcore says so
        try:
            async with GraphSession(PlaceholderCredential(), graph_root=session_url, transport=transport) as s:
                async for _ in s.pages(SOURCES["users"].url):
                    pass
        finally:
            await transport.aclose()

    jsonparse.parse_page = watched  # type: ignore[assignment]
    try:
        asyncio.run(go())
    finally:
        jsonparse.parse_page = real  # type: ignore[assignment]
    return seen


def test_the_next_page_is_on_the_wire_before_this_page_is_decoded() -> None:
    with GraphSimulator(SPEC, SimConfig(latency_ms=30)) as sim:
        seen = _users_pages_decoded_while_next_was_asked(sim, sim.url)
    assert len(seen) == 3  # 2,500 users in pages of 999
    for number, received in seen[:-1]:
        assert received >= number + 1, f"page {number} was decoded before page {number + 1} was asked for: {seen}"


def _body(items: list[Any], link: str | None, *, nested_link: str | None = None) -> bytes:
    doc: dict[str, Any] = {"@odata.context": f"{ROOT}/v1.0/$metadata#users"}
    if nested_link is not None:  # an item with a key of the same name, before the page's own link
        items = [{"id": "x", "@odata.nextLink": nested_link}, *items]
    doc["value"] = items
    if link is not None:
        doc["@odata.nextLink"] = link
    return json.dumps(doc, separators=(",", ":")).encode()


def _pages_through(answers: dict[str, bytes], first: str) -> tuple[list[list[Any]], list[str]]:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        body = answers.get(str(request.url))
        if body is None:
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no such page"}})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async def go() -> list[list[Any]]:
        async with GraphSession(PlaceholderCredential(), transport=httpx.MockTransport(answer)) as session:
            return [list(page) async for page in session.pages(first)]

    return asyncio.run(go()), asked


def test_a_wrong_guess_at_the_next_link_is_dropped_and_the_right_page_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a body Graph may send, the first '"@odata.nextLink":"' in the bytes is the page's own link (a nested
    one is refused below); the pager still checks every guess against the decoded page and drops a wrong one."""
    p1, p2, p3 = (f"{ROOT}/v1.0/users?p={n}" for n in (1, 2, 3))
    decoy = f"{ROOT}/v1.0/users?decoy=1"
    monkeypatch.setattr(jsonparse, "peek_next_link", lambda raw: decoy)
    answers = {p1: _body([{"id": "a"}], p2), p2: _body([{"id": "b"}], p3), p3: _body([{"id": "c"}], None)}
    pages, asked = _pages_through(answers, p1)
    assert [[item["id"] for item in page] for page in pages] == [["a"], ["b"], ["c"]]
    assert [url for url in asked if url != decoy] == [p1, p2, p3]


def test_a_nested_next_link_before_the_pages_own_is_refused_not_followed() -> None:
    p1, p2, decoy = f"{ROOT}/v1.0/users?p=1", f"{ROOT}/v1.0/users?p=2", f"{ROOT}/v1.0/users?decoy=1"
    answers = {p1: _body([{"id": "a"}], p2, nested_link=decoy), p2: _body([{"id": "b"}], None)}
    with pytest.raises(GraphError) as caught:
        _pages_through(answers, p1)
    assert caught.value.code == "TruncatedExpand"


def test_an_escaped_link_is_not_guessed_and_still_followed() -> None:
    p1, p2 = f"{ROOT}/v1.0/users?p=1", f"{ROOT}/v1.0/users?p=2"
    first = _body([{"id": "a"}], p2).replace(b"?p=2", b"\\u003fp=2")
    assert jsonparse.peek_next_link(first) is None
    pages, asked = _pages_through({p1: first, p2: _body([{"id": "b"}], None)}, p1)
    assert [[item["id"] for item in page] for page in pages] == [["a"], ["b"]]
    assert asked == [p1, p2]


def test_a_guessed_link_to_another_host_is_never_sent_the_token() -> None:
    p1 = f"{ROOT}/v1.0/users?p=1"
    evil = "https://evil.example/steal"
    with pytest.raises(Exception, match="refusing to send the audit's token"):
        _pages_through({p1: _body([{"id": "a"}], evil)}, p1)


@pytest.mark.parametrize("raw", [
    b'{"@odata.context":"c","value":[{"a":1},{"b":"\xc3\xa9"}],"@odata.nextLink":"n"}',
    b' {\n "value" : [ {"a" : 1} ] , "x" : 2 } ',
    b'\xef\xbb\xbf{"value":[1,2]}',
    b'{"v\\u0061lue":[5,6]}',
    b'{"value":["\\u00e9\\n"]}',
])
def test_loads_page_keeps_the_value_arrays_exact_bytes(raw: bytes) -> None:
    doc, kept = loads_page(raw)
    assert doc == strict_loads(raw)
    assert kept is not None and kept in raw  # a slice of what Graph sent, not a serialisation of it
    assert strict_loads(b"[" + kept + b"]", repair=False) == doc["value"]


@pytest.mark.parametrize("raw", [
    b'{"value":[1],"value":[2]}',  # duplicate key: refused, as loads refuses it
    b'{"value":[{"k":1,"k":2}]}',
    b'{"value":[1],}',
    b'{"value":[1]} trailing',
    b'{"value":[NaN]}',
])
def test_loads_page_refuses_what_loads_refuses_with_the_same_words(raw: bytes) -> None:
    with pytest.raises(ValueError) as plain:
        strict_loads(raw)
    with pytest.raises(ValueError) as paged:
        loads_page(raw)
    assert str(paged.value) == str(plain.value)


@pytest.mark.parametrize("raw", [
    b'{"value":["\\ud800"]}',  # a lone surrogate: the decoded item differs from the bytes
    b'{"value":[\n1]}',  # a raw line break between tokens: a spool line must not hold one
    b'{"value":{"a":1}}',
    b'[1,2]',
    b'{"other":[1]}',
])
def test_loads_page_keeps_no_bytes_that_would_read_back_differently(raw: bytes) -> None:
    doc, kept = loads_page(raw)
    assert doc == strict_loads(raw) and kept is None


def test_a_page_is_spooled_as_graphs_bytes_and_a_changed_one_is_written_anew(tmp_path: Path) -> None:
    raw = b'{"value":[{"id":"a","naam":"\\u00e9\\u00e9n"},{"id":"b"}]}'
    doc, kept = loads_page(raw)
    writer = ItemsWriter(tmp_path / "users.items")
    writer.add_page(Page(doc["value"], kept))
    changed = Page(doc["value"], kept)
    changed.append({"id": "c"})  # no longer the items Graph's bytes hold
    writer.add_page(changed)
    items = writer.finish()
    first, second = (raw for raw, _ in items.raw_pages())
    assert first == kept  # Graph's escapes kept as sent
    assert b"\\u00e9" not in second and "één".encode() in second  # serialised anew
    assert list(items) == [*doc["value"], *doc["value"], {"id": "c"}]


def test_an_audit_runs_with_fewer_collections_and_gives_the_thresholds_back(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    during: list[tuple[int, int, int]] = []
    frozen: list[int] = []
    real = graph_client.GraphSession.token_roles

    async def roles(self: graph_client.GraphSession) -> list[str] | None:
        during.append(gc.get_threshold())
        frozen.append(gc.get_freeze_count())
        return await real(self)

    monkeypatch.setattr(graph_client.GraphSession, "token_roles", roles)
    before = gc.get_threshold()
    with GraphSimulator(TenantSpec(users=20, service_principals=5, grants=2, seed=3), SimConfig(audit_polls=-1)) as sim:
        asyncio.run(run_audit(AuditOptions(reports=tmp_path, graph_root=sim.url, lang="en",
                                           credential=CredentialSettings(method="none"))))
    assert during == [pace.AUDIT_THRESHOLDS]
    assert frozen[0] > 10_000  # the modules' objects are out of the collector's way while it runs
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_manifest_hashes_on_threads_give_each_files_own_digest(tmp_path: Path) -> None:
    paths = []
    for n in range(7):
        path = tmp_path / f"f{n}"
        path.write_bytes(bytes([n]) * (n * 700_000 + 1))
        paths.append(path)
    assert sha256_files(paths) == [sha256_file(p) for p in paths]
    assert sha256_files(paths[:1]) == [sha256_file(paths[0])] and sha256_files([]) == []


class _Bodies:
    """An exchange sink that keeps each body Graph sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def record(self, exchange: RecordedExchange) -> None:
        self.bodies.append(exchange.body)


def test_a_collected_source_is_spooled_as_the_bytes_graph_sent(tmp_path: Path) -> None:
    sink = _Bodies()

    async def go(url: str) -> Any:
        ctx = FetchContext(now=datetime.now(timezone.utc))
        transport = httpx.AsyncHTTPTransport()
        try:
            async with GraphSession(PlaceholderCredential(), graph_root=url, transport=transport,
                                    sink=sink) as session:
                return await collect(session, ["users"], ctx, spool=tmp_path)
        finally:
            await transport.aclose()

    with GraphSimulator(SPEC, SimConfig()) as sim:
        users = asyncio.run(go(sim.url))["users"].data
    lines = [raw for raw, _ in users.raw_pages()]
    assert len(lines) == len(sink.bodies) == 3
    for line, body in zip(lines, sink.bodies, strict=True):
        assert body.index(b'"value":[') + len(b'"value":[') == body.index(line)  # the body's own bytes
    assert len(users) == SPEC.users
