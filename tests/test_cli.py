"""The CLI's exit codes and messages through click's CliRunner, on small inline policy folders and tenants."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from m365audit.cli import cli
from tests.conftest import ROOT

RULE = """\
rules:
  - id: connectors-not-indexing
    severity: high
    title: {nl: Geen connectoren, en: No connectors}
    rationale: {nl: r, en: r}
    remediation: {nl: h, en: h}
    sources: [external_connections]
    check:
      where: [{path: state, op: in, value: [ready, limitExceeded]}]
      expect: none
      objects: {id: id, name: name, detail: state}
"""


def policy_folder(tmp_path: Path, rules: str = RULE) -> Path:
    folder = tmp_path / "policies"
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "rules.yaml").write_text(rules)
    return folder


def tenant(tmp_path: Path, connections: dict[str, Any] | None, status: int = 200) -> Path:
    folder = tmp_path / "tenant"
    ex = folder / "exchanges"
    ex.mkdir(parents=True)
    (folder / "tenant.yaml").write_text("tenant_id: 5b1c7e2a-0d4f-4e6a-9c1b-2f3e4d5c6b7a\ndisplay_name: Test\n")
    org = {"value": [{"id": "5b1c7e2a-0d4f-4e6a-9c1b-2f3e4d5c6b7a", "displayName": "Gemeente Test"}]}
    (ex / "010-org.json").write_text(json.dumps({"request": {"method": "GET", "url": "/v1.0/organization"},
                                                 "response": {"status": 200, "body": org}}))
    body = connections if connections is not None else {"error": {"code": "Authorization_RequestDenied",
                                                                  "message": "Insufficient privileges"}}
    (ex / "020-conn.json").write_text(json.dumps({"request": {"method": "GET", "url": "/v1.0/external/connections"},
                                                  "response": {"status": status, "body": body}}))
    return folder


def audit(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", "--reports", str(tmp_path / "reports"), *args])


def test_exit_0_when_everything_passes(tmp_path: Path) -> None:
    recording, policies = str(tenant(tmp_path, {"value": []})), str(policy_folder(tmp_path))
    result = audit(tmp_path, "--replay", recording, "--policies", policies, "--lang", "en")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("COMPLIANT: Gemeente Test")
    dutch = audit(tmp_path, "--replay", recording, "--policies", policies)
    assert dutch.output.startswith("IN ORDE: Gemeente Test controle ") and "voldoet 1 · voldoet niet 0" in dutch.output


def test_exit_1_when_a_rule_fails(tmp_path: Path) -> None:
    body = {"value": [{"id": "hr", "name": "HR-systeem", "state": "ready"}]}
    result = audit(tmp_path, "--replay", str(tenant(tmp_path, body)), "--policies", str(policy_folder(tmp_path)),
                   "--lang", "en")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "connectors-not-indexing" in result.output


def test_exit_3_when_a_source_cannot_be_read(tmp_path: Path) -> None:
    recording, policies = str(tenant(tmp_path, None, 403)), str(policy_folder(tmp_path))
    result = audit(tmp_path, "--replay", recording, "--policies", policies, "--lang", "en")
    assert result.exit_code == 3, result.output
    assert result.output.startswith("INCOMPLETE")
    dutch = audit(tmp_path, "--replay", recording, "--policies", policies)
    assert dutch.exit_code == 3 and dutch.output.startswith("ONVOLLEDIG")
    assert "  NIET TE BEOORDELEN " in dutch.output and "ERROR" not in dutch.output


@pytest.mark.parametrize("args, expected", [
    (["--lang", "fr"], "'fr' is not one of 'nl', 'en'"),
    (["--concurrency", "0"], "0 is not in the range 1<=x<=16"),
    (["--auth", "password"], "'password' is not one of"),
])
def test_exit_2_for_a_bad_option_says_what_is_allowed(tmp_path: Path, args: list[str], expected: str) -> None:
    result = audit(tmp_path, *args)
    assert result.exit_code == 2 and expected in result.output


def test_exit_2_for_a_broken_policy_file_names_file_and_line(tmp_path: Path) -> None:
    broken = RULE.replace("op: in,", "op: inn,")
    result = audit(tmp_path, "--replay", str(tenant(tmp_path, {"value": []})),
                   "--policies", str(policy_folder(tmp_path, broken)))
    assert result.exit_code == 2
    assert "policies/rules/rules.yaml:9: connectors-not-indexing: check.where.0.op: unknown operator 'inn' " \
           "(did you mean 'in'?)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("manifest.json"))


def test_exit_4_without_credentials_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                 "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    result = audit(tmp_path, "--policies", str(policy_folder(tmp_path)))
    assert result.exit_code == 4
    assert "Error: no credential configured" in result.output and "AZURE_TENANT_ID" in result.output
    assert "Traceback" not in result.output


def test_exit_4_with_a_secret_method_but_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    result = audit(tmp_path, "--policies", str(policy_folder(tmp_path)), "--auth", "secret",
                   "--tenant-id", "5b1c7e2a-0d4f-4e6a-9c1b-2f3e4d5c6b7a",
                   "--client-id", "0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b")
    assert result.exit_code == 4 and "AZURE_CLIENT_SECRET" in result.output


def test_a_run_folder_can_be_verified_and_re_evaluated(tmp_path: Path) -> None:
    body = {"value": [{"id": "hr", "name": "HR-systeem", "state": "ready"}]}
    policies = policy_folder(tmp_path)
    assert audit(tmp_path, "--replay", str(tenant(tmp_path, body)), "--policies", str(policies)).exit_code == 1
    [run] = list((tmp_path / "reports").glob("*/2*"))
    assert CliRunner().invoke(cli, ["verify", str(run)]).exit_code == 0
    again = CliRunner().invoke(cli, ["evaluate", str(run), "--policies", str(policies), "--json"])
    assert again.exit_code == 1 and json.loads(again.output)["findings"][0]["status"] == "fail"
    replayed = audit(tmp_path, "--replay", str(run), "--policies", str(policies))
    assert replayed.exit_code == 1, "a run folder replays to the same verdict"


HEAVY = ("msgraph", "kiota", "azure", "jinja2", "pydantic", "yaml", "httpx", "asyncio", "m365audit.cli.audit_cmds",
         "m365audit.cli.evidence_cmds", "m365audit.cli.pack_cmds", "m365audit.models", "m365audit.graph")


def test_help_lists_commands_without_importing_anything_heavy() -> None:
    code = ("import sys; from m365audit.cli.main import main; sys.argv=['m365audit','--help']\n"
            "try:\n    main()\nexcept SystemExit: pass\n"
            f"print('LOADED', sorted({{m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    for command in ("audit", "evaluate", "validate", "rules", "explain", "schema", "verify", "permissions", "record",
                    "prune", "drift", "history", "keygen"):
        assert f"  {command}" in out
    assert out.strip().splitlines()[-1] == "LOADED []", "m365audit --help must stay fast (bench/bench_startup.py)"


def test_version_is_printed_as_click_prints_it() -> None:
    from m365audit import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"m365audit, version {__version__}\n"


def test_the_lazy_command_table_matches_the_commands() -> None:
    """--help lists COMMANDS without importing them: each entry is the command's name and first help paragraph."""
    import inspect

    import click

    from m365audit.cli.main import COMMANDS

    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.name == name and not command.hidden and command.short_help is None
        assert inspect.cleandoc(command.help or "").split("\n\n")[0] == COMMANDS[name][2], name
    eager = click.Group(commands=[c for n in COMMANDS if (c := cli.get_command(click.Context(cli), n))])
    for width in (60, 80, 120):
        lazy_rows = cli.get_help(click.Context(cli, terminal_width=width)).split("Commands:")[1]
        assert lazy_rows == eager.get_help(click.Context(eager, terminal_width=width)).split("Commands:")[1]


