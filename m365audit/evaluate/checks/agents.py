"""Agent and metered-AI checks: the Copilot catalog (and its licence refusal), Teams org apps, cost reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    dicts_of,
    failed,
    items_of,
    lowered,
    param_of,
    passed,
    plural,
    str_list_param,
    str_of,
)
from m365audit.models import CheckOutcome, FindingError, FindingObject, SourceError, Status, Text

# --------------------------------------------------------------------------- the Copilot agent catalog


def _str_field(obj: Obj, name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ShapeError(f"{where}: '{name}' is {type(value).__name__}, expected a string")
    return value


_AUDIENCES = ("none", "some", "all")


def _audience(obj: Obj, name: str, where: str) -> str:
    """availableTo / deployedTo: none, some or all; any other value (a future enum member) cannot be judged."""
    value = _str_field(obj, name, where)
    if value.lower() not in _AUDIENCES:
        raise ShapeError(f"{where}: '{name}' is {value[:60]!r}, expected one of {', '.join(_AUDIENCES)}")
    return value


def _open_packages(inp: CheckInput) -> tuple[int, list[FindingObject]]:
    """(non-Microsoft packages, those not blocked and available or deployed to anyone)."""
    scope, objects = 0, []
    for package in items_of(inp, "copilot_packages"):
        where = f"package {package.get('id')}"
        if lowered(_str_field(package, "type", where)) == "microsoft":
            continue
        scope += 1
        blocked = package.get("isBlocked")
        if not isinstance(blocked, bool):
            raise ShapeError(f"{where}: 'isBlocked' is {type(blocked).__name__}, expected true or false")
        available = _audience(package, "availableTo", where)
        deployed = _audience(package, "deployedTo", where)
        if blocked or (available.lower() == "none" and deployed.lower() == "none"):
            continue
        objects.append(FindingObject(
            id=str(package.get("id")), name=str(package.get("displayName") or ""),
            detail=f"type: {package.get('type')} - available to: {available} - deployed to: {deployed} - "
                   f"publisher: {package.get('publisher')}"))
    return scope, objects


def _is_licence_refusal(error: SourceError, pattern: Mapping[str, Any]) -> bool:
    status, code, text = pattern.get("status"), pattern.get("code"), pattern.get("message_contains")
    if not isinstance(status, int) or not isinstance(code, str) or not isinstance(text, str) or not text:
        raise ShapeError("parameter 'licensing_refusal' needs status (number), code and message_contains (text)")
    return (error.status == status and lowered(error.code) == code.lower()
            and text.lower() in lowered(error.message))


def _refused(error: SourceError, nl: str, en: str) -> CheckOutcome:
    return CheckOutcome(status=Status.ERROR, message=Text(nl=nl, en=en), errors=[FindingError(
        source="copilot_packages", message=error.message, status=error.status, code=error.code,
        request_id=error.request_id, hint=error.hint)])


def copilot_agents_not_deployed(inp: CheckInput) -> CheckOutcome:
    """No non-Microsoft catalog package is open to anyone; a licence refusal passes only behind other rules."""
    refusal = inp.refused.get("copilot_packages")
    if refusal is None:
        scope, objects = _open_packages(inp)
        if objects:
            return failed(
                f"{len(objects)} van {scope} niet-Microsoft-pakketten in de Copilot-catalogus zijn beschikbaar of "
                "uitgerold en niet geblokkeerd.",
                f"{len(objects)} of {scope} non-Microsoft packages in the Copilot catalog are available or deployed "
                "and not blocked.", objects)
        return passed(
            f"Geen van de {scope} niet-Microsoft-pakketten in de Copilot-catalogus is beschikbaar of uitgerold.",
            f"None of the {scope} non-Microsoft packages in the Copilot catalog is available or deployed.")
    if not _is_licence_refusal(refusal, param_of(inp, "licensing_refusal", dict)):
        return _refused(refusal, "De Copilot-catalogus kon niet worden gelezen. Dit is geen 'voldoet'.",
                        "The Copilot catalog could not be read. This is not a pass.")
    if inp.verdict is None:
        raise ShapeError("the engine gave no access to the verdicts of the fallback rules")
    verdicts = {rule_id: inp.verdict(rule_id) for rule_id in str_list_param(inp, "fallback_rules")}
    if not verdicts:
        raise ShapeError("parameter 'fallback_rules' is empty: nothing would stand in for the catalog")
    open_ = [f"{rule_id} ({status.value})" for rule_id, status in verdicts.items() if status is not Status.PASS]
    if open_:
        return _refused(
            refusal,
            "Graph weigert de Copilot-catalogus omdat de tenant geen Agent 365-licentie heeft, en niet alle "
            f"vervangende regels voldoen: {', '.join(open_)}. Agents kunnen dan via licenties of betalen naar "
            "gebruik bij gegevens komen; dit is geen 'voldoet'.",
            "The Copilot catalog was refused because the tenant has no Agent 365 licence, and not every "
            f"fallback rule passes: {', '.join(open_)}. Agents can then reach data through licences or metered "
            "billing; this is not a pass.")
    names = ", ".join(verdicts)
    return passed(
        "De Copilot-catalogus is niet te lezen zonder Agent 365-licentie (weigering zoals verwacht). Zonder die "
        "licentie bereiken agents organisatiegegevens alleen via Copilot-licenties of betalen naar gebruik, en "
        f"die regels voldoen: {names}.",
        "The Copilot catalog cannot be read without an Agent 365 licence (refused as expected). Without that "
        "licence agents reach organisation data only through Copilot licences or metered billing, and those "
        f"rules pass: {names}.")


# --------------------------------------------------------------------------- Teams organisation apps


def _app_ids(app: Obj, where: str) -> set[str]:
    """Every id an approved-apps entry may name: the Teams app id, the manifest id, the Entra app ids."""
    ids = {lowered(app.get("id")), lowered(app.get("externalId"))}
    for definition in dicts_of(app, "appDefinitions", where):
        # v1.0 teamsAppAuthorization names the manifest's Entra app; when Graph leaves it out, the app can only be
        # approved by its Teams or manifest id: a missing match fails the rule, it never passes one
        authorization = definition.get("authorization")
        if isinstance(authorization, dict):
            ids.add(lowered(authorization.get("clientAppId")))
    return ids - {""}


def teams_org_apps_reviewed(inp: CheckInput) -> CheckOutcome:
    """Every app uploaded to the organisation's Teams catalog is on the approved-apps list (review, not a ban)."""
    approved = {a.app_id.lower(): a for a in inp.approved_apps}
    apps = items_of(inp, "teams_org_apps")
    objects = []
    for app in apps:
        where = f"Teams app {app.get('id')}"
        method = str_of(app, "distributionMethod", where)
        if method.lower() != "organization":
            raise ShapeError(f"{where} has distributionMethod '{method}': the organisation filter was not applied")
        hits = [approved[i] for i in _app_ids(app, where) if i in approved]
        current = [a for a in hits if a.review_by >= inp.today]
        if current:
            continue
        why = (f"approval expired: review was due {hits[0].review_by.isoformat()}" if hits
               else "not on the approved-apps list: review whether it is an agent or reaches data")
        objects.append(FindingObject(id=str(app.get("id")), name=str(app.get("displayName") or ""),
                                     detail=f"manifest id {app.get('externalId')}; {why}"))
    if objects:
        return failed(
            f"{plural(len(objects), 'eigen Teams-app is', 'eigen Teams-apps zijn')} niet beoordeeld. Graph kan "
            "niet zeggen of een app een agent is: beoordeel en neem goedgekeurde apps op in approved-apps.",
            f"{plural(len(objects), 'organisation Teams app is', 'organisation Teams apps are')} not reviewed. "
            "Graph cannot tell whether an app is an agent: review them and list approved ones in approved-apps.",
            objects)
    return passed(
        f"Alle {len(apps)} eigen Teams-apps staan op de lijst van goedgekeurde apps.",
        f"All {len(apps)} organisation Teams apps are on the approved-apps list.")


