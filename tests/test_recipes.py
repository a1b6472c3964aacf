"""docs/recipes: every scheduler recipe runs its m365audit steps on replayed tenants and reacts to the exit codes."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from m365audit.operations.tenants import load_config
from tests.conftest import ROOT, TENANTS

RECIPES = ROOT / "docs" / "recipes"
NIGHTS = ROOT / "fixtures" / "nights" / "new-ai-app-grant"  # night 2: two rules pass -> fail
TENANT_ID = "061ea7c2-cc15-418b-bfc0-9f6a7d98011c"  # gemeente-voorbeeld, and both nights of the pair
SIGN_IN = re.compile(r"--auth \S+(?: --certificate \S+)?")
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:?\d\d ")  # ISO 8601, as bash or date -Is


@dataclass
class Hooks:
    """A webhook receiver on 127.0.0.1: the recipes' --notify placeholder points here in the tests."""

    url: str
    posts: list[str] = field(default_factory=list)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hooks(url=f"http://127.0.0.1:{server.server_address[1]}", posts=received)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Host:
    """A temporary stand-in for the server's folders; the recipes' absolute paths are rewritten into it."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def localise(self, text: str) -> str:
        for real, here in (("/opt/m365audit/.venv/bin/m365audit", self.bin / "m365audit"),
                           ("/usr/local/bin/m365audit-nightly", self.bin / "m365audit-nightly"),
                           ("/etc/m365audit", self.root / "etc"), ("/var/lib/m365audit", self.root / "var"),
                           ("/var/log/m365audit", self.root / "log")):
            text = text.replace(real, str(here))
        return text

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", "M365AUDIT": str(self.bin / "m365audit"),
                "NO_COLOR": "1", **extra}


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path)
    for folder in ("bin", "etc/local", "var/reports", "log"):
        (tmp_path / folder).mkdir(parents=True)
    stub = h.bin / "m365audit"  # the venv's program: this interpreter with this checkout
    stub.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m m365audit "$@"\n', encoding="utf-8")
    stub.chmod(0o755)
    (h.bin / "m365audit-nightly").symlink_to(RECIPES / "m365audit-nightly")
    return h


def replayed(command: str, tenant: Path) -> str:
    """The recipe's command with the live sign-in replaced by a recorded tenant."""
    assert SIGN_IN.search(command), f"no sign-in options in {command!r}"
    return SIGN_IN.sub(f"--replay {tenant}", command)


def env_file(host: Host, hooks: Hooks) -> Path:
    """/etc/m365audit/env from env.example, with a webhook URL that needs its quotes (& and %)."""
    text = (RECIPES / "env.example").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^AZURE_TENANT_ID=.*$", f"AZURE_TENANT_ID={TENANT_ID}", text)
    text = re.sub(r"(?m)^M365AUDIT_NOTIFY_URL=.*$", f"M365AUDIT_NOTIFY_URL='{hooks.url}/m365audit?a=1&sig=x%2Fy'", text)
    path = host.root / "etc" / "env"
    path.write_text(text, encoding="utf-8")
    return path


def run(args: list[str], host: Host, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=host.env(**env), cwd=cwd or host.root,
                          timeout=300, check=False)


# cron


def cron_jobs() -> list[tuple[list[str], str, str]]:
    """(five time fields, user, command) for every job line of m365audit.cron."""
    jobs = []
    for line in (RECIPES / "m365audit.cron").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, line
        jobs.append((fields[:5], fields[5], fields[6]))
    return jobs


def test_cron_lines_have_five_time_fields_a_user_and_no_percent_sign() -> None:
    jobs = cron_jobs()
    assert len(jobs) == 2
    for times, user, command in jobs:
        assert all(re.fullmatch(r"[\d*/,-]+", t) for t in times) and user == "m365audit"
        assert "%" not in command  # cron turns % into a newline


