"""Progress on stderr: live on a terminal, silent in cron and with --quiet, no colour with NO_COLOR."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from m365audit.graph import RecordedExchange
from m365audit.progress import Progress, for_cli, wants_colour, wants_live_display


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
    progress.exchange(exchange("organization"))
    progress.end()


def test_a_terminal_sees_sources_pages_and_throttling() -> None:
    stream = Terminal()
    progress = Progress(stream, live=True, quiet=False, colour=False, min_interval=0)
    run(progress)
    out = stream.getvalue()
    assert "Preflight: all 3 sources" in out
    assert "collecting sources 2/3 · pages 3 · throttled 1 (waited 4 s)" in out
    assert out.rstrip().endswith("collected sources 3/3 · pages 3 · throttled 1 (waited 4 s)")
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
