"""Fixed shapes for the catalogs whose entries a check reads field by field (intune-settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


def _key(value: str) -> str:
    """Edge ids carry an ADMX version (edgev99, edgev130): compare on the part after '~policy~'."""
    return value.lower().rsplit("~policy~", 1)[-1]


class UnconfirmedValue(BaseModel):
    """A value whose effect no source confirms: an assigned policy that sets it makes the rule error."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1)
    meaning: str = Field(min_length=1, description="what the value probably does, and why that is unsure")
    source: str = Field(min_length=1)


class IntuneSetting(BaseModel):
    """One settings-catalog setting a rule reads, and what each of its values means for that rule."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1)
    setting: str = Field(min_length=1, description="the settingDefinitionId (Edge: matched after '~policy~')")
    compliant: list[str] = Field(description="values that enforce the rule (may be empty for a setting the rule "
                                             "only watches); any value not listed anywhere counts as not compliant")
    neutral: list[str] = Field(default=[], description="values that neither enforce nor undo the rule "
                                                       "(for example the default, the same as not configured)")
    unconfirmed: list[UnconfirmedValue] = Field(default=[], description="values whose meaning is not confirmed")
    confirmed: bool = Field(default=True, description="false: the settingDefinitionId itself is inferred, not "
                                                      "seen in Microsoft's definitions; any value makes the rule error")
    meaning: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _values_fit(self) -> IntuneSetting:
        lists = {"compliant": self.compliant, "neutral": self.neutral,
                 "unconfirmed": [u.value for u in self.unconfirmed]}
        seen: dict[str, str] = {}
        for name, values in lists.items():
            for value in values:
                if not _key(value).startswith(_key(self.setting) + "_"):
                    raise ValueError(f"{name} value {value!r} is not a value of {self.setting!r} "
                                     "(it should be the setting id followed by _ and the option)")
                if _key(value) in seen:
                    raise ValueError(f"value {value!r} is both {seen[_key(value)]} and {name}")
                seen[_key(value)] = name
        if not self.confirmed and self.compliant:
            raise ValueError("a setting whose id is unconfirmed (confirmed: false) cannot have compliant values")
        return self


CATALOG_ENTRIES: dict[str, type[BaseModel]] = {"intune-settings": IntuneSetting}
