"""An httpx transport that answers from recorded exchanges (fixtures, evidence), exactly as FIXTURES.md says."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from m365audit.errors import UsageError
from m365audit.evidence import STORED_DEPTH, read_head, strict_loads


@dataclass(frozen=True)
class Recorded:
    """One recorded exchange, loaded and ready to serve."""

    file: str
    method: str
    host: str | None
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    headers: dict[str, str]
    body: bytes
    delay_ms: int = 0
    body_path: Path | None = None
    """A body_file is read when served, not when loaded: a replayed large tenant is never held in memory."""

    def content(self) -> bytes:
        """The response body as recorded."""
        if self.body_path is None:
            return self.body
        try:
            return self.body_path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{self.body_path}: the recorded body cannot be read ({exc.strerror})",
                             hint="see FIXTURES.md for the format") from exc


def exchanges_dir(path: Path) -> Path:
    """The folder of exchange files for a tenant folder, an exchanges folder or a run folder."""
    if (path / "exchanges").is_dir():
        return path / "exchanges"
    if path.is_dir() and any(path.glob("*.json")) and path.name == "exchanges":
        return path
    raise UsageError(f"{path} holds no recorded exchanges",
                     hint="give a fixture tenant folder, a run folder or their exchanges/ folder")


def _split(url: str) -> tuple[str | None, str, tuple[tuple[str, str], ...]]:
    parts = urlsplit(url)
    host = parts.netloc.lower() or None
    path = unquote(parts.path).rstrip("/").lower() or "/"
    query = tuple((k.lower(), v) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return host, path, query


def body_file_path(exchange_file: Path, body_file: object) -> Path:
    """Where an exchange's body_file is, refused (exit 2, naming the exchange) unless it stays inside the recording.

    A recording is hostile input: a relative path only, no '..', and no symlink whose target lies outside the
    folder of the exchange file (else replay or `record --from` would read, and a fixture would share, any file).
    """
    folder = exchange_file.parent
    name = body_file if isinstance(body_file, str) else None
    pure = PurePosixPath(name) if name else None
    if (name is None or pure is None or pure.is_absolute() or PureWindowsPath(name).is_absolute()
            or ".." in pure.parts or ".." in PureWindowsPath(name).parts or "\x00" in name):
        raise UsageError(f"{exchange_file}: its body_file {ascii(body_file)} does not stay inside the recording",
                         hint="a body_file is a file name beside the exchange file (FIXTURES.md); "
                              "no absolute path, no '..'")
    path = folder / name
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise UsageError(f"{exchange_file}: its body_file {ascii(body_file)} is a link that points outside "
                         f"the recording", hint="replace the link by the file itself (FIXTURES.md)")
    return path


def load_exchange(file: Path) -> Recorded:
    """Read one exchange file; a malformed one (ambiguous JSON included) is a clear error naming the file.

    The file is parsed as strictly as a Graph body: an inline body with a key twice could be served either way.
    """
    try:
        doc = strict_loads(file.read_bytes(), max_depth=STORED_DEPTH, repair=False)
        request, response = doc["request"], doc["response"]
        host, path, query = _split(request["url"])
        headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        body_path = None
        body = b""
        if "body_file" in response:
            body_path = body_file_path(file, response["body_file"])
            if not body_path.is_file():
                raise FileNotFoundError(f"its body_file {response['body_file']} is missing")
        elif "body_text" in response:
            body = str(response["body_text"]).encode("utf-8")
        elif "body" in response:
            body = json.dumps(response["body"], ensure_ascii=False).encode("utf-8")
            headers.setdefault("content-type", "application/json")
        return Recorded(file=file.name, method=str(request.get("method", "GET")).upper(), host=host, path=path,
                        query=query, status=int(response["status"]), headers=headers, body=body,
                        delay_ms=int(doc.get("delay_ms", 0)), body_path=body_path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{file}: not a recorded exchange ({type(exc).__name__}: {exc})",
                         hint="see FIXTURES.md for the format") from exc


def load_recording(path: Path) -> list[Recorded]:
    """Every exchange of a folder, in file-name order."""
    folder = exchanges_dir(path)
    return [load_exchange(f) for f in sorted(folder.glob("*.json"))]


@dataclass
class ReplayTransport(httpx.AsyncBaseTransport):
    """Serves recorded exchanges; an unrecorded request gets 599 NotRecorded and is remembered."""

    recorded: list[Recorded]
    unmatched: list[str] = field(default_factory=list)
    served: int = 0
    _cursor: dict[tuple[int, ...], int] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, path: Path) -> ReplayTransport:
        return cls(load_recording(path))

    def match(self, method: str, url: str) -> Recorded | None:
        """The exchange FIXTURES.md says answers this request, advancing sequences."""
        host, path, query = _split(url)
        asked: dict[str, str] = {}
        for k, v in query:
            asked.setdefault(k, v)
        candidates: list[tuple[int, int]] = []
        for index, rec in enumerate(self.recorded):
            if rec.method != method.upper() or rec.path != path:
                continue
            if rec.host is not None and host is not None and rec.host != host:
                continue
            if all(asked.get(k) == v for k, v in rec.query):
                candidates.append((len(rec.query), index))
        if not candidates:
            return None
        best = max(n for n, _ in candidates)
        group = tuple(i for n, i in candidates if n == best)
        position = self._cursor.get(group, 0)
        self._cursor[group] = position + 1
        return self.recorded[group[min(position, len(group) - 1)]]

    def rewind(self) -> None:
        """Start every sequence again: a second night replayed from the same recording."""
        self._cursor.clear()

    def answer(self, request: httpx.Request) -> httpx.Response:
        """The response for a request, without waiting (respx side effects use this)."""
        return self._respond(request, self.match(request.method, str(request.url)))

    def _respond(self, request: httpx.Request, rec: Recorded | None) -> httpx.Response:
        if rec is None:
            self.unmatched.append(f"{request.method} {request.url}")
            body = json.dumps({"error": {"code": "NotRecorded", "message": f"{request.method} {request.url}"}})
            return httpx.Response(599, headers={"content-type": "application/json"}, content=body.encode(),
                                  request=request)
        self.served += 1
        return httpx.Response(rec.status, headers=rec.headers, content=rec.content(), request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        rec = self.match(request.method, str(request.url))
        if rec is not None and rec.delay_ms:
            await asyncio.sleep(rec.delay_ms / 1000)
        return self._respond(request, rec)


def tenant_metadata(path: Path) -> dict[str, Any]:
    """tenant.yaml of a fixture tenant, or the tenant facts of a run folder's snapshot, if present."""
    import yaml

    meta: dict[str, Any] = {}
    tenant_file = path / "tenant.yaml"
    if tenant_file.is_file():
        loaded = yaml.safe_load(tenant_file.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            meta.update(loaded)
    snapshot = path / "snapshot.json"
    if not meta and snapshot.is_file():
        try:
            head = read_head(snapshot)
        except ValueError as exc:  # SnapshotFileError names the file and the line
            raise UsageError(f"cannot replay {path}: {exc}", hint="run `m365audit verify` on the run folder") from exc
        meta = {"tenant_id": head.get("tenant_id"), "display_name": head.get("tenant_name")}
    return meta


def recorded_paths(path: Path) -> set[str]:
    """The URL paths a recording answers (lower case, no query): what collect needs to know what it may replay."""
    paths: set[str] = set()
    for file in exchanges_dir(path).glob("*.json"):
        try:
            url = json.loads(file.read_text(encoding="utf-8"))["request"]["url"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # load_exchange reports a malformed file with its name
        paths.add(_split(str(url))[1])
    return paths
