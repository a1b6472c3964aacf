"""The m365audit command group: the cli package alone prints, exits, runs asyncio and maps errors to exit codes."""

from __future__ import annotations

import importlib
from typing import Any

import click

from m365audit import __version__

COMMANDS: dict[str, tuple[str, str, str]] = {
    "audit": ("audit_cmds", "audit",
              "Audit a tenant (or replay a recording) and write a dated, hash-chained run folder."),
    "evaluate": ("audit_cmds", "evaluate_cmd",
                 "Re-check a stored snapshot with today's policies, waivers and attestations (no Graph calls)."),
    "validate": ("pack_cmds", "validate", "Check a policy folder (default: the shipped pack) and your local files "
                                          "without touching a tenant."),
    "rules": ("pack_cmds", "rules", "List the rules: id, severity, sources and title."),
    "explain": ("pack_cmds", "explain", "Explain one rule: rationale, remediation, sources, the Graph permissions "
                                        "it needs and its parameters."),
    "schema": ("pack_cmds", "schema",
               "Print the JSON Schema of policy files (kept in the repo as policies/schema.json)."),
    "verify": ("evidence_cmds", "verify", "Check a run folder against its manifest (and the hash chain, and "
                                          "signatures): exit 0 intact, 1 tampered."),
    "permissions": ("pack_cmds", "permissions",
                    "The least-privilege Graph application permissions the enabled rules need."),
    "record": ("evidence_cmds", "record", "Record a tenant as a shareable fixture: people, tenant id and domains "
                                          "pseudonymised (FIXTURES.md)."),
    "prune": ("evidence_cmds", "prune", "Delete old runs; each removal is recorded in <tenant>/pruned.json so "
                                        "verify --chain still holds."),
    "drift": ("evidence_cmds", "drift_cmd", "What changed between two runs (default: each tenant's two latest; one "
                                            "RUN: it and the run before it)."),
    "history": ("evidence_cmds", "history_cmd", "List a tenant's runs (default: every tenant) with verdict counts "
                                                "and regressions since the run before."),
    "keygen": ("evidence_cmds", "keygen", "Make an Ed25519 key pair for --sign-key: OUT (private, mode 600) and "
                                          "OUT.pub (public, for verify --key)."),
}
"""Every command: its module under m365audit.cli, its object, and the first paragraph of its help (tested equal).

A command's module is imported only when that command runs (or shows its own help): `m365audit --help` lists
them from this table, so it imports click and nothing heavy (tests/test_cli.py checks sys.modules).
"""


class LazyGroup(click.Group):
    """The command group: commands imported on first use; our errors shown cleanly with their exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"m365audit.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, from the table's help paragraphs instead of the imported commands."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit))
                for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from m365audit.cli.base import guarded

        return guarded(ctx, lambda: super(LazyGroup, self).invoke(ctx))


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--version, as click.version_option prints it (which imports locale: 1 ms of every --help)."""
    if value and not ctx.resilient_parsing:
        from m365audit.cli.base import echo

        echo(f"m365audit, version {__version__}")
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
def cli(debug: bool) -> None:
    """Prove every night that no generative AI reaches organisation or resident data in a Microsoft 365 tenant.

    Exit codes: 0 all pass, waived or attested; 1 a rule fails; 2 usage or policy-file error; 3 no fail but
    evidence incomplete (a source could not be read); 4 sign-in, network or environment failure; 130 interrupted
    (Ctrl-C).
    """
    from m365audit.cli.terminal import install_log_handler

    install_log_handler(debug)


def main() -> None:
    """Console script entry point."""
    cli(prog_name="m365audit")
