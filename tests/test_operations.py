"""The scheduling recipes in docs/operations.md: they parse, and they run the commands this version has."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.operations import load_config
from tests.conftest import ROOT

DOC = ROOT / "docs" / "operations.md"


def block(first_line: str) -> str:
    """The fenced code block of operations.md whose first line is the given comment."""
    for body in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        if body.splitlines()[0].strip() == first_line:
            return str(body)
    raise AssertionError(f"no block starting with {first_line!r} in {DOC}")


def m365audit_calls(text: str) -> list[list[str]]:
    """Every m365audit command line in a text, as argv without the program."""
    calls = []
    for match in re.finditer(r"(?:^|[\s/])m365audit ((?:audit|prune|record|permissions|verify)\b[^\n;>]*)", text):
        calls.append(shlex.split(match.group(1).replace('"$(Build.ArtifactStagingDirectory)/reports"', "reports")))
    return calls


def accepted(argv: list[str]) -> None:
    """click parses the options (and --help stops before doing anything): the recipe names real options."""
    result = CliRunner().invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, f"m365audit {' '.join(argv)}: {result.output}"
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in result.output, f"m365audit {argv[0]} has no option {option}"


def test_github_workflow_uses_oidc_and_runs_the_audit() -> None:
    doc = yaml.safe_load(block("# .github/workflows/m365audit.yml"))
    assert doc["permissions"]["id-token"] == "write"
    assert doc[True]["schedule"][0]["cron"] == "15 2 * * *"  # YAML 1.1 reads the key 'on' as True
    steps = doc["jobs"]["audit"]["steps"]
    audit = next(s for s in steps if s.get("name") == "Audit")
    assert "--auth workload-identity" in audit["run"] and "AZURE_CLIENT_SECRET" not in str(doc)
    assert any("AZURE_FEDERATED_TOKEN_FILE" in s.get("run", "") for s in steps)
    calls = m365audit_calls(audit["run"])
    assert calls
    for argv in calls:
        accepted(argv)


def test_azure_devops_pipeline_publishes_junit() -> None:
    doc = yaml.safe_load(block("# azure-pipelines.yml"))
    steps = doc["steps"]
    publish = next(s for s in steps if s.get("task") == "PublishTestResults@2")
    assert publish["inputs"]["testResultsFormat"] == "JUnit" and publish["inputs"]["testResultsFiles"].endswith(
        "junit.xml")
    assert publish["condition"] == "always()"
    audit = next(s for s in steps if s.get("displayName") == "Audit")
    assert audit["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    calls = m365audit_calls(audit["script"])
    assert calls
    for argv in calls:
        accepted(argv)


@pytest.mark.parametrize("name", ["m365audit.service", "m365audit.timer"])
def test_systemd_units_parse(name: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(block(f"# /etc/systemd/system/{name}"))
    if name.endswith(".timer"):
        assert parser["Timer"]["OnCalendar"] and parser["Install"]["WantedBy"] == "timers.target"
        return
    service = parser["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].endswith("/bin/m365audit") and exec_start[1] == "audit" and "--quiet" in exec_start
    accepted(exec_start[1:])
    accepted(shlex.split(service["ExecStartPre"].lstrip("-"))[1:])
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "/var/lib/m365audit" in service["ReadWritePaths"]


def test_cron_lines_have_five_time_fields_a_user_and_real_commands() -> None:
    lines = [line for line in block("# /etc/cron.d/m365audit").splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    for line in lines:
        fields = line.split()
        assert len(fields) > 6 and fields[5] == "m365audit"
        calls = m365audit_calls(line)
        assert len(calls) == 1
        accepted(calls[0])


def test_the_config_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(block("# /etc/m365audit/tenants.toml"), encoding="utf-8")
    config = load_config(path)
    assert [t.name for t in config.tenants] == ["gemeente-a", "gemeente-b"]
    assert config.tenants[0].auth == "certificate" and config.tenants[1].secret_env == "GEMEENTE_B_SECRET"


def test_readme_links_the_operations_guide() -> None:
    assert "docs/operations.md" in (ROOT / "README.md").read_text(encoding="utf-8")
