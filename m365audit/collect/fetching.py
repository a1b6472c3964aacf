"""What a source fetcher is given and returns: the Graph reader protocol, run context, Source rows, failures."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SHAREPOINT_APP_ID = "00000003-0000-0ff1-ce00-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
RESOURCE_APPS: dict[str, str] = {
    GRAPH_APP_ID: "Microsoft Graph",
    SHAREPOINT_APP_ID: "Office 365 SharePoint Online",
    EXCHANGE_APP_ID: "Office 365 Exchange Online",
}

AUDIT_POLL_INTERVAL = 10.0
"""Seconds between two status polls of a live Purview audit query."""

AI_AUDIT_RECORD_TYPES = ("CopilotInteraction", "AIAppInteraction", "ConnectedAIAppInteraction")


class GraphReader(Protocol):
    """What a source fetcher may ask of the Graph client (implemented by graph.GraphSession)."""

    async def get_object(self, url: str) -> dict[str, Any]: ...

    async def get_collection(self, url: str) -> list[Any]: ...

    async def get_text(self, url: str) -> str: ...

    async def post_object(self, url: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def pages(self, url: str) -> AsyncIterator[list[Any]]: ...


@dataclass(frozen=True)
class FetchContext:
    """Run-wide settings a fetcher may need: the audit window and the bounded poll for audit queries."""

    now: datetime
    audit_lookback_days: int = 7
    audit_record_types: tuple[str, ...] = AI_AUDIT_RECORD_TYPES
    audit_poll_seconds: float = 600.0
    audit_poll_interval: float = AUDIT_POLL_INTERVAL
    teams_max: int = 5000
    """teams_rsc_grants reads one page per team; above this many teams it is an error, never a partial read."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def audit_max_polls(self) -> int:
        """How often to ask for the query's status: the wait divided by the poll interval.

        Replay polls without sleeping (interval 0) but as often as a live run would, so it reaches the same verdict.
        """
        interval = self.audit_poll_interval if self.audit_poll_interval > 0 else AUDIT_POLL_INTERVAL
        return max(1, math.ceil(self.audit_poll_seconds / interval))


@dataclass
class Fetched:
    """A fetcher's result: the data, plus facts worth keeping beside it (query ids, windows)."""

    data: Any
    meta: dict[str, Any] = field(default_factory=dict)


Fetcher = Callable[[GraphReader, "Source", FetchContext, dict[str, Any]], Awaitable[Fetched]]


@dataclass(frozen=True)
class Source:
    """One row of the SOURCES table."""

    key: str
    url: str
    permissions: tuple[str, ...]
    shape: Literal["collection", "object", "csv", "custom"]
    description: str
    depends_on: tuple[str, ...] = ()
    fetcher: Fetcher | None = None
    delegated: bool = False
    """Readable only with a person's (delegated) sign-in: collected with --auth device-code, never app-only."""
    long_chain: bool = False
    """Its requests form the night's longest chain (a Purview query runs minutes): it gets the first request slot."""

    @property
    def version(self) -> str:
        return self.url.split("/")[1]


class SourceFailure(Exception):
    """A source's data is not what Graph promises (a query that never finishes, a malformed body)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
