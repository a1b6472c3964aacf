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
from m365audit.evidence import DECODES, MalformedJson, strict_loads

NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"
COUNT = "@odata.count"
_PAGING = (NEXT_LINK, DELTA_LINK, COUNT)

MALFORMED_HINT = "run again; if it persists, keep the run folder as evidence for support"
CUT_SHORT_HINT = "keep the run folder: the exchanges show what Graph sent"


def parse(raw: bytes, url: str) -> Any:
    """The body's JSON, or a GraphError (MalformedBody, AmbiguousJson, TooDeep, TruncatedExpand, CountMismatch)."""
    inner: set[str] = set()
    DECODES["graph_bodies"] += 1
    try:
        doc = strict_loads(raw, inner_keys=inner)
    except MalformedJson as exc:
        raise GraphError(f"Graph sent a body the audit cannot read: {exc}", code=exc.code, url=url,
                         hint=MALFORMED_HINT) from None
    if any(key.endswith(_PAGING) for key in inner):  # rare: only then is the data walked
        check_inner_annotations(doc, url)
    return doc


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
