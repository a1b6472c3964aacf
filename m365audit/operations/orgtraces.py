"""What names the organisation in a recording besides its name and domains: address, phones, derived hosts, branding."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PLACES = {"city": "Pseudoniemstad", "street": "Pseudoniemstraat 1", "postalCode": "0000 AA",
          "state": "Pseudoniemprovincie", "country": "Pseudoniemland"}
PHONE_KEYS = ("businessPhones", "securityComplianceNotificationPhones", "mobilePhone", "faxNumber")
PHONE = re.compile(r"\+?\(?\d[\d\s()./-]{5,}\d")
PHONE_DIGITS = 9
"""Phones compare on their last nine digits: +31 88 000 0000, 088-0000000 and (088) 000 00 00 are one number."""
SKIPPED_BRANDING_KEYS = ("id", "cdnList", "locale")


def _strings(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, str) and not key.startswith("@odata") and key not in SKIPPED_BRANDING_KEYS:
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)[-PHONE_DIGITS:]


@dataclass
class OrgTraces:
    """The organisation's own strings and the host labels derived from its domains, with their replacements."""

    strings: dict[str, str] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    _strings: re.Pattern[str] | None = None
    _labels: re.Pattern[str] | None = None

    def learn_organization(self, item: dict[str, Any]) -> None:
        """Address and phones of /organization; its privacy statement URL (often on a site of its own)."""
        for key, placeholder in PLACES.items():
            value = item.get(key)
            if isinstance(value, str) and len(value.strip()) >= 2:
                self.strings.setdefault(value.strip(), placeholder)
        for key in PHONE_KEYS:
            for phone in _strings(item.get(key)):
                if len(_digits(phone)) >= 6:
                    self.phones.setdefault(_digits(phone), f"+31 00 000 {len(self.phones):04d}")
        privacy = item.get("privacyProfile")
        url = privacy.get("statementUrl") if isinstance(privacy, dict) else None
        if isinstance(url, str) and url.strip():
            self.strings.setdefault(url.strip(), "https://privacy.pseudoniem.test/")

    def learn_branding(self, body: Any) -> None:
        """Every text of the company branding (sign-in page text, hints, privacy link text) is the organisation's."""
        for text in _strings(body):
            if len(text.strip()) >= 3:
                self.strings.setdefault(text.strip(), f"Pseudoniem-tekst {len(self.strings) + 1}")

    def freeze(self, domains: dict[str, str], tenant_domains: set[str]) -> None:
        """Host labels derived from the tenant's domains: contoso(-my|-admin).sharepoint.com from
        contoso.onmicrosoft.com, contoso-nl.mail.protection.outlook.com from contoso.nl."""
        for old in tenant_domains:
            new = domains[old]
            if old.endswith(".onmicrosoft.com"):
                self.labels.setdefault(old.split(".")[0], new.split(".")[0])
            self.labels.setdefault(old.replace(".", "-"), new.replace(".", "-"))
        if self.strings:
            body = "|".join(re.escape(s) for s in sorted(self.strings, key=len, reverse=True))
            self._strings = re.compile(f"(?<!\\w)(?:{body})(?!\\w)", re.IGNORECASE)
        if self.labels:
            body = "|".join(re.escape(s) for s in sorted(self.labels, key=len, reverse=True))
            self._labels = re.compile(f"(?<![a-z0-9])(?:{body})(?![a-z0-9])", re.IGNORECASE)

    def scrub(self, text: str) -> str:
        """The organisation's address, phones, branding texts and domain-derived host labels replaced."""
        folded = {k.casefold(): v for k, v in self.strings.items()}
        if self._strings is not None:
            text = self._strings.sub(lambda m: folded.get(m.group(0).casefold(), "Pseudoniem"), text)
        if self.phones:
            text = PHONE.sub(lambda m: self.phones.get(_digits(m.group(0)), m.group(0)), text)
        if self._labels is not None:
            labels = {k.casefold(): v for k, v in self.labels.items()}
            text = self._labels.sub(lambda m: labels.get(m.group(0).casefold(), m.group(0)), text)
        return text
