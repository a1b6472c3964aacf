"""The CLI an operator with twenty scheduled jobs expects: --tenant by name or domain, drift over tenants, headers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.cli import cli
from tests.test_drift import NIGHTS, run_night, run_pair

VOORBEELD = "061ea7c2-cc15-418b-bfc0-9f6a7d98011c"
PROEFSTAD = "4c7e2b19-8d3a-4f6e-b1c5-7a9d0e2f3b48"


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gemeente Voorbeeld with a regression between two nights; Gemeente Proefstad with its first night only."""
    reports = tmp_path_factory.mktemp("reports")
    run_pair("ca-report-only", reports)
    run_night(NIGHTS / "new-copilot-user" / "night1", reports, {"now": "2026-11-28T03:00:00Z"})
    return reports


@pytest.mark.parametrize("name", [VOORBEELD, VOORBEELD.upper(), "voorbeeld.nl", "GemeenteVoorbeeld.onmicrosoft.com",
                                  "Gemeente Voorbeeld", "gemeente voorbeeld"])
def test_tenant_by_id_domain_or_display_name(two_tenants: Path, name: str) -> None:
    result = CliRunner().invoke(cli, ["drift", "--tenant", name, "--reports", str(two_tenants), "--exit-code",
                                      "--lang", "en"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("REGRESSION: 1 rule(s) got worse")
    history = CliRunner().invoke(cli, ["history", name, "--reports", str(two_tenants)])
    assert history.exit_code == 0 and history.output.startswith(VOORBEELD)
    prune = CliRunner().invoke(cli, ["prune", "--keep-days", "36500", "--tenant", name, "--reports",
                                     str(two_tenants), "--dry-run"])
    assert prune.exit_code == 0 and "0 run(s) would be pruned" in prune.output


def test_an_unknown_tenant_lists_the_known_ones(two_tenants: Path) -> None:
    result = CliRunner().invoke(cli, ["drift", "--tenant", "Gemeente Elders", "--reports", str(two_tenants)])
    assert result.exit_code == 2
    assert "Gemeente Voorbeeld" in result.output and "Gemeente Proefstad" in result.output


def test_an_ambiguous_display_name_is_exit_2_with_the_candidates(two_tenants: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    shutil.copytree(two_tenants, reports)
    shutil.copytree(reports / VOORBEELD, reports / "0f0f0f0f-0000-4000-8000-000000000001")  # same name, other id
    result = CliRunner().invoke(cli, ["history", "Gemeente Voorbeeld", "--reports", str(reports)])
    assert result.exit_code == 2 and "matches 2 tenants" in result.output
    assert VOORBEELD in result.output and "0f0f0f0f-0000-4000-8000-000000000001" in result.output


def test_drift_exit_code_judges_every_tenant_and_a_first_night_is_a_note(two_tenants: Path) -> None:
    result = CliRunner().invoke(cli, ["drift", "--exit-code", "--reports", str(two_tenants), "--lang", "en"])
    assert result.exit_code == 1, result.output
    assert f"{VOORBEELD} (Gemeente Voorbeeld):" in result.output and "REGRESSION" in result.output
    assert f"{PROEFSTAD} (Gemeente Proefstad): first run of this tenant" in result.output
    alone = CliRunner().invoke(cli, ["drift", "--exit-code", "--tenant", "Gemeente Proefstad",
                                     "--reports", str(two_tenants), "--lang", "nl"])
    assert alone.exit_code == 0 and "eerste controle van deze tenant" in alone.output


def test_drift_exit_code_is_0_when_no_tenant_regressed(tmp_path: Path) -> None:
    run_pair("reordered-identical", tmp_path)
    run_night(NIGHTS / "new-copilot-user" / "night1", tmp_path, {"now": "2026-11-28T03:00:00Z"})
    result = CliRunner().invoke(cli, ["drift", "--exit-code", "--reports", str(tmp_path), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output
    dutch = CliRunner().invoke(cli, ["drift", "--exit-code", "--reports", str(tmp_path)])  # Dutch is the default
    assert dutch.exit_code == 0 and "niets verslechterd" in dutch.output, dutch.output


@pytest.mark.parametrize(("lang", "sentence"), [("nl", "Er zijn nog geen complete controles"),
                                                ("en", "There are no complete runs")])
def test_history_and_drift_without_runs_are_exit_0_with_a_sentence(tmp_path: Path, lang: str,
                                                                   sentence: str) -> None:
    for command in ("history", "drift"):
        result = CliRunner().invoke(cli, [command, "--reports", str(tmp_path / "reports"), "--lang", lang])
        assert result.exit_code == 0 and sentence in result.output, (command, result.output)


def test_an_error_line_carries_its_fix_even_when_quiet(tmp_path: Path) -> None:
    pair = NIGHTS / "source-errors"
    result = CliRunner().invoke(cli, ["audit", "--replay", str(pair / "night2"), "--reports", str(tmp_path), "-q",
                                      "--lang", "en"])
    assert result.exit_code == 3
    findings = json.loads(next(tmp_path.glob("*/*/findings.json")).read_text())["findings"]
    errors = [f for f in findings if f["status"] == "error"]
    lines = [line for line in result.output.splitlines() if line.startswith("  ERROR ")]
    assert errors and len(lines) == len(errors)
    for finding in errors:
        [line] = [ln for ln in lines if f" {finding['rule_id']}: " in ln]
        hints = [e["hint"] for e in finding["errors"] if e.get("hint")]
        assert " Fix: " in line and hints[0] in line
    dutch = CliRunner().invoke(cli, ["evaluate", str(next(tmp_path.glob("*/2*"))), "--lang", "nl"])
    assert " Oplossing: " in dutch.output
