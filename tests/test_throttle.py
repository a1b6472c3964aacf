"""The tenant-wide throttling gate: Retry-After forms, shared holds, AIMD in flight, and the real SDK stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from m365audit.collect import SOURCES
from m365audit.graph import GraphSession, PlaceholderCredential
from m365audit.graph.throttle import (
    DEFAULT_PAUSE,
    GATE_HOLD,
    MAX_PAUSE,
    ThrottleGate,
    gate_middleware,
    parse_retry_after,
    requested_pause,
)
from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec
from tests.conftest import collect_from_simulator

NOW = datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc)
SCALE = 0.05
"""Real seconds per Graph second in the stack tests: a Retry-After of 1 costs 50 ms of wall time."""


# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize("value, seconds", [
    ("7", 7.0), (" 2 ", 2.0), ("0", 0.0), ("1.5", 1.5), ("2, 3", 3.0),
    (format_datetime(NOW + timedelta(seconds=10), usegmt=True), 10.0),
    ("Sat, 28 Nov 2026 02:15:30 -0000", 30.0),  # no zone: read as UTC
    (format_datetime(NOW - timedelta(minutes=5), usegmt=True), 0.0),  # already past
])
def test_retry_after_in_seconds_or_as_an_http_date(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "nan", "inf", "1,5x"])
def test_unreadable_or_missing_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("status, headers, pause", [
    (429, {"retry-after": "4"}, 4.0),
    (429, {}, DEFAULT_PAUSE),
    (429, {"retry-after": "0"}, DEFAULT_PAUSE),  # as kiota reads it: no usable header
    (429, {"retry-after": "whenever"}, DEFAULT_PAUSE),
    (429, {"retry-after": "86400"}, MAX_PAUSE),
    (503, {"retry-after": "2"}, 2.0),
    (503, {}, None),  # a service problem, not the tenant's budget
    (503, {"retry-after": "0"}, None),
    (504, {"retry-after": "2"}, None),
    (200, {"retry-after": "2"}, None),
])
def test_which_answers_hold_the_tenant_back(status: int, headers: dict[str, str], pause: float | None) -> None:
    assert requested_pause(status, headers, NOW) == pause


# --------------------------------------------------------------------------- the gate, on a fake clock


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        until = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, until)  # sleepers side by side wake at the same time


def gate(ceiling: int = 4, **kwargs: Any) -> tuple[ThrottleGate, FakeTime]:
    t = FakeTime()
    return ThrottleGate(ceiling, clock=t.clock, sleep=t.sleep, **kwargs), t


def test_the_latest_resume_time_wins() -> None:
    async def go() -> None:
        g, t = gate()
        a, b, c = await g.enter(), await g.enter(), await g.enter()
        g.leave(a, 5.0)
        t.now = 1.0
        g.leave(b, 2.0)  # resume at 3 is earlier than 5: the hold stays at 5
        assert g.paused_for() == 4.0
        t.now = 2.0
        g.leave(c, 10.0)
        assert g.paused_for() == 10.0 and g.stats.holds == 2 and g.stats.throttled == 3

    asyncio.run(go())


def test_every_attempt_waits_until_the_tenant_may_resume() -> None:
    async def go() -> None:
        g, t = gate()
        g.leave(await g.enter(), 3.0)

        async def attempt() -> float:
            entered = await g.enter()
            g.leave(entered, None)
            return entered

        assert list(await asyncio.gather(attempt(), attempt())) == [3.0, 3.0] and t.now == 3.0
        assert g.stats.waits == 2 and g.stats.waited_seconds == 6.0

    asyncio.run(go())


def test_the_throttled_request_does_not_wait_twice() -> None:
    """The SDK's RetryHandler sleeps Retry-After, then the retry reaches the gate: it is already open."""

    async def go() -> None:
        g, t = gate()
        g.leave(await g.enter(), 2.0)
        await t.sleep(2.0)  # the RetryHandler's own wait
        assert await g.enter() == 2.0
        assert t.sleeps == [2.0] and g.stats.waits == 0

    asyncio.run(go())


def test_one_at_a_time_after_a_hold_then_one_more_per_clean_round() -> None:
    async def go() -> None:
        g, t = gate(ceiling=8)
        herd = [await g.enter() for _ in range(8)]
        t.now = 0.1
        for entered in herd[:6]:
            g.leave(entered, 1.0)  # six 429s from one burst: one cut
        assert g.limit == 1 and g.stats.lowest_limit == 1 and g.stats.holds == 1
        for entered in herd[6:]:
            g.leave(entered, None)
        assert g.limit == 2  # a round of one clean answer, then half a round of two
        for _ in range(1 + 3 + 4 + 5 + 6 + 7 + 8):
            g.leave(await g.enter(), None)
        assert g.limit == 8 == g.ceiling  # never above --concurrency
        assert t.now == 1.1  # the hold was waited out once

    asyncio.run(go())


