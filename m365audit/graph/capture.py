"""The SDK middleware chain: evidence of every attempt, the throttle gate, and word when a request is sent."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

from m365audit.evidence import RecordedExchange
from m365audit.graph.throttle import ThrottleGate, gate_middleware, gated_retry_handler, kiota_retry_delay

KEPT_RESPONSE_HEADERS = ("content-type", "request-id", "client-request-id", "retry-after", "date", "location")

current_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_source", default=None)
"""The source key a request belongs to, set by collect for each source task."""

request_sent: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("request_sent", default=None)
"""Set (by the recording middleware) once a request of this context is written to Graph: the pager waits for it
before it decodes a page, so that the next page's request is on the wire while the page is decoded."""

SENT_WAIT = 0.02
"""Seconds the pager waits at most for a page asked for ahead to be sent before it decodes the current page."""


# --------------------------------------------------------------------------- evidence capture


@dataclass
class SourceStats:
    """Requests made on behalf of one source."""

    requests: int = 0
    request_ids: list[str] = field(default_factory=list)
    first_url: str | None = None
    throttled: int = 0


def _make_recording_middleware(on_exchange: Callable[[RecordedExchange], None]) -> Any:
    """A kiota middleware placed last in the chain, below the retry handler, so it sees every attempt."""
    from kiota_http.middleware import BaseMiddleware

    class RecordEveryAttempt(BaseMiddleware):
        async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
            sent = request_sent.get()
            if sent is not None:
                _tell_when_sent(request, transport, sent)
            response: httpx.Response = await super().send(request, transport)
            body = await response.aread()
            retry_attempt = request.headers.get("Retry-Attempt")
            on_exchange(RecordedExchange(
                source=current_source.get(),
                method=request.method,
                url=str(request.url),
                request_body=request.content or None,
                status=response.status_code,
                headers={k: response.headers[k] for k in KEPT_RESPONSE_HEADERS if k in response.headers},
                body=body,
                recorded_at=datetime.now(timezone.utc),
                attempt=int(retry_attempt) + 1 if retry_attempt and retry_attempt.isdigit() else 1,
            ))
            return response

    return RecordEveryAttempt()


def _tell_when_sent(request: httpx.Request, transport: httpx.AsyncBaseTransport, sent: asyncio.Event) -> None:
    """Set ``sent`` when the request is written: httpcore's trace says so for a network transport; any other
    transport (a replay) has the request as soon as it is handed over."""
    if not isinstance(transport, httpx.AsyncHTTPTransport):
        sent.set()
        return
    earlier = request.extensions.get("trace")

    async def trace(event: str, info: dict[str, Any]) -> None:
        if earlier is not None:
            await earlier(event, info)
        if event.endswith("send_request_body.complete"):
            sent.set()

    request.extensions["trace"] = trace


def middleware_chain(on_exchange: Callable[[RecordedExchange], None], instant_retries: bool,
                     gate: ThrottleGate | None = None) -> list[Any]:
    """msgraph-sdk's default middleware, then the throttle gate and the recorder of every attempt, last."""
    from kiota_http.kiota_client_factory import KiotaClientFactory
    from kiota_http.middleware import RetryHandler
    from msgraph.graph_request_adapter import options as sdk_options
    from msgraph_core.middleware import GraphTelemetryHandler
    from msgraph_core.middleware.options import GraphTelemetryHandlerOption

    class InstantRetryHandler(RetryHandler):
        """Replay answers at once: retrying a recorded 429 needs no real wait."""

        def get_delay_time(self, *args: Any, **kwargs: Any) -> float:
            return 0.0

    chain = KiotaClientFactory.get_default_middleware(sdk_options)
    if instant_retries:
        chain = [InstantRetryHandler(m.options) if isinstance(m, RetryHandler) else m for m in chain]
    elif gate is not None:  # a throttled request's retry waits at the gate, not in the retry handler
        chain = [gated_retry_handler(m.options) if isinstance(m, RetryHandler) else m for m in chain]
    telemetry = sdk_options.get(GraphTelemetryHandlerOption.get_key())
    chain.append(GraphTelemetryHandler(options=telemetry))
    if gate is not None and not instant_retries:  # above the recorder: every attempt passes it, retries too
        retry = next(m for m in chain if isinstance(m, RetryHandler))
        chain.append(gate_middleware(gate, kiota_retry_delay(retry)))
    chain.append(_make_recording_middleware(on_exchange))
    return chain
