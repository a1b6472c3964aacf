"""Graph's JSON bodies read for the pipeline: strictly parsed, and refused when Graph cut something short.

Every body goes through the evidence package's strict parser (duplicate keys, deep nesting, bad UTF-8 and lone
surrogates, see evidence/strictjson.py); a body it refuses is a GraphError of the source, the exchange's bytes
stay as evidence. Below the top level, Graph marks an ``$expand``ed collection it did not send whole with
``<property>@odata.nextLink``: the audit reads no expanded collection's rest, so any such key is an error naming
the item and the property. A ``<property>@odata.count`` must equal the items of that property.
The top level (``@odata.nextLink``, ``@odata.count`` of a page) is the pager's business (client.GraphSession).
"""

from __future__ import annotations

from typing import Any

from m365audit.errors import GraphError
from m365audit.evidence import DECODES, MalformedJson, loads_page, strict_loads

NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"
COUNT = "@odata.count"
_PAGING = (NEXT_LINK, DELTA_LINK, COUNT)

MALFORMED_HINT = "run again; if it persists, keep the run folder as evidence for support"
CUT_SHORT_HINT = "keep the run folder: the exchanges show what Graph sent"


def parse(raw: bytes, url: str) -> Any:
    """The body's JSON, or a GraphError (MalformedBody, AmbiguousJson, TooDeep, TruncatedExpand, CountMismatch)."""
    return parse_page(raw, url, items=False)[0]


def parse_page(raw: bytes, url: str, items: bool = True) -> tuple[Any, bytes | None]:
    """parse(), and with ``items`` the exact bytes of a page's ``value`` array when a spool may keep them as
    Graph sent them instead of writing the decoded items again (see strictjson.loads_page; None otherwise)."""
    # Without a \u escape every key is in the bytes as it reads, so the annotations can be counted there (C);
    # with one, every key below the top is gathered while decoding instead (slower, and exact either way).
    inner: set[str] | None = set() if b"\\u" in raw else None
    DECODES["graph_bodies"] += 1
    try:
        doc, kept = loads_page(raw, inner_keys=inner) if items else (strict_loads(raw, inner_keys=inner), None)
    except MalformedJson as exc:
        raise GraphError(f"Graph sent a body the audit cannot read: {exc}", code=exc.code, url=url,
                         hint=MALFORMED_HINT) from None
    if inner is not None and any(key.endswith(_PAGING) for key in inner) or inner is None and _annotated(raw, doc):
        check_inner_annotations(doc, url)  # rare: only then is the data walked
    return doc, kept


_PAGING_BYTES = tuple(key.encode() + b'"' for key in _PAGING)


def _annotated(raw: bytes, doc: Any) -> bool:
    """Whether the body may hold a paging annotation below its top level: one of the annotation names closes a
    string more often than the top level's own keys account for (a string value that ends so only costs a walk)."""
    top = list(doc) if isinstance(doc, dict) else []
    return any(raw.count(name) > sum(key.endswith(name[:-1].decode()) for key in top) for name in _PAGING_BYTES)


_NEXT_LINK_KEY = b'"@odata.nextLink":"'


def peek_next_link(raw: bytes) -> str | None:
    """A guess at a page's ``@odata.nextLink`` from its bytes, before they are decoded, so that the next page can
    be asked for at once; None when there is no plain one to see. Only a guess: the pager compares it with the
    link of the decoded page and drops a wrong one (a nested key of that name, an escaped link)."""
    start = raw.find(_NEXT_LINK_KEY)
    if start < 0:
        return None
    start += len(_NEXT_LINK_KEY)
    end = raw.find(b'"', start)
    link = raw[start:end]
    if end < 0 or b"\\" in link or not link.isascii():
        return None
    return link.decode("ascii")


def check_inner_annotations(doc: Any, url: str) -> None:
    """GraphError for a nextLink or deltaLink below the top level, or a count that differs from its items."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        for key, child in value.items():
            if path and key.endswith((NEXT_LINK, DELTA_LINK)):
                raise _cut_short(value, path, key, url)
            if path and key.endswith(COUNT):
                _check_count(value, path, key, child, url)
            if isinstance(child, (dict, list)):
                stack.append((child, f"{path}.{key}" if path else key))


def _check_count(obj: dict[str, Any], path: str, key: str, count: Any, url: str) -> None:
    prop = key[:-len(COUNT)]
    items = obj.get(prop)
    if not isinstance(count, int) or isinstance(count, bool) or not isinstance(items, list) or count != len(items):
        held = len(items) if isinstance(items, list) else "no list of"
        raise GraphError(f"{_where(obj, path)}: {ascii(key[:80])} says {ascii(count)[:40]}, the item holds {held} "
                         f"{ascii(prop[:60])}: Graph did not send the whole collection", code="CountMismatch",
                         url=url, hint=CUT_SHORT_HINT)


def _cut_short(obj: dict[str, Any], path: str, key: str, url: str) -> GraphError:
    prop = key.rsplit("@", 1)[0]
    return GraphError(f"{_where(obj, path)}: property {ascii(prop[:60])} has {ascii(key[:80])}: Graph cut the "
                      "expanded collection short and the audit does not read the rest", code="TruncatedExpand",
                      url=url, hint=CUT_SHORT_HINT)


def _where(obj: dict[str, Any], path: str) -> str:
    """The item by its place in the body and, when it has one, its id (quoted safely: ids come from the tenant)."""
    ident = obj.get("id")
    return f"item {path}" + (f" (id {ascii(ident[:60])})" if isinstance(ident, str) else "")
