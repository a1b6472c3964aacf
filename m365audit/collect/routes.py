"""Fetchers of the routes issue 14 added: classifications, Microsoft AI APIs, Teams RSC grants, metered AI."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta, timezone
from typing import Any

from m365audit.collect.fetching import RESOURCE_APPS, FetchContext, Fetched, GraphReader, Source, SourceFailure

WORK_IQ_APP_ID = "fdcc1f02-fc51-4226-8753-f668596af7f7"
MCP_ENTERPRISE_APP_ID = "e8c77dc2-69b3-43f4-bc51-3213c9d915b4"
MICROSOFT_AI_APIS: dict[str, str] = {
    WORK_IQ_APP_ID: "Work IQ API",  # Learn: work-iq/enable-work-iq (the tenant creates this SP itself)
    MCP_ENTERPRISE_APP_ID: "Microsoft MCP Server for Enterprise",  # Learn: graph/mcp-server/get-started
}
MICROSOFT_AI_APIS_URL = (
    "/v1.0/servicePrincipals?$filter=appId in ('" + "','".join(MICROSOFT_AI_APIS) + "')"
    "&$select=id,appId,displayName,accountEnabled&$expand=appRoleAssignedTo"
)
"""One request: the two service principals (absent = never enabled) with their app-role assignments.

$expand returns at most 20 assignments per principal; the rule fails on any, so a cut-off list can never turn
a fail into a pass (zero shown means zero exist).
"""

LIVENESS_RECORD_TYPE = "AzureActiveDirectoryStsLogon"
"""Sign-ins: a record type every tenant in use produces every day (graph v1.0 auditLogRecordType 15)."""
LIVENESS_WINDOW_HOURS = 24
LIVENESS_LAG_HOURS = 1
"""The liveness window ends an hour before now: audit ingestion lags behind."""
LIVENESS_KEEP = 5
"""How many sign-in records (id, time, type only) the snapshot keeps; the evidence keeps the one page read."""

TEAMS_URL = "/v1.0/teams?$select=id,displayName"


async def fetch_permission_classifications(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """delegatedPermissionClassifications of Graph, SharePoint and Exchange, each item tagged with its API."""
    pages = await asyncio.gather(*(graph.get_collection(
        f"/v1.0/servicePrincipals(appId='{app}')/delegatedPermissionClassifications") for app in RESOURCE_APPS))
    return Fetched([{**item, "resourceAppId": app} if isinstance(item, dict) else item
                     for app, page in zip(RESOURCE_APPS, pages, strict=True) for item in page])


async def fetch_microsoft_ai_apis(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """The Work IQ API and MCP Server for Enterprise principals in this tenant, with app-role assignments."""
    found = await graph.get_collection(source.url)
    for sp in found:
        if not isinstance(sp, dict) or str(sp.get("appId", "")).lower() not in MICROSOFT_AI_APIS:
            raise SourceFailure("the answer holds a service principal that was not asked for",
                           hint="keep the run folder: the exchange shows what Graph sent")
    return Fetched(found)


async def fetch_teams_rsc_grants(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """permissionGrants of every team: one request per team, refused above ctx.teams_max (never a partial read)."""
    teams = deps["teams"]
    count = len(teams)
    if count > ctx.teams_max:
        raise SourceFailure(f"the tenant has {count} teams, more than max_teams ({ctx.teams_max}): not read, "
                       "one request per team would take too long",
                       hint="raise max_teams of teams-rsc-grants-none in params.yaml, or switch the source off "
                            "there (collect: false) and check by hand")
    ids = []
    for team in teams:
        if not isinstance(team, dict) or not isinstance(team.get("id"), str) or not team["id"]:
            raise SourceFailure("a team in the list has no id")
        ids.append((team["id"], str(team.get("displayName") or "")))
    pages = await asyncio.gather(*(graph.get_collection(f"/v1.0/teams/{tid}/permissionGrants") for tid, _ in ids))
    grants = [{**g, "teamId": tid, "teamName": name} if isinstance(g, dict) else g
              for (tid, name), page in zip(ids, pages, strict=True) for g in page]
    return Fetched(grants, {"teams": count, "requests": count + 1})


def metered_days(ctx: FetchContext) -> list[date]:
    """The completed UTC days of the look-back window, oldest first (today is rejected by the API)."""
    today = ctx.now.astimezone(timezone.utc).date()
    return [today - timedelta(days=n) for n in range(ctx.audit_lookback_days, 0, -1)]


def metered_url(day: date) -> str:
    """serviceUsageRecords of one completed UTC day (endDate exclusive: UNCONFIRMED, see docs/rules.md)."""
    return (f"/beta/copilot/costManagement/usageReports/serviceUsageRecords?startDate={day.isoformat()}"
            f"&endDate={(day + timedelta(days=1)).isoformat()}")


async def fetch_metered_usage(
    graph: GraphReader, source: Source, ctx: FetchContext, deps: dict[str, Any]
) -> Fetched:
    """Copilot cost-management service usage, one request per completed day; the days asked are in meta."""
    days = metered_days(ctx)
    pages = await asyncio.gather(*(graph.get_collection(metered_url(day)) for day in days))
    rows = [row for page in pages for row in page]  # no day on the rows: identical nights give identical data
    return Fetched(rows, {"days": [d.isoformat() for d in days], "empty_days":
                           [d.isoformat() for d, page in zip(days, pages, strict=True) if not page]})


def liveness_body(ctx: FetchContext) -> dict[str, Any]:
    """The small sign-in query that proves the audit log is on: a 24-hour window ending an hour ago."""
    end = ctx.now.astimezone(timezone.utc).replace(microsecond=0) - timedelta(hours=LIVENESS_LAG_HOURS)
    start = end - timedelta(hours=LIVENESS_WINDOW_HOURS)
    return {"@odata.type": "#microsoft.graph.security.auditLogQuery",
            "displayName": f"m365audit-liveness-{end:%Y%m%dT%H%M%SZ}",
            "filterStartDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "filterEndDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "recordTypeFilters": [LIVENESS_RECORD_TYPE]}


LIVENESS_MAX_EMPTY_PAGES = 10
"""Graph may send empty pages with a next link; more than this many in a row is inconclusive, never 'empty'."""


async def first_records(graph: GraphReader, url: str) -> list[Any]:
    """The first page of records that holds any, following only empty pages (a legal Graph quirk); [] at the end."""
    empty = 0
    async for page in graph.pages(url):
        if page:
            return page  # stop here: the rest of the day's sign-ins is not read and not kept
        empty += 1
        if empty >= LIVENESS_MAX_EMPTY_PAGES:
            raise SourceFailure(f"the liveness query's first {empty} pages were empty but more were announced",
                                hint="run the audit again; an inconclusive answer is not 'the log is off'")
    return []


def liveness_meta(query_id: str, body: dict[str, Any], records: list[Any]) -> dict[str, Any]:
    """What the snapshot keeps of the liveness query: its window and at most a few record ids, never people."""
    kept = [{k: r.get(k) for k in ("id", "createdDateTime", "auditLogRecordType")}
            for r in records[:LIVENESS_KEEP] if isinstance(r, dict)]
    return {"query_id": query_id, "record_type": LIVENESS_RECORD_TYPE,
            "window_start": body["filterStartDateTime"], "window_end": body["filterEndDateTime"],
            "records_on_first_page": len(records), "sample": kept}
