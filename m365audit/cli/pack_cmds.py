"""Commands about the policy pack: validate, rules, explain, schema, permissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from m365audit.cli.base import as_lang, echo, echo_json, lang_option, local_option, policies_option
from m365audit.errors import UsageError

if TYPE_CHECKING:
    pass

@click.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path, file_okay=False))
@local_option
def validate(folder: Path | None, local: Path | None) -> None:
    """Check a policy folder (default: the shipped pack) and your local files without touching a tenant."""
    from m365audit.evaluate import load_pack

    pack = load_pack(folder, local, strict=True)
    manual = sum(1 for r in pack.rules if r.manual)
    echo(f"OK: {len(pack.rules)} rules ({manual} manual), {len(pack.catalogs)} catalogs, "
               f"{len(pack.waivers)} waivers, {len(pack.attestations)} attestations, "
               f"{len(pack.approved_apps)} approved apps; digest {pack.digest[:16]}")


@click.command()
@policies_option
@lang_option
def rules(policies: Path | None, lang: str) -> None:
    """List the rules: id, severity, sources and title."""
    from m365audit.evaluate import load_pack
    from m365audit.report import labels

    pack = load_pack(policies)
    nl = lang == "nl"
    width = max([5, *(len(r.id) for r in pack.rules)])
    echo(f"{'regel' if nl else 'rule':<{width}}  {'ernst' if nl else 'severity':<9}  "
               f"{'titel' if nl else 'title'}  [{'bronnen' if nl else 'sources'}]")
    for r in pack.rules:
        sources = ",".join(r.sources) if r.sources else ("(handmatig)" if nl else "(manual)")
        severity = labels(as_lang(lang))[r.severity.value]
        echo(f"{r.id:<{width}}  {severity:<9}  {r.title.get(as_lang(lang))}  [{sources}]")


@click.command()
@click.argument("rule_id")
@policies_option
@local_option
@lang_option
def explain(rule_id: str, policies: Path | None, local: Path | None, lang: str) -> None:
    """Explain one rule: rationale, remediation, sources, the Graph permissions it needs and its parameters."""
    import difflib

    from m365audit.collect import SOURCES
    from m365audit.evaluate import load_pack
    from m365audit.policy import rule_params

    pack = load_pack(policies, local)
    rule = pack.rule(rule_id)
    if rule is None:
        guess = difflib.get_close_matches(rule_id, [r.id for r in pack.rules], n=1)
        raise UsageError(f"unknown rule '{rule_id}'" + (f" (did you mean '{guess[0]}'?)" if guess else ""),
                         hint="`m365audit rules` lists them")
    from m365audit.report import labels

    L, nl = as_lang(lang), lang == "nl"
    echo(f"{rule.id} ({'versie' if nl else 'version'} {rule.version}, {'ernst' if nl else 'severity'} "
               f"{labels(L)[rule.severity.value]})")
    echo(rule.title.get(L))
    echo("")
    echo(("Waarom: " if nl else "Why: ") + rule.rationale.get(L))
    echo(("Herstelactie: " if nl else "How to fix: ") + rule.remediation.get(L))
    if rule.manual:
        echo(("Waar: " if nl else "Where: ") + rule.manual.where.get(L))
        echo(("Controle: " if nl else "How to check: ") + rule.manual.how.get(L))
    for key in rule.sources:
        s = SOURCES[key]
        echo(f"{'Bron' if nl else 'Source'} {key}: {s.url.split('?')[0]} ({s.version}) "
                   f"{'vereist' if nl else 'needs'} {(' of ' if nl else ' or ').join(s.permissions)}")
    check = rule.active_check
    if check is not None and check.function:
        from m365audit.evaluate import CHECKS

        where = CHECKS[check.function].__module__.replace(".", "/") + ".py"
        echo(f"{'Controle in code' if nl else 'Checked in code'}: {where} {check.function}")
    params = rule_params(rule, pack)
    if params:
        echo("Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    for ref in rule.references:
        echo(f"{'Referentie' if nl else 'Reference'}: {ref.label}" + (f" <{ref.url}>" if ref.url else ""))


@click.command()
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of policy files (kept in the repo as policies/schema.json)."""
    from m365audit.policy import pack_schema

    text = json.dumps(pack_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        echo(text, nl=False, multiline=True)
    else:
        output.write_text(text, encoding="utf-8")




@click.command()
@policies_option
@click.option("--format", "fmt", type=click.Choice(["table", "manifest", "az", "az-managed-identity"]),
              default="table", show_default=True,
              help="table: what and why; manifest: requiredResourceAccess JSON; az: Azure CLI commands for an app "
                   "registration; az-managed-identity: app-role assignments for a managed identity.")
@click.option("--app-id", default="$APP_ID", show_default=True, help="Application (client) id for --format az.")
@click.option("--principal-id", default="$MI_ID", show_default=True,
              help="The managed identity's object id for --format az-managed-identity.")
def permissions(policies: Path | None, fmt: str, app_id: str, principal_id: str) -> None:
    """The least-privilege Graph application permissions the enabled rules need."""
    from m365audit.collect import (
        UNPUBLISHED_ROLE_IDS,
        az_commands,
        az_managed_identity_commands,
        manifest_fragment,
        requirements,
        table,
    )
    from m365audit.evaluate import load_pack

    reqs = requirements(load_pack(policies))
    for r in reqs:
        if r.role_id is None:  # on stderr: the manifest and az output stay valid JSON and shell
            echo(f"Note: {r.permission} has no known app-role id ("
                       f"{UNPUBLISHED_ROLE_IDS.get(r.permission, 'grant it by name')}).", err=True)
    if fmt == "manifest":
        echo_json(json.dumps(manifest_fragment(reqs), indent=2))
    elif fmt == "az":
        for line in az_commands(reqs, app_id):
            echo(line)
    elif fmt == "az-managed-identity":
        for line in az_managed_identity_commands(reqs, principal_id):
            echo(line)
    else:
        for line in table(reqs):
            echo(line)
        echo()
        echo("Delegated only (--auth device-code): CopilotPolicySettings.Read. Deliberately never: "
                   "AiEnterpriseInteraction.Read.All (it reads prompts, i.e. resident data).")