def test_a_cut_comes_once_per_hold_not_once_per_429() -> None:
    async def go() -> None:
        g, t = gate(ceiling=4)
        a, b, c = await g.enter(), await g.enter(), await g.enter()
        t.now = 0.2
        g.leave(a, 0.5)
        g.leave(c, None)  # a clean round of one: back up to 2
        t.now = 1.0
        g.leave(b, 0.5)  # on the wire before the cut: holds again, does not cut again
        assert g.limit == 2 and g.stats.holds == 2 and g.paused_for() == 0.5
        t.now = 2.0
        g.leave(await g.enter(), 0.5)  # let go after the cut: cuts
        assert g.limit == 1

    asyncio.run(go())


def test_retries_go_first_when_the_tenant_resumes() -> None:
    async def go() -> None:
        g, t = gate(ceiling=4)
        g.leave(await g.enter(), 1.0)  # one in flight from now on, after a hold of 1 s
        order: list[str] = []

        async def attempt(name: str, retries: int) -> None:
            entered = await g.enter(retries)
            order.append(name)
            await asyncio.sleep(0)
            g.leave(entered, None)

        await asyncio.gather(attempt("fresh-1", 0), attempt("fresh-2", 0), attempt("third-retry", 3),
                             attempt("first-retry", 1))
        assert order == ["third-retry", "first-retry", "fresh-1", "fresh-2"]

    asyncio.run(go())


def test_an_attempt_waits_for_a_free_slot() -> None:
    async def go() -> None:
        g, _ = gate(ceiling=1)
        first = await g.enter()
        second = asyncio.create_task(g.enter())
        await asyncio.sleep(0)
        assert not second.done() and g.in_flight == 1
        g.leave(first, None, answered=False)  # a timeout frees the slot and changes nothing else
        await second
        assert g.in_flight == 1 and g.limit == 1 and g.stats.waits == 1

    asyncio.run(go())


def test_the_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ThrottleGate(0)


def test_the_middleware_holds_no_longer_than_the_retry_handler_waits() -> None:
    async def go() -> None:
        g, _ = gate()
        answers = iter([httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(200)])

        class Transport(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return next(answers)

        mw = gate_middleware(g, lambda request, response: 2.0)
        request = httpx.Request("GET", "https://graph.microsoft.com/v1.0/users")
        throttled = await mw.send(request, Transport())
        assert throttled.status_code == 429 and throttled.extensions[GATE_HOLD] == (2.0, 2.0)
        assert g.paused_for() == 2.0 and g.stats.throttled == 1
        assert (await mw.send(request, Transport())).status_code == 200
        assert g.in_flight == 0

    asyncio.run(go())


# --------------------------------------------------------------------------- through the real SDK stack


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides conftest's: the RetryHandler waits Retry-After as Graph asks, scaled down to SCALE."""
    from kiota_http.middleware import RetryHandler

    def scaled(self: RetryHandler, retry_count: int, response: httpx.Response | None = None,
               delay: float = 3.0) -> float:
        seconds = parse_retry_after(response.headers.get("retry-after")) if response is not None else None
        return SCALE * (seconds if seconds else DEFAULT_PAUSE)

    monkeypatch.setattr(RetryHandler, "get_delay_time", scaled)


URLS = [f"/v1.0/things/{n}" for n in range(8)]


def test_after_one_429_the_other_requests_wait_instead_of_burning_retries(graph_mock: respx.MockRouter) -> None:
    """Request 0 is throttled; requests 1-7, sent while the tenant is held, go out once, after the hold."""
    hold_until = [0.0]
    calls: list[tuple[str, float, int]] = []

    def tenant(request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        if not calls:  # the first request of the night uses up the budget for 2 Graph seconds
            hold_until[0] = now + 2 * SCALE
        status = 429 if now < hold_until[0] else 200
        calls.append((request.url.path, now, status))
        if status == 429:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"code": "TooManyRequests"}})
        return httpx.Response(200, json={"id": request.url.path})

    graph_mock.route(host="graph.microsoft.com").mock(side_effect=tenant)

    async def go() -> ThrottleGate:
        async with GraphSession(PlaceholderCredential(), concurrency=8,
                                transport=httpx.AsyncHTTPTransport()) as session:
            first = asyncio.create_task(session.get_object(URLS[0]))
            while not calls:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.01)  # the 429 is back: the gate is closed
            rest = await asyncio.gather(*(session.get_object(u) for u in URLS[1:]))
            assert [r["id"] for r in [await first, *rest]] == URLS
            return session.gate

    g = asyncio.run(go())
    assert [c[2] for c in calls].count(429) == 1, calls
    assert sorted(c[0] for c in calls) == sorted([URLS[0], *URLS])  # one retry in all, for request 0
    assert all(when >= hold_until[0] for _, when, status in calls if status == 200)
    assert g.stats.throttled == 1 and g.stats.waits >= 7


