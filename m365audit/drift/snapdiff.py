"""A small recursive diff of Graph JSON: dicts by key, lists of objects by identity, never by list position."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import zip_longest
from operator import itemgetter
from typing import Any, Final, Literal

from m365audit.models import JSON, Frozen

VOLATILE_KEYS = frozenset({"Report Refresh Date", "reportRefreshDate", "request-id", "requestId", "request_id",
                           "client-request-id", "x-ms-ags-diagnostic", "Date"})
IDENTITY_KEYS = ("id", "appId", "skuId", "servicePlanId", "settingDefinitionId", "settingInstance.settingDefinitionId",
                 "userPrincipalName", "User Principal Name", "name")
LABEL_KEYS = ("displayName", "userPrincipalName", "name", "User Principal Name", "appId")
VALUE_CAP = 100
IDS_PER_BUCKET = 256
"""diff_items proves ids unique by their 64-bit hashes, in buckets of about this many (one small set at a time)."""
_MISSING: Final = object()


class PathChange(Frozen):
    """One leaf of the data diff: path keyed by item id, never by list position."""

    path: str
    change: Literal["added", "removed", "changed"]
    old: str | None = None
    new: str | None = None


def _volatile(key: str) -> bool:
    return key.startswith("@odata.") or "@odata." in key or key in VOLATILE_KEYS


def normalise(value: JSON) -> JSON:
    """Drop what Graph changes between nights without the tenant changing: @odata.* keys, request ids, refresh dates."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def diff(old: JSON, new: JSON, path: str) -> list[PathChange]:
    """A small recursive diff: dicts by key, lists of objects by identity key, other lists as multisets.

    Volatile keys (see normalise) are skipped; equal subtrees are skipped at C speed before any recursion.
    """
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        keep = [k for k in set(old) | set(new) if not _volatile(k)]
        a, b = {k: old[k] for k in keep if k in old}, {k: new[k] for k in keep if k in new}
        return [] if a == b else _diff_keyed(a, b, lambda k: f"{path}.{k}", _short)  # often: only an @odata.etag
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    if old != new:
        return [PathChange(path=path, change="changed", old=_short(old), new=_short(new))]
    return []


def _identity(old: list[Any], new: list[Any]) -> str | None:
    """The first key that every object on both sides carries, unique within each side.

    An "id" that is only the position ("0", "1", … as Intune numbers a policy's settings) is no identity.
    """
    if not old + new or not all(isinstance(i, dict) for i in old + new):
        return None
    for key in IDENTITY_KEYS:
        if key == "id" and _positional(old) and _positional(new):
            continue
        if all(_unique_scalars([_get(i, key) for i in side]) for side in (old, new)):
            return key
    return None


def _get(item: dict[str, Any], key: str) -> Any:
    """item[key], where a dotted key reads one level down (settingInstance.settingDefinitionId)."""
    head, _, rest = key.partition(".")
    value = item.get(head)
    return value.get(rest) if rest and isinstance(value, dict) else None if rest else value


def _positional(items: list[dict[str, Any]]) -> bool:
    return [str(i.get("id")) for i in items] == [str(n) for n in range(len(items))]


def _unique_scalars(values: list[Any]) -> bool:
    return (all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
            and len(set(values)) == len(values))


def _diff_lists(old: list[Any], new: list[Any], path: str) -> list[PathChange]:
    key = _identity(old, new)
    if key is None:
        return _diff_multiset(old, new, path)
    positional = key != "id" and _positional(old) and _positional(new)
    a = {str(_get(i, key)): _without_id(i) if positional else i for i in old}
    b = {str(_get(i, key)): _without_id(i) if positional else i for i in new}
    return _diff_keyed(a, b, lambda ident: f"{path}[{key}={ident}]", _label)


def _diff_keyed(old: dict[str, Any], new: dict[str, Any], where: Callable[[str], str],
                label: Callable[[Any], str]) -> list[PathChange]:
    """Entries added, removed, or changed inside, for two mappings keyed alike (object keys or item ids)."""
    out: list[PathChange] = []
    for key in sorted(set(old) | set(new)):
        sub = where(key)
        if key not in old:
            out.append(PathChange(path=sub, change="added", new=label(new[key])))
        elif key not in new:
            out.append(PathChange(path=sub, change="removed", old=label(old[key])))
        else:
            out += diff(old[key], new[key], sub)
    return out


def _without_id(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "id"}


