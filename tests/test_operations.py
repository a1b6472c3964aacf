"""docs/operations.md and its recipe files (docs/recipes): they parse, and they name the options this version has."""

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
RECIPES = ROOT / "docs" / "recipes"


def m365audit_calls(text: str) -> list[list[str]]:
    """Every m365audit command line in a text, as argv without the program."""
    calls = []
    for match in re.finditer(r"(?:^|[\s/])m365audit((?:-nightly)? (?:audit|prune|record|permissions|verify|drift|--)"
                             r"[^\n;>|]*)", text):
        argv = shlex.split(match.group(1).replace('"$(Pipeline.Workspace)/reports"', "reports"))
        calls.append(["audit", *argv[1:]] if argv[0] == "-nightly" else argv)  # m365audit-nightly: audit's options
    return calls


def accepted(argv: list[str]) -> None:
    """click parses the options (and --help stops before doing anything): the recipe names real options."""
    result = CliRunner().invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, f"m365audit {' '.join(argv)}: {result.output}"
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert option in result.output, f"m365audit {argv[0]} has no option {option}"


def test_github_workflow_uses_oidc_and_runs_the_audit() -> None:
    doc = yaml.safe_load((RECIPES / "github-actions.yml").read_text(encoding="utf-8"))
    assert doc["permissions"]["id-token"] == "write"
    assert doc[True]["schedule"][0]["cron"] == "15 2 * * *"  # YAML 1.1 reads the key 'on' as True
    steps = doc["jobs"]["audit"]["steps"]
    audit = next(s for s in steps if s.get("name") == "Audit")
    assert "--auth workload-identity" in audit["run"] and "AZURE_CLIENT_SECRET" not in str(doc)
    assert "--notify" in audit["run"]
    assert any("AZURE_FEDERATED_TOKEN_FILE" in s.get("run", "") for s in steps)
    calls = m365audit_calls(audit["run"])
    assert calls
    for argv in calls:
        accepted(argv)


def test_azure_devops_pipeline_publishes_junit() -> None:
    doc = yaml.safe_load((RECIPES / "azure-pipelines.yml").read_text(encoding="utf-8"))
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
    parser.read_string((RECIPES / name).read_text(encoding="utf-8"))
    if name.endswith(".timer"):
        assert parser["Timer"]["OnCalendar"] and parser["Install"]["WantedBy"] == "timers.target"
        return
    service = parser["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0] == "/usr/local/bin/m365audit-nightly"  # runs `m365audit audit --quiet` with these options
    accepted(["audit", *exec_start[1:]])
    accepted(shlex.split(service["ExecStartPre"].lstrip("-"))[1:])
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "/var/lib/m365audit" in service["ReadWritePaths"]


def test_cron_lines_have_five_time_fields_a_user_and_real_commands() -> None:
    lines = [line for line in (RECIPES / "m365audit.cron").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#") and not re.match(r"^[A-Z]+=", line)]
    assert len(lines) == 2
    for line in lines:
        fields = line.split()
        assert len(fields) > 6 and fields[5] == "m365audit"
        calls = m365audit_calls(line)
        assert len(calls) == 1
        accepted(calls[0])


def test_the_config_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text((RECIPES / "tenants.toml").read_text(encoding="utf-8"), encoding="utf-8")
    config = load_config(path)
    assert [t.name for t in config.tenants] == ["gemeente-a", "gemeente-b", "gemeente-c"]
    assert all(t.auth == "certificate" and t.certificate_path_env and t.notify for t in config.tenants)


def test_readme_links_the_operations_guide_and_the_recipes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme and "docs/recipes" in readme


def test_operations_links_every_recipe_and_copies_none() -> None:
    text = DOC.read_text(encoding="utf-8")
    for recipe in RECIPES.iterdir():
        if recipe.name != "README.md":
            assert f"(recipes/{recipe.name})" in text, recipe.name
    blocks = re.findall(r"```([a-z]*)\n(.*?)```", text, flags=re.S)
    assert not [b for lang, b in blocks if lang in ("ini", "cron", "toml", "yaml") or "ExecStart=" in b
                or "runs-on:" in b or "[[tenant]]" in b]