def test_cron_night_logs_with_timestamps_and_says_when_something_is_new(host: Host, hooks: Hooks) -> None:
    env_file(host, hooks)
    nightly = next(c for _, _, c in cron_jobs() if "m365audit-nightly" in c)
    assert "--notify" in nightly and "--certificate /etc/m365audit/audit.pem" in nightly
    log = host.root / "log" / "audit.log"

    def night(tenant: Path | None) -> subprocess.CompletedProcess[str]:
        command = host.localise(nightly if tenant is None else replayed(nightly, tenant))
        return run(["sh", "-c", command], host)

    first = night(NIGHTS / "night1")
    assert first.returncode == 0 and first.stdout == "" and "first night" in log.read_text()
    second = night(NIGHTS / "night2")  # regression: cron mails the one line after ||
    assert second.stdout.strip() == f"m365audit-nightly exit 1: see {host.root / 'log' / 'audit.log'}"
    assert "NEW since the previous night" in log.read_text() and len(hooks.posts) == 1
    assert hooks.posts[0] == "/m365audit?a=1&sig=x%2Fy"  # the quoted URL arrived whole through `. env`
    third = night(NIGHTS / "night2")
    assert third.stdout == "" and "nothing new since the previous night" in log.read_text()
    no_sign_in = night(None)  # the real line: there is no certificate here, so no evidence tonight
    assert no_sign_in.stdout.startswith("m365audit-nightly exit 4:")
    # a night without evidence is a cause to alert too: the officer must not read silence as "all is well"
    assert "certificate file not found" in log.read_text() and len(hooks.posts) == 2
    prune = next(c for _, _, c in cron_jobs() if " prune " in c)
    assert run(["sh", "-c", host.localise(prune)], host).returncode == 0
    lines = log.read_text().splitlines()
    assert len(lines) > 8 and all(STAMPED.match(line) for line in lines), lines


# systemd


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((RECIPES / name).read_text(encoding="utf-8"))
    return parser["Service"] if name.endswith(".service") else parser["Timer"]


def systemd_words(command: str, environment: dict[str, str]) -> list[str]:
    """An Exec line as systemd runs it: words, '${NAME}' replaced by one word from EnvironmentFile=."""
    return [re.sub(r"\$\{(\w+)\}", lambda m: environment[m.group(1)], w) for w in shlex.split(command.lstrip("-"))]


def environment_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#"))
    return {k: v.strip("'\"") for k, v in pairs}


def test_the_unit_passes_the_certificate_as_an_option_and_the_env_file_does_not_set_it() -> None:
    exec_start = shlex.split(unit("m365audit.service")["ExecStart"])
    assert exec_start[0] == "/usr/local/bin/m365audit-nightly"
    assert exec_start[exec_start.index("--certificate") + 1] == "/etc/m365audit/audit.pem"
    assert "--notify" in exec_start and unit("m365audit.service")["User"] == "m365audit"
    active = [line for line in (RECIPES / "env.example").read_text().splitlines() if not line.startswith("#")]
    assert not any(line.startswith("AZURE_CLIENT_CERTIFICATE_PATH") for line in active)


def test_systemd_night_runs_prune_then_the_audit_and_fails_only_when_something_is_new(host: Host,
                                                                                       hooks: Hooks) -> None:
    service = unit("m365audit.service")
    assert service["EnvironmentFile"] == "/etc/m365audit/env"
    environment = environment_file(env_file(host, hooks))
    journal = {**environment, "JOURNAL_STREAM": "8:12345"}  # set by systemd: the journal stamps the lines
    codes = []
    for tenant in (NIGHTS / "night1", NIGHTS / "night2", NIGHTS / "night2"):
        pre = run(systemd_words(host.localise(service["ExecStartPre"]), environment), host, **journal)
        assert pre.returncode == 0, pre.stderr
        night = run(systemd_words(host.localise(replayed(service["ExecStart"], tenant)), environment), host, **journal)
        assert not STAMPED.match(night.stdout)
        codes.append(night.returncode)
    assert codes == [0, 1, 0] and len(hooks.posts) == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed "
                                                                    "(.ci/run installs the package systemd)")
def test_systemd_analyze_verifies_the_units(host: Host) -> None:
    for name in ("m365audit.service", "m365audit.timer"):
        (host.root / name).write_text(host.localise((RECIPES / name).read_text(encoding="utf-8")), encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(host.root / "m365audit.service"),
                             str(host.root / "m365audit.timer")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert str(host.root) not in result.stderr, result.stderr  # a warning about our files (bad value, bad path)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_an_unreadable_certificate_is_named_by_the_option_the_unit_passes(host: Host, hooks: Hooks) -> None:
    environment = environment_file(env_file(host, hooks))
    pem = host.root / "etc" / "audit.pem"
    pem.write_text("not a key\n", encoding="utf-8")
    os.chown(pem, 12345, 12345)  # another user's file, 0400: unreadable once root gives up reading everything
    pem.chmod(0o400)
    words = systemd_words(host.localise(unit("m365audit.service")["ExecStart"]), environment)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
            "-dac_override,-dac_read_search"]
    result = run([*drop, *words], host, **environment)
    assert result.returncode == 2 and "'--certificate'" in result.stdout and "is not readable" in result.stdout


