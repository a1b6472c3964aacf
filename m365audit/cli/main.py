"""The m365audit command group: the cli package alone prints, exits, runs asyncio and maps errors to exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from m365audit import __version__
from m365audit.cli.audit_cmds import audit, evaluate_cmd
from m365audit.cli.base import AuditGroup
from m365audit.cli.evidence_cmds import drift_cmd, history_cmd, keygen, prune, record, verify
from m365audit.cli.pack_cmds import explain, permissions, rules, schema, validate
from m365audit.cli.terminal import install_log_handler

if TYPE_CHECKING:
    pass

@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="m365audit")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
def cli(debug: bool) -> None:
    """Prove every night that no generative AI reaches organisation or resident data in a Microsoft 365 tenant.

    Exit codes: 0 all pass, waived or attested; 1 a rule fails; 2 usage or policy-file error; 3 no fail but
    evidence incomplete (a source could not be read); 4 sign-in, network or environment failure; 130 interrupted
    (Ctrl-C).
    """
    install_log_handler(debug)


for _command in (audit, evaluate_cmd, validate, rules, explain, schema, verify, permissions, record, prune, drift_cmd,
                 history_cmd, keygen):
    cli.add_command(_command)


def main() -> None:
    """Console script entry point."""
    cli(prog_name="m365audit")
