"""Graph access through the real msgraph-sdk stack under respx: paging, throttling, failures, evidence bytes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import respx

from m365audit.collect import SOURCES, FetchContext, collect
from m365audit.errors import AuthError
from m365audit.graph import GraphSession
from m365audit.graph.client import RecordedExchange
from m365audit.models import SourceResult
from tests.conftest import FakeCredential

USERS = "https://graph.microsoft.com/v1.0/users"
SKUS = "https://graph.microsoft.com/v1.0/subscribedSkus"
AUTHZ = "https://graph.microsoft.com/v1.0/policies/authorizationPolicy"


class ListSink:
    def __init__(self) -> None:
        self.items: list[RecordedExchange] = []

    def record(self, exchange: RecordedExchange) -> None:
        self.items.append(exchange)


def run(keys: list[str], sink: ListSink | None = None, credential: Any = None) -> dict[str, SourceResult]:
    async def go() -> dict[str, SourceResult]:
        async with GraphSession(credential or FakeCredential(), sink=sink) as session:
            return await collect(session, keys, FetchContext(now=datetime(2026, 11, 28, tzinfo=timezone.utc)))

    return asyncio.run(go())


def page(items: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": items}
    if next_token:
        body["@odata.nextLink"] = f"{USERS}?$top=999&$skiptoken={next_token}"
    return body


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "innerError": {"request-id": "0f3a-req", "date": "2026-11-28T02:15:00"}}}


def test_users_are_read_across_three_pages_without_a_double_slash(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p3"}).respond(200, json=page([{"id": "u5"}]))
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(200, json=page([{"id": "u3"}, {"id": "u4"}], "p3"))
    first = graph_mock.get(USERS).respond(200, json=page([{"id": "u1"}, {"id": "u2"}], "p2"))
    result = run(["users"])["users"]
    assert result.ok and [u["id"] for u in result.data] == ["u1", "u2", "u3", "u4", "u5"]
    assert result.requests == 3
    sent = str(first.calls[0].request.url)
    assert "//users" not in sent and "$select=id,userPrincipalName" in sent and "$top=999" in sent


def test_throttling_is_retried_and_every_attempt_is_evidence(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"}, json=graph_error("TooManyRequests", "slow down")),
        httpx.Response(200, headers={"request-id": "r-200"}, json=page([{"id": "u1"}])),
    ])
    sink = ListSink()
    result = run(["users"], sink)["users"]
    assert result.ok and result.data == [{"id": "u1"}]
    assert [(e.status, e.attempt) for e in sink.items] == [(429, 1), (200, 2)]
    assert result.request_ids == ["r-200"]


def test_a_refused_source_is_error_with_the_permission_to_grant(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(AUTHZ).respond(403, json=graph_error("Authorization_RequestDenied", "Insufficient privileges"))
    graph_mock.get(SKUS).respond(200, json={"value": []})
    results = run(["authorization_policy", "subscribed_skus"])
    refused = results["authorization_policy"]
    assert not refused.ok and refused.error is not None
    assert refused.error.status == 403 and refused.error.code == "Authorization_RequestDenied"
    assert refused.error.request_id == "0f3a-req"
    assert refused.error.hint is not None and "Policy.Read.All" in refused.error.hint
    assert results["subscribed_skus"].ok, "one failing source never stops the others"


def test_a_503_that_never_clears_is_error_after_the_sdk_retries(graph_mock: respx.MockRouter) -> None:
    route = graph_mock.get(SKUS).respond(503, headers={"Retry-After": "1"},
                                         json=graph_error("ServiceUnavailable", "try later"))
    result = run(["subscribed_skus"])["subscribed_skus"]
    assert not result.ok and result.error is not None and result.error.status == 503
    assert route.call_count == 4, "the SDK's three retries, then give up"


@pytest.mark.parametrize("body, content_type", [
    (b'{"value": [{"id": "u1"}, {"id": "u2"', "application/json"),
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    (b"", "application/json"),
    (b'{"no_value_here": true}', "application/json"),
    (b'{"value": {"id": "not-a-list"}}', "application/json"),
], ids=["truncated-json", "html-page", "empty-body", "no-value", "value-not-a-list"])
def test_malformed_success_bodies_are_errors(graph_mock: respx.MockRouter, body: bytes, content_type: str) -> None:
    graph_mock.get(SKUS).respond(200, headers={"Content-Type": content_type}, content=body)
    result = run(["subscribed_skus"])["subscribed_skus"]
    assert not result.ok and result.error is not None


def test_html_gateway_error_page_is_error_not_crash(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(SKUS).respond(502, headers={"Content-Type": "text/html"}, content=b"<html>Bad gateway</html>")
    result = run(["subscribed_skus"])["subscribed_skus"]
    assert not result.ok and result.error is not None and result.error.status == 502


def test_a_failing_next_page_fails_the_whole_source(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS, params={"$skiptoken": "p2"}).respond(404, json=graph_error("NotFound", "expired token"))
    graph_mock.get(USERS).respond(200, json=page([{"id": "u1"}], "p2"))
    result = run(["users"])["users"]
    assert not result.ok and result.data is None, "a partial collection must never be evaluated"


def test_a_next_link_to_another_host_is_refused(graph_mock: respx.MockRouter) -> None:
    body = {"value": [{"id": "u1"}], "@odata.nextLink": "https://attacker.example/v1.0/users?$skiptoken=x"}
    graph_mock.get(USERS).respond(200, json=body)
    result = run(["users"])["users"]
    assert not result.ok and result.error is not None and result.error.code == "ForeignHost"


def test_a_next_link_loop_is_an_error(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(USERS).respond(200, json={"value": [], "@odata.nextLink": f"{USERS}?$top=999&$skiptoken=same"})
    result = run(["users"])["users"]
    assert not result.ok and result.error is not None and result.error.code == "PagingLoop"


def test_evidence_keeps_the_exact_bytes_and_never_the_token(graph_mock: respx.MockRouter) -> None:
    raw = b'{  "value" :[ {"skuId":"639dec6b-bb19-468b-871c-c5c441c4b0cb"} ]\n ,"@odata.context":"x"}'
    graph_mock.get(SKUS).respond(200, headers={"Content-Type": "application/json", "request-id": "r1"}, content=raw)
    sink = ListSink()
    run(["subscribed_skus"], sink, credential=FakeCredential("secret-token-value"))
    [exchange] = sink.items
    assert exchange.body == raw and exchange.sha256 == hashlib.sha256(raw).hexdigest()
    assert "secret-token-value" not in json.dumps(exchange.headers)
    assert graph_mock.calls[0].request.headers["Authorization"] == "Bearer secret-token-value"


def test_a_dependent_source_is_error_when_its_dependency_fails(graph_mock: respx.MockRouter) -> None:
    graph_mock.get(url__regex=r".*/servicePrincipals\(appId=.*").respond(
        403, json=graph_error("Authorization_RequestDenied", "no"))
    results = run(["app_role_assignments"])
    assert not results["resource_permissions"].ok
    dependent = results["app_role_assignments"]
    assert not dependent.ok and dependent.error is not None and "resource_permissions" in dependent.error.message


def test_an_unmocked_request_never_reaches_the_network(graph_mock: respx.MockRouter) -> None:
    with pytest.raises(respx.models.AllMockedAssertionError):
        run(["subscribed_skus"])


def test_a_credential_that_cannot_sign_in_is_an_auth_error() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class Refusing(FakeCredential):
        async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")

    async def go() -> None:
        async with GraphSession(Refusing()) as session:
            await session.token_roles()

    with pytest.raises(AuthError) as caught:
        asyncio.run(go())
    assert "AADSTS7000215" in caught.value.message and caught.value.hint and "AZURE_CLIENT_SECRET" in caught.value.hint


def test_every_source_names_a_permission_and_a_graph_version() -> None:
    for key, source in SOURCES.items():
        assert source.permissions and all("." in p for p in source.permissions), key
        assert source.version in ("v1.0", "beta"), key


def test_a_lone_surrogate_becomes_a_replacement_character_and_the_evidence_keeps_the_bytes(
        graph_mock: respx.MockRouter) -> None:
    raw = (b'{"value":[{"id":"u1","displayName":"Jan \\ud800 Vries"},'
           b'{"id":"u2","displayName":"Els \\ud83d\\ude00 Bakker"}]}')
    graph_mock.get(USERS).respond(200, content=raw, headers={"Content-Type": "application/json"})
    sink = ListSink()
    users = run(["users"], sink)["users"]
    assert users.ok and [u["displayName"] for u in users.data] == ["Jan \ufffd Vries", "Els 😀 Bakker"]
    assert sink.items[0].body == raw
