"""The command line: the only place that prints, exits and maps errors to exit codes."""

from m365audit.cli.main import cli, main

__all__ = ["cli", "main"]
