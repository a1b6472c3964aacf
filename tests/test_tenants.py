"""Many tenants from a TOML file: isolated failures, bounded parallelism, one table, the worst exit code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.errors import UsageError
from m365audit.operations import audit_all, load_config, worst
from m365audit.operations.tenants import TenantConfig, TenantOutcome
from tests.conftest import TENANTS

CONFIG = f"""
parallel = 2

[defaults]
reports = "reports"
lang = "en"

[[tenant]]
name = "gemeente-a"
replay = "{TENANTS / 'gemeente-voorbeeld'}"

[[tenant]]
name = "gemeente-b"
replay = "{TENANTS / 'copilot-pilot'}"
notify = ["https://hooks.voorbeeld.nl/m365audit"]

[[tenant]]
name = "gemeente-c"
replay = "{TENANTS / 'permissions-missing'}"

[[tenant]]
name = "gemeente-d"
tenant_id = "5b1c7e2a-0d4f-4e6a-9c1b-2f3e4d5c6b7a"
client_id = "0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
auth = "secret"
secret_env = "GEMEENTE_D_SECRET"
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "m365audit.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("codes, expected", [
    ([0, 0], 0), ([0, 3], 3), ([3, 1], 1), ([1, 4], 4), ([4, 2], 2), ([2, 1, 3, 0], 2), ([], 0)])
def test_worst_orders_usage_then_environment_then_fail_then_incomplete(codes: list[int], expected: int) -> None:
    assert worst(codes) == expected


def test_one_table_and_the_worst_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMEENTE_D_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["audit", "--config", str(write(tmp_path))])
    lines = result.output.splitlines()
    assert lines[0].split() == ["tenant", "exit", "verdict", "details"]
    by_name = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert by_name == {"gemeente-a": "0", "gemeente-b": "1", "gemeente-c": "3", "gemeente-d": "2"}
    assert "GEMEENTE_D_SECRET is not set" in result.output
    assert result.exit_code == 2
    assert len(list((tmp_path / "reports").glob("*/2*"))) == 3, "the failing tenant did not stop the others"


def test_the_secret_comes_from_the_named_variable_only(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    tenant = config.tenants[3]
    env = tenant.credential_env({"GEMEENTE_D_SECRET": "s3cr3t-value", "AZURE_CLIENT_SECRET": "someone-elses"})
    assert env["AZURE_CLIENT_SECRET"] == "s3cr3t-value"
    plain = config.tenants[0].credential_env({"AZURE_CLIENT_SECRET": "someone-elses"})
    assert "AZURE_CLIENT_SECRET" not in plain, "a tenant never inherits another identity's secret"


def test_a_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    text = CONFIG.replace('secret_env = "GEMEENTE_D_SECRET"', 'client_secret = "abc"')
    with pytest.raises(UsageError, match="looks like a secret") as err:
        load_config(write(tmp_path, text))
    assert "abc" not in str(err.value) and "secret_env" in (err.value.hint or "")


@pytest.mark.parametrize("text, message", [
    ("parallel = 0\n[[tenant]]\nname = 'a'\n", "parallel must be"),
    ("[[tenant]]\nname = 'a'\n[[tenant]]\nname = 'a'\n", "used twice"),
    ("[[tenant]]\nname = 'a'\ntenant_id = 'AB-1'\n[[tenant]]\nname = 'b'\ntenant_id = 'ab-1'\n",
     "tenant_id used by more than one"),
    ("[[tenant]]\nname = 'a'\nauth = 'device-code'\n", "auth must be"),
    ("[[tenant]]\nname = 'a'\nfoo = 1\n", "unknown key"),
    ("[[tenant]\n", "invalid TOML"),
    ("", "no [[tenant]]"),
])
def test_config_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_at_most_parallel_tenants_run_at_once_and_a_crash_is_isolated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "parallel = 2\n" + "".join(
        f"[[tenant]]\nname = 't{i}'\n" for i in range(6))))
    running = 0
    peak = 0

    async def fake(tenant: TenantConfig, env: dict[str, str]) -> TenantOutcome:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if tenant.name == "t3":
            raise RuntimeError("boom")
        return TenantOutcome(tenant.name, 0, "pass")

    outcomes = asyncio.run(audit_all(config, environ={}, auditor=fake))
    assert peak == 2
    assert [o.exit_code for o in outcomes] == [0, 0, 0, 4, 0, 0]
    assert outcomes[3].error == "RuntimeError: boom"


def test_alert_targets_and_rhythm_are_checked_and_passed_per_tenant(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("M365AUDIT_SMTP_HOST", raising=False)
    mail = write(tmp_path, '[[tenant]]\nname = "gemeente-a"\nnotify = ["mailto:ciso@gemeente-a.example"]\n')
    with pytest.raises(UsageError, match="tenant gemeente-a: --notify mailto: needs the mail server"):
        load_config(mail)
    monkeypatch.setenv("M365AUDIT_SMTP_HOST", "smtp.gemeente-a.example")
    ok = write(tmp_path, '[[tenant]]\nname = "gemeente-a"\nnotify = ["mailto:ciso@gemeente-a.example"]\n'
                         'report_url = "https://intranet.gemeente-a.example/m365audit/"\nremind_every = 14\n')
    [tenant] = load_config(ok).tenants
    assert (tenant.report_url, tenant.remind_every, tenant.incomplete_nights) == (
        "https://intranet.gemeente-a.example/m365audit/", 14, 3)
