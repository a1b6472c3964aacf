"""Alert causes and their rhythm: what a night needs a human for, remembered in alert-state.json (not evidence)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from m365audit.drift.nights import DriftReport
from m365audit.errors import AuditError, AuthError, PolicyFileError, UsageError
from m365audit.evidence import safe_name
from m365audit.models import Finding, Frozen, Status, Text

STATE_FILE = "alert-state.json"
REMIND_EVERY = 7
"""A cause that persists is told again after this many nights (not every night)."""
INCOMPLETE_NIGHTS = 3
"""Evidence incomplete (verdict error, or no evidence at all) this many nights in a row is a cause of its own."""
OBJECTS_SHOWN = 10
PERMISSION_MISSING = "PermissionMissing"

CauseKind = Literal["regression", "new-objects", "became-error", "incomplete", "permissions", "failed"]
Failure = Literal["sign-in", "network", "environment", "configuration"]
KIND_ORDER: dict[str, int] = {"failed": 0, "permissions": 1, "regression": 2, "new-objects": 3, "became-error": 4,
                              "incomplete": 5}
NETWORK_WORDS = ("network", "dns", "name resolution", "connect", "timed out", "timeout", "unreachable")


class Cause(Frozen):
    """One reason to tell a human, with what the alert needs to say it in words."""

    key: str
    """Stable identity: kind and subject ('regression:rule-id', 'permissions:A,B', 'failed:sign-in')."""
    kind: CauseKind
    rule_id: str | None = None
    title: Text | None = None
    old_status: str | None = None
    new_status: str | None = None
    objects: list[str] = []
    more_objects: int = 0
    permissions: list[str] = []
    failure: Failure | None = None
    message: str | None = None
    hint: str | None = None
    nights: int = 1
    since: str | None = None
    reminder: bool = False


class CauseState(Frozen):
    """What alert-state.json remembers of one cause: since when it persists and when it was last told."""

    kind: CauseKind
    first_seen: str
    last_seen: str
    nights: int
    last_sent_night: int | None = None
    sent: int = 0


class AlertState(Frozen):
    """reports/<tenant>/alert-state.json: outside the sealed runs and the hash chain, rewritten every night."""

    schema_version: Literal[1] = 1
    tenant_id: str
    last_night: str | None = None
    incomplete_streak: int = 0
    incomplete_since: str | None = None
    causes: dict[str, CauseState] = {}
    last_alert: dict[str, Any] | None = None
    """The notify record of the last night that had something to tell (deliveries, failures)."""


# --------------------------------------------------------------------------- causes


def run_causes(findings: Sequence[Finding], drift: DriftReport | None,
               missing_permissions: Iterable[str] = ()) -> list[Cause]:
    """Tonight's causes from a run: regressions, new objects, rules that became error, missing permissions."""
    causes: list[Cause] = []
    changed = {r.rule_id: r for r in drift.rules} if drift is not None else {}
    for r in drift.regressions if drift is not None else []:
        if r.new_status == Status.ERROR:
            continue  # told below as 'became error', with the fix
        names = [o.name or o.id for o in r.added]
        causes.append(Cause(key=f"{r.kind}:{r.rule_id}", kind=r.kind, rule_id=r.rule_id, title=r.title,
                            old_status=r.old_status.value if r.old_status else None,
                            new_status=r.new_status.value if r.new_status else None,
                            objects=names[:OBJECTS_SHOWN], more_objects=max(0, len(names) - OBJECTS_SHOWN)))
    perms = sorted(set(missing_permissions))
    if perms:
        causes.append(Cause(key="permissions:" + ",".join(perms), kind="permissions", permissions=perms,
                            hint="m365audit permissions --format az"))
    for f in findings:
        if f.status != Status.ERROR:
            continue
        before = changed.get(f.rule_id)
        if drift is not None and (before is None or before.old_status == Status.ERROR):
            continue  # it was error last night too: the incomplete-nights cause speaks for it
        if perms and f.errors and all(e.code == PERMISSION_MISSING for e in f.errors):
            continue  # the permissions cause names the fix
        first = f.errors[0] if f.errors else None
        causes.append(Cause(key=f"became-error:{f.rule_id}", kind="became-error", rule_id=f.rule_id, title=f.title,
                            old_status=before.old_status.value if before and before.old_status else None,
                            new_status="error", message=first.message if first else None,
                            hint=first.hint if first else None))
    return sorted(causes, key=lambda c: (KIND_ORDER[c.kind], c.key))


