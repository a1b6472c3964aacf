"""The fault matrix: every fault kind on every source, against the real pipeline and the Graph simulator."""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from m365audit.audit import runner
from m365audit.collect import SOURCES, FetchContext
from m365audit.evaluate import load_pack
from m365audit.graph import PlaceholderCredential
from m365audit.models import PolicyPack, Status
from m365audit.report import writer as report
from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec
from m365audit.simulator.export import export_fixtures
from m365audit.simulator.server import FAULT_KINDS, Fault, FaultKind
from tests.conftest import collect_from_simulator

# a compliant municipality: every automated rule passes, so a fault can only show as error (exit 3) or as a
# false pass or fail, which the matrix catches
SPEC = TenantSpec(users=120, service_principals=12, grants=6, app_role_assignments=3, copilot_users=0, seed=11)
POLICIES = Path(os.environ["M365AUDIT_POLICIES"]) if os.environ.get("M365AUDIT_POLICIES") else None
HTTP_STATUS = {"403": 403, "404": 404, "500": 500, "503": 503, "504": 504, "nextlink404": 404}
TIMEOUT = 0.5  # the client's timeout in the timeout cells; the simulator hangs until it stops

# GraphSession cannot close its connection pool: msgraph-core's AsyncGraphTransport has no aclose(), so
# httpx.AsyncClient.aclose() never reaches it. The tests pass their own transport and close it themselves.


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiota_http.middleware import RetryHandler

    monkeypatch.setattr(RetryHandler, "get_delay_time", lambda self, *a, **k: 0.0)


@pytest.fixture(autouse=True)
def no_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """A live audit against the simulator: a placeholder token, never a real sign-in, and no 10 s audit poll."""
    patch_live_run(monkeypatch)


def patch_live_run(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(runner, "build_credential", lambda *args, **kwargs: PlaceholderCredential())
    mp.setattr(runner, "FetchContext", lambda **kw: FetchContext(**{**kw, "audit_poll_interval": 0.0}))
    mp.setattr(runner, "load_pack", _pack)  # parsed once: reading the YAML is half of a cell's time
    environment = getattr(report, "_environment", None)
    if environment is not None:  # report.py builds a new jinja2 Environment, so recompiles every template, per run
        mp.setattr(report, "_environment", functools.lru_cache(maxsize=1)(environment))


_PACKS: dict[str, PolicyPack] = {}


def _pack(*args: Any, **kwargs: Any) -> PolicyPack:
    key = repr((args, sorted(kwargs.items())))
    if key not in _PACKS:
        _PACKS[key] = load_pack(*args, **kwargs)
    return _PACKS[key]


@pytest.fixture(scope="module")
def sim() -> Iterator[GraphSimulator]:
    with GraphSimulator(SPEC) as s:
        yield s


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return _pack(POLICIES)


def closure(keys: list[str]) -> set[str]:
    """The sources plus everything they depend on."""
    out, todo = set(), list(keys)
    while todo:
        key = todo.pop()
        if key not in out:
            out.add(key)
            todo.extend(SOURCES[key].depends_on)
    return out


def audit(sim: GraphSimulator, config: SimConfig, tmp: Path, timeout: float = 30.0) -> runner.AuditResult:
    sim.config = config
    sim.reset_stats()

    async def go() -> runner.AuditResult:
        # our own transport, closed here: GraphSession cannot close its pool (see the note above), and an
        # http-only transport skips loading the CA bundle, a fifth of a cell's time
        transport = httpx.AsyncHTTPTransport(verify=False)
        try:
            return await runner.run_audit(runner.AuditOptions(
                reports=tmp / "reports", policies=POLICIES, graph_root=sim.url, audit_wait=60, timeout=timeout,
                transport=transport))
        finally:
            await transport.aclose()

    return asyncio.run(go())


def statuses(result: runner.AuditResult) -> dict[str, Status]:
    return {f.rule_id: f.status for f in result.findings}


@pytest.fixture(scope="module")
def baseline(sim: GraphSimulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Status]:
    mp = pytest.MonkeyPatch()
    patch_live_run(mp)
    try:
        result = audit(sim, SimConfig(), tmp_path_factory.mktemp("baseline"))
    finally:
        mp.undo()
    assert result.verdict == "pass" and result.exit_code == 0, statuses(result)
    return statuses(result)


def test_generated_tenant_is_compliant_and_replays_to_the_same_verdicts(
    baseline: dict[str, Status], tmp_path: Path
) -> None:
    assert Status.PASS in baseline.values()
    export_fixtures(SPEC, tmp_path / "tenant")
    options = runner.AuditOptions(reports=tmp_path / "reports", policies=POLICIES, replay=tmp_path / "tenant")
    result = asyncio.run(runner.run_audit(options))
    assert statuses(result) == baseline
    assert result.unmatched == []


def exchanges(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "exchanges").glob("*.json"))]


def check_evidence(result: runner.AuditResult, source: str, kind: FaultKind, sim: GraphSimulator) -> None:
    """The run folder shows the failure: the failed exchange itself, or (no answer at all) the source's error."""
    snap = json.loads((result.run_dir / "snapshot.json").read_text())
    error = snap["sources"][source]["error"]
    assert snap["sources"][source]["ok"] is False and error["message"]
    faulted = [e for e in exchanges(result.run_dir) if e.get("source") == source]
    if kind in HTTP_STATUS:
        assert any(e["response"]["status"] == HTTP_STATUS[kind] for e in faulted), faulted
        assert error["status"] == HTTP_STATUS[kind]
    elif kind in ("html", "empty"):
        bodies = [(result.run_dir / "exchanges" / e["response"]["body_file"]).read_bytes() for e in faulted]
        assert any(b == b"" or b.startswith(b"<!DOCTYPE html>") for b in bodies)
    else:  # timeout, truncated: no response arrived, so the error names the request that failed
        assert error["code"] in ("Timeout", "NetworkError") and error["url"].startswith(sim.url)


