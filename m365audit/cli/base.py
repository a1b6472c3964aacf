"""What every command shares: error display and exit codes, common options, the language."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from m365audit.cli.terminal import clean, json_safe
from m365audit.errors import AuditError

if TYPE_CHECKING:
    from m365audit.models import Lang

LANGS = ("nl", "en")
EXIT_INTERRUPTED = 130
"""What a shell reports for a command stopped with Ctrl-C (128 + SIGINT); no run folder is left looking complete."""


def echo(text: str = "", *, err: bool = False, nl: bool = True, multiline: bool = False) -> None:
    """The only way the CLI writes to stdout or stderr: every text passes clean() (tenant strings are hostile).

    One line per call unless ``multiline`` (JSON, the schema, a list of policy-file problems).
    """
    click.echo(clean(text, multiline=multiline), err=err, nl=nl)


def echo_json(text: str) -> None:
    """A JSON document on stdout: control characters inside its strings escaped (json_safe), never removed."""
    click.echo(json_safe(text))


class AuditClickError(click.ClickException):
    """Shows an AuditError as 'Error: …' and 'Hint: …' and exits with its code."""

    def __init__(self, error: AuditError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code  # type: ignore[misc]  # click keeps it per class; ours is per error
        self.hint = error.hint
        self.problems: list[str] = list(getattr(error, "problems", None) or [])

    def show(self, file: IO[Any] | None = None) -> None:
        lines = self.problems or [self.message]  # a PolicyFileError lists one problem a line
        for n, line in enumerate(lines):
            echo(f"Error: {line}" if n == 0 else line, err=True)
        if self.hint:
            echo(f"Hint: {self.hint}", err=True)


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command its pipe reader closed on (128 + SIGPIPE); not a verdict."""


def guarded(ctx: click.Context, invoke: Callable[[], Any]) -> Any:
    """Run the group's invoke, turning our errors into clean messages with their exit codes (--debug: traceback)."""
    try:
        return invoke()
    except AuditError as exc:
        if ctx.params.get("debug"):
            raise
        raise AuditClickError(exc) from exc
    except KeyboardInterrupt:  # Ctrl-C (asyncio.run turns SIGINT into this after cancelling the run)
        if ctx.params.get("debug"):
            raise
        echo("Error: interrupted (Ctrl-C)", err=True)
        echo("Hint: run the command again; an interrupted audit leaves no run folder and no lock behind", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `m365audit … | head`: the reader left; nothing to tell it, and the run is written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        ctx.exit(EXIT_BROKEN_PIPE)
    except OSError as exc:  # a full disk, a folder we may not write: a clear line, not a traceback
        if ctx.params.get("debug"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        raise AuditClickError(AuditError(
            f"{where}{exc.strerror or exc}", hint="check the free space and the permissions of the reports "
            "folder; an unfinished run is never left looking complete")) from exc


def run_coro(coro: Any) -> Any:
    import asyncio  # here, not at the top: --help stays fast

    return asyncio.run(coro)


policies_option = click.option(
    "--policies", "policies", type=click.Path(path_type=Path, file_okay=False), default=None,
    envvar="M365AUDIT_POLICIES", help="Policy folder (default: the pack shipped with m365audit).")
local_option = click.option(
    "--local", "local", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
    envvar="M365AUDIT_LOCAL",
    help="Your own waivers.yaml, attestations.yaml, approved-apps.yaml and params.yaml (replace the pack's).")
lang_option = click.option("--lang", type=click.Choice(LANGS), default="nl", show_default=True,
                           help="Language of reports and messages.")
def pseudonymise_options(f: Any) -> Any:
    """--pseudonymise and --pseudonym-key-file: user names and addresses in reports become user-<hmac>."""
    f = click.option("--pseudonym-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="File holding the pseudonym key (else $M365AUDIT_PSEUDONYM_KEY); implies --pseudonymise.")(f)
    return click.option("--pseudonymise", is_flag=True,
                        help="Replace user names and addresses in the reports (not in the evidence) by stable keyed "
                             "pseudonyms (HMAC-SHA256; the key stays with you).")(f)


def pseudonym_key(pseudonymise: bool, key_file: Path | None) -> bytes | None:
    """The key when pseudonymising was asked for; a clear usage error when there is none."""
    if not pseudonymise and key_file is None:
        return None
    from m365audit.report import load_key

    return load_key(key_file)


reports_option = click.option(
    "--reports", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"), show_default=True,
    envvar="M365AUDIT_REPORTS", help="Folder that holds reports/<tenant>/<run-id>/.")


def as_lang(value: str) -> Lang:
    """A --lang choice as the Lang type."""
    return "nl" if value == "nl" else "en"


def as_of_date(value: datetime | None) -> date | None:
    return value.date() if value is not None else None




def notify_secret() -> str | None:
    """The webhook HMAC key: from the environment only, never an option (it would show in ps and shell history)."""
    import os

    from m365audit.drift import SECRET_ENV

    return os.environ.get(SECRET_ENV) or None


def device_code_prompt(lang: str) -> Callable[[str, str], None]:
    """How a person sees where to sign in with --auth device-code (on stderr: stdout stays the verdict)."""
    def show(verification_uri: str, user_code: str) -> None:
        text = (f"Meld u aan: open {verification_uri} en voer de code {user_code} in" if lang == "nl" else
                f"To sign in, open {verification_uri} and enter the code {user_code}")
        echo(text, err=True)
    return show
