"""Side-route checks: single users' consents, Microsoft's AI APIs, Teams RSC grants, AI app sign-ins."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from m365audit.evaluate.checks.apps import (
    ai_app_label,
    client_of,
    org_data_accesses,
    service_principals_by_id,
    sp_finding,
)
from m365audit.evaluate.checks.base import (
    CheckInput,
    Obj,
    ShapeError,
    catalog_of,
    dicts_of,
    failed,
    guid_of,
    items_of,
    lowered,
    param_of,
    passed,
    plural,
    str_of,
)
from m365audit.evaluate.checks.firstparty import microsoft_owned
from m365audit.models import ApprovedApp, CheckOutcome, FindingObject


def _approved(inp: CheckInput) -> dict[str, ApprovedApp]:
    return {a.app_id.lower(): a for a in inp.approved_apps}


def _current(approval: ApprovedApp | None, today: date) -> bool:
    return approval is not None and approval.review_by >= today


# --------------------------------------------------------------------------- one user's consent


def apps_user_consent_org_data_approved(inp: CheckInput) -> CheckOutcome:
    """Every non-Microsoft app holding a single user's consent to organisation data is approved."""
    sps = service_principals_by_id(inp)
    microsoft = microsoft_owned(inp)
    approved = _approved(inp)
    by_client: dict[str, list[Any]] = {}
    for access in org_data_accesses(inp):
        client_of(sps, access.client)  # every grant and assignment must belong to a known service principal
        if access.kind == "user":
            by_client.setdefault(access.client, []).append(access)
    objects, ok = [], 0
    for client, accesses in sorted(by_client.items()):
        sp = client_of(sps, client)
        if microsoft(sp):
            continue
        approval = approved.get(lowered(sp.get("appId")))
        if _current(approval, inp.today):
            ok += 1
            continue
        why = (f"; approval expired: review was due {approval.review_by.isoformat()}" if approval
               else "; not on the approved-apps list")
        objects.append(sp_finding(sp, accesses, why))
    if objects:
        return failed(
            f"{plural(len(objects), 'app van buiten Microsoft heeft', 'apps van buiten Microsoft hebben')} met "
            "toestemming van losse gebruikers toegang tot organisatiegegevens, zonder goedkeuring.",
            f"{plural(len(objects), 'non-Microsoft app holds', 'non-Microsoft apps hold')} single users' consent "
            "to organisation data without approval.", objects)
    return passed(
        f"{ok} goedgekeurde app(s) met toestemming van losse gebruikers; geen andere."
        if ok else "0 in scope: geen app van buiten Microsoft heeft toestemming van een losse gebruiker.",
        f"{ok} approved app(s) with single users' consent; no others."
        if ok else "0 in scope: no non-Microsoft app holds a single user's consent to organisation data.")


# --------------------------------------------------------------------------- Work IQ API and MCP Server


def microsoft_ai_apis_not_granted(inp: CheckInput) -> CheckOutcome:
    """No delegated grant and no app-role assignment on the Work IQ API or Microsoft MCP Server for Enterprise."""
    apis = items_of(inp, "microsoft_ai_apis")
    sps = service_principals_by_id(inp)
    by_id = {str_of(api, "id", "Microsoft AI API").lower(): api for api in apis}
    objects = []
    for api in apis:
        name = str(api.get("displayName") or api.get("appId"))
        if "appRoleAssignedTo" not in api:
            raise ShapeError(f"{name}: the answer has no appRoleAssignedTo (the $expand was not applied)")
        for assignment in dicts_of(api, "appRoleAssignedTo", name):
            objects.append(FindingObject(
                id=str(assignment.get("id")), name=str(assignment.get("principalDisplayName") or ""),
                detail=f"application role {assignment.get('appRoleId')} on '{name}' "
                       f"({assignment.get('principalType')} {assignment.get('principalId')})"))
    for grant in items_of(inp, "delegated_grants"):
        where = f"delegated grant {grant.get('id')}"
        resource_id = guid_of(grant, "resourceId", where)
        resource = by_id.get(resource_id)
        if resource is None:
            if resource_id not in sps:  # a grant whose API cannot be identified cannot be proven harmless
                raise ShapeError(f"{where} is on resource {resource_id}, which is not among the service "
                                 "principals: cannot tell which API it opens")
            continue
        client = sps.get(lowered(grant.get("clientId")))
        who = "all users" if grant.get("consentType") == "AllPrincipals" else f"user {grant.get('principalId')}"
        objects.append(FindingObject(
            id=str(grant.get("id")), name=str((client or {}).get("displayName") or grant.get("clientId")),
            detail=f"delegated {grant.get('scope')} on '{resource.get('displayName') or resource.get('appId')}', "
                   f"for {who}"))
    if objects:
        return failed(
            f"{plural(len(objects), 'toekenning', 'toekenningen')} op de Work IQ API of de Microsoft MCP Server "
            "for Enterprise.",
            f"{plural(len(objects), 'grant', 'grants')} on the Work IQ API or the Microsoft MCP Server for "
            "Enterprise.", objects)
    if not apis:
        return passed("De Work IQ API en de Microsoft MCP Server for Enterprise zijn niet in de tenant ingeschakeld.",
                      "The Work IQ API and the Microsoft MCP Server for Enterprise are not enabled in the tenant.")
    names = ", ".join(str(a.get("displayName") or a.get("appId")) for a in apis)
    return passed(f"{names} staat in de tenant, maar geen app heeft er rechten op.",
                  f"{names} exists in the tenant, but no app holds a permission on it.")


