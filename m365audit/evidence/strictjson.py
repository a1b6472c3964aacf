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

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # json.decoder.WHITESPACE: what json skips between tokens
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # the C scanner's string reader
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
    raw, text = _text(raw, max_depth)
    hook, built = _pairs_hook(inner_keys)
    doc = _decode(text, hook, max_depth)
    if inner_keys is not None and built:
        inner_keys.update(*(built[:-1] if built[-1] is doc else built))
    return _repaired(doc) if repair and _SURROGATE_ESCAPE.search(raw) else doc


def loads_page(raw: bytes, *, inner_keys: set[str] | None = None) -> tuple[Any, bytes | None]:
    """loads(raw), and the exact bytes of the top-level ``value`` array between its brackets when a stored page
    can hold them as Graph sent them; None when the body is no object with a ``value`` array, or when those
    bytes would read back differently or break a page line (a lone surrogate that loads replaced, a raw line
    break between tokens). The decoded value is the same as loads() gives: the top-level object is walked here
    with json's own C scanner for each of its values, so only the walk knows where ``value`` starts and ends.
    """
    raw, text = _text(raw, MAX_DEPTH)
    hook, built = _pairs_hook(inner_keys)
    try:
        doc, span = _walk_top(text, hook)
    except (ValueError, IndexError, StopIteration):  # anything irregular: the plain decoder decides and words it
        hook, built = _pairs_hook(inner_keys)
        doc, span = _decode(text, hook, MAX_DEPTH), None
    except RecursionError:  # unreachable after the depth pre-pass, as in loads
        raise MalformedJson(f"JSON nested deeper than {MAX_DEPTH} levels", TOO_DEEP) from None
    if inner_keys is not None and built:
        inner_keys.update(*(built[:-1] if built[-1] is doc else built))
    if _SURROGATE_ESCAPE.search(raw):
        return _repaired(doc), None
    if span is None:
        return doc, None
    start, end = span[0] + 1, span[1] - 1  # inside the brackets
    items = raw[start:end] if text.isascii() else text[start:end].encode("utf-8")  # str index = byte index
    return doc, (None if b"\n" in items or b"\r" in items else items)


def _text(raw: bytes, max_depth: int) -> tuple[bytes, str]:
    """The bytes without a UTF-8 BOM and their text; MalformedJson when not UTF-8 or nested too deep."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"not UTF-8 at byte {exc.start} ({exc.reason})") from None
    check_depth(raw, max_depth)
    return raw, text


def _skip(text: str, at: int) -> int:
    """The index of the first character at or after ``at`` that is not JSON whitespace."""
    found = _WHITESPACE.match(text, at)
    return at if found is None else found.end()  # the pattern matches the empty string: never None


def _decode(text: str, hook: Callable[[list[tuple[str, Any]]], dict[str, Any]], max_depth: int) -> Any:
    try:
        return json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant, parse_float=_finite)
    except MalformedJson:
        raise
    except RecursionError:  # the pre-pass makes this unreachable; kept so that no input can crash a caller
        raise MalformedJson(f"JSON nested deeper than {max_depth} levels", TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise MalformedJson(f"not valid JSON: {exc}") from None


def _walk_top(text: str, hook: Callable[[list[tuple[str, Any]]], dict[str, Any]]) -> tuple[Any, tuple[int, int] | None]:
    """A top-level object decoded pair by pair as json.loads would, and where its ``value`` array lies in ``text``.

    Raises ValueError (also for anything merely unusual), IndexError or StopIteration instead of deciding what is
    wrong: the caller then decodes the text the plain way, which gives the error json.loads would give.
    """
    decoder = json.JSONDecoder(object_pairs_hook=hook, parse_constant=_no_constant, parse_float=_finite)
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]
    end = _skip(text, 0)
    if text[end] != "{":
        raise ValueError("not an object")
    end += 1
    pairs: list[tuple[str, Any]] = []
    span: tuple[int, int] | None = None
    while True:
        end = _skip(text, end)
        if text[end] == "}" and not pairs:
            end += 1
            break
        if text[end] != '"':
            raise ValueError("no key")
        key, end = _scanstring(text, end + 1, True)
        end = _skip(text, end)
        if text[end] != ":":
            raise ValueError("no colon")
        start = _skip(text, end + 1)
        value, end = scan(text, start)
        if key == "value" and type(value) is list:
            span = (start, end)
        pairs.append((key, value))
        end = _skip(text, end)
        end += 1
        if text[end - 1] == "}":
            break
        if text[end - 1] != ",":
            raise ValueError("no comma")
    if _skip(text, end) != len(text):
        raise ValueError("extra data")
    return hook(pairs), span


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