def failure_of(exc: BaseException) -> Failure:
    """Which kind of failure stopped a night before any evidence: sign-in, network, environment or configuration."""
    kind = getattr(exc, "failure", None)  # an error class may say it itself
    if kind in ("sign-in", "network", "environment", "configuration"):
        return kind  # type: ignore[no-any-return]
    if isinstance(exc, UsageError | PolicyFileError):
        return "configuration"
    text = str(exc).lower()  # the message, not the hint: a hint may mention the network as one thing to check
    if any(word in text for word in NETWORK_WORDS):
        return "network"
    if isinstance(exc, AuthError):
        return "sign-in"
    return "environment"


def failed_cause(exc: BaseException) -> Cause:
    """The cause of a night that failed before any evidence: which failure, its message and its hint."""
    kind = failure_of(exc)
    message = exc.message if isinstance(exc, AuditError) else f"{type(exc).__name__}: {exc}"
    hint = exc.hint if isinstance(exc, AuditError) else None
    return Cause(key=f"failed:{kind}", kind="failed", failure=kind, message=message.splitlines()[0][:500],
                 hint=hint)


# --------------------------------------------------------------------------- rhythm


def _step(state: AlertState, night: str) -> int:
    """A second run on the same date is not another night: persisting causes do not count it twice."""
    return 0 if state.last_night == night else 1


def with_incomplete(state: AlertState, causes: list[Cause], night: str, incomplete: bool, failed: bool,
                    threshold: int = INCOMPLETE_NIGHTS) -> tuple[list[Cause], int, str | None]:
    """Tonight's causes plus 'incomplete' when evidence was missing `threshold` nights in a row; the new streak."""
    if not incomplete:
        return causes, 0, None
    streak = max(1, state.incomplete_streak + _step(state, night))
    since = state.incomplete_since if state.incomplete_streak else night
    if streak >= threshold and not failed:  # on a failed night its own cause says more
        causes = [*causes, Cause(key="incomplete", kind="incomplete", nights=streak, since=since)]
    return causes, streak, since


def due(state: AlertState, causes: list[Cause], night: str, remind_every: int = REMIND_EVERY) -> list[Cause]:
    """The causes to tell tonight: new ones, and persisting ones whose reminder is due (every remind_every nights)."""
    step = _step(state, night)
    out = []
    for c in causes:
        old = state.causes.get(c.key)
        if old is None or old.last_sent_night is None:
            out.append(c.model_copy(update={"since": c.since or (old.first_seen if old else night)}))
            continue
        nights = old.nights + step
        if nights - old.last_sent_night >= remind_every:
            out.append(c.model_copy(update={"nights": max(c.nights, nights), "since": c.since or old.first_seen,
                                            "reminder": True}))
    return out


def advance(state: AlertState, causes: list[Cause], night: str, sent: Iterable[str], streak: int = 0,
            streak_since: str | None = None, last_alert: dict[str, Any] | None = None) -> AlertState:
    """The state after tonight: causes that are gone are forgotten; sent ones remember this night."""
    step = _step(state, night)
    told = set(sent)
    kept: dict[str, CauseState] = {}
    for c in causes:
        old = state.causes.get(c.key)
        nights = old.nights + step if old else 1
        last_sent = nights if c.key in told else (old.last_sent_night if old else None)
        kept[c.key] = CauseState(kind=c.kind, first_seen=old.first_seen if old else night, last_seen=night,
                                 nights=nights, last_sent_night=last_sent,
                                 sent=(old.sent if old else 0) + (1 if c.key in told else 0))
    return AlertState(tenant_id=state.tenant_id, last_night=night, incomplete_streak=streak,
                      incomplete_since=streak_since, causes=kept,
                      last_alert=last_alert if last_alert is not None else state.last_alert)


# --------------------------------------------------------------------------- the file


def state_path(reports: Path, tenant_id: str) -> Path:
    return reports / safe_name(tenant_id) / STATE_FILE


def load_state(reports: Path, tenant_id: str) -> tuple[AlertState, str | None]:
    """The tenant's alert state (a fresh one when absent); an unreadable file is replaced, with a warning."""
    path = state_path(reports, tenant_id)
    try:
        return AlertState.model_validate_json(path.read_bytes()), None
    except FileNotFoundError:
        return AlertState(tenant_id=tenant_id), None
    except (OSError, ValueError) as exc:
        return AlertState(tenant_id=tenant_id), (f"{path} could not be read ({type(exc).__name__}); "
                                                 "alerts start afresh tonight")


def save_state(reports: Path, state: AlertState) -> Path:
    """Write alert-state.json atomically (a temporary file in the same folder, then rename)."""
    path = state_path(reports, state.tenant_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.model_dump(mode="json"), indent=2, ensure_ascii=False).encode()
    tmp = path.parent / f".alert-state-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask decides, as for the reports
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
