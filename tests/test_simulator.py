"""The Graph simulator's own behaviour, checked with plain httpx against 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from m365audit.collect import SOURCES
from m365audit.simulator import GraphSimulator, SimConfig, SimTenant, TenantSpec
from m365audit.simulator.export import export_fixtures
from m365audit.simulator.server import FAULT_KINDS, Fault, FaultKind
from m365audit.simulator.shapes import source_of

SPEC = TenantSpec(users=250, service_principals=30, grants=12, copilot_users=5, agent_identities=3, seed=7)
USERS = SOURCES["users"].url


@pytest.fixture()
def sim() -> Iterator[GraphSimulator]:
    with GraphSimulator(SPEC) as s:
        yield s


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def collect(client: httpx.Client, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    items: list[dict[str, Any]] = []
    urls: list[str] = []
    next_url: str | None = url
    while next_url:
        urls.append(next_url)
        r = client.get(next_url)
        assert r.status_code == 200, r.text
        doc = r.json()
        items.extend(doc["value"])
        next_url = doc.get("@odata.nextLink")
    return items, urls


def test_binds_loopback_on_an_ephemeral_port(sim: GraphSimulator) -> None:
    assert sim.url.startswith("http://127.0.0.1:")
    assert not sim.url.endswith(":0")


@pytest.mark.parametrize(("top", "pages"), [(None, 3), ("100", 3), ("99", 3), ("999", 1), ("7", 36)])
def test_paging_honours_top_and_follows_absolute_next_links(
    sim: GraphSimulator, client: httpx.Client, top: str | None, pages: int
) -> None:
    url = f"{sim.url}/v1.0/users?$select=id,userPrincipalName" + (f"&$top={top}" if top else "")
    items, urls = collect(client, url)
    assert len(urls) == pages
    assert len({u["id"] for u in items}) == SPEC.users
    assert all(u.startswith(sim.url + "/v1.0/users?") and "$select=id,userPrincipalName" in u for u in urls)
    assert all("$skiptoken=" in u for u in urls[1:])
    assert set(items[0]) == {"id", "userPrincipalName"}


@pytest.mark.parametrize(("path", "top", "limit"), [
    ("/v1.0/users", 1000, 999), ("/v1.0/servicePrincipals", 1000, 999), ("/v1.0/users", 0, 999),
    ("/v1.0/servicePrincipals/microsoft.graph.agentIdentity", 101, 100),
])
def test_top_above_the_endpoint_limit_is_refused(
    sim: GraphSimulator, client: httpx.Client, path: str, top: int, limit: int
) -> None:
    r = client.get(f"{sim.url}{path}?$top={top}")
    assert r.status_code == 400
    assert f"Must be between 1 and {limit} inclusive" in r.json()["error"]["message"]


def test_users_need_select_for_licences(sim: GraphSimulator, client: httpx.Client) -> None:
    bare = client.get(f"{sim.url}/v1.0/users?$top=5").json()["value"]
    assert all("assignedLicenses" not in u for u in bare)
    full = client.get(sim.url + USERS).json()["value"]
    assert all("assignedLicenses" in u and "assignedPlans" in u for u in full)
    copilot = [u for u in full if any(p["servicePlanId"].startswith("3f30311c") for p in u["assignedPlans"])]
    assert len(copilot) == SPEC.copilot_users


def test_same_seed_same_tenant_other_seed_other_tenant() -> None:
    a, b, c = SimTenant(SPEC), SimTenant(SPEC), SimTenant(TenantSpec(users=250, seed=8))
    assert [a.user(i) for i in range(20)] == [b.user(i) for i in range(20)]
    assert a.user(3)["id"] != c.user(3)["id"]


def test_every_source_url_maps_to_its_own_key() -> None:
    for key, source in SOURCES.items():
        if source.delegated:
            continue  # not served: the simulator is an application (app-only) tenant
        path, _, query = source.url.replace("{resource}", "x").replace("{team}", "x").partition("?")
        assert source_of(path, query) == key, key


def test_every_other_source_answers(sim: GraphSimulator, client: httpx.Client) -> None:
    for key in ("organization", "subscribed_skus", "delegated_grants", "conditional_access",
                "external_connections", "copilot_packages", "agent_identities"):
        items, _ = collect(client, sim.url + SOURCES[key].url)
        assert items, key
    for key in ("authorization_policy", "admin_consent_policy", "teams_app_settings", "resource_permissions"):
        assert client.get(sim.url + SOURCES[key].url).json()["@odata.context"].endswith("/$entity"), key
    graph = client.get(sim.url + SOURCES["resource_permissions"].url).json()
    assigned, _ = collect(client,
                          f"{sim.url}/v1.0/servicePrincipals/{graph['id']}/appRoleAssignedTo?$top=999")
    assert {a["appRoleId"] for a in assigned} <= {r["id"] for r in graph["appRoles"]}
    csv = client.get(sim.url + SOURCES["copilot_usage"].url)
    assert csv.headers["content-type"] == "application/octet-stream"
    assert csv.text.lstrip("\ufeff").count("\n") == SPEC.copilot_users + 1
    policies, _ = collect(client, sim.url + SOURCES["intune_policies"].url)
    assert all(p["settings"] for p in policies)
    first = policies[0]["id"]
    targets, _ = collect(client, f"{sim.url}/beta/deviceManagement/configurationPolicies/{first}/assignments")
    assert targets[0]["target"]["@odata.type"] == "#microsoft.graph.allLicensedUsersAssignmentTarget"


def test_audit_query_is_created_polled_and_paged(client: httpx.Client) -> None:
    with GraphSimulator(SPEC, SimConfig(audit_polls=2)) as sim:
        url = sim.url + SOURCES["audit_ai_interactions"].url
        refused = client.post(url, json={"displayName": "x"})
        assert refused.status_code == 400
        created = client.post(url, json={"displayName": "x", "recordTypeFilters": ["CopilotInteraction"]})
        assert created.status_code == 201 and created.json()["status"] == "notStarted"
        qid = created.json()["id"]
        statuses = [client.get(f"{url}/{qid}").json()["status"] for _ in range(3)]
        assert statuses == ["running", "running", "succeeded"]
        records, _ = collect(client, f"{url}/{qid}/records")
        assert len(records) == SPEC.copilot_users
        assert client.get(f"{url}/not-a-query").status_code == 404


def test_throttles_at_the_configured_rate_with_retry_after(client: httpx.Client) -> None:
    with GraphSimulator(SPEC, SimConfig(throttle_rate=0.3, retry_after=2, seed=3)) as sim:
        attempts: list[int] = []
        for i in range(300):
            url = f"{sim.url}/v1.0/users?$top={1 + i % 50}"
            n = 0
            while n < 10:
                n += 1
                r = client.get(url)
                if r.status_code != 429:
                    break
                assert r.headers["Retry-After"] == "2"
                assert r.json()["error"]["code"] == "TooManyRequests"
            assert r.status_code == 200
            attempts.append(n)
        assert max(attempts) <= 3  # never more than throttle_streak (2) in a row: the SDK's 3 retries suffice
        rate = sim.stats.throttled / sim.stats.total
        first_try = sum(n > 1 for n in attempts) / len(attempts)
        assert 0.24 <= first_try <= 0.36, first_try
        assert 0.15 <= rate <= 0.3, rate


def expect_fault(kind: str, client: httpx.Client, url: str) -> None:
    if kind == "timeout":
        with pytest.raises(httpx.ReadTimeout):
            client.get(url, timeout=0.2)
        return
    if kind == "truncated":
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(url)
        return
    r = client.get(url)
    if kind.isdigit():
        assert r.status_code == int(kind)
        assert r.json()["error"]["innerError"]["request-id"] == r.headers["request-id"]
        assert ("Retry-After" in r.headers) == (kind in ("503", "504"))
    elif kind == "html":
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    elif kind == "empty":
        assert r.status_code == 200 and r.content == b""
    else:
        assert kind == "nextlink404"
        page = r.json()
        assert page["value"]
        dead = client.get(page["@odata.nextLink"])
        assert dead.status_code == 404
        assert dead.json()["error"]["code"] == "Directory_ExpiredPageToken"


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_hits_its_source_only_and_after_n_requests(kind: FaultKind, client: httpx.Client) -> None:
    cfg = SimConfig(faults={"users": Fault(kind, after=1)}, hang_seconds=5)
    with GraphSimulator(SPEC, cfg) as sim:
        assert client.get(sim.url + USERS).status_code == 200  # the first request is spared
        expect_fault(kind, client, sim.url + USERS)
        assert client.get(sim.url + SOURCES["organization"].url).status_code == 200
        assert sim.stats.by_source["users"] == 2 + (kind == "nextlink404")


def test_counts_requests_per_path_source_and_total(sim: GraphSimulator, client: httpx.Client) -> None:
    collect(client, f"{sim.url}/v1.0/users?$top=100")
    client.get(sim.url + SOURCES["organization"].url)
    assert sim.stats.total == 4
    assert sim.stats.by_path == {"/v1.0/users": 3, "/v1.0/organization": 1}
    assert sim.stats.by_source == {"users": 3, "organization": 1}
    remote = client.get(f"{sim.url}/_sim/stats").json()
    assert remote["total"] == 4 and remote["minimum"]["users"] == 1
    assert client.post(f"{sim.url}/_sim/reset").json()["total"] == 0


def test_empty_pages_are_legal_and_change_nothing(client: httpx.Client) -> None:
    with GraphSimulator(SPEC, SimConfig(empty_pages=True)) as sim:
        items, urls = collect(client, f"{sim.url}/v1.0/users?$top=100")
    assert len(urls) == 6 and len({u["id"] for u in items}) == SPEC.users


def test_page_cap_serves_fewer_than_top(client: httpx.Client) -> None:
    with GraphSimulator(SPEC, SimConfig(page_cap=40)) as sim:
        items, urls = collect(client, sim.url + USERS)
    assert len(urls) == 7 and len(items) == SPEC.users


def test_minimum_requests_counts_pages_at_maximum_size() -> None:
    tenant = SimTenant(TenantSpec(users=2000, service_principals=999, grants=1000, agent_identities=150))
    low = tenant.minimum_requests()
    assert set(low) == {k for k, s in SOURCES.items() if not s.delegated}
    assert (low["users"], low["service_principals"], low["delegated_grants"], low["agent_identities"]) == (3,
                                                                                                           1,
                                                                                                           2,
                                                                                                           2)


def _strip(doc: Any, base: str) -> Any:
    text = json.dumps(doc).replace(base, "https://graph.microsoft.com")
    return json.loads(text)


def test_fixtures_export_round_trips(tmp_path: Path, client: httpx.Client) -> None:
    n = export_fixtures(SPEC, tmp_path / "tenant")
    files = sorted((tmp_path / "tenant" / "exchanges").glob("*.json"))
    assert len(files) == n and files[0].name.startswith("001-organization")
    meta = yaml.safe_load((tmp_path / "tenant" / "tenant.yaml").read_text())
    assert meta["tenant_id"] == SimTenant(SPEC).tenant_id and meta["display_name"] == SPEC.tenant_name
    seen = set()
    with GraphSimulator(SPEC) as sim:
        for f in files:
            exchange = json.loads(f.read_text())
            req, resp = exchange["request"], exchange["response"]
            assert req["url"].startswith(("/v1.0/", "/beta/"))
            assert resp["status"] < 400 and resp["headers"]["request-id"]
            seen.add(source_of(*req["url"].partition("?")[::2]))
            body = req.get("body")
            if req["method"] == "POST":
                body = {"recordTypeFilters": ["CopilotInteraction"]}
            r = client.request(req["method"], sim.url + req["url"], json=body)
            assert r.status_code == resp["status"]
            if "body_text" in resp:
                assert r.text == resp["body_text"]
            elif "records" in req["url"] or req["method"] == "POST":
                continue  # a new query id each time
            else:
                assert _strip(r.json(), sim.url) == resp["body"], f.name
    assert seen == {k for k, s in SOURCES.items() if not s.delegated}


def test_rate_limit_is_a_token_bucket_with_retry_after(client: httpx.Client) -> None:
    now = [0.0]
    with GraphSimulator(SPEC, SimConfig(rate_limit=2), clock=lambda: now[0]) as sim:
        def status() -> tuple[int, str | None]:
            r = client.get(sim.url + SOURCES["organization"].url)
            return r.status_code, r.headers.get("Retry-After")

        assert [status(), status(), status()] == [(200, None), (200, None), (429, "1")]
        now[0] = 0.5  # half a second refills one of two tokens
        assert [status(), status()] == [(200, None), (429, "1")]
        now[0] = 10.0  # a full bucket holds one second's worth
        assert [status(), status(), status()] == [(200, None), (200, None), (429, "1")]
        assert sim.stats.throttled == 3