# --------------------------------------------------------------------------- Teams RSC grants


def _client_ids(grant: Obj, where: str) -> set[str]:
    ids = {lowered(grant.get("clientAppId")), lowered(grant.get("clientId"))} - {""}
    if not ids:
        raise ShapeError(f"{where} names no client app (clientAppId and clientId are empty)")
    return ids  # Learn's table describes the two the other way round: match both


def _ai_clients(inp: CheckInput) -> dict[str, str]:
    """appId (lower-cased) -> AI label, for every service principal the AI-app catalog recognises."""
    microsoft = microsoft_owned(inp)
    catalog = catalog_of(inp, "ai-apps")
    found = {lowered(e.get("app_id")): f"{e.get('name')} ({e.get('vendor')})" for e in catalog if e.get("app_id")}
    for sp in service_principals_by_id(inp).values():
        label = ai_app_label(sp, catalog, microsoft)
        if label:
            found[lowered(sp.get("appId"))] = label
            found[lowered(sp.get("id"))] = label
    return found


def teams_rsc_grants_none(inp: CheckInput) -> CheckOutcome:
    """No team has granted an AI app any RSC permission, or an unapproved app a transcript/chat/file one."""
    sensitive = {str_of(e, "value", "rsc-sensitive-permissions").lower()
                 for e in catalog_of(inp, "rsc-sensitive-permissions")}
    ai = _ai_clients(inp)
    approved = _approved(inp)
    grants = items_of(inp, "teams_rsc_grants")
    objects = []
    for grant in grants:
        where = f"RSC grant {grant.get('id')} in team {grant.get('teamName') or grant.get('teamId')}"
        permission = str_of(grant, "permission", where)
        clients = _client_ids(grant, where)
        label = next((ai[c] for c in clients if c in ai), None)
        ok = any(_current(approved.get(c), inp.today) for c in clients)
        if label is None and (ok or permission.lower() not in sensitive):
            continue
        why = f"AI app: {label}" if label else "reaches transcripts, messages or files; app not approved"
        objects.append(FindingObject(
            id=str(grant.get("id")), name=f"{grant.get('teamName')}: {permission}",
            detail=f"app {grant.get('clientAppId')}; {grant.get('permissionType')}; {why}"))
    teams = (inp.meta.get("teams_rsc_grants") or {}).get("teams")
    counted = f" in {teams} teams" if isinstance(teams, int) else ""
    if objects:
        return failed(
            f"{plural(len(objects), 'RSC-toestemming', 'RSC-toestemmingen')} in teams gaan naar AI-apps of geven "
            "een niet-goedgekeurde app transcripties, berichten of bestanden.",
            f"{plural(len(objects), 'RSC grant', 'RSC grants')} in teams go to AI apps or give an unapproved app "
            "transcripts, messages or files.", objects)
    return passed(
        f"{plural(len(grants), 'RSC-toestemming', 'RSC-toestemmingen')}{counted}, geen "
        "naar AI-apps of met gevoelige rechten voor niet-goedgekeurde apps. Chats zijn niet gelezen (handmatig).",
        f"{plural(len(grants), 'RSC grant', 'RSC grants')}{counted}, none to AI apps or with sensitive "
        "permissions for unapproved apps. Chats were not read (manual).")


# --------------------------------------------------------------------------- sign-ins of AI apps

_ACTIVITIES = ("lastSignInActivity", "delegatedClientSignInActivity", "delegatedResourceSignInActivity",
               "applicationAuthenticationClientSignInActivity", "applicationAuthenticationResourceSignInActivity")


def _when(text: object, where: str) -> datetime:
    if not isinstance(text, str):
        raise ShapeError(f"{where}: lastSignInDateTime is {type(text).__name__}, expected a date-time")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ShapeError(f"{where}: {text!r} is not an ISO 8601 date-time") from exc


def _last_sign_in(activity: Obj, where: str) -> datetime | None:
    times = []
    for field in _ACTIVITIES:
        value = activity.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: '{field}' is {type(value).__name__}, expected an object")
        if value.get("lastSignInDateTime") is not None:
            times.append(_when(value["lastSignInDateTime"], f"{where} {field}"))
    return max(times) if times else None


def ai_apps_no_sign_ins(inp: CheckInput) -> CheckOutcome:
    """No service principal the AI-app catalog recognises signed in during the look-back window."""
    days = param_of(inp, "lookback_days", int)
    since = inp.today - timedelta(days=days)
    ai = _ai_clients(inp)
    objects, seen = [], 0
    for activity in items_of(inp, "sp_sign_in_activity"):
        app_id = guid_of(activity, "appId", f"sign-in activity {activity.get('id')}")
        if app_id not in ai:
            continue
        seen += 1
        last = _last_sign_in(activity, f"sign-in activity of {app_id}")
        if last is not None and last.date() >= since:
            objects.append(FindingObject(id=app_id, name=ai[app_id], detail=f"last sign-in {last.isoformat()}"))
    if objects:
        return failed(
            f"{plural(len(objects), 'AI-app meldde', 'AI-apps meldden')} zich aan in de laatste {days} dagen.",
            f"{plural(len(objects), 'AI app', 'AI apps')} signed in during the last {days} days.", objects)
    return passed(
        f"Geen herkende AI-app meldde zich aan sinds {since.isoformat()} ({seen} met aanmeldgegevens).",
        f"No recognised AI app signed in since {since.isoformat()} ({seen} with sign-in data).")
