"""Evidence-of-use checks: the Copilot usage report and the Purview audit records."""

from __future__ import annotations

import re
from datetime import date

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    failed,
    items_of,
    lowered,
    outcome,
    param_of,
    passed,
    plural,
    str_list_param,
)
from m365audit.models import CheckOutcome, FindingObject, Status

# --------------------------------------------------------------------------- evidence of use

_HASHED = re.compile(r"^[0-9a-f]{32}$", re.IGNORECASE)


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise ShapeError(f"{where}: {text!r} is not a date") from exc


def _active_columns(row: Obj, where: str) -> dict[str, date]:
    """'Word Copilot' -> date for every non-empty '... Last Activity Date' column within the report period."""
    columns = {k: v for k, v in row.items() if isinstance(k, str) and k.endswith("Last Activity Date")}
    if "Last Activity Date" not in columns:
        raise ShapeError(f"{where} has no 'Last Activity Date' column (activity in any app)")
    refresh, period = row.get("Report Refresh Date"), row.get("Report Period")
    if not isinstance(refresh, str) or not isinstance(period, str):  # the CSV holds text in every cell
        raise ShapeError(f"{where}: 'Report Refresh Date' or 'Report Period' is missing: cannot tell the period")
    if not period.strip().isdigit():
        raise ShapeError(f"{where}: Report Period {period!r} is not a number of days")
    start = date.fromordinal(_date(refresh, where).toordinal() - int(period))
    for column, value in columns.items():
        if not isinstance(value, str):  # the CSV has text in every cell: empty is 'no activity', null is not
            raise ShapeError(f"{where}: {column!r} is {'missing' if value is None else type(value).__name__}, "
                             "not a date or empty")
    active = {}
    for column, value in columns.items():
        if value.strip():
            day = _date(value, f"{where} {column}")
            if day > start:
                active[column[: -len("Last Activity Date")].strip() or "any app"] = day
    return active


def copilot_usage_none(inp: CheckInput) -> CheckOutcome:
    """The Copilot usage report shows no activity within its period; concealed (hashed) names are marked."""
    rows = items_of(inp, "copilot_usage")
    objects = []
    for i, row in enumerate(rows):
        upn = str(row.get("User Principal Name") or "")
        active = _active_columns(row, f"usage report row {i + 1}")
        if not active:
            continue
        concealed = bool(_HASHED.match(upn))
        overall = active.pop("any app", max(active.values()))
        apps = ", ".join(f"{app} {day.isoformat()}" for app, day in sorted(active.items()))
        objects.append(FindingObject(
            id=upn or f"row-{i + 1}",
            name=f"concealed name {upn}" if concealed else str(row.get("Display Name") or upn),
            detail=f"last activity {overall.isoformat()}" + (f" ({apps})" if apps else "")
            + ("; user name concealed (hashed) in the report" if concealed else ""),
        ))
    note_nl = "Het rapport toont alleen gebruikers met een Copilot-licentie."
    note_en = "The report only lists users with a Copilot licence."
    if objects:
        hashed = sum(1 for o in objects if o.name.startswith("concealed name"))
        return failed(
            f"{plural(len(objects), 'gebruiker gebruikte', 'gebruikers gebruikten')} Copilot in de"
            f" rapportperiode ({hashed} met verborgen naam)."
            f" {note_nl}",
            f"{plural(len(objects), 'user', 'users')} used Copilot in the report period ({hashed} with a"
            f" concealed name). {note_en}",
            objects,
        )
    scope = "0 in scope: " if not rows else ""
    return passed(
        f"{scope}Geen Copilot-activiteit in de rapportperiode ({plural(len(rows), 'rij', 'rijen')}). {note_nl}",
        f"{scope}No Copilot activity in the report period ({plural(len(rows), 'row', 'rows')}). {note_en}",
    )