def run_cell(kind: FaultKind, source: str, sim: GraphSimulator, pack: PolicyPack,
             baseline: dict[str, Status], tmp: Path, after: int = 0, cap: int | None = None) -> None:
    config = SimConfig(faults={source: Fault(kind, after=after)}, page_cap=cap)
    timeout = TIMEOUT if kind == "timeout" else 30.0
    if source not in closure(runner.needed_sources(pack)):
        # no rule reads it yet: the collector alone must still call it an error, never data
        results = _collect_only(sim, config, source, timeout)
        assert not results[source].ok, results[source]
        assert all(r.ok for k, r in results.items() if k != source and source not in closure([k]))
        return
    result = audit(sim, config, tmp, timeout)
    got = statuses(result)
    hit = {r.id for r in judged(pack) if source in closure(r.sources)}
    assert {k: v for k, v in got.items() if k in hit} == {k: Status.ERROR for k in hit}
    assert {k: v for k, v in got.items() if k not in hit} == {k: v for k, v in baseline.items() if k not in hit}
    assert result.exit_code == (3 if hit else 0)
    check_evidence(result, source, kind, sim)


def judged(pack: PolicyPack) -> list[Any]:
    """The rules an app-only run evaluates: automated ones, and manual ones observed by app-only sources."""
    return [r for r in pack.rules if r.check is not None
            or r.observed_by is not None and not any(SOURCES[k].delegated for k in r.sources)]


def _collect_only(sim: GraphSimulator, config: SimConfig, source: str, timeout: float) -> dict[str, Any]:
    sim.config = config
    sim.reset_stats()
    return collect_from_simulator(sim.url, [source], timeout=timeout)[0]


def applies(kind: FaultKind, source: str) -> bool:
    """A next link can only be broken on a source that is (or includes) a paged collection."""
    return kind != "nextlink404" or SOURCES[source].shape in ("collection", "custom") and source not in (
        "resource_permissions", "copilot_usage")


@pytest.mark.parametrize("source", [k for k, s in SOURCES.items() if not s.delegated])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_matrix(kind: FaultKind, source: str, sim: GraphSimulator, pack: PolicyPack,
                     baseline: dict[str, Status], tmp_path: Path) -> None:
    if not applies(kind, source):
        pytest.skip("single objects and the CSV report have no next link to break")
    run_cell(kind, source, sim, pack, baseline, tmp_path)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_fault_on_a_later_page_is_never_a_pass(kind: FaultKind, sim: GraphSimulator, pack: PolicyPack,
                                                 baseline: dict[str, Status], tmp_path: Path) -> None:
    run_cell(kind, "users", sim, pack, baseline, tmp_path, after=1, cap=50)  # page 2 of 3 fails
    assert sim.stats.by_source["users"] >= 2


def test_throttling_at_30_percent_changes_no_verdict(
    sim: GraphSimulator, baseline: dict[str, Status], tmp_path: Path
) -> None:
    result = audit(sim, SimConfig(throttle_rate=0.3, page_cap=10, seed=5), tmp_path)  # small pages: more requests
    assert statuses(result) == baseline and result.exit_code == 0
    assert sim.stats.throttled >= 3
    recorded_429 = [e for e in exchanges(result.run_dir) if e["response"]["status"] == 429]
    assert len(recorded_429) == sim.stats.throttled  # every throttled attempt is in the evidence


@pytest.mark.parametrize("config", [SimConfig(empty_pages=True), SimConfig(page_cap=7), SimConfig(audit_polls=2)],
                         ids=["empty-pages", "small-pages", "slow-audit-query"])
def test_legal_graph_quirks_change_no_verdict(config: SimConfig, sim: GraphSimulator,
                                              baseline: dict[str, Status], tmp_path: Path) -> None:
    result = audit(sim, config, tmp_path)
    assert statuses(result) == baseline and result.exit_code == 0


def test_an_audit_query_that_never_finishes_is_an_error(sim: GraphSimulator, pack: PolicyPack,
                                                        baseline: dict[str, Status], tmp_path: Path) -> None:
    result = audit(sim, SimConfig(audit_polls=1000), tmp_path)  # still "running" after every allowed poll
    hit = {r.id for r in judged(pack) if "audit_ai_interactions" in r.sources}
    assert hit and all(statuses(result)[k] == Status.ERROR for k in hit)
    assert {k: v for k, v in statuses(result).items() if k not in hit} == {
        k: v for k, v in baseline.items() if k not in hit}
    assert result.exit_code == 3


def test_throttling_that_never_clears_is_an_error_never_a_pass(sim: GraphSimulator, pack: PolicyPack,
                                                                tmp_path: Path) -> None:
    result = audit(sim, SimConfig(throttle_rate=1.0, throttle_streak=1000), tmp_path)
    automated = {r.id for r in judged(pack)}
    assert {k for k, v in statuses(result).items() if v == Status.ERROR} == automated
    assert result.exit_code == 3
    assert sim.stats.throttled == sim.stats.total  # every attempt, retries included, was a 429


def test_no_source_answering_at_all_is_an_environment_failure(sim: GraphSimulator, tmp_path: Path) -> None:
    from m365audit.errors import EXIT_ENVIRONMENT, AuditError

    # every connection drops: nothing was read
    faults = {key: Fault("truncated") for key, s in SOURCES.items() if not s.delegated}
    with pytest.raises(AuditError) as caught:
        audit(sim, SimConfig(faults=faults), tmp_path)
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert not list((tmp_path / "reports").glob("*/*/manifest.json"))  # no run that looks complete
