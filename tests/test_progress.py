"""Progress on stderr: live on a terminal, silent in cron and with --quiet, no colour with NO_COLOR."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timezone

import respx

from m365audit.cli.progress import Progress, for_cli, wants_colour, wants_live_display
from m365audit.collect import FetchContext, collect
from m365audit.graph import GraphSession
from m365audit.graph.client import RecordedExchange
from m365audit.models import SourceError
from tests.conftest import FakeCredential


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def exchange(source: str, status: int = 200, retry_after: str | None = None) -> RecordedExchange:
    headers = {"retry-after": retry_after} if retry_after else {}
    return RecordedExchange(source=source, method="GET", url="https://graph.microsoft.com/v1.0/users",
                            request_body=None, status=status, headers=headers, body=b"{}",
                            recorded_at=datetime.now(timezone.utc), attempt=1)


def run(progress: Progress) -> None:
    progress.note("Preflight: all 3 sources are covered by the token's 12 application roles")
    progress.begin(3)
    progress.exchange(exchange("users"))
    progress.exchange(exchange("users", 429, "4"))
    progress.exchange(exchange("users"))
    progress.source_done("users", True)
    progress.exchange(exchange("organization", 403))
    progress.source_done("organization", False)
    progress.exchange(exchange("subscribed_skus"))
    progress.source_done("subscribed_skus", True)
    progress.end()


def test_a_terminal_sees_sources_pages_and_throttling() -> None:
    stream = Terminal()
    progress = Progress(stream, live=True, quiet=False, colour=False, min_interval=0)
    run(progress)
    out = stream.getvalue()
    assert "Preflight: all 3 sources" in out
    assert "collecting sources 0/3 · pages 2 · throttled 1 (waited 4 s)" in out  # users not finished yet
    assert "collecting sources 1/3 · pages 2 · throttled 1 (waited 4 s)" in out
    assert "collecting sources 2/3 (1 unreadable) · pages 2 · throttled 1 (waited 4 s)" in out
    assert out.rstrip().endswith("collected sources 3/3 (1 unreadable) · pages 3 · throttled 1 (waited 4 s)")
    assert "\x1b[" not in out


def test_cron_gets_the_preflight_line_only() -> None:
    stream = io.StringIO()
    progress = for_cli(stream, quiet=False, env={})
    run(progress)
    assert stream.getvalue() == "Preflight: all 3 sources are covered by the token's 12 application roles\n"


def test_quiet_prints_nothing_even_on_a_terminal() -> None:
    stream = Terminal()
    run(for_cli(stream, quiet=True, env={}))
    assert stream.getvalue() == ""


def test_no_color_and_dumb_terminals() -> None:
    assert wants_colour({}) and not wants_colour({"NO_COLOR": ""}) and not wants_colour({"NO_COLOR": "1"})
    assert wants_live_display(Terminal(), quiet=False, env={})
    assert not wants_live_display(Terminal(), quiet=False, env={"TERM": "dumb"})
    assert not wants_live_display(io.StringIO(), quiet=False, env={})
    stream = Terminal()
    run(for_cli(stream, quiet=False, env={}))
    assert "\x1b[" in stream.getvalue(), "colour on a terminal without NO_COLOR"


def test_redraws_are_throttled() -> None:
    stream = Terminal()
    now = [0.0]
    progress = Progress(stream, live=True, quiet=False, colour=False, clock=lambda: now[0], min_interval=1.0)
    progress.begin(1)
    for _ in range(50):
        progress.exchange(exchange("users"))
    assert stream.getvalue().count("\r") <= 2


def test_collect_tells_each_source_as_it_finishes_refused_and_failed_ones_too(graph_mock: respx.MockRouter) -> None:
    graph_mock.get("https://graph.microsoft.com/v1.0/organization").respond(200, json={"value": [{"id": "t"}]})
    graph_mock.get(url__startswith="https://graph.microsoft.com/v1.0/users").respond(
        403, json={"error": {"code": "Authorization_RequestDenied", "message": "no"}})
    told: list[tuple[str, bool]] = []

    async def go() -> None:
        async with GraphSession(FakeCredential()) as session:
            await collect(session, ["organization", "users", "resource_permissions", "app_role_assignments"],
                          FetchContext(now=datetime(2026, 11, 28, tzinfo=timezone.utc)),
                          refused={"resource_permissions": SourceError(message="refused")},
                          on_done=lambda r: told.append((r.key, r.ok)))

    asyncio.run(go())
    assert sorted(told) == [("app_role_assignments", False), ("organization", True), ("resource_permissions", False),
                            ("users", False)]
