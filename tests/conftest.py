"""Shared fixtures: instant SDK retries, a fake credential, and a respx-backed replay of recorded tenants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from m365audit.graph import ReplayTransport

ROOT = Path(__file__).resolve().parent.parent
TENANTS = ROOT / "fixtures" / "tenants"
FIXED_NOW = datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's RetryHandler waits Retry-After seconds; tests must not."""
    from kiota_http.middleware import RetryHandler

    monkeypatch.setattr(RetryHandler, "get_delay_time", lambda self, *a, **k: 0.0)


class FakeCredential:
    """An AsyncTokenCredential that never signs in: the real auth provider runs, no network login."""

    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@pytest.fixture
def fake_credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def graph_mock() -> Iterator[respx.MockRouter]:
    """respx on every host: any request no route answers fails the test (no network, ever)."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def serve_recording(graph_mock: respx.MockRouter) -> Callable[[Path], ReplayTransport]:
    """Answer graph.microsoft.com from a recorded folder through respx (the real httpx transport runs)."""

    def serve(folder: Path) -> ReplayTransport:
        replay = ReplayTransport.from_folder(folder)
        graph_mock.route(host="graph.microsoft.com").mock(side_effect=replay.answer)
        return replay

    return serve


def real_transport() -> httpx.AsyncBaseTransport:
    """httpx's own transport, which respx intercepts underneath the SDK middleware."""
    return httpx.AsyncHTTPTransport()


def tenant_dirs() -> list[Path]:
    return sorted(p for p in TENANTS.iterdir() if (p / "expected.yaml").is_file()) if TENANTS.is_dir() else []


def collect_from_simulator(url: str, keys: list[str], poll_scale: float = 0.0,
                           **session_options: Any) -> tuple[dict[str, Any], Any]:
    """collect() against a Graph simulator through the real SDK stack.

    Between audit-query polls it sleeps ``poll_scale`` times what a live audit sleeps (0: not at all). Returns
    the sources and the session's throttling gate (session_options go to GraphSession).
    """
    from m365audit.collect import FetchContext, collect
    from m365audit.graph import GraphSession, PlaceholderCredential

    async def go() -> tuple[dict[str, Any], Any]:
        async def scaled_sleep(seconds: float) -> None:
            if poll_scale:
                await asyncio.sleep(seconds * poll_scale)

        ctx = FetchContext(now=datetime.now(timezone.utc), sleep=scaled_sleep, audit_poll_seconds=60)
        transport = httpx.AsyncHTTPTransport(verify=False)
        try:
            async with GraphSession(PlaceholderCredential(), graph_root=url, transport=transport,
                                    **session_options) as session:
                return await collect(session, keys, ctx), session.gate
        finally:
            await transport.aclose()

    return asyncio.run(go())
