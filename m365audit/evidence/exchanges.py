"""The exchange store: every Graph attempt as a FIXTURES.md exchange with its exact bytes, never overwritten."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from m365audit.evidence.files import safe_name, write_new

# --------------------------------------------------------------------------- exchanges


@dataclass(frozen=True)
class RecordedExchange:
    """One HTTP attempt as Graph answered it: the exact body bytes and what identifies the request."""

    source: str | None
    method: str
    url: str
    request_body: bytes | None
    status: int
    headers: dict[str, str]
    body: bytes
    recorded_at: datetime
    attempt: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id")


class ExchangeSink(Protocol):
    """Receives every recorded exchange (ExchangeStore writes them to the run folder)."""

    def record(self, exchange: RecordedExchange) -> None: ...


@dataclass(frozen=True)
class ExchangeRef:
    """Where the evidence for a source is: the exchange file and what Graph said about the request."""

    file: str
    request_id: str | None
    status: int
    attempt: int = 1


class ExchangeStore:
    """Writes every Graph attempt as a FIXTURES.md exchange with its exact body bytes beside it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=False)
        self._lock = threading.Lock()
        self._count = 0
        self.refs: dict[str, list[ExchangeRef]] = {}

    @property
    def names(self) -> dict[str, list[str]]:
        """Exchange file names per source, in the order they were recorded."""
        return {source: [r.file for r in refs] for source, refs in self.refs.items()}

    def record(self, exchange: RecordedExchange) -> None:
        with self._lock:
            self._count += 1
            stem = f"{self._count:05d}-{safe_name(exchange.source or 'graph')}"
            self.refs.setdefault(exchange.source or "", []).append(
                ExchangeRef(f"{stem}.json", exchange.request_id, exchange.status, exchange.attempt))
        body_name = f"{stem}.body"
        write_new(self.folder / body_name, exchange.body)
        request: dict[str, Any] = {"method": exchange.method, "url": exchange.url}
        if exchange.request_body:
            try:
                request["body"] = json.loads(exchange.request_body)
            except (ValueError, UnicodeDecodeError):
                request["body_sha256"] = hashlib.sha256(exchange.request_body).hexdigest()
        doc = {
            "request": request,
            "response": {"status": exchange.status, "headers": exchange.headers, "body_file": body_name},
            "source": exchange.source,
            "path": urlsplit(exchange.url).path,
            "recorded_at": exchange.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sha256": exchange.sha256,
            "attempt": exchange.attempt,
            "request_id": exchange.request_id,
        }
        write_new(self.folder / f"{stem}.json", json.dumps(doc, indent=2, ensure_ascii=False).encode())

    @property
    def count(self) -> int:
        return self._count


def exchange_refs(folder: Path) -> dict[str, list[ExchangeRef]]:
    """The evidence index of a stored run (its exchanges/ folder), as ExchangeStore.refs had it."""
    refs: dict[str, list[ExchangeRef]] = {}
    for path in sorted((folder / "exchanges").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            ref = ExchangeRef(path.name, doc.get("request_id"), int(doc["response"]["status"]),
                              int(doc.get("attempt", 1)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        refs.setdefault(str(doc.get("source") or ""), []).append(ref)
    return refs


