"""The only module that talks to Microsoft Graph: the SDK client, raw-bytes paging, error translation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from m365audit.errors import AuthError, GraphError, UsageError
from m365audit.evidence import ExchangeSink, Page, RecordedExchange
from m365audit.graph import jsonparse as graphjson
from m365audit.graph.capture import SENT_WAIT, SourceStats, middleware_chain, request_sent
from m365audit.graph.credentials import token_roles
from m365audit.graph.signin import sign_in_error
from m365audit.graph.throttle import ThrottleGate

GRAPH_ROOT = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
"""The scope the token is asked for: every Graph permission the app was granted."""

# --------------------------------------------------------------------------- error translation


def translate_error(exc: BaseException, url: str) -> GraphError | AuthError:
    """The one place where SDK, httpx and azure-identity errors become our errors."""
    from azure.core.exceptions import AzureError
    from kiota_abstractions.api_error import APIError

    if isinstance(exc, AzureError):  # the credential failed (a token refresh mid-run)
        return sign_in_error(exc)
    if isinstance(exc, APIError):
        status = exc.response_status_code
        odata = getattr(exc, "error", None)
        code = getattr(odata, "code", None)
        message = getattr(odata, "message", None) or exc.message or str(exc)
        inner = getattr(odata, "inner_error", None)
        headers = exc.response_headers or {}
        request_id = getattr(inner, "request_id", None) or headers.get("request-id")
        return GraphError(f"Graph answered {status}{' ' + code if code else ''}: {message}",
                          status=status, code=code, request_id=request_id, url=url,
                          hint=_hint_for_status(status, code))
    if isinstance(exc, httpx.TimeoutException):
        return GraphError(f"no answer from Graph in time ({type(exc).__name__})", code="Timeout", url=url,
                          hint="run again later; raise --timeout if this source is slow")
    if isinstance(exc, httpx.HTTPError):
        return GraphError(f"network error: {type(exc).__name__}: {exc}", code="NetworkError", url=url,
                          hint="check the network path to graph.microsoft.com (proxy, firewall, DNS)")
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return GraphError(f"Graph sent a body that is not valid JSON (truncated?): {exc}", code="MalformedBody",
                          url=url, hint="run again; if it persists, keep the run folder as evidence for support")
    raise exc


def _hint_for_status(status: int | None, code: str | None) -> str:
    if status == 403:
        return "the audit app lacks a permission"  # collect names the permission of the source
    if status == 401:
        return "the token was refused: check AZURE_TENANT_ID, the app registration and its admin consent"
    if status == 404:
        return "Graph does not know this resource here: the feature may not be licensed or enabled"
    if status == 429:
        return "Graph kept throttling after retries: run again later, or lower --concurrency"
    if status == 599 and code == "NotRecorded":
        return "the replayed recording has no answer for this request"
    if status is not None and status >= 500:
        return "Microsoft Graph had a service problem: run again later"
    return "see the Graph error code and message"


# --------------------------------------------------------------------------- the session


class GraphSession:
    """An open msgraph-sdk client for one command: raw JSON through the SDK stack, bounded concurrency."""

    def __init__(
        self,
        credential: Any,
        *,
        sink: ExchangeSink | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        graph_root: str = GRAPH_ROOT,
        concurrency: int = 4,
        timeout: float = 60.0,
        instant_retries: bool = False,
        observer: Callable[[RecordedExchange], None] | None = None,
    ) -> None:
        self.graph_root = _check_root(graph_root)
        self._observer = observer
        self._credential = credential
        self._sink = sink
        self._transport = transport
        self._semaphore = asyncio.Semaphore(concurrency)
        self.gate = ThrottleGate(concurrency)  # Graph throttles per app and tenant: one gate per session
        self._timeout = timeout
        self._instant_retries = instant_retries
        self.stats: dict[str, SourceStats] = {}
        self.exchanges = 0
        self._http: httpx.AsyncClient | None = None
        self._owned_transport: httpx.AsyncHTTPTransport | None = None
        self._adapter: Any = None

    async def __aenter__(self) -> GraphSession:
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_service_client import GraphServiceClient
        from msgraph_core import GraphClientFactory

        if self._transport is None:
            # Ours to close: msgraph-core's AsyncGraphTransport wraps it but has no aclose() of its own.
            self._owned_transport = httpx.AsyncHTTPTransport(http2=True)
        http = httpx.AsyncClient(transport=self._transport or self._owned_transport,
                                 timeout=httpx.Timeout(self._timeout, connect=15), follow_redirects=False)
        self._http = GraphClientFactory.create_with_custom_middleware(
            middleware_chain(self._on_exchange, self._instant_retries, self.gate), client=http)
        auth = AzureIdentityAuthenticationProvider(self._credential, scopes=[GRAPH_SCOPE])
        self._adapter = GraphRequestAdapter(auth, client=self._http)
        GraphServiceClient(request_adapter=self._adapter)  # registers the JSON, text and form parse nodes
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._owned_transport is not None:
            await self._owned_transport.aclose()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    async def token_roles(self) -> list[str] | None:
        """Sign in once before any source runs; returns the token's roles (None when unknown)."""
        try:
            token = await self._credential.get_token(GRAPH_SCOPE)
        except Exception as exc:  # azure-identity raises several unrelated types; the hint names the cause
            raise sign_in_error(exc) from exc
        return token_roles(token.token)

    def _on_exchange(self, exchange: RecordedExchange) -> None:
        self.exchanges += 1
        stats = self.stats.setdefault(exchange.source or "", SourceStats())
        stats.requests += 1
        stats.first_url = stats.first_url or exchange.url
        if exchange.request_id:
            stats.request_ids.append(exchange.request_id)
        if exchange.status == 429:
            stats.throttled += 1
        if self._sink is not None:
            self._sink.record(exchange)
        if self._observer is not None:
            self._observer(exchange)  # progress display: sees every attempt, after the evidence is written

    def absolute(self, url: str) -> str:
        """A host-relative Graph URL made absolute; an absolute URL must point at the Graph root."""
        if url.startswith("/"):
            return self.graph_root + url
        if not (url.startswith(self.graph_root + "/")):
            raise GraphError(f"refusing to send the audit's token to {urlsplit(url).netloc or url!r}",
                             code="ForeignHost", url=url,
                             hint="a nextLink or URL pointed away from Microsoft Graph; keep the evidence")
        return url

    async def _send(self, method: str, url: str, body: dict[str, Any] | None = None) -> bytes:
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        full = self.absolute(url)
        info = RequestInformation(Method.POST if method == "POST" else Method.GET)
        info.url = full
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        async with self._semaphore:
            try:
                raw = await self._adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
            except Exception as exc:
                raise translate_error(exc, full) from exc
        if not raw:
            raise GraphError("Graph answered with an empty body", code="EmptyBody", url=full,
                             hint="run again; an empty success is not evidence")
        return bytes(raw)

    async def _json(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        raw = await self._send(method, url, body)
        return graphjson.parse(raw, self.absolute(url))

    async def get_object(self, url: str) -> dict[str, Any]:
        doc = _single(await self._json("GET", url), url)
        if "value" in doc and isinstance(doc["value"], dict) and len(doc) <= 2:
            doc = doc["value"]  # some singletons come wrapped as {"value": {...}}
        return {k: v for k, v in doc.items() if not k.startswith("@odata.")}

    async def post_object(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return _single(await self._json("POST", url, body), url)

    async def get_collection(self, url: str) -> list[Any]:
        """Every item of a collection, following @odata.nextLink until Graph gives none."""
        items: list[Any] = []
        async for page in self.pages(url):
            items.extend(page)
        return items

    async def pages(self, url: str) -> AsyncIterator[list[Any]]:
        """Each page's items in turn, following @odata.nextLink; at most two pages are held at a time.

        The next page is asked for as soon as this page's bytes are in, before they are decoded: the link is
        read from the bytes (graphjson.peek_next_link) and checked against the decoded page, and a wrong guess
        is dropped and the right page asked for. So decoding a page, spooling it and taking the rules' facts
        overlap Graph's answer instead of lengthening the chain.
        """
        seen: set[str] = set()
        next_url: str | None = url
        count = _PageCount(url)
        ahead: asyncio.Future[bytes] | None = None
        ahead_url: str | None = None
        try:
            while next_url is not None:
                seen.add(next_url)
                raw = await (ahead if ahead is not None else self._send("GET", next_url))
                ahead = None
                guess = graphjson.peek_next_link(raw)
                if guess is not None and guess not in seen:
                    ahead, ahead_url = await self._ask_ahead(guess), guess
                doc, kept = graphjson.parse_page(raw, self.absolute(next_url))
                link = self._checked_page(doc, next_url, seen)
                count.add(doc, next_url)
                if ahead is not None and link != ahead_url:  # the guess was not the page's link: drop its answer
                    _drop(ahead)
                    ahead = None
                if link is not None and ahead is None:
                    ahead, ahead_url = await self._ask_ahead(link), link
                yield Page(doc["value"], kept)
                next_url = link
        finally:
            if ahead is not None:  # the caller stopped early or failed: the page asked for is not wanted
                _drop(ahead)
        count.finish()

    async def _ask_ahead(self, url: str) -> asyncio.Future[bytes]:
        """Ask for a page ahead and return once the request is written (or has failed, or SENT_WAIT passed):
        decoding a page holds the event loop, so a request merely scheduled before it would wait for it."""
        sent = asyncio.Event()
        token = request_sent.set(sent)
        try:
            ahead = asyncio.ensure_future(self._send("GET", url))  # the task keeps a copy of this context
        finally:
            request_sent.reset(token)
        waiter = asyncio.ensure_future(sent.wait())
        try:
            await asyncio.wait((ahead, waiter), timeout=SENT_WAIT, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled while waiting (Ctrl-C): nobody else holds the page asked for
            _drop(ahead)
            raise
        finally:
            waiter.cancel()
        return ahead

    def _checked_page(self, doc: Any, next_url: str, seen: set[str]) -> str | None:
        """The page's @odata.nextLink, or a GraphError when the body is no page or the paging misbehaves."""
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
            raise GraphError("a page of the collection has no 'value' list", code="MalformedBody",
                             url=self.absolute(next_url), hint="the page is not a Graph collection")
        if graphjson.DELTA_LINK in doc:
            raise GraphError("a page carries @odata.deltaLink, but the audit asked for no delta query",
                             code="UnexpectedPaging", url=next_url, hint="Graph paging misbehaved; run again")
        link = doc.get(graphjson.NEXT_LINK)
        if link is not None and not isinstance(link, str):
            raise GraphError("@odata.nextLink is not a string", code="MalformedBody", url=next_url)
        if link in seen:
            raise GraphError("@odata.nextLink points back to a page already read", code="PagingLoop",
                             url=link, hint="Graph paging misbehaved; run again")
        return link

    async def get_text(self, url: str) -> str:
        raw = await self._send("GET", url)
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise translate_error(exc, self.absolute(url)) from exc


def _drop(ahead: asyncio.Future[bytes]) -> None:
    """Cancel a page asked for ahead that is not wanted; a failure it already had is retrieved, so that asyncio
    does not log it (the caller's own error, if any, is the one that counts)."""
    ahead.cancel()
    if ahead.done() and not ahead.cancelled():
        ahead.exception()


def _single(doc: Any, url: str) -> dict[str, Any]:
    """A single object's body: a JSON object that does not say it continues on another page."""
    if not isinstance(doc, dict):
        raise GraphError(f"expected a JSON object, got {type(doc).__name__}", code="MalformedBody", url=url)
    if graphjson.NEXT_LINK in doc or graphjson.DELTA_LINK in doc:
        raise GraphError("a single object came with @odata.nextLink or @odata.deltaLink: the audit reads this "
                         "source as one object and would miss the rest", code="UnexpectedPaging", url=url,
                         hint="Graph paging misbehaved; run again")
    return doc


class _PageCount:
    """A collection's @odata.count (on the first page, maybe repeated) against the items its pages held."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.expected: int | None = None
        self.read = 0

    def add(self, page: dict[str, Any], url: str) -> None:
        self.read += len(page["value"])
        if graphjson.COUNT not in page:
            return
        count = page[graphjson.COUNT]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise GraphError(f"@odata.count is not a count: {ascii(count)[:40]}", code="MalformedBody", url=url,
                             hint="the page is not a Graph collection")
        if self.expected is not None and count != self.expected:
            raise GraphError(f"@odata.count changed from {self.expected} to {count} between pages",
                             code="CountMismatch", url=url, hint=graphjson.CUT_SHORT_HINT)
        self.expected = count

    def finish(self) -> None:
        if self.expected is not None and self.expected != self.read:
            raise GraphError(f"@odata.count says {self.expected} items, the pages held {self.read}: Graph did not "
                             "send the whole collection", code="CountMismatch", url=self.url,
                             hint=graphjson.CUT_SHORT_HINT)


def _check_root(root: str) -> str:
    root = root.rstrip("/")
    parts = urlsplit(root)
    local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if root != GRAPH_ROOT and not local:
        raise UsageError(f"unsupported Graph root {root!r}",
                         hint="only https://graph.microsoft.com (national clouds are out of scope) or a local "
                              "simulator on http://127.0.0.1 is allowed")
    return root