def test_a_config_tenant_with_an_unreadable_certificate_gets_the_permission_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from m365audit.errors import AuthError
    from m365audit.graph.credentials import CredentialSettings, build_credential

    pem = tmp_path / "gemeente-a.pem"
    pem.write_text("key", encoding="utf-8")
    monkeypatch.setattr("m365audit.graph.credentials.os.access", lambda path, mode: False)
    env = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": TENANT_ID, "AZURE_CLIENT_CERTIFICATE_PATH": str(pem)}
    with pytest.raises(AuthError, match="not readable for this user") as err:
        build_credential(CredentialSettings(method="certificate"), env)
    assert "chmod 0640" in (err.value.hint or "")


# CI pipelines


def ci_checkout(host: Host) -> Path:
    """The pipelines run in a checkout of m365audit: docs/recipes/m365audit-nightly is there."""
    checkout = host.root / "checkout"
    checkout.mkdir()
    (checkout / "docs").symlink_to(ROOT / "docs")
    return checkout


NETWORK = ("pip install", "curl ")  # install steps and the OIDC token request: not run here


def script_steps(steps: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    scripts = [s for s in steps if key in s]
    skipped = [s for s in scripts if any(n in s[key] for n in NETWORK)]
    assert len(skipped) == (2 if key == "run" else 1)
    return [s for s in scripts if s not in skipped]


def test_github_workflow_restores_creates_and_keeps_the_reports_folder() -> None:
    doc = yaml.safe_load((RECIPES / "github-actions.yml").read_text(encoding="utf-8"))
    assert doc["permissions"]["id-token"] == "write" and doc[True]["schedule"][0]["cron"] == "15 2 * * *"
    steps = doc["jobs"]["audit"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["actions/cache/restore"]["with"]["path"] == "reports"
    assert uses["actions/cache/save"]["if"] == "always()" and uses["actions/upload-artifact"]["if"] == "always()"
    assert any("mkdir -p local reports" in s.get("run", "") for s in steps)
    assert "AZURE_CLIENT_SECRET" not in str(doc)


def test_github_workflow_steps_run_against_the_replayed_tenant(host: Host, hooks: Hooks) -> None:
    steps = yaml.safe_load((RECIPES / "github-actions.yml").read_text(encoding="utf-8"))["jobs"]["audit"]["steps"]
    checkout = ci_checkout(host)
    values = {"vars.AZURE_TENANT_ID": TENANT_ID, "vars.AZURE_CLIENT_ID": TENANT_ID,
              "secrets.M365AUDIT_NOTIFY_URL": f"{hooks.url}/github"}
    codes = []
    for tenant in (NIGHTS / "night1", NIGHTS / "night2"):
        for step in script_steps(steps, "run"):
            env = {k: re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], str(v))
                   for k, v in step.get("env", {}).items()}
            script = replayed(step["run"], tenant) if "--auth" in step["run"] else step["run"]
            result = run(["bash", "-e", "-c", script], host, cwd=checkout, **env)
            if "m365audit-nightly" in script:
                codes.append(result.returncode)
            else:
                assert result.returncode == 0, result.stderr
    assert codes == [0, 1] and hooks.posts == ["/github"]
    assert (checkout / "local").is_dir() and len(list((checkout / "reports" / TENANT_ID).glob("*/manifest.json"))) == 2


