"""Many tenants from one TOML file: each audited with its own credential settings, a bounded number at a time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m365audit.drift import check_targets
from m365audit.errors import EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_INCOMPLETE, EXIT_PASS, EXIT_USAGE, AuditError, UsageError
from m365audit.graph import AUTH_METHODS, CredentialSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

WORST_FIRST = (EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_INCOMPLETE, EXIT_PASS)
"""How tenants' exit codes combine, worst first (docs/operations.md, 'Many tenants'):
2 a tenant's configuration or policy files are wrong: no evidence until a person fixes them;
4 sign-in, network or environment failure: no evidence this night;
1 a rule fails: evidence of non-compliance;
3 incomplete evidence, nothing fails;
0 all pass."""

SECRET_KEYS = ("secret", "client_secret", "password", "certificate_password", "token", "access_token")
TENANT_KEYS = {"name", "tenant_id", "client_id", "auth", "certificate_path_env", "secret_env",
               "certificate_password_env", "federated_token_file_env", "reports", "policies", "local", "lang",
               "notify", "notify_secret_env", "replay", "concurrency", "timeout", "audit_wait", "report_url",
               "remind_every", "incomplete_nights"}
TOP_KEYS = {"parallel", "defaults", "tenant"}


@dataclass(frozen=True)
class TenantConfig:
    """One tenant of the config file; secrets are named by environment variable, never written in the file."""

    name: str
    tenant_id: str | None = None
    client_id: str | None = None
    auth: str = "auto"
    certificate_path_env: str | None = None
    secret_env: str | None = None
    certificate_password_env: str | None = None
    federated_token_file_env: str | None = None
    reports: Path = Path("reports")
    policies: Path | None = None
    local: Path | None = None
    lang: str = "nl"
    notify: tuple[str, ...] = ()
    """Alert targets (webhook URLs, mailto:) for this tenant (as audit --notify)."""
    notify_secret_env: str | None = None
    report_url: str | None = None
    remind_every: int = 7
    incomplete_nights: int = 3
    replay: Path | None = None
    concurrency: int = 4
    timeout: float = 60.0
    audit_wait: float = 600.0

    def credential_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment this tenant's credential sees: the process environment with its own variables."""
        env = {k: v for k, v in environ.items() if k not in (
            "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
            "AZURE_FEDERATED_TOKEN_FILE")}
        if self.notify_secret_env is not None and self.notify_secret_env not in environ:
            raise UsageError(f"tenant {self.name}: environment variable {self.notify_secret_env} is not set",
                             hint="it holds the webhook signing key named by notify_secret_env")
        for target, source in (("AZURE_CLIENT_SECRET", self.secret_env),
                               ("AZURE_CLIENT_CERTIFICATE_PATH", self.certificate_path_env),
                               ("AZURE_CLIENT_CERTIFICATE_PASSWORD", self.certificate_password_env),
                               ("AZURE_FEDERATED_TOKEN_FILE", self.federated_token_file_env)):
            if source is None:
                continue
            if source not in environ:
                raise UsageError(f"tenant {self.name}: environment variable {source} is not set",
                                 hint=f"export {source} before running, or remove it from the config file")
            env[target] = environ[source]
        return env


@dataclass(frozen=True)
class Config:
    """The whole file: how many tenants run at once, and the tenants."""

    parallel: int
    tenants: tuple[TenantConfig, ...]
    path: Path = field(default=Path("m365audit.toml"))


