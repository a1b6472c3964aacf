"""Work overlaps the longest Graph chain: sources start when their own dependencies are done, rules as theirs are."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone
from pathlib import Path

import httpx

from m365audit.audit.early import EarlyEvaluation
from m365audit.audit.runner import AuditOptions, needed_sources, run_audit
from m365audit.collect import FetchContext, build_snapshot, collect
from m365audit.collect.collector import with_dependencies
from m365audit.collect.sources import resolve_order
from m365audit.evaluate import evaluate, load_pack
from m365audit.evaluate.engine import rule_needs
from m365audit.graph import CredentialSettings, GraphSession, PlaceholderCredential
from m365audit.models import SourceResult
from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec

SPEC = TenantSpec(users=300, service_principals=30, grants=12, copilot_users=5, agent_identities=3, seed=7)
NOW = datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc)


def test_a_source_starts_when_its_dependencies_are_done_not_after_the_slowest_of_its_wave() -> None:
    told: list[str] = []
    keys = ["organization", "users", "resource_permissions", "app_role_assignments", "audit_ai_interactions"]

    async def go(url: str) -> dict[str, SourceResult]:
        ctx = FetchContext(now=NOW, audit_poll_interval=0.05, audit_poll_seconds=30)
        transport = httpx.AsyncHTTPTransport()
        try:
            async with GraphSession(PlaceholderCredential(), graph_root=url, transport=transport) as session:
                return await collect(session, keys, ctx, on_done=lambda r: told.append(r.key))
        finally:
            await transport.aclose()

    with GraphSimulator(SPEC, SimConfig(audit_seconds=1.0)) as sim:  # the Purview query runs a second
        sources = asyncio.run(go(sim.url))
    assert all(r.ok for r in sources.values()), {k: r.error for k, r in sources.items() if not r.ok}
    assert told[-1] == "audit_ai_interactions", "the second-wave source did not wait for the slow query"
    assert told.index("app_role_assignments") < told.index("audit_ai_interactions")
    assert list(sources) == [k for wave in resolve_order(with_dependencies(keys)) for k in wave], "order unchanged"


def test_rules_are_judged_once_their_sources_are_in_and_the_findings_equal_evaluate(tmp_path: Path) -> None:
    with GraphSimulator(SPEC, SimConfig(audit_polls=-1)) as sim:
        result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, graph_root=sim.url, now=NOW, lang="en",
                                                    credential=CredentialSettings(method="none"))))
    pack = load_pack(None, None)
    today = NOW.date()
    whole = evaluate(result.snapshot, pack, today)
    assert [f.model_dump() for f in result.findings] == [f.model_dump() for f in whole]

    early = EarlyEvaluation(pack, today, lambda done: build_snapshot(done, NOW, result.snapshot.tenant_id))
    last = "audit_ai_interactions"
    for key, source in result.snapshot.sources.items():
        if key != last:
            early.source_done(source)
    waiting = {pack.rules[i].id for i in early._waiting}  # judged already: every rule that does not need the query
    assert waiting == {r.id for r in pack.rules if last in rule_needs(r, pack)
                       or not rule_needs(r, pack) <= set(result.snapshot.sources)}
    assert waiting and len(waiting) < len(pack.rules) // 2
    findings = asyncio.run(early.findings(result.snapshot))
    assert [f.model_dump() for f in findings] == [f.model_dump() for f in whole]


def test_a_rule_waits_for_the_sources_of_the_rules_it_uses() -> None:
    pack = load_pack(None, None)
    users = [r for r in pack.rules if r.active_check is not None and r.active_check.uses_rules]
    for rule in users:
        assert rule_needs(rule, pack) >= {key for other in rule.active_check.uses_rules  # type: ignore[union-attr]
                                          for key in (pack.rule(other).sources if pack.rule(other) else [])}
    assert needed_sources(pack)  # the default pack reads Graph at all


def test_nothing_collected_judges_nothing_as_pass() -> None:
    pack = load_pack(None, None)
    early = EarlyEvaluation(pack, date(2026, 11, 28), lambda done: build_snapshot(done, NOW, "t"))
    snapshot = build_snapshot({}, NOW, "t")
    findings = asyncio.run(early.findings(snapshot))  # nothing collected: every automated rule is error, none pass
    assert len(findings) == len(pack.rules)
    assert all(f.status.value in ("error", "manual") for f in findings)
