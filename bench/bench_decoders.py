"""Bench: JSON decoders on the real users pages (json, today's path, orjson, msgspec), time and memory, as ratios.

    python bench/bench_decoders.py [--users 100000] [--rounds 5] [--bound 200]

The pages are the simulator's answers to the audit's own users request ($select, $top=999), made in-process by
m365audit.simulator (no sockets). Every candidate decodes every page once per round, candidates interleaved
(each round starts with the next candidate); the time is this process's CPU time (time.process_time: decoding
does no I/O, and other processes on a shared machine then inflate it far less than wall time), the median of
the rounds. Memory is measured in a child process per candidate (this script with
--child), with tracemalloc: the peak while decoding page by page and dropping each result (what the spooled
audit does), and what stays allocated when every page's result is kept (what the floor does).

Each candidate is also run on small hostile inputs, so the table says (measured, not assumed) whether it keeps
the audit's guarantees: a lone surrogate escape becomes U+FFFD, raw surrogate bytes (invalid UTF-8) are an
error, a duplicate key is an error, nesting deeper than --bound is a ValueError (never a RecursionError).
"orjson" and "msgspec" are optional: a candidate whose library is missing is skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import run_child

from m365audit.collect import SOURCES
from m365audit.evidence import items
from m365audit.graph import jsonparse as graphjson
from m365audit.simulator import SimTenant, TenantSpec

try:
    import orjson
except ImportError:
    orjson = None  # type: ignore[assignment]
try:
    import msgspec
except ImportError:
    msgspec = None  # type: ignore[assignment]

BOUND = 200  # --bound; module-level so that the child processes use the same value

# ------------------------------------------------------------------ the guarantees, built on top of a decoder


class TooDeep(ValueError):
    """Nesting deeper than BOUND."""


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_BRACKETS = bytes.maketrans(b"{[}]", b"(())")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"{}[]:\\')


def scan(raw: bytes, count_keys: bool = False) -> int:
    """The pre-pass: raise TooDeep past BOUND levels; return the number of keys in the text when asked.

    Only structure counts (a bracket or colon in a display name is not structure). Fast path: keep only
    quotes, brackets, colons and backslashes (one C pass); without an escaped quote every quote delimits a
    string, so the structure is every other piece between quotes. With one, a regex collapses the strings.
    A colon outside strings follows a key. Brackets become parentheses and each pass of replace("()")
    removes exactly one level.
    """
    reduced = raw.translate(None, _NOT_STRUCTURE)
    if b'\\"' in reduced:  # sound: an escaped quote in raw is still `\"` here (false alarms only cost time)
        skeleton = _STRING.sub(b'"', raw).translate(None, _NOT_STRUCTURE)
    else:
        skeleton = b'"'.join(reduced.split(b'"')[::2])
    keys = skeleton.count(b":") if count_keys else 0  # a colon outside strings follows a key
    brackets = skeleton.translate(_BRACKETS, b'":\\')
    level = 0
    while brackets:
        level += 1
        if level > BOUND:
            raise TooDeep(f"JSON nested deeper than {BOUND} levels")
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            raise ValueError("unbalanced brackets")
        brackets = shorter
    return keys


def dict_keys(doc: Any) -> int:
    """The number of keys in all the parsed objects (fewer than in the text when a key was repeated)."""
    total, stack = 0, [doc]
    while stack:
        value = stack.pop()
        children = value.values() if type(value) is dict else value
        if type(value) is dict:
            total += len(value)
        stack.extend(c for c in children if type(c) is dict or type(c) is list)
    return total


def _checked_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError(f"duplicate key in a JSON object: {sorted({k for k, _ in pairs if k in obj})[:3]}")
    return obj


def repaired(raw: bytes, doc: Any) -> Any:
    """graphjson's repair (lone surrogate escape -> U+FFFD), and no object may lose a key by it."""
    if not graphjson._SURROGATE_ESCAPE.search(raw):
        return doc
    before = dict_keys(doc)
    doc = graphjson._repaired(doc)
    if dict_keys(doc) != before:
        raise ValueError("two keys of one JSON object are the same after replacing lone surrogates")
    return doc


