"""The one strict JSON parser for Graph bodies and stored pages: ambiguous or pathological JSON is malformed.

json.loads keeps the last of two equal keys, recurses until the interpreter gives up, accepts NaN and numbers
that overflow to infinity, and (given bytes) lets raw surrogate bytes through. An auditor cannot judge data that
two readers may read differently, so every one of these is a ``MalformedJson`` here:

- not UTF-8, or not JSON (NaN, Infinity, an integer too long to convert, a float that overflows): MalformedBody;
- an object with a key twice, at any depth (also two keys that become equal when lone surrogates are
  replaced): AmbiguousJson;
- nesting deeper than ``max_depth`` levels, found by a pre-pass over the bytes before json recurses: TooDeep.

A lone UTF-16 surrogate escape ("\\ud800") becomes U+FFFD, so every report can be written; the exchange keeps
Graph's exact bytes as evidence, only the parsed data carries the replacement character.

Cost (bench/bench_strictjson.py): the duplicate check is an ``object_pairs_hook`` (one call per object), the
depth check a few C passes over the bytes (0.13x); 1.6-1.9x a plain json.loads of a 999-user page in all.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting accepted in a Graph body; Graph's deepest shapes (nested Intune settings) stay far below it."""
STORED_DEPTH = MAX_DEPTH + 8
"""Deepest nesting accepted in a stored file: a body's data plus the envelope of an exchange or snapshot.json."""

DECODES: dict[str, int] = {"graph_bodies": 0, "stored_pages": 0, "decoded_pages": 0}
"""How often the data was decoded: Graph bodies (graph/jsonparse.py), spooled or stored JSON pages read back, and
pages read back from a spool's already-decoded copy (no JSON: items.PagedItems); bench/audit_child.py prints them."""

MALFORMED = "MalformedBody"
AMBIGUOUS = "AmbiguousJson"
TOO_DEEP = "TooDeep"

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"{}[]')
_AS_PARENS = bytes.maketrans(b"{[}]", b"(())")


class MalformedJson(ValueError):
    """JSON the audit must not read: ``code`` is MalformedBody, AmbiguousJson or TooDeep."""

    def __init__(self, message: str, code: str = MALFORMED) -> None:
        super().__init__(message)
        self.code = code


def loads(raw: bytes, *, max_depth: int = MAX_DEPTH, inner_keys: set[str] | None = None,
          repair: bool = True) -> Any:
    """The value of ``raw``, or MalformedJson; ``inner_keys`` (when given) receives the keys of every object
    below the outermost one, so that a caller can look for annotations such as ``members@odata.nextLink``
    without walking the data. ``repair=False`` keeps lone surrogate escapes as they are: a file m365audit wrote
    itself reads back to exactly the value it wrote."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"not UTF-8 at byte {exc.start} ({exc.reason})") from None
    check_depth(raw, max_depth)
    hook, built = _pairs_hook(inner_keys)
    try:
        doc = json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant, parse_float=_finite)
    except MalformedJson:
        raise
    except RecursionError:  # the pre-pass makes this unreachable; kept so that no input can crash a caller
        raise MalformedJson(f"JSON nested deeper than {max_depth} levels", TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise MalformedJson(f"not valid JSON: {exc}") from None
    if inner_keys is not None and built:
        inner_keys.update(*(built[:-1] if built[-1] is doc else built))
    return _repaired(doc) if repair and _SURROGATE_ESCAPE.search(raw) else doc


def check_depth(raw: bytes, max_depth: int = MAX_DEPTH) -> None:
    """MalformedJson (TooDeep) when the brackets outside strings nest deeper than ``max_depth``.

    Escaped backslashes and then escaped quotes are removed first (a backslash only occurs inside strings), so
    every quote left opens or closes a string. Only quotes and brackets are kept (one C pass); when no string
    holds a bracket, each string is then an empty pair of quotes and one replace removes them all, otherwise
    every other piece between quotes is outside the strings. Each pass of replace("()") removes exactly one
    level, so at most ``max_depth`` passes run, whatever the input.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    quoted = raw.translate(None, _NOT_STRUCTURE)
    skeleton = quoted.replace(b'""', b"")
    if b'"' in skeleton:  # a string holds a bracket, such as "[EXT] Jan": keep only what lies between strings
        skeleton = b"".join(quoted.split(b'"')[::2])
    brackets = skeleton.translate(_AS_PARENS)
    for _ in range(max_depth):
        if not brackets:
            return
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            raise MalformedJson("not valid JSON: its brackets do not pair up")
        brackets = shorter
    if brackets:
        raise MalformedJson(f"JSON nested deeper than {max_depth} levels", TOO_DEEP)


def _pairs_hook(inner_keys: set[str] | None) -> tuple[Callable[[list[tuple[str, Any]]], dict[str, Any]],
                                                      list[dict[str, Any]]]:
    """An object_pairs_hook that refuses a repeated key; with ``inner_keys``, it also keeps every object it built
    (in the order json builds them: the outermost last), whose keys the caller then unites (one C pass)."""
    built: list[dict[str, Any]] = []
    if inner_keys is None:
        def checked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            obj = dict(pairs)
            if len(obj) != len(pairs):
                raise _duplicate(pairs)
            return obj
        return checked, built

    keep = built.append

    def keeping(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise _duplicate(pairs)
        keep(obj)
        return obj
    return keeping, built


def _duplicate(pairs: list[tuple[str, Any]]) -> MalformedJson:
    seen: set[str] = set()
    twice: set[str] = set()
    for key, _ in pairs:
        (twice if key in seen else seen).add(key)
    names = ", ".join(ascii(k[:60]) for k in sorted(twice)[:3])
    return MalformedJson(f"an object has the key {names} more than once: readers disagree on which value counts",
                         AMBIGUOUS)


def _no_constant(name: str) -> Any:
    raise MalformedJson(f"not valid JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"not valid JSON: the number {text[:40]} is too large for a float")
    return value


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    if isinstance(value, dict):
        fixed = {_repaired(k): _repaired(v) for k, v in value.items()}
        if len(fixed) != len(value):
            raise MalformedJson("two keys of an object are the same once lone surrogates are replaced", AMBIGUOUS)
        return fixed
    return value
