"""One throttling gate per tenant: a 429's Retry-After holds back every request of the session, retries first."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

DEFAULT_PAUSE = 3.0
"""Seconds the tenant holds back after a 429 without a usable Retry-After (kiota's own base delay)."""
MAX_PAUSE = 60.0
"""The longest hold one answer puts on the whole tenant; the throttled request itself still waits its
full Retry-After (the SDK's RetryHandler gives up when that is 180 s or more)."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
RetryDelay = Callable[[httpx.Request, httpx.Response], float]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and all(p.isdigit() for p in parts):  # a repeated header joined by a proxy: "2, 2"
        text = max(parts, key=int)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def requested_pause(status: int, headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """How long an answer asks the whole tenant to hold back, capped; None when it is not throttling.

    A 429 always throttles (DEFAULT_PAUSE when Retry-After is missing, unreadable or 0); a 503 only when
    it carries a Retry-After above 0. 504 and other errors say nothing about the tenant's budget.
    """
    if status not in (429, 503):
        return None
    seconds = parse_retry_after(headers.get("retry-after"), now)
    if not seconds:  # missing, unreadable or 0: kiota too treats 0 as "no header" and backs off
        return DEFAULT_PAUSE if status == 429 else None
    return min(seconds, MAX_PAUSE)


@dataclass
class GateStats:
    """What the gate did during one session (for tests, benches and the curious)."""

    throttled: int = 0
    """answers that asked the tenant to hold back"""
    holds: int = 0
    """answers that moved the tenant's resume time later"""
    waits: int = 0
    """attempts that waited at the gate (for the resume time, a free slot or their turn)"""
    waited_seconds: float = 0.0
    """summed over attempts"""
    lowest_limit: int = 0
    """the fewest attempts the gate allowed in flight"""


class ThrottleGate:
    """Shared by every request of one GraphSession (Graph throttles per app and tenant).

    Every attempt, the SDK's retries included, passes ``enter`` before it is sent and ``leave`` with its
    answer. A throttling answer sets "resume at now + Retry-After" (the latest such time wins) and, once
    per hold, cuts how many attempts may be in flight to one; each round of answers without throttling
    allows one more again, up to the session's --concurrency. Waiting attempts go in order of how often
    they were already throttled (retries first), then in order of arrival, so the budget finishes
    requests that already waited instead of letting one request spend all its retries.
    """

    def __init__(self, ceiling: int, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        if ceiling < 1:
            raise ValueError(f"the gate needs at least one request in flight, got {ceiling}")
        self.ceiling = ceiling
        self.limit = ceiling
        self.stats = GateStats(lowest_limit=ceiling)
        self._clock = clock
        self._sleep = sleep
        self._resume_at = -math.inf
        self._cut_at = -math.inf
        self._in_flight = 0
        self._clean = 0
        self._queue: list[tuple[int, int]] = []  # (-retries so far, arrival): a heap, its first goes next
        self._arrivals = itertools.count()
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def paused_for(self) -> float:
        """Seconds until attempts may be sent again (0 when the gate is open)."""
        return max(0.0, self._resume_at - self._clock())

    async def enter(self, retries: int = 0) -> float:
        """Wait for the tenant's resume time, a free slot and this attempt's turn; returns when it was let go.

        ``retries``: how often this request was already retried (kiota's Retry-Attempt header).
        """
        ticket = (-retries, next(self._arrivals))
        heapq.heappush(self._queue, ticket)
        started = self._clock()
        waited = False
        try:
            while True:
                now = self._clock()
                if now < self._resume_at:
                    waited = True
                    await self._sleep(self._resume_at - now)
                    continue
                if self._queue[0] == ticket and self._in_flight < self.limit:
                    break
                waited = True
                turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(turn)
                await turn
        finally:
            self._queue.remove(ticket)
            heapq.heapify(self._queue)
            self._wake()  # the next in line may go too (or, if this one was cancelled, instead)
        self._in_flight += 1
        if waited:
            self.stats.waits += 1
            self.stats.waited_seconds += now - started
        return now

    def leave(self, entered_at: float, pause: float | None, *, answered: bool = True) -> None:
        """An attempt let go at ``entered_at`` got its answer: ``pause`` seconds when it was throttled, else None.

        An attempt that raised (timeout, dropped connection) leaves with ``answered=False``: its slot is
        freed and nothing else changes.
        """
        self._in_flight = max(0, self._in_flight - 1)
        if answered and pause is None:
            self._clean += 1
            if self._clean >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._clean = 0
        elif answered and pause is not None:
            self._throttled(entered_at, pause)
        self._wake()

    def _throttled(self, entered_at: float, pause: float) -> None:
        now = self._clock()
        self.stats.throttled += 1
        self._clean = 0
        if now + pause > self._resume_at:
            self._resume_at = now + pause
            self.stats.holds += 1
        if entered_at > self._cut_at:  # attempts already on the wire at the last cut do not cut again
            self.limit = 1  # measured: halving still let a request spend all its retries at 1 request/s
            self._cut_at = now
            self.stats.lowest_limit = 1

    def _wake(self) -> None:
        # every parked attempt checks again; only the first in line (with a free slot) goes
        for turn in self._waiters:
            if not turn.done():
                turn.set_result(None)
        self._waiters.clear()


GATE_HOLD = "m365audit.gate_hold"
"""httpx.Response extension on a throttling answer: (seconds the tenant is held, seconds the SDK's
RetryHandler would wait before retrying this request)."""


def gate_middleware(gate: ThrottleGate, retry_delay: RetryDelay) -> Any:
    """A kiota middleware for just above the recording one: every attempt, retries included, passes the gate.

    ``retry_delay`` is what the SDK's RetryHandler would wait before retrying this answer on its own. The
    tenant is never held longer than that, so the switch that makes the SDK's retries instant (replay,
    tests) makes the gate instant too. Both figures are marked on the response for the retry handler
    from ``gated_retry_handler``: when the hold covers its delay it retries at once and the retry waits
    here, first in line; otherwise it sleeps its own delay and finds the gate open. Either way the
    throttled request waits the longer of the two, never their sum.
    """
    from kiota_http.middleware import BaseMiddleware

    class TenantThrottleGate(BaseMiddleware):
        async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
            retries = request.headers.get("Retry-Attempt", "0")
            entered_at = await gate.enter(int(retries) if retries.isdigit() else 0)
            try:
                response: httpx.Response = await super().send(request, transport)
            except BaseException:
                gate.leave(entered_at, None, answered=False)
                raise
            pause = requested_pause(response.status_code, response.headers)
            if pause is not None:
                own = max(0.0, retry_delay(request, response))
                pause = min(pause, own)
                response.extensions[GATE_HOLD] = (pause, own)
            gate.leave(entered_at, pause)
            return response

    return TenantThrottleGate()


def kiota_retry_delay(handler: Any) -> RetryDelay:
    """The delay kiota's RetryHandler (as patched, if it is) computes for an answer, for ``handler``'s options."""
    from kiota_http.middleware import RetryHandler

    def delay(request: httpx.Request, response: httpx.Response) -> float:
        retries = request.headers.get("Retry-Attempt", "0")
        return float(RetryHandler.get_delay_time(handler, int(retries) if retries.isdigit() else 0, response,
                                                 handler.options.max_delay))

    return delay


def gated_retry_handler(options: Any) -> Any:
    """kiota's RetryHandler, except that a retry the gate's hold covers is sent at once (to wait at the gate)."""
    from kiota_http.middleware import RetryHandler
    from kiota_http.middleware.options import RetryHandlerOption

    class GatedRetryHandler(RetryHandler):
        def get_delay_time(self, retry_count: int, response: httpx.Response | None = None,
                           delay: float = RetryHandlerOption.DEFAULT_DELAY) -> float:
            marked = response.extensions.get(GATE_HOLD) if response is not None else None
            if marked is None:  # 504s, 503s without Retry-After
                return float(super().get_delay_time(retry_count, response, delay))
            hold, own = marked  # own: the delay the gate already asked kiota for (no second random jitter)
            return 0.0 if own <= hold else float(own)  # not an instant retry: it waits at the gate, first in line

    return GatedRetryHandler(options)