def json_hook(raw: bytes) -> Any:
    """json.loads with a duplicate-key check per object, a depth pre-pass, strict UTF-8, surrogates repaired."""
    scan(raw)
    return repaired(raw, json.loads(raw.decode(), object_pairs_hook=_checked_pairs))


def json_count(raw: bytes) -> Any:
    """The same guarantees with one pre-pass for depth and keys, then a walk comparing the key counts."""
    keys = scan(raw, count_keys=True)
    doc = json.loads(raw.decode())
    if dict_keys(doc) != keys:
        raise ValueError("duplicate key in a JSON object")
    return repaired(raw, doc)


def guarded(loads: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A fast decoder with the pre-pass and key count; what it rejects (lone surrogates) goes to json_hook."""
    def decode(raw: bytes) -> Any:
        keys = scan(raw, count_keys=True)
        try:
            doc = loads(raw)
        except ValueError:
            return json_hook(raw)  # the same error as today, or the repaired lone surrogate
        if dict_keys(doc) != keys:
            raise ValueError("duplicate key in a JSON object")
        return doc
    return decode


# ------------------------------------------------------------------ typed msgspec: only what the rules read

TYPED: Callable[[bytes], Any] | None = None
TYPED_GUARDED: Callable[[bytes], Any] | None = None
if msgspec is not None:
    class Licence(msgspec.Struct, gc=False):
        skuId: str | None = None  # noqa: N815 (Graph's names)
        disabledPlans: list[str] = []  # noqa: N815, RUF012

    class Plan(msgspec.Struct, gc=False):
        servicePlanId: str | None = None  # noqa: N815
        capabilityStatus: str | None = None  # noqa: N815

    class User(msgspec.Struct, gc=False):
        id: str | None = None
        userPrincipalName: str | None = None  # noqa: N815
        displayName: str | None = None  # noqa: N815
        accountEnabled: bool | None = None  # noqa: N815
        assignedLicenses: list[Licence] | None = None  # noqa: N815 (None: not selected, a ShapeError today)
        assignedPlans: list[Plan] | None = None  # noqa: N815

    class UsersPage(msgspec.Struct):
        value: list[User]
        next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")

    _users_decoder = msgspec.json.Decoder(UsersPage)
    TYPED = _users_decoder.decode

    def _typed_guarded(raw: bytes) -> Any:
        scan(raw)  # duplicate keys: a Struct keeps the last one silently and the text's keys cannot be compared
        try:
            return _users_decoder.decode(raw)
        except msgspec.DecodeError:
            return msgspec.convert(json_hook(raw), UsersPage)
    TYPED_GUARDED = _typed_guarded


def _spool_parse(line: bytes) -> Any:
    return items.parse_page(line)


def candidates() -> dict[str, tuple[Callable[[bytes], Any] | None, str]]:
    """name -> (decode function or None when its library is missing, which pages it reads)."""
    o = orjson.loads if orjson is not None else None
    m = msgspec.json.decode if msgspec is not None else None
    return {
        "json.loads (floor)": (json.loads, "body"),
        "graphjson.parse (today, Graph body)": (graphjson.parse, "body"),
        "items.parse_page (today, spool line)": (_spool_parse, "spool"),
        "orjson.loads": (o, "body"),
        "msgspec.json.decode untyped": (m, "body"),
        "msgspec typed Structs (rule fields)": (TYPED, "body"),
        "json + pairs hook + depth pre-pass": (json_hook, "body"),
        "json + pre-pass + key count walk": (json_count, "body"),
        "orjson + pre-pass + key count walk": (guarded(o) if o else None, "body"),
        "msgspec untyped + pre-pass + count": (guarded(m) if m else None, "body"),
        "msgspec typed + depth pre-pass": (TYPED_GUARDED, "body"),
        "part: depth pre-pass alone": (scan, "body"),
        "part: pre-pass with key count": (lambda raw: scan(raw, count_keys=True), "body"),
        "part: json.loads + pairs hook": (lambda raw: json.loads(raw, object_pairs_hook=_checked_pairs), "body"),
        "part: json.loads + key count walk": (lambda raw: dict_keys(json.loads(raw)), "body"),
        "part: surrogate-escape search": (graphjson._SURROGATE_ESCAPE.search, "body"),
    }


# ------------------------------------------------------------------ behaviour on hostile input


def _doc(user: bytes, spool: bool) -> bytes:
    return user if spool else b'{"@odata.context":"x","value":[' + user + b"]}"


def _text(value: Any) -> str:
    return repr(value if not hasattr(value, "value") else [msgspec.structs.asdict(u) for u in value.value])


def guarantees(fn: Callable[[bytes], Any], spool: bool, parts: bool) -> list[str]:
    """[lone \\ud800 escape, raw surrogate bytes, duplicate key, depth > BOUND, depth 100,000]; measured."""
    if parts:
        return ["", "", "", "", ""]
    out = []

    def run(user: bytes) -> tuple[str, Any]:
        try:
            return "ok", fn(_doc(user, spool))
        except RecursionError:
            return "RecursionError", None
        except ValueError as exc:
            return "ValueError", exc
    status, value = run(b'{"id":"a","displayName":"x\\ud800y"}')
    out.append("ValueError" if status != "ok" else "U+FFFD" if "\ufffd" in _text(value)
               else "kept lone" if "\\ud800" in _text(value) else "?")
    status, value = run(b'{"id":"a","displayName":"x\xed\xa0\x80y"}')
    out.append("error" if status == "ValueError" else "kept lone" if "\\ud800" in _text(value) else status)
    status, _ = run(b'{"id":"a","displayName":"x","displayName":"y"}')
    out.append("error" if status == "ValueError" else "last wins")
    for levels in (BOUND + 1, 100_000):
        status, _ = run(b'{"id":"a","x":' + b"[" * levels + b"]" * levels + b"}")
        out.append("error" if status == "ValueError" else "accepted" if status == "ok" else status)
    return out


# ------------------------------------------------------------------ pages, timing, memory


def make_pages(users: int, folder: Path) -> tuple[Path, Path, int]:
    """The users pages as Graph bodies (one per line) and as spool lines (`item,item,…`); returns the bytes."""
    spec = TenantSpec(users=users, service_principals=max(50, users // 50), grants=max(20, users // 100),
                      app_role_assignments=max(10, users // 500), copilot_users=max(3, users // 1000))
    tenant, base = SimTenant(spec), "https://graph.microsoft.com"
    url: str | None = base + SOURCES["users"].url
    bodies, spool, total = folder / "bodies.jsonl", folder / "spool.jsonl", 0
    with bodies.open("wb") as fb, spool.open("wb") as fs:
        while url:
            parts = urlsplit(url)
            reply = tenant.answer("GET", parts.path, parts.query, b"", base)
            assert reply.status == 200 and b"\n" not in reply.body, reply.status
            doc = json.loads(reply.body)
            fb.write(reply.body + b"\n")
            fs.write(items.page_bytes(doc["value"]) + b"\n")
            total += len(reply.body)
            url = doc.get("@odata.nextLink")
    return bodies, spool, total


def read_pages(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        return [line.rstrip(b"\n") for line in f]  # a line at a time: no second copy of the whole file


def child(name: str, folder: Path) -> None:
    """Memory of one candidate in a fresh process (tracemalloc, MiB); prints one JSON line."""
    fn, shape = candidates()[name]
    assert fn is not None
    pages = read_pages(folder / f"{'spool' if shape == 'spool' else 'bodies'}.jsonl")
    fn(pages[0])  # first-call set-up (key caches, decoder state) is not a page's cost
    gc.collect()
    tracemalloc.start()
    for page in pages:
        fn(page)
    stream = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    kept = [fn(page) for page in pages]
    keep, keep_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    print(json.dumps({"stream": stream / 2**20, "keep": keep / 2**20, "keep_peak": keep_peak / 2**20}))


def check_scan(n: int) -> None:
    """scan() against a recursive count on random documents with structure characters inside strings."""
    import random

    def depth(v: Any) -> int:
        children = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)

    def keys(v: Any) -> int:
        if isinstance(v, dict):
            return len(v) + sum(map(keys, v.values()))
        return sum(map(keys, v)) if isinstance(v, list) else 0

    def text() -> str:
        return "".join(random.choice('a[]{}:"\\ ,\né') for _ in range(random.randint(0, 4)))

    def value(d: int) -> Any:
        r = random.random()
        if d > 6 or r < 0.3:
            return text() if random.random() < 0.7 else random.choice([1, None, True])
        if r < 0.65:
            return [value(d + 1) for _ in range(random.randint(0, 3))]
        return {text(): value(d + 1) for _ in range(random.randint(0, 3))}

    global BOUND
    wrong = 0
    for _ in range(n):
        doc = value(0)
        for raw in (json.dumps(doc).encode(), json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
                    json.dumps(doc, indent=1).encode()):
            BOUND = 10**6
            wrong += scan(raw, count_keys=True) != keys(doc)
            BOUND = depth(doc)
            scan(raw)  # must pass at exactly its depth
            if BOUND:
                BOUND -= 1
                try:
                    scan(raw)
                    wrong += 1
                except TooDeep:
                    pass
    print(f"scan() on {3 * n} random documents: {wrong} wrong")


def main() -> None:
    global BOUND
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds, candidates interleaved; the median counts")
    p.add_argument("--bound", type=int, default=BOUND, help="the nesting depth past which a page is malformed")
    p.add_argument("--check-scan", type=int, metavar="N", help="only check the pre-pass on N random documents")
    p.add_argument("--child", nargs=2, metavar=("NAME", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    BOUND = args.bound
    if args.check_scan:
        check_scan(args.check_scan)
        return
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    print(f"python {sys.version.split()[0]}, orjson {getattr(orjson, '__version__', 'not installed')}, "
          f"msgspec {getattr(msgspec, '__version__', 'not installed')}")
    table = candidates()
    for name, (fn, _) in table.items():
        if fn is None:
            print(f"skipped: {name} (its library is not installed: pip install orjson msgspec)")
    live = {name: (fn, shape) for name, (fn, shape) in table.items() if fn is not None}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        bodies_path, spool_path, total = make_pages(args.users, Path(tmp))
        pages = {"body": read_pages(bodies_path), "spool": read_pages(spool_path)}
        print(f"{args.users} users: {len(pages['body'])} pages, {total / 2**20:.1f} MiB of Graph bodies "
              f"(made in {time.perf_counter() - t:.1f} s); {args.rounds} rounds")
        for name, (fn, shape) in live.items():  # the results must agree before anything is timed
            if not name.startswith("part:") and shape == "body":
                n = sum(len(v.value) if hasattr(v, "value") else len(v["value"]) for v in map(fn, pages["body"]))
                assert n == args.users, (name, n)
        times: dict[str, list[float]] = {name: [] for name in live}
        order = list(live)
        for n in range(args.rounds):
            for name in order[n % len(order):] + order[:n % len(order)]:  # each round starts elsewhere
                fn, shape = live[name]
                gc.collect()
                start = time.process_time()
                for page in pages[shape]:
                    fn(page)
                times[name].append(time.process_time() - start)
        del pages
        mem = {name: run_child(["bench/bench_decoders.py", "--bound", str(BOUND), "--child", name, tmp]).output
               for name in live}
    floor, floor_best = statistics.median(times["json.loads (floor)"]), min(times["json.loads (floor)"])
    print(f"\ntime: CPU seconds, median (and best) of {args.rounds} rounds over all pages, as a ratio to json.loads; "
          "memory (tracemalloc, MiB): peak decoding page by page (stream), allocated when every page is kept (keep); "
          f"guarantees measured on hostile input (depth: {BOUND + 1} / 100,000 levels)")
    head = ("candidate", "median s", "x json", "best x", "stream", "keep", "\\ud800", "raw surr.", "dup key",
            f"depth {BOUND + 1}", "depth 100k")
    print(f"{head[0]:38} {head[1]:>8} {head[2]:>6} {head[3]:>6} {head[4]:>6} {head[5]:>6}  "
          + "  ".join(f"{h:10}" for h in head[6:]))
    for name, (fn, shape) in live.items():
        median = statistics.median(times[name])
        m = mem[name]
        marks = guarantees(fn, shape == "spool", name.startswith("part:"))
        print(f"{name:38} {median:8.3f} {median / floor:6.2f} {min(times[name]) / floor_best:6.2f} "
              f"{m['stream']:6.1f} {m['keep']:6.1f}  " + "  ".join(f"{x:10}" for x in marks).rstrip())

if __name__ == "__main__":
    main()
