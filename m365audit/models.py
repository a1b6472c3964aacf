"""Pydantic types shared between stages; each serialises to a JSON file in the run folder."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JSON = Any
"""A value as json.loads returns it."""

Lang = Literal["nl", "en"]
LANGS: tuple[Lang, ...] = ("nl", "en")


class Status(str, Enum):
    """The verdict of one rule."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    WAIVED = "waived"
    MANUAL = "manual"


class Severity(str, Enum):
    """How bad a failing rule is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


class Frozen(BaseModel):
    """Base for immutable models that reject unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- snapshot


class SourceError(Frozen):
    """Why a source could not be read completely."""

    message: str
    status: int | None = None
    code: str | None = None
    request_id: str | None = None
    url: str | None = None
    hint: str | None = None


class SourceResult(Frozen):
    """One source of the snapshot: ok with its data, or error with the reason. Never half of each."""

    key: str
    ok: bool
    url: str = Field(description="the first request URL sent for this source")
    requests: int = 0
    request_ids: list[str] = []
    data: JSON = None
    error: SourceError | None = None
    meta: dict[str, JSON] = {}

    @model_validator(mode="after")
    def _ok_xor_error(self) -> SourceResult:
        if self.ok == (self.error is not None):
            raise ValueError("a source is either ok (no error) or not ok (with an error)")
        return self


class Snapshot(Frozen):
    """Everything collected from one tenant in one run."""

    schema_version: Literal[1] = 1
    tenant_id: str
    tenant_name: str = ""
    collected_at: datetime
    tool_version: str
    sources: dict[str, SourceResult]


# --------------------------------------------------------------------------- policy pack


class Text(Frozen):
    """A text in Dutch and English."""

    nl: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.nl if lang == "nl" else self.en


class CatalogRef(Frozen):
    """A condition value taken from a named catalog (optionally one field of each entry)."""

    catalog: str
    field: str | None = None


OPERATORS = (
    "eq", "ne", "in", "not_in", "contains", "not_contains", "contains_any", "contains_none",
    "matches", "matches_any", "starts_with", "exists", "absent", "empty", "not_empty",
    "gt", "ge", "lt", "le",
)
Scalar = str | bool | int | float | None
"""A literal a condition compares with (a catalog reference or a list of these otherwise)."""

Operator = Literal[
    "eq", "ne", "in", "not_in", "contains", "not_contains", "contains_any", "contains_none",
    "matches", "matches_any", "starts_with", "exists", "absent", "empty", "not_empty",
    "gt", "ge", "lt", "le",
]


class Condition(Frozen):
    """One test on one item: the value at ``path`` compared with ``value`` by ``op``."""

    path: str = Field(description="JMESPath into one item, e.g. grantControls.builtInControls")
    op: Operator
    value: CatalogRef | list[Scalar] | Scalar = Field(
        None, description="a literal (string, number, boolean, list of them) or {catalog: NAME, field: FIELD}")
    ignore_case: bool = False
    known: CatalogRef | list[Scalar] | None = Field(
        None, description="the values this rule classifies for an enum property (a list or catalog reference): "
                          "any other value, or a list element outside it, means the item cannot be judged (error)")
    when_null: bool | None = Field(
        None, description="an explicit safe default: what the condition is when the value is missing or null; "
                          "without it, missing or null means the item cannot be judged (error)")


class ObjectSpec(Frozen):
    """How to name an item in a finding: JMESPath expressions into the item."""

    id: str = "id"
    name: str = "displayName"
    detail: str | None = None


class Check(Frozen):
    """What must hold: declarative conditions over one source, or a named function in m365audit/checks/."""

    items: str | None = Field(
        None, description="JMESPath that turns the source data into the list of items (default: the data)"
    )
    where: list[Condition] = []
    expect: Literal["all", "any", "none"] = "all"
    conditions: list[Condition] = []
    objects: ObjectSpec = ObjectSpec()
    function: str | None = Field(None, description="name of a check function (m365audit/checks/, the CHECKS table)")
    judges_errors_of: list[str] = Field(
        [], description="for a function: sources of the rule whose read error the function judges itself "
                        "(e.g. a documented licence refusal) instead of the rule becoming error")
    uses_rules: list[str] = Field(
        [], description="for a function: rules whose verdict (before waivers) the function may ask for")

    @model_validator(mode="after")
    def _function_or_conditions(self) -> Check:
        if self.function and (self.where or self.conditions or self.items):
            raise ValueError("a check has either 'function' or 'items'/'where'/'conditions', not both")
        if not self.function and (self.judges_errors_of or self.uses_rules):
            raise ValueError("'judges_errors_of' and 'uses_rules' belong to a check function")
        return self


