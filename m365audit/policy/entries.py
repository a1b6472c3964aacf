"""One policy file's entries: its envelope checked, then each item validated alone, so one bad entry hides no other."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import ValidationError

from m365audit.policy.catalog_entries import CATALOG_ENTRIES
from m365audit.policy.messages import (
    DATE_FIELDS,
    EXAMPLES,
    LIST_ITEMS,
    FileReport,
    date_message,
    did_you_mean,
    error_text,
)
from m365audit.policy.yamlread import describe

# --------------------------------------------------------------------------- one file


def _envelope(report: FileReport, key: str, kind: type) -> Any:
    """The file's one top-level key, checked: a mapping with exactly that key, holding a list or mapping."""
    doc, example = report.doc, EXAMPLES[key]
    if doc is None:
        report.add((), f"the file is empty; it should hold `{example}`")
        return None
    if not isinstance(doc, dict):
        report.add((), f"expected a mapping with the key '{key}' (`{example}`), found {describe(doc)}")
        return None
    for other in doc:
        if other != key:
            report.add((other,), f"unknown key '{other}'" + did_you_mean(other, [key])
                       + f"; this file holds only '{key}'", where="")
    if key not in doc:
        if not any(k != key for k in doc):
            report.add((), f"missing key '{key}'")
        return None
    value = doc[key]
    if value is None:
        report.add((key,), f"'{key}' is empty; write `{example}`" + (" for none" if key != "rules" else ""),
                   where="")
        return None
    if not isinstance(value, kind):
        report.add((key,), f"expected {'a list' if kind is list else 'a mapping'}, got {describe(value)}", where=key)
        return None
    return value


TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "waivers": ("reason", "approved_by"), "attestations": ("statement", "attested_by"),
    "approved_apps": ("name", "reason")}


def _raw_errors(kind: str, item: Any) -> list[dict[str, Any]]:
    """Checks on the item as written: dates as YYYY-MM-DD (a bare number must not become a Unix timestamp),
    and no blank reason or name (they are the audit trail)."""
    if not isinstance(item, dict):
        return []
    out = []
    for name in DATE_FIELDS.get(kind, ()):
        value = item.get(name)
        if name in item and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
                                 and _valid_date(value)):
            out.append({"loc": (name,), "type": "date_strict", "msg": date_message(value), "input": value})
    for name in TEXT_FIELDS.get(kind, ()):
        value = item.get(name)
        if isinstance(value, str) and not value.strip():
            out.append({"loc": (name,), "type": "blank", "msg": "is empty; say who and why: it is the audit trail",
                        "input": value})
    return out


def _valid_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def read_items(report: FileReport, key: str) -> dict[int, Any]:
    """Each list item of a rules, waivers, attestations or approved-apps file, validated on its own."""
    items = _envelope(report, key, list)
    out: dict[int, Any] = {}
    if items is None:
        return out
    model = LIST_ITEMS[key]
    for i, item in enumerate(items):
        strict = _raw_errors(key, item)
        for err in strict:
            at, message = error_text(err, model, err["loc"])
            report.add((key, i, *at), message)
        try:
            parsed = model.model_validate(item)
        except ValidationError as exc:
            report.pydantic(exc, (key, i), model, skip={e["loc"] for e in strict})
            continue
        if not strict:
            out[i] = parsed
    return out


def read_catalogs(report: FileReport) -> dict[str, list[dict[str, Any]]]:
    catalogs = _envelope(report, "catalogs", dict)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, entries in (catalogs or {}).items():
        if not isinstance(entries, list):
            report.add(("catalogs", name), f"expected a list of entries, got {describe(entries)}", where="")
            continue
        good = True
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict):
                report.add(("catalogs", name, n), f"entry {n}: expected a mapping, got {describe(entry)}", where="")
                good = False
            elif not str(entry.get("source") or "").strip():
                report.add(("catalogs", name, n), f"entry {n}: every entry needs a 'source' note (where the fact "
                                                  "comes from)", where="")
                good = False
            elif name in CATALOG_ENTRIES:
                try:
                    CATALOG_ENTRIES[name].model_validate(entry)
                except ValidationError as exc:
                    report.pydantic(exc, ("catalogs", name, n), CATALOG_ENTRIES[name])
                    good = False
        if good:
            out[str(name)] = entries
    return out


def read_params(report: FileReport) -> dict[str, dict[str, Any]]:
    params = _envelope(report, "params", dict)
    out: dict[str, dict[str, Any]] = {}
    for rule_id, values in (params or {}).items():
        if not isinstance(values, dict):
            report.add(("params", rule_id), f"expected a mapping of parameter: value, got {describe(values)}",
                       where="")
        else:
            out[str(rule_id)] = dict(values)
    return out