def load_config(path: Path) -> Config:
    """Parse and check the TOML file; every problem names the file and the tenant."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", hint="give --config an existing TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}", hint="see docs/operations.md, 'Many tenants'") from exc
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}",
                         hint=f"top-level keys are {', '.join(sorted(TOP_KEYS))}")
    defaults = doc.get("defaults", {})
    raw = doc.get("tenant", [])
    if not isinstance(raw, list) or not raw:
        raise UsageError(f"{path}: no [[tenant]] tables", hint="add one [[tenant]] table per tenant")
    parallel = doc.get("parallel", 2)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= 16:
        raise UsageError(f"{path}: parallel must be a whole number from 1 to 16, got {parallel!r}",
                         hint="how many tenants are audited at the same time")
    base = path.parent
    tenants = tuple(_tenant({**defaults, **t}, base, path, i) for i, t in enumerate(raw, 1))
    names = [t.name for t in tenants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{path}: tenant name(s) used twice: {', '.join(duplicates)}", hint="names must be unique")
    ids = [t.tenant_id.lower() for t in tenants if t.tenant_id]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise UsageError(f"{path}: tenant_id used by more than one [[tenant]]: {', '.join(twice)}",
                         hint="audit each tenant once a night: two entries would race for its lock and split "
                              "Graph's throttling budget between two sessions")
    return Config(parallel=parallel, tenants=tenants, path=path)


def _tenant(raw: dict[str, Any], base: Path, path: Path, index: int) -> TenantConfig:
    where = f"{path}: tenant {raw.get('name') or index}"
    secrets = sorted(k for k in raw if k.lower() in SECRET_KEYS)
    if secrets:
        raise UsageError(f"{where}: '{secrets[0]}' looks like a secret written in the file",
                         hint="never put secrets in the config: name the environment variable with secret_env")
    unknown = sorted(set(raw) - TENANT_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}",
                         hint=f"allowed: {', '.join(sorted(TENANT_KEYS))}")
    if not isinstance(raw.get("name"), str) or not raw["name"]:
        raise UsageError(f"{where}: every tenant needs a name", hint='add name = "gemeente-a"')
    if raw.get("auth", "auto") not in AUTH_METHODS or raw.get("auth") == "device-code":
        raise UsageError(f"{where}: auth must be one of {', '.join(m for m in AUTH_METHODS if m != 'device-code')}",
                         hint="unattended runs cannot use device-code sign-in")
    notify = raw.get("notify", [])
    if not isinstance(notify, list) or not all(isinstance(n, str) for n in notify):
        raise UsageError(f"{where}: notify must be a list of strings",
                         hint='e.g. notify = ["https://example.invalid/webhook"]')
    try:
        check_targets(tuple(notify))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from exc

    def folder(key: str) -> Path | None:
        value = raw.get(key)
        return None if value is None else (base / str(value)) if not Path(str(value)).is_absolute() else Path(value)

    try:
        return TenantConfig(
            name=raw["name"], tenant_id=raw.get("tenant_id"), client_id=raw.get("client_id"),
            auth=raw.get("auth", "auto"), certificate_path_env=raw.get("certificate_path_env"),
            secret_env=raw.get("secret_env"), certificate_password_env=raw.get("certificate_password_env"),
            federated_token_file_env=raw.get("federated_token_file_env"),
            reports=folder("reports") or base / "reports", policies=folder("policies"), local=folder("local"),
            lang=str(raw.get("lang", "nl")), notify=tuple(notify), notify_secret_env=raw.get("notify_secret_env"),
            replay=folder("replay"), report_url=raw.get("report_url"),
            remind_every=int(raw.get("remind_every", 7)), incomplete_nights=int(raw.get("incomplete_nights", 3)),
            concurrency=int(raw.get("concurrency", 4)), timeout=float(raw.get("timeout", 60.0)),
            audit_wait=float(raw.get("audit_wait", 600.0)))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}", hint="check the value types against docs/operations.md") from exc


@dataclass
class TenantOutcome:
    """What happened to one tenant: an exit code and either a run or an error."""

    name: str
    exit_code: int
    verdict: str
    tenant_name: str = ""
    run_dir: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    hint: str | None = None
    notify: tuple[str, ...] = ()


def worst(codes: list[int]) -> int:
    """The exit code of a multi-tenant run: the worst of its tenants in WORST_FIRST order (0 when none)."""
    for code in WORST_FIRST:
        if code in codes:
            return code
    return max(codes, default=EXIT_PASS)


Auditor = Callable[[TenantConfig, dict[str, str]], Any]


async def audit_all(config: Config, environ: Mapping[str, str] | None = None,
                    auditor: Auditor | None = None) -> list[TenantOutcome]:
    """Audit every tenant, at most config.parallel at once; a failing tenant never stops the others."""
    environ = os.environ if environ is None else environ
    gate = asyncio.Semaphore(config.parallel)
    run = auditor or _audit_one

    async def guarded(tenant: TenantConfig) -> TenantOutcome:
        async with gate:
            try:
                outcome: TenantOutcome = await run(tenant, tenant.credential_env(environ))
                return outcome
            except AuditError as exc:
                return TenantOutcome(tenant.name, exc.exit_code, "error", error=exc.message, hint=exc.hint,
                                     notify=tenant.notify)
            except Exception as exc:  # isolation: one tenant's bug must not end the night for the others
                return TenantOutcome(tenant.name, EXIT_ENVIRONMENT, "error", error=f"{type(exc).__name__}: {exc}",
                                     hint="run this tenant alone with --debug", notify=tenant.notify)

    return list(await asyncio.gather(*(guarded(t) for t in config.tenants)))


async def _audit_one(tenant: TenantConfig, env: dict[str, str]) -> TenantOutcome:
    from m365audit.audit import AuditOptions, run_audit
    from m365audit.report import counts

    options = AuditOptions(
        reports=tenant.reports, policies=tenant.policies, local=tenant.local, replay=tenant.replay,
        lang="en" if tenant.lang == "en" else "nl",
        credential=CredentialSettings(method=tenant.auth, tenant_id=tenant.tenant_id, client_id=tenant.client_id),
        concurrency=tenant.concurrency, timeout=tenant.timeout, audit_wait=tenant.audit_wait, env=env,
        notify=tenant.notify, notify_secret=env.get(tenant.notify_secret_env) if tenant.notify_secret_env else None,
        report_url=tenant.report_url, remind_every=tenant.remind_every, incomplete_nights=tenant.incomplete_nights)
    result = await run_audit(options)
    return TenantOutcome(tenant.name, result.exit_code, result.verdict,
                         tenant_name=result.snapshot.tenant_name or result.snapshot.tenant_id,
                         run_dir=result.run_dir, counts=dict(counts(result.findings)), notify=tenant.notify)


def summary_table(outcomes: list[TenantOutcome]) -> list[str]:
    """One line per tenant: name, exit code, verdict, rule counts or the error, and the run folder."""
    rows = [("tenant", "exit", "verdict", "details")]
    for o in outcomes:
        detail = (" · ".join(f"{k} {v}" for k, v in o.counts.items()) if o.error is None
                  else f"{o.error}" + (f" (hint: {o.hint})" if o.hint else ""))
        if o.run_dir is not None:
            detail += f"  {o.run_dir}"
        rows.append((o.name, str(o.exit_code), o.verdict.upper(), detail))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
