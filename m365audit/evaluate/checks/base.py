"""What every check shares: its input, fail-closed outcomes, and readers that refuse unexpected data."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from m365audit.evidence import ItemsError, PagedItems, first_non_object
from m365audit.models import ApprovedApp, CheckOutcome, FindingObject, Rule, SourceError, Status, Text


@dataclass(frozen=True)
class CheckInput:
    """Everything a check function may look at: no I/O, no clock."""

    rule: Rule
    data: Mapping[str, Any]  # source key -> that source's data (only the rule's sources; all read completely)
    catalogs: Mapping[str, Sequence[Any]]
    params: Mapping[str, Any]  # rule params merged with the user's overrides
    approved_apps: Sequence[ApprovedApp]
    today: date
    meta: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # source key -> what collect noted
    refused: Mapping[str, SourceError] = field(default_factory=dict)  # check.judges_errors_of sources not read
    verdict: Callable[[str], Status] | None = None  # rule id (of check.uses_rules) -> its verdict before waivers


CheckFn = Callable[[CheckInput], CheckOutcome]

Obj = dict[str, Any]


class ShapeError(Exception):
    """Data, a catalog or a parameter is not shaped as the check expects: the rule becomes error."""


# --------------------------------------------------------------------------- outcomes


def outcome(status: Status, nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return CheckOutcome(status=status, message=Text(nl=nl, en=en), objects=list(objects))


def passed(nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return outcome(Status.PASS, nl, en, objects)


def failed(nl: str, en: str, objects: Iterable[FindingObject] = ()) -> CheckOutcome:
    return outcome(Status.FAIL, nl, en, objects)


def fail_closed(fn: CheckFn) -> CheckFn:
    """Wrap a check so that data of an unexpected shape gives error, never pass or fail."""

    def run(inp: CheckInput) -> CheckOutcome:
        try:
            return fn(inp)
        except ShapeError as exc:
            return outcome(
                Status.ERROR,
                f"Onverwachte gegevens, de regel kan niet worden beoordeeld: {exc}",
                f"Unexpected data, the rule cannot be judged: {exc}",
            )
        except ItemsError as exc:
            return outcome(
                Status.ERROR,
                f"De opgeslagen gegevens zijn niet meer leesbaar, de regel kan niet worden beoordeeld: {exc}",
                f"The stored data can no longer be read, the rule cannot be judged: {exc} ({exc.hint})",
            )
        except Exception as exc:  # a fault in the check itself: this rule cannot be judged, the night's evidence stays
            what = f"{type(exc).__name__}: {str(exc)[:200]}"
            return outcome(
                Status.ERROR,
                f"Fout in de controle zelf, de regel kan niet worden beoordeeld ({what}). Meld dit bij de beheerders "
                "van m365audit en bewaar de bewijsmap.",
                f"A fault in the check itself, the rule cannot be judged ({what}). Report it to the m365audit "
                "maintainers and keep the run folder.",
            )

    return functools.wraps(fn)(run)


# --------------------------------------------------------------------------- reading data safely


def items_of(inp: CheckInput, key: str) -> Sequence[Obj]:
    """A source that must be a list of JSON objects: in memory, or on disk (PagedItems, iterate it once)."""
    if key not in inp.data:
        raise ShapeError(f"source '{key}' was not given to the check")
    data = inp.data[key]
    if isinstance(data, PagedItems):
        bad = data.first_non_object  # known from when the pages were written: no second pass over the tenant
    elif isinstance(data, list):
        bad = first_non_object(data)
    else:
        raise ShapeError(f"source '{key}' is {type(data).__name__}, expected a list")
    if bad is not None:
        raise ShapeError(f"item {bad} of source '{key}' is {type(data[bad]).__name__}, expected an object")
    objects: Sequence[Obj] = data
    return objects


def single_of(inp: CheckInput, key: str) -> Obj:
    """A source that must be one JSON object (a Graph singleton such as a policy)."""
    if key not in inp.data:
        raise ShapeError(f"source '{key}' was not given to the check")
    data = inp.data[key]
    if not isinstance(data, dict):
        raise ShapeError(f"source '{key}' is {type(data).__name__}, expected an object")
    return data


def list_of(obj: Obj, field: str, where: str, required: bool = False) -> list[Any]:
    """A list field; missing or null is an empty list unless required."""
    value = obj.get(field)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{where}: '{field}' is {type(value).__name__}, expected a list")
    return value


def dicts_of(obj: Obj, field: str, where: str, required: bool = False) -> list[Obj]:
    values = list_of(obj, field, where, required)
    if not all(isinstance(v, dict) for v in values):
        raise ShapeError(f"{where}: '{field}' holds something other than objects")
    return values


def str_of(obj: Obj, field: str, where: str) -> str:
    """A required string field."""
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise ShapeError(f"{where}: '{field}' is missing or not a string")
    return value


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def guid_of(obj: Obj, field: str, where: str) -> str:
    """A required GUID field, lower-cased: an id that is no GUID identifies nothing and is malformed data."""
    value = str_of(obj, field, where)
    if not _GUID.match(value):
        raise ShapeError(f"{where}: '{field}' is {value[:60]!r}, not a GUID")
    return value.lower()


def catalog_of(inp: CheckInput, name: str) -> list[Obj]:
    if name not in inp.catalogs:
        raise ShapeError(f"catalog '{name}' is not loaded")
    entries = list(inp.catalogs[name])
    if not all(isinstance(e, dict) for e in entries):
        raise ShapeError(f"catalog '{name}' holds entries that are not objects")
    return entries


def catalog_ids(inp: CheckInput, name: str, field: str) -> dict[str, Obj]:
    """Catalog entries keyed by a GUID-like field, lower-cased (Graph GUID casing varies)."""
    return {str_of(e, field, f"catalog '{name}'").lower(): e for e in catalog_of(inp, name) if e.get(field)}


def param_of(inp: CheckInput, name: str, kind: type) -> Any:
    if name not in inp.params:
        raise ShapeError(f"parameter '{name}' is not set")
    value = inp.params[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ShapeError(f"parameter '{name}' is {type(value).__name__}, expected {kind.__name__}")
    return value


def str_list_param(inp: CheckInput, name: str) -> list[str]:
    values = param_of(inp, name, list)
    if not all(isinstance(v, str) for v in values):
        raise ShapeError(f"parameter '{name}' must be a list of strings")
    return list(values)


def lowered(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