def _canonical(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _diff_multiset(old: list[Any], new: list[Any], path: str) -> list[PathChange]:
    """Lists without identities compare as multisets: reordering is never drift."""
    a, b = Counter(_canonical(normalise(v)) for v in old), Counter(_canonical(normalise(v)) for v in new)
    gone = sorted((a - b).elements())
    came = sorted((b - a).elements())
    return ([PathChange(path=f"{path}[]", change="removed", old=_short(json.loads(v))) for v in gone]
            + [PathChange(path=f"{path}[]", change="added", new=_short(json.loads(v))) for v in came])


def _label(item: dict[str, Any]) -> str:
    for key in LABEL_KEYS:
        if isinstance(item.get(key), str) and item[key]:
            return _cap(str(item[key]))
    return _short(item)


def _short(value: JSON) -> str:
    return _cap(value if isinstance(value, str) else _canonical(normalise(value)))


def _cap(text: str) -> str:
    return text if len(text) <= VALUE_CAP else text[:VALUE_CAP - 1] + "…"


# --------------------------------------------------------------------------- streamed: collections on disk


class _NotById(Exception):
    """The collections are not keyed by a unique "id" after all: diff them as lists instead."""


def diff_items(old: Sequence[Any], new: Sequence[Any], path: str) -> list[PathChange]:
    """Exactly diff(list(old), list(new), path), holding only the items that changed or moved, not the collections.

    Both sides are read once, in step. Items with the same id at the same place are compared and let go; others
    wait in a pool per side until their partner turns up. Left over at the end: removed (old) and added (new).
    When the items turn out not to be keyed by "id" (see _identity), both sides are read again as lists.
    """
    try:
        return _stream_by_id(old, new, path)
    except _NotById:
        return diff(list(old), list(new), path)


class _Side:
    """One side of a streamed diff: the items waiting for their partner, and what proves its ids unique."""

    def __init__(self, size: int) -> None:
        self.pool: dict[str, Any] = {}
        self.buckets = [array("Q") for _ in range(size // IDS_PER_BUCKET + 1)]
        self.count = 0
        self.positional = True

    def key(self, item: Any) -> str:
        """The item's id as _diff_lists keys it (str), noted for the uniqueness and position checks."""
        ident = item.get("id") if isinstance(item, dict) else None
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            raise _NotById
        key = str(ident)
        digest = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        self.buckets[digest % len(self.buckets)].append(digest)
        self.positional = self.positional and key == str(self.count)
        self.count += 1
        return key

    def meet(self, key: str, item: Any, other: _Side) -> Any:
        """The partner of item taken from the other side's pool, or _MISSING after parking item in this one."""
        partner = other.pool.pop(key, _MISSING)
        if partner is _MISSING:
            if key in self.pool:
                raise _NotById  # a duplicate id
            self.pool[key] = item
        return partner

    def unique(self) -> bool:
        """No two ids of this side alike (a hash collision only costs the fallback)."""
        return all(len(set(bucket)) == len(bucket) for bucket in self.buckets)


def _stream_by_id(old: Sequence[Any], new: Sequence[Any], path: str) -> list[PathChange]:
    """The changes per id (in the order _diff_keyed gives them), or _NotById."""
    was, now = _Side(len(old)), _Side(len(new))
    found: list[tuple[str, list[PathChange]]] = []

    def pair(key: str, a: Any, b: Any) -> None:
        if a != b and (changes := diff(a, b, f"{path}[id={key}]")):
            found.append((key, changes))

    for a, b in zip_longest(old, new, fillvalue=_MISSING):
        ka = None if a is _MISSING else was.key(a)
        kb = None if b is _MISSING else now.key(b)
        if ka is not None and ka == kb:
            pair(ka, a, b)
            continue
        if ka is not None and (partner := was.meet(ka, a, now)) is not _MISSING:
            pair(ka, a, partner)
        if kb is not None and (partner := now.meet(kb, b, was)) is not _MISSING:
            pair(kb, partner, b)
    if (was.positional and now.positional) or not (was.unique() and now.unique()):
        raise _NotById
    found += [(k, [PathChange(path=f"{path}[id={k}]", change="removed", old=_label(v))]) for k, v in was.pool.items()]
    found += [(k, [PathChange(path=f"{path}[id={k}]", change="added", new=_label(v))]) for k, v in now.pool.items()]
    found.sort(key=itemgetter(0))
    return [change for _, changes in found for change in changes]


def object_tally(key: str, paths: list[PathChange]) -> Counter[str]:
    """Objects added, removed and changed in a source, from its path changes.

    A collection's item that appears or disappears counts once as added or removed; an item with changes
    inside (a licence added to a user) counts once as changed, however many of its paths changed. A source
    that is one object (a policy) counts each changed property.
    """
    tally: Counter[str] = Counter()
    changed_items: set[str] = set()
    for change in paths:
        rest = change.path[len(key):] if change.path.startswith(key) else change.path
        if not rest.startswith("[") or "]" not in rest:
            tally[change.change] += 1  # a property of a source that is one object
            continue
        item = rest[:rest.index("]") + 1]
        if rest == item and change.change in ("added", "removed"):
            tally[change.change] += 1
        else:
            changed_items.add(item)
    tally["changed"] += len(changed_items)
    return tally