def test_azure_pipeline_steps_run_against_the_replayed_tenant(host: Host, hooks: Hooks) -> None:
    doc = yaml.safe_load((RECIPES / "azure-pipelines.yml").read_text(encoding="utf-8"))
    steps = doc["steps"]
    tasks = {s["task"].split("@")[0]: s for s in steps if "task" in s}
    assert tasks["DownloadPipelineArtifact"]["inputs"]["artifactName"] == tasks["PublishPipelineArtifact"]["inputs"][
        "artifact"]
    assert tasks["PublishPipelineArtifact"]["condition"] == "always()"
    assert tasks["PublishTestResults"]["inputs"]["testResultsFormat"] == "JUnit"
    checkout = ci_checkout(host)
    workspace = host.root / "workspace"
    values = {"Pipeline.Workspace": str(workspace), "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": TENANT_ID,
              "SERVICE_CONNECTION_ID": "sc", "System.AccessToken": "t", "M365AUDIT_NOTIFY_URL": f"{hooks.url}/ado"}

    def expand(text: str) -> str:
        return re.sub(r"\$\(([\w.]+)\)", lambda m: values[m.group(1)], text)

    codes = []
    for tenant in (NIGHTS / "night1", NIGHTS / "night2"):
        for step in script_steps(steps, "script"):
            script = expand(replayed(step["script"], tenant) if "--auth" in step["script"] else step["script"])
            env = {k: expand(str(v)) for k, v in step.get("env", {}).items()}
            result = run(["bash", "-c", script], host, cwd=checkout, **env)
            if "m365audit-nightly" in script:
                codes.append(result.returncode)
            else:
                assert result.returncode == 0, result.stderr
        tonight = list((workspace / "tonight").rglob("junit.xml"))
        assert len(tonight) == len(codes)  # the previous nights' junit.xml are not published again
    assert codes == [0, 1] and hooks.posts == ["/ado"]


# several tenants


def test_tenants_toml_audits_every_municipality_and_compares_each_with_its_previous_night(
        host: Host, hooks: Hooks) -> None:
    text = host.localise((RECIPES / "tenants.toml").read_text(encoding="utf-8"))
    text = text.replace("https://hooks.voorbeeld.invalid", hooks.url)
    for name in ("gemeente-a", "gemeente-b", "gemeente-c"):
        (host.root / "etc" / name).mkdir()
    shutil.copytree(ROOT / "policies", host.root / "etc" / "policies-c")
    secrets = {"GEMEENTE_A_CERT": "/nonexistent/a.pem", "GEMEENTE_B_CERT": "/nonexistent/b.pem",
               "GEMEENTE_C_CERT": "/nonexistent/c.pem", "GEMEENTE_B_NOTIFY_SECRET": "s"}
    config = host.root / "etc" / "tenants.toml"
    codes = []
    for night in ("night1", "night2"):
        replays = {"gemeente-a": NIGHTS / night, "gemeente-b": TENANTS / "copilot-pilot",
                   "gemeente-c": TENANTS / "pilot-with-waivers"}
        night_text = text
        for name, folder in replays.items():
            night_text = re.sub(rf'(?m)^name = "{name}".*$', lambda m, f=folder: f'{m.group(0)}\nreplay = "{f}"',
                                night_text)
        config.write_text(night_text, encoding="utf-8")
        assert [t.name for t in load_config(config).tenants] == list(replays)
        result = run(["m365audit-nightly", "--config", str(config)], host,
                     M365AUDIT_REPORTS=str(host.root / "var" / "reports"), **secrets)
        codes.append(result.returncode)
    assert codes == [0, 1], result.stdout
    assert result.stdout.count("nothing new since the previous night") == 2
    assert f"{TENANT_ID}: NEW since the previous night" in result.stdout
    # gemeente-c cannot read intune_policies (3 rules error): that alerts on its first night, not again the next;
    # gemeente-a alerts on night 2 for its regression; gemeente-b fails the same way both nights and stays quiet
    assert hooks.posts == ["/m365audit/gemeente-c", "/m365audit/gemeente-a"], result.stdout


# setup script


def test_setup_script_parses_and_creates_every_path_the_recipes_use() -> None:
    script = RECIPES / "setup-debian.sh"
    for path in (script, RECIPES / "m365audit-nightly"):
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True, check=False).returncode == 0
        if shutil.which("shellcheck"):
            result = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True,
                                    check=False)
            assert result.returncode == 0, result.stdout
    text = script.read_text(encoding="utf-8")
    used = set()
    for name in ("m365audit.service", "m365audit.cron", "env.example"):
        used |= set(re.findall(r"(/(?:etc|var|opt|usr/local)/[\w./-]*\w)", (RECIPES / name).read_text()))
    assert used >= {"/etc/m365audit/audit.pem", "/var/lib/m365audit/reports", "/var/log/m365audit/audit.log"}
    for path in sorted(used):
        created = path if path != "/var/log/m365audit/audit.log" else "/var/log/m365audit"
        assert created in text or path.startswith("/etc/cron.d") or path.startswith("/etc/systemd"), path
    assert "useradd --system" in text and "chown root:m365audit /etc/m365audit/audit.pem" in text
    assert "chmod 0640 /etc/m365audit/audit.pem" in text
