"""Progress of a live audit on stderr: sources read, pages fetched, throttling waits; silent off a terminal."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO

from m365audit.cli.terminal import clean
from m365audit.evidence import RecordedExchange


def wants_live_display(stream: IO[str], quiet: bool, env: Mapping[str, str] | None = None) -> bool:
    """A live status line only on a terminal, never with --quiet, and not when TERM=dumb."""
    env = os.environ if env is None else env
    return not quiet and stream.isatty() and env.get("TERM") != "dumb"


def wants_colour(env: Mapping[str, str] | None = None) -> bool:
    """NO_COLOR (any value, https://no-color.org) switches colour off."""
    env = os.environ if env is None else env
    return "NO_COLOR" not in env


class Progress:
    """Counts exchanges and redraws one status line; notes (the preflight line) are printed unless quiet."""

    def __init__(self, stream: IO[str], *, live: bool, quiet: bool, colour: bool,
                 clock: Callable[[], float] = time.monotonic, min_interval: float = 0.2) -> None:
        self.stream = stream
        self.live = live
        self.quiet = quiet
        self.colour = colour
        self._clock = clock
        self._min_interval = min_interval
        self._last_draw = -1e9
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.unreadable = 0
        self.pages = 0
        self.throttled = 0
        self.waited = 0.0
        self._drawn = False

    def note(self, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        self.stream.write(clean(text) + "\n")  # the progress line's own colour codes are the only escapes
        self.stream.flush()

    def begin(self, sources: int) -> None:
        self.total = sources
        self._draw(force=True)

    def exchange(self, exchange: RecordedExchange) -> None:
        with self._lock:
            if exchange.status == 429:
                self.throttled += 1
                self.waited += _retry_after(exchange.headers.get("retry-after"))
            elif exchange.status < 400:
                self.pages += 1
        self._draw()

    def source_done(self, key: str, ok: bool) -> None:
        """A source is finished: read completely, or not (an error, a refusal, a failed dependency)."""
        with self._lock:
            self.done += 1
            self.unreadable += not ok
        self._draw()

    def end(self) -> None:
        if self.live and self._drawn:
            self._clear()
        if self.live:
            self.stream.write(self.line(final=True) + "\n")
            self.stream.flush()

    def line(self, final: bool = False) -> str:
        """The status text, e.g. 'sources 5/17 (1 unreadable) · pages 23 · throttled 2 (waited 4 s)'."""
        text = f"sources {self.done}/{self.total}"
        if self.unreadable:
            text += f" ({self.unreadable} unreadable)"
        text += f" · pages {self.pages}"
        if self.throttled:
            text += f" · throttled {self.throttled} (waited {self.waited:g} s)"
        label = "m365audit: " + ("collected " if final else "collecting ")
        if self.colour:
            return f"\x1b[2m{label}\x1b[0m{text}"
        return label + text

    def _draw(self, force: bool = False) -> None:
        if not self.live:
            return
        now = self._clock()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        self.stream.write("\r" + self.line() + ("\x1b[K" if self.colour else ""))
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\r" + ("\x1b[K" if self.colour else " " * 78 + "\r"))
            self._drawn = False


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def for_cli(stream: IO[str], quiet: bool, env: Mapping[str, str] | None = None) -> Progress:
    """The progress display the CLI uses: live on a terminal, notes only in cron, nothing with --quiet."""
    return Progress(stream, live=wants_live_display(stream, quiet, env), quiet=quiet, colour=wants_colour(env))