def _not_queried(inp: CheckInput, types: list[str], days: int) -> str:
    """What the rule asks that the recorded query did not cover (record types, a longer window); '' if none."""
    queried = inp.meta.get("audit_ai_interactions") or {}
    if not queried:
        return ""  # no record of the query (a snapshot built inline): judge the records as given
    asked = {str(t).lower() for t in queried.get("record_types") or []}
    missing = [t for t in types if t.lower() not in asked]
    gaps = [f"record types {', '.join(missing)}"] if missing else []
    window = queried.get("lookback_days")
    if not isinstance(window, int) or window < days:
        gaps.append(f"{days} days, the query covered {window if isinstance(window, int) else 'an unknown'} days")
    return "; ".join(gaps)


def _silent_log(inp: CheckInput) -> str:
    """Why the liveness query does not prove the audit log is on ('' when it found sign-in records)."""
    live = (inp.meta.get("audit_ai_interactions") or {}).get("liveness")
    if not isinstance(live, dict):
        return "this run holds no liveness query (sign-in records) beside the AI query"
    found = live.get("records_on_first_page")
    if not isinstance(found, int) or isinstance(found, bool):
        raise ShapeError("the liveness query's record count is missing or not a number")
    if found == 0:
        return (f"no {live.get('record_type')} record at all between {live.get('window_start')} and "
                f"{live.get('window_end')}")
    return ""


def audit_no_ai_interactions(inp: CheckInput) -> CheckOutcome:
    """The audit search over the look-back window holds no record of the AI record types."""
    types = {t.lower(): t for t in str_list_param(inp, "record_types")}
    days = param_of(inp, "lookback_days", int)
    unasked = _not_queried(inp, list(types.values()), days)
    if unasked:
        return outcome(
            Status.ERROR,
            f"De auditzoekopdracht vroeg niet wat deze regel beoordeelt ({unasked}): geen bewijs, geen 'voldoet'. "
            "Voer de audit opnieuw uit met deze parameters.",
            f"The audit query did not ask for what this rule judges ({unasked}): no evidence, no pass. "
            "Run the audit again with these parameters.")
    per_user: dict[str, dict[str, int]] = {}
    last: dict[str, str] = {}
    unexpected: list[str] = []
    for record in items_of(inp, "audit_ai_interactions"):
        kind = record.get("auditLogRecordType") or record.get("operation")
        if kind is not None and lowered(kind) not in types:
            unexpected.append(repr(kind))  # the query asked only for the AI types: this one is not understood
            continue
        who = str(record.get("userPrincipalName") or record.get("userId") or "unknown user")
        label = types.get(lowered(kind), "record without a type")  # the AI-only query returned it: it counts
        counts = per_user.setdefault(who, {})
        counts[label] = counts.get(label, 0) + 1
        last[who] = max(last.get(who, ""), str(record.get("createdDateTime") or ""))
    names = ", ".join(types.values())
    if unexpected and not per_user:  # a record type nobody classified could be a new AI type: no pass
        raise ShapeError(f"{len(unexpected)} audit record(s) of a type the query did not ask for "
                         f"({', '.join(sorted(set(unexpected))[:5])}): cannot tell whether they are AI interactions")
    if not per_user:
        silent = _silent_log(inp)
        if silent:
            return outcome(
                Status.ERROR,
                f"Het auditlogboek lijkt uit te staan of leeg te zijn: {silent}. Zonder bewijs dat het logboek "
                "werkt, zegt het ontbreken van AI-records niets.",
                f"The audit log appears off or empty: {silent}. Without proof that the log works, the absence "
                "of AI records proves nothing.")
        return passed(
            f"Geen {names}-records in de laatste {days} dagen.",
            f"No {names} records in the last {days} days.",
        )
    objects = [
        FindingObject(id=who, name=who, detail=", ".join(f"{n} {t}" for t, n in sorted(c.items()))
                      + (f"; latest {last[who]}" if last[who] else ""))
        for who, c in sorted(per_user.items())
    ]
    total = sum(sum(c.values()) for c in per_user.values())
    return failed(
        f"{plural(total, 'AI-interactie', 'AI-interacties')} van {plural(len(objects), 'gebruiker', 'gebruikers')}"
        f" in de laatste {days} dagen.",
        f"{plural(total, 'AI interaction', 'AI interactions')} by {plural(len(objects), 'user', 'users')}"
        f" in the last {days} days.",
        objects,
    )
