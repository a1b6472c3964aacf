"""A local Microsoft Graph simulator on 127.0.0.1 (tests, benchmarks): paging, latency, throttling, faults."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode

from m365audit.simulator.export import export_fixtures
from m365audit.simulator.shapes import JSON_TYPE, Reply, TenantSpec, error_body, guid, source_of
from m365audit.simulator.tenant import SimTenant

FaultKind = Literal["403", "404", "500", "503", "504", "timeout", "truncated", "html", "empty", "nextlink404"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
_EMPTY_MARK = "E."
_HTML = (b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
         b"<h1>Er ging iets mis</h1><p>The gateway could not reach the service. "
         b"Reference: 0.b2a1d17.1764295200.1a2b3c</p></body></html>")
_STATUS_ERRORS: dict[str, tuple[int, str, str]] = {
    "403": (403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    "404": (404, "Request_ResourceNotFound",
            "Resource does not exist or one of its queried reference-property "
                                             "objects are not present."),
    "500": (500, "generalException", "General exception while processing."),
    "503": (503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    "504": (504, "gatewayTimeout", "The gateway did not receive a timely response."),
}


@dataclass(frozen=True)
class Fault:
    """A fault on every request of one source, after its first ``after`` requests were answered normally."""

    kind: FaultKind
    after: int = 0


@dataclass
class SimConfig:
    """How the simulator misbehaves. Throttling and faults are deterministic for a given seed."""

    latency_ms: float = 0.0
    item_latency_ms: float = 0.0  # more per item of a collection page: 0.2 makes a page of 999 users 200 ms slower
    throttle_rate: float = 0.0
    retry_after: int = 1
    throttle_streak: int = 2  # max 429s in a row for one URL: the SDK's 3 retries always get through
    rate_limit: float = 0.0  # requests per second for the whole tenant (a token bucket, burst = 1 s); 0: none
    faults: dict[str, Fault] = field(default_factory=dict)
    hang_seconds: float = 660.0  # longer than the longest --timeout (600 s); ends when the simulator stops
    page_cap: int | None = None  # serve at most this many items per page, whatever $top says (Graph may)
    empty_pages: bool = False  # an empty page with a next link before every page: legal, changes nothing
    audit_polls: int = 0  # polls answered "running" before an audit query succeeds; -1: created as succeeded
    audit_seconds: float = 0.0  # > 0: an audit query runs this long after its creation, however often it is polled
    seed: int = 1


@dataclass
class Stats:
    """Requests seen: total, per path, per source, and a log of (method, path?query, status, source)."""

    total: int = 0
    throttled: int = 0
    bytes_sent: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str, int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "throttled": self.throttled, "bytes_sent": self.bytes_sent,
                "by_path": dict(self.by_path),
                "by_source": dict(self.by_source)}


class GraphSimulator:
    """Serves a SimTenant over HTTP on 127.0.0.1 (an ephemeral port by default); use as a context manager."""

    def __init__(self, tenant: SimTenant | TenantSpec, config: SimConfig | None = None,
                 port: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.tenant = tenant if isinstance(tenant, SimTenant) else SimTenant(tenant)
        self.config = config or SimConfig()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._streaks: Counter[str] = Counter()
        self._clock = clock
        self._bucket: tuple[float, float] | None = None  # (tokens, when counted)
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sim = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234 (append /v1.0/users and so on)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GraphSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="graph-simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GraphSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()
            self._streaks.clear()
            self._bucket = None

    # ------------------------------------------------------------------ one request

    def handle(self, method: str, target: str, body: bytes) -> tuple[Reply, str]:
        """Decide the answer to one request; the second value tells the handler how to send it."""
        path, _, query = target.partition("?")
        source = source_of(path, query) or "other"
        cfg = self.config
        with self._lock:
            st = self.stats
            st.total += 1
            st.by_path[path] += 1
            st.by_source[source] += 1
            nth = st.by_source[source]
            rid = guid(cfg.seed, "request", st.total)
            throttle = cfg.throttle_rate > 0 and self._rng.random() < cfg.throttle_rate
            if throttle and self._streaks[target] < cfg.throttle_streak:
                self._streaks[target] += 1
                st.throttled += 1
            else:
                throttle = False
                self._streaks.pop(target, None)
            retry_after = cfg.retry_after
            if not throttle and cfg.rate_limit > 0:
                retry_after = self._take_token(cfg.rate_limit)
                throttle = retry_after > 0
                st.throttled += throttle
        if cfg.latency_ms:
            time.sleep(cfg.latency_ms / 1000)
        fault = cfg.faults.get(source)
        how = "send"
        if throttle:
            reply = Reply(429, error_body("TooManyRequests",
                                          "Too many requests, retry after the given time.", rid),
                          headers={"Retry-After": str(retry_after)})
        elif fault is not None and nth > fault.after:
            reply, how = self._faulty(fault.kind, method, path, query, body, rid)
        else:
            reply = self._answer(method, path, query, body, rid)
        if cfg.item_latency_ms and reply.items:
            time.sleep(reply.items * cfg.item_latency_ms / 1000)  # Graph takes longer to build a fuller page
        with self._lock:
            self.stats.log.append((method, target, reply.status, source))
            self.stats.bytes_sent += len(reply.body)
        return replace(reply, headers={**reply.headers, "request-id": rid}), how

    def _take_token(self, rate: float) -> int:
        """0 when the tenant's budget allows the request, else the whole seconds until it will (lock held)."""
        now, burst = self._clock(), max(1.0, rate)
        tokens, then = self._bucket or (burst, now)
        tokens = min(burst, tokens + (now - then) * rate)
        if tokens >= 1:
            self._bucket = (tokens - 1, now)
            return 0
        self._bucket = (tokens, now)
        return max(1, math.ceil((1 - tokens) / rate))

    def _answer(self, method: str, path: str, query: str, body: bytes, rid: str) -> Reply:
        params = parse_qsl(query, keep_blank_values=True)
        token = next((v for k, v in params if k.lower() == "$skiptoken"), None)
        if token is not None and token.startswith(_EMPTY_MARK):  # the real page after an injected empty one
            rest = [(k, v) for k, v in params if k.lower() != "$skiptoken"]
            if token != _EMPTY_MARK:
                rest.append(("$skiptoken", token[len(_EMPTY_MARK):]))
            return self.tenant.answer(method, path, _qs(rest), body, self.url,
                                      audit_polls=self.config.audit_polls, audit_seconds=self.config.audit_seconds,
                                      page_cap=self.config.page_cap, request_id=rid)
        reply = self.tenant.answer(method, path, query, body, self.url, audit_polls=self.config.audit_polls,
                                   audit_seconds=self.config.audit_seconds, page_cap=self.config.page_cap,
                                   request_id=rid)
        if self.config.empty_pages and reply.status == 200 and reply.content_type == JSON_TYPE:
            doc = reply.json()
            if isinstance(doc.get("value"), list):
                rest = [(k, v) for k, v in params if k.lower() != "$skiptoken"]
                rest.append(("$skiptoken", _EMPTY_MARK + (token or "")))
                empty = {"@odata.context": doc.get("@odata.context"), "value": [],
                         "@odata.nextLink": f"{self.url}{path}?{_qs(rest)}"}
                return Reply(200, json.dumps(empty).encode())
        return reply

    def _faulty(self, kind: FaultKind, method: str, path: str, query: str, body: bytes,
                rid: str) -> tuple[Reply, str]:
        if kind in _STATUS_ERRORS:
            status, code, message = _STATUS_ERRORS[kind]
            headers = {"Retry-After": str(self.config.retry_after)} if status in (503, 504) else {}
            return Reply(status, error_body(code, message, rid), headers=headers), "send"
        if kind == "timeout":
            return Reply(0, b""), "hang"
        if kind == "html":
            return Reply(200, _HTML, "text/html; charset=utf-8"), "send"
        if kind == "empty":
            return Reply(200, b""), "send"
        reply = self._answer(method, path, query, body, rid)
        if kind == "truncated":
            return reply, "truncate"
        if reply.status == 200 and reply.content_type == JSON_TYPE:  # nextlink404
            doc = reply.json()
            if isinstance(doc.get("value"), list):
                rest = [(k, v) for k, v in parse_qsl(query,
                                                     keep_blank_values=True) if k.lower() != "$skiptoken"]
                rest.append(("$skiptoken", "expired-" + rid[:8]))
                doc["@odata.nextLink"] = f"{self.url}{path}?{_qs(rest)}"
                return Reply(200, json.dumps(doc).encode()), "send"
        return reply, "send"


