"""Headless Chromium driven over the DevTools protocol on a pipe: load a page at a width, measure it, screenshot it."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# Debian's package installs /usr/bin/chromium; other names cover a developer's machine.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 30.0


class BrowserError(RuntimeError):
    """Chromium did not start, died, or answered a command with an error."""


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM if set, else the first of CANDIDATES on PATH (None when there is none)."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_pipe() -> tuple[int, int]:
    """os.pipe() with both ends above fd 4, so wiring them onto fds 3 and 4 in the child cannot clobber one."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class Chromium:
    """One headless browser and one tab; commands go over --remote-debugging-pipe (fd 3 in, fd 4 out), no port."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="m365audit-chromium-")
        to_browser_r, self._to_browser = _high_pipe()
        self._from_browser, from_browser_w = _high_pipe()
        args = [binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--disable-dev-shm-usage",
                "--font-render-hinting=none", "--force-color-profile=srgb", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root (CI runs as root)

        def wire_pipes() -> None:  # in the child: the protocol expects fds 3 and 4 (dup2 makes them inheritable;
            # every other descriptor Python opened is close-on-exec, hence close_fds=False rather than pass_fds)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=wire_pipes)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)

    # ----------------------------------------------------------------- protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit code {self._proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = False) -> dict[str, Any]:
        """Send one command (to the tab when session) and return its result; events met on the way are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def _wait_event(self, name: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == name and event.get("sessionId") == self._session:
                    del self._events[i]
                    return
            self._events.append(self._read_message(deadline))

    # ----------------------------------------------------------------- page

    def load(self, page: Path, width: int, height: int = 900) -> None:
        """Open a local file in a viewport width × height CSS px (a phone viewport when narrower than 700 px)."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}, session=True)
        self._events.clear()
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, session=True)
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (returned by value; promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, max_height: int | None = None, selector: str | None = None) -> bytes:
        """A PNG, the full viewport wide: of the page from the top (all of it, or its first max_height CSS px),
        or of the first element matching selector (from its top to its bottom)."""
        width, top, height = self.evaluate(
            "(() => { const d = document.documentElement; const el = %s;"
            " if (!el) return [d.clientWidth, 0, 0]; const r = el.getBoundingClientRect();"
            " return [d.clientWidth, r.top + scrollY, r.height]; })()"
            % (f"document.querySelector({json.dumps(selector)})" if selector else "document.documentElement"))
        if height <= 0:
            raise BrowserError(f"nothing to capture: no element matches {selector!r}")
        if max_height is not None:
            height = min(height, max_height)
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": width, "height": height, "scale": 1}}, session=True)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        """End the browser (politely, then by force) and remove its profile."""
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