class ManualCheck(Frozen):
    """A rule Graph cannot observe: where the setting lives and how a person checks it."""

    where: Text
    how: Text


class Reference(Frozen):
    """A document a rule rests on: the council decision, the DPIA, a BIO2 control."""

    label: str
    url: str | None = None


class Rule(Frozen):
    """One rule of the policy pack."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    version: int = Field(1, ge=1)
    severity: Severity
    title: Text
    rationale: Text
    remediation: Text
    references: list[Reference] = []
    sources: list[str] = []
    check: Check | None = None
    manual: ManualCheck | None = None
    observed_by: Check | None = Field(
        None, description="for a manual rule: the check to run when its (delegated-only) sources were collected")
    params: dict[str, JSON] = {}

    @model_validator(mode="after")
    def _check_or_manual(self) -> Rule:
        if (self.check is None) == (self.manual is None):
            raise ValueError("a rule has exactly one of 'check' or 'manual'")
        if self.observed_by is not None and self.manual is None:
            raise ValueError("'observed_by' belongs to a manual rule; an automated rule has 'check'")
        active = self.active_check
        if active is not None and not self.sources:
            raise ValueError("a rule with a check names at least one source")
        if active is not None and active.function is None and len(self.sources) != 1:
            raise ValueError("a declarative check reads exactly one source; use a function for joins")
        return self

    @property
    def active_check(self) -> Check | None:
        """The check the engine runs: 'check', or 'observed_by' of a manual rule (when its sources were read)."""
        return self.check or self.observed_by


class Waiver(Frozen):
    """An approved, expiring exception: turns fail or error into waived until it expires."""

    rule: str
    objects: list[str] | None = None
    reason: str
    approved_by: str
    expires: date


class Attestation(Frozen):
    """A person's dated statement for a rule Graph cannot observe."""

    rule: str
    statement: str
    attested_by: str
    date: dt.date
    expires: dt.date


class ApprovedApp(Frozen):
    """An app allowed tenant-wide access to organisation data, until its review date."""

    app_id: str
    name: str
    reason: str
    review_by: date


class RejectedEntry(Frozen):
    """A waiver, attestation or approved app that could not be used: it covers nothing, and findings say why."""

    kind: Literal["waivers", "attestations", "approved_apps"]
    rule: str | None = Field(None, description="the rule it names; None when the whole file is unusable")
    problem: str = Field(description="file:line: what is wrong, as `m365audit validate` reports it")


class PolicyPack(Frozen):
    """Everything loaded from a policy folder."""

    rules: list[Rule]
    catalogs: dict[str, list[JSON]]
    waivers: list[Waiver] = []
    attestations: list[Attestation] = []
    approved_apps: list[ApprovedApp] = []
    params: dict[str, dict[str, JSON]] = Field(
        {}, description="per-rule parameter overrides: rule id -> {param: value}"
    )
    rejected: list[RejectedEntry] = Field(
        [], description="malformed waivers, attestations and approved apps: not applied (fail closed)")
    digest: str = Field("", description="sha256 over every file the pack was loaded from")
    files: dict[str, str] = Field({}, description="file name -> sha256")

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# --------------------------------------------------------------------------- findings


class FindingObject(Frozen):
    """An object a finding is about: the offending user, app, policy or package."""

    id: str
    name: str = ""
    detail: str = ""
    waived: bool = False


class FindingError(Frozen):
    """A source a rule needed that could not be read."""

    source: str
    message: str
    status: int | None = None
    code: str | None = None
    request_id: str | None = None
    hint: str | None = None


class Finding(Frozen):
    """The verdict of one rule, with everything needed to explain it."""

    rule_id: str
    rule_version: int
    status: Status
    severity: Severity
    title: Text
    message: Text
    objects: list[FindingObject] = []
    sources: list[str] = []
    errors: list[FindingError] = []
    underlying_status: Status | None = Field(None, description="for waived: what it would be without the waiver")
    waiver: Waiver | None = None
    attestation: Attestation | None = None
    notes: list[Text] = []


class CheckOutcome(Frozen):
    """What a check function or the declarative engine concluded, before waivers.

    manual only from the observed_by check of a manual rule: Graph shows something only a person can judge.
    """

    status: Literal[Status.PASS, Status.FAIL, Status.ERROR, Status.MANUAL]
    message: Text
    objects: list[FindingObject] = []
    errors: list[FindingError] = []