def test_replay_leaves_the_gate_out(graph_mock: respx.MockRouter) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "120"}), httpx.Response(200, json={"id": "x"})])
    graph_mock.get("https://graph.microsoft.com/v1.0/x").mock(side_effect=lambda request: next(answers))

    async def go() -> ThrottleGate:
        async with GraphSession(PlaceholderCredential(), transport=httpx.AsyncHTTPTransport(),
                                instant_retries=True) as session:
            assert await session.get_object("/v1.0/x") == {"id": "x"}
            return session.gate

    started = time.monotonic()
    g = asyncio.run(go())
    assert time.monotonic() - started < 5 and g.stats.throttled == 0 and g.paused_for() == 0


SPEC = TenantSpec(users=120, service_principals=12, grants=6, app_role_assignments=3, copilot_users=0, seed=11)


@pytest.fixture(scope="module")
def tight_tenant() -> Iterator[GraphSimulator]:
    """A tenant allowing 1 request a Graph second; its clock runs 1/SCALE times as fast as the wall clock."""
    start = time.monotonic()
    with GraphSimulator(SPEC, SimConfig(rate_limit=1), clock=lambda: start + (time.monotonic() - start) / SCALE) as s:
        yield s


def collect_all(sim: GraphSimulator, concurrency: int) -> tuple[dict[str, Any], ThrottleGate]:
    sim.reset_stats()
    # the audit query is polled at a live audit's pace on the simulator's clock, not in a loop without pause: a poll
    # loop without pause spends the one-request-a-second budget that the test is about on polls alone
    results, gate = collect_from_simulator(sim.url, [k for k, s in SOURCES.items() if not s.delegated],
                                           poll_scale=SCALE, concurrency=concurrency)
    assert isinstance(gate, ThrottleGate)
    return results, gate


def test_sixteen_in_flight_against_a_tight_budget_read_every_source(tight_tenant: GraphSimulator) -> None:
    results, g = collect_all(tight_tenant, 16)
    failed = {k: r.error for k, r in results.items() if not r.ok}
    assert failed == {}
    assert tight_tenant.stats.throttled >= 1 and g.stats.lowest_limit < 16


def test_without_the_gate_the_same_night_runs_out_of_retries(tight_tenant: GraphSimulator,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """What the gate fixes: each request retrying on its own burns its three retries against the budget."""
    from m365audit.graph import client as graph

    real = graph.middleware_chain
    monkeypatch.setattr(graph, "middleware_chain", lambda on_exchange, instant, gate=None: real(on_exchange, instant))
    results, _ = collect_all(tight_tenant, 16)
    assert any(not r.ok and r.error is not None and r.error.status == 429 for r in results.values())


def test_the_retry_handler_waits_the_longer_of_its_delay_and_the_hold_never_the_sum() -> None:
    from kiota_http.middleware.options import RetryHandlerOption

    from m365audit.graph.throttle import gated_retry_handler

    handler = gated_retry_handler(RetryHandlerOption())

    def answer(**extensions: Any) -> httpx.Response:
        response = httpx.Response(429, headers={"Retry-After": "100"})
        response.extensions.update({GATE_HOLD if k == "hold" else k: v for k, v in extensions.items()})
        return response

    assert handler.get_delay_time(0, answer(hold=(2.0, 2.0))) == 0.0  # the retry waits at the gate
    assert handler.get_delay_time(0, answer(hold=(MAX_PAUSE, 100.0))) == 100.0  # longer than the tenant's hold
    assert handler.get_delay_time(0, answer(hold=(MAX_PAUSE, 200.0))) == 200.0  # kiota gives up: no retry
    assert handler.get_delay_time(0, answer()) == SCALE * 100  # not marked: kiota's own (patched: SCALE x 100)