def test_the_cli_audits_a_local_simulator_with_a_placeholder_token(tmp_path: Path) -> None:
    from m365audit.simulator import GraphSimulator, TenantSpec

    with GraphSimulator(TenantSpec(users=1200)) as sim:
        result = CliRunner().invoke(cli, ["audit", "--graph-url", sim.url, "--auth", "none", "-q",
                                          "--reports", str(tmp_path / "reports"), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("COMPLIANT")


def test_auth_none_is_refused_against_microsoft_graph(tmp_path: Path) -> None:
    result = audit(tmp_path, "--auth", "none", "--policies", str(policy_folder(tmp_path)))
    assert result.exit_code == 2 and "only works with a local --graph-url" in result.output
    assert not any((tmp_path / "reports").rglob("manifest.json"))


def test_a_reader_that_closes_the_pipe_gets_no_error_and_the_run_is_complete(tmp_path: Path) -> None:
    import subprocess
    import sys

    # `true` reads nothing and is gone before the audit prints its first line
    command = (f"set -o pipefail; '{sys.executable}' -m m365audit audit --replay "
               f"'{ROOT / 'fixtures' / 'tenants' / 'copilot-pilot'}' --lang en --reports '{tmp_path}' | true")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 141, (done.returncode, done.stderr)
    assert "Error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(list(tmp_path.glob("*/*/manifest.json"))) == 1