def _qs(params: list[tuple[str, str]]) -> str:
    return urlencode(params, safe="$,()='")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    sim: GraphSimulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up is no error of ours
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_sim/"):
            self._control(sim, method)
            return
        reply, how = sim.handle(method, self.path, body)
        if how == "hang":  # longer than any client timeout; ends early when the simulator stops
            sim._stopping.wait(sim.config.hang_seconds)
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("client-request-id", self.headers.get("client-request-id", ""))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if how == "truncate":  # the promised length never arrives: the connection drops halfway
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)

    def _control(self, sim: GraphSimulator, method: str) -> None:
        if self.path.startswith("/_sim/reset") and method == "POST":
            sim.reset_stats()
        minimum = sim.tenant.minimum_requests(sim.config.audit_polls)
        data = json.dumps({**sim.stats.as_dict(), "minimum": minimum}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    """Serve a generated tenant until stdin closes (prints 'READY <url>' first), or --export it."""
    parser = argparse.ArgumentParser(prog="python -m m365audit.simulator", description=main.__doc__)
    for f in fields(TenantSpec):
        if f.type in ("int", "int | None"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=f.default)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=0.0, help="requests per second before 429s")
    parser.add_argument("--audit-polls", type=int, default=0)
    parser.add_argument("--item-latency-ms", type=float, default=0.0, help="more latency per item of a page")
    parser.add_argument("--audit-seconds", type=float, default=0.0,
                        help="audit queries run this long after creation (instead of --audit-polls)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault", action="append", default=[], metavar="SOURCE=KIND",
                        help=f"kinds: {FAULT_KINDS}")
    parser.add_argument("--export", type=Path, help="write the tenant as a FIXTURES.md folder and exit")
    args = vars(parser.parse_args(argv))
    spec = TenantSpec(**{f.name: args[f.name] for f in fields(TenantSpec) if f.name in args})
    if args["export"] is not None:
        print(export_fixtures(spec, args["export"]), "exchanges written to", args["export"])
        return
    faults: dict[str, Fault] = {}
    for item in args["fault"]:
        source, _, kind = item.partition("=")
        if kind not in FAULT_KINDS:
            parser.error(f"--fault {item}: the kind must be one of {', '.join(FAULT_KINDS)}")
        faults[source] = Fault(kind)
    config = SimConfig(latency_ms=args["latency_ms"], item_latency_ms=args["item_latency_ms"],
                       audit_seconds=args["audit_seconds"], throttle_rate=args["throttle_rate"],
                       rate_limit=args["rate_limit"],
                       audit_polls=args["audit_polls"], faults=faults, seed=spec.seed)
    with GraphSimulator(spec, config, port=args["port"]) as sim:
        print("READY", sim.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
