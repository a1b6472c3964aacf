"""Run the selected sources concurrently and record each as ok with its data or error with the reason."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from m365audit import __version__
from m365audit.collect.fetching import FetchContext, Fetched, SourceFailure
from m365audit.collect.sources import SOURCES, permission_hint, resolve_order
from m365audit.errors import GraphError
from m365audit.evidence import ItemsWriter, PageObserver, is_list
from m365audit.graph import GraphSession, current_source
from m365audit.models import Snapshot, SourceError, SourceResult

log = logging.getLogger(__name__)

PageFacts = Mapping[str, Mapping[str, Callable[[Path], PageObserver]]]
"""Source key -> fact name -> a page observer for that source's spool file (evaluate.PAGE_FACTS)."""

DEPENDENCY_FAILED = "DependencyFailed"
"""Error code of a source not read because a source it depends on failed."""


def with_dependencies(keys: Iterable[str]) -> list[str]:
    """The keys asked for plus every source they depend on, in table order."""
    wanted = set(keys)
    unknown = wanted - SOURCES.keys()
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    frontier = list(wanted)
    while frontier:
        for dep in SOURCES[frontier.pop()].depends_on:
            if dep not in wanted:
                wanted.add(dep)
                frontier.append(dep)
    return [k for k in SOURCES if k in wanted]


async def _fetch(session: GraphSession, key: str, ctx: FetchContext, deps: dict[str, Any],
                 spool: Path | None, facts: PageFacts) -> Fetched:
    source = SOURCES[key]
    if source.fetcher is not None:
        return await source.fetcher(session, source, ctx, deps)
    if source.shape == "object":
        return Fetched(await session.get_object(source.url))
    if spool is None:
        return Fetched(await session.get_collection(source.url))
    writer = ItemsWriter(spool / f"{key}.items", facts.get(key))  # facts taken from each page as it comes
    try:
        async for page in session.pages(source.url):
            writer.add_page(page)  # on disk at once: memory holds one page, whatever the tenant's size
    except BaseException:
        writer.discard()  # a source is read completely or not at all
        raise
    return Fetched(writer.finish())


def _failed(key: str, session: GraphSession, error: SourceError) -> SourceResult:
    stats = session.stats.get(key)
    return SourceResult(key=key, ok=False, url=(stats.first_url if stats else None) or SOURCES[key].url,
                        requests=stats.requests if stats else 0,
                        request_ids=list(stats.request_ids) if stats else [], error=error)


async def _run_source(session: GraphSession, key: str, ctx: FetchContext,
                      done: dict[str, SourceResult], spool: Path | None, facts: PageFacts) -> SourceResult:
    source = SOURCES[key]
    broken = [d for d in source.depends_on if not done[d].ok]
    if broken:
        return _failed(key, session, SourceError(
            message=f"not read: it needs {', '.join(broken)}, which could not be read",
            code=DEPENDENCY_FAILED, hint=f"fix {', '.join(broken)} first"))
    token = current_source.set(key)
    try:
        fetched = await _fetch(session, key, ctx, {d: done[d].data for d in source.depends_on}, spool, facts)
    except GraphError as exc:
        return _failed(key, session, SourceError(message=exc.message, status=exc.status, code=exc.code,
                                                 request_id=exc.request_id, url=exc.url,
                                                 hint=permission_hint(key) if exc.status == 403 else exc.hint))
    except SourceFailure as exc:
        return _failed(key, session, SourceError(message=str(exc), code="UnexpectedData", hint=exc.hint))
    except (KeyError, TypeError, AttributeError) as exc:
        log.debug("source %s: unexpected data shape", key, exc_info=True)
        return _failed(key, session, SourceError(
            message=f"Graph data had an unexpected shape ({type(exc).__name__}: {exc})", code="UnexpectedData",
            hint="keep the run folder: the exchanges show what Graph sent"))
    finally:
        current_source.reset(token)
    stats = session.stats.get(key)
    return SourceResult(key=key, ok=True, url=(stats.first_url if stats else None) or SOURCES[key].url,
                        requests=stats.requests if stats else 0,
                        request_ids=list(stats.request_ids) if stats else [], data=fetched.data,
                        meta=fetched.meta)


async def collect(session: GraphSession, keys: Iterable[str], ctx: FetchContext,
                  refused: dict[str, SourceError] | None = None, spool: Path | None = None,
                  on_done: Callable[[SourceResult], None] | None = None,
                  page_facts: PageFacts | None = None) -> dict[str, SourceResult]:
    """Read every source (and what it depends on); one failing source never stops the others.

    ``refused`` marks sources as error before any request, e.g. when the token lacks their permission.
    With ``spool`` (a folder), plain collections go to disk page by page and their data is PagedItems.
    ``on_done`` hears of each source as soon as it is finished, read or not (the progress display).
    ``page_facts`` (with ``spool``) has the rules' facts taken from each page while it is read, so that a page
    is decoded once per audit (PagedItems.facts).
    """
    refused = refused or {}
    done: dict[str, SourceResult] = {}
    tell = on_done or (lambda result: None)
    order = [k for wave in resolve_order(with_dependencies(keys)) for k in sorted(wave, key=lambda k: k not in refused)]
    for key in order:
        if key in refused:
            done[key] = SourceResult(key=key, ok=False, url=SOURCES[key].url, error=refused[key])
            tell(done[key])
    tasks: dict[str, asyncio.Task[SourceResult]] = {}

    async def run(key: str) -> SourceResult:
        for dep in SOURCES[key].depends_on:  # each source starts when its own dependencies are done, not a wave
            if dep in tasks:
                await tasks[dep]
        result = await _run_source(session, key, ctx, done, spool, page_facts or {})
        done[key] = result
        tell(result)
        return result

    todo = [k for k in order if k not in refused]
    for key in sorted(todo, key=lambda k: not SOURCES[k].long_chain):  # the longest chain asks first
        tasks[key] = asyncio.ensure_future(run(key))
    await asyncio.gather(*tasks.values())
    return {key: done[key] for key in order}  # the order of the waves, as before: snapshot.json does not change


def build_snapshot(sources: dict[str, SourceResult], collected_at: datetime,
                   tenant_id: str | None = None, tenant_name: str | None = None) -> Snapshot:
    """The Snapshot of a run; the organization source, when read, is the truth about tenant id and name."""
    org = sources.get("organization")
    first = org.data[0] if org is not None and org.ok and is_list(org.data) and len(org.data) else None
    if isinstance(first, dict):
        tenant_id = first.get("id") or tenant_id
        tenant_name = first.get("displayName") or tenant_name
    return Snapshot(tenant_id=tenant_id or "unknown-tenant", tenant_name=tenant_name or "",
                    collected_at=collected_at, tool_version=__version__, sources=sources)