# --------------------------------------------------------------------------- metered AI


def _quantity(row: Obj, where: str) -> float:
    value = row.get("consumedQuantity")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ShapeError(f"{where}: 'consumedQuantity' is {value!r}, expected a number of zero or more")
    return float(value)


def copilot_metered_usage_none(inp: CheckInput) -> CheckOutcome:
    """No metered Copilot consumption (Copilot Credits, Work IQ, ...) on any completed day of the window."""
    meta = inp.meta.get("copilot_metered_usage") or {}
    days, empty = meta.get("days"), meta.get("empty_days")
    if not isinstance(days, list) or not days or not isinstance(empty, list):
        raise ShapeError("the snapshot does not say which days the cost report was asked for")
    used: dict[str, float] = {}
    for i, row in enumerate(items_of(inp, "copilot_metered_usage")):
        where = f"usage record {i + 1}"
        service = str_of(row, "serviceId", where)
        quantity = _quantity(row, where)
        if quantity > 0:
            key = f"{service} ({row.get('unit') or 'unit unknown'})"
            used[key] = used.get(key, 0.0) + quantity
    span = f"{days[0]} .. {days[-1]}"
    if used:
        objects = [FindingObject(id=k.split(" ")[0], name=k, detail=f"{q:g} consumed in the window")
                   for k, q in sorted(used.items())]
        return failed(
            f"Er is AI-verbruik met betalen naar gebruik ({', '.join(used)}) in {span}.",
            f"There was metered AI consumption ({', '.join(used)}) in {span}.", objects)
    if empty and not param_of(inp, "empty_answer_is_zero", bool):
        return CheckOutcome(status=Status.ERROR, message=Text(
            nl=f"Het kostenrapport gaf voor {plural(len(empty), 'dag', 'dagen')} geen regels; de parameter "
               "empty_answer_is_zero staat uit, dus dat telt niet als nul.",
            en=f"The cost report returned no rows for {plural(len(empty), 'day', 'days')}; the parameter "
               "empty_answer_is_zero is off, so that does not count as zero."))
    note_nl = (f" Voor {plural(len(empty), 'dag', 'dagen')} kwamen geen regels terug; dat is als nul gelezen "
               "(niet door Microsoft bevestigd)." if empty else "")
    note_en = (f" For {plural(len(empty), 'day', 'days')} no rows came back; read as zero (not confirmed by "
               "Microsoft)." if empty else "")
    return passed(
        f"Geen verbruik met betalen naar gebruik in {span}.{note_nl} Betalen naar gebruik voor agents in "
        "Copilot Chat staat mogelijk niet in dit rapport: zie copilot-payg-billing-absent.",
        f"No metered consumption in {span}.{note_en} Pay-as-you-go billing for agents in Copilot Chat may not "
        "appear in this report: see copilot-payg-billing-absent.")
