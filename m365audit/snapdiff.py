"""A small recursive diff of Graph JSON: dicts by key, lists of objects by identity, never by list position."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from m365audit.models import JSON, Frozen

VOLATILE_KEYS = frozenset({"Report Refresh Date", "reportRefreshDate", "request-id", "requestId", "request_id",
                           "client-request-id", "x-ms-ags-diagnostic", "Date"})
IDENTITY_KEYS = ("id", "appId", "skuId", "servicePlanId", "settingDefinitionId", "settingInstance.settingDefinitionId",
                 "userPrincipalName", "User Principal Name", "name")
LABEL_KEYS = ("displayName", "userPrincipalName", "name", "User Principal Name", "appId")
VALUE_CAP = 100


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
        return _diff_keyed({k: old[k] for k in keep if k in old}, {k: new[k] for k in keep if k in new},
                           lambda k: f"{path}.{k}", _short)
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
