"""The error tree: every error a user can see carries a message, a hint and an exit code."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_ENVIRONMENT = 4


class AuditError(Exception):
    """Base of every error m365audit reports to a user; exits 4 unless a subclass says otherwise."""

    exit_code = EXIT_ENVIRONMENT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(AuditError):
    """A command was called with options or arguments that cannot work."""

    exit_code = EXIT_USAGE


class PolicyFileError(AuditError):
    """One or more policy, catalog, waiver or attestation files are invalid."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("\n".join(problems), hint)
        self.problems = problems


class AuthError(AuditError):
    """No credential could be built or it was refused: no evidence was taken."""


class GraphError(AuditError):
    """One Graph request failed; collect records it against its source instead of raising it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        url: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.url = url


class RunFolderError(AuditError):
    """A run folder is missing, incomplete, locked or not writable."""


class EvidenceError(AuditError):
    """A run folder does not match its manifest or its hash chain."""

    exit_code = EXIT_FAIL
