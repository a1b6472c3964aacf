"""Stable keyed pseudonyms (HMAC-SHA256) for user names and addresses in reports; the key stays with the admin."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from m365audit.errors import UsageError
from m365audit.evidence import is_list
from m365audit.models import Finding, Snapshot, SourceError, SourceResult

KEY_ENV = "M365AUDIT_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
PSEUDONYM_HEX = 12
WORD = re.compile(r"\w+")
EMAIL = re.compile(r"[A-Za-z0-9._%+'#-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
"""An address or UPN, guest UPNs (name_partner.nl#EXT#@tenant.onmicrosoft.com) included."""
USER_KEYS = ("userPrincipalName", "UserPrincipalName", "User Principal Name", "userId", "UserId")
NAME_KEYS = ("displayName", "DisplayName", "Display Name", "userDisplayName")
ADDRESS_KEYS = ("userPrincipalName", "UserPrincipalName", "User Principal Name", "mail", "otherMails",
                "proxyAddresses", "userId", "UserId")
ALIAS_KEYS = ("mailNickname", "onPremisesSamAccountName", "alias")
IDENTITY_KEYS = frozenset({"createdBy", "lastModifiedBy", "modifiedBy", "createdByUser", "lastModifiedByUser", "owner",
                           "owners", "requestedBy", "requestor", "approvedBy", "reviewedBy", "assignedBy", "sponsor",
                           "sponsors", "author"})
"""Fields that name a person (Graph identitySets and plain names): whoever stands there is pseudonymised."""
ROLE_ALIASES = frozenset({"admin", "administrator", "beheer", "beheerder", "info", "test", "service", "support",
                          "helpdesk", "noreply", "security", "contact", "postmaster", "team", "user", "users", "guest",
                          "gast", "system", "systeem", "audit", "copilot"})
"""Aliases that are also ordinary words of a report: function accounts, not people; replacing them would garble it."""
MIN_ALIAS = 4
KEEP_KEYS = frozenset({"rule_id", "rule_version", "status", "severity", "sources", "underlying_status", "rule",
                       "source", "code", "request_id"})
KEY_HINT = (f"set {KEY_ENV} (at least {MIN_KEY_BYTES} characters, e.g. `openssl rand -hex 32`) or pass "
            "--pseudonym-key-file; keep the key: the same key gives the same pseudonyms in every report")


def load_key(key_file: Path | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The admin's pseudonym key from --pseudonym-key-file or M365AUDIT_PSEUDONYM_KEY; refuse to run without one."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the pseudonym key file {key_file}: {exc.strerror}", hint=KEY_HINT) from exc
        origin = str(key_file)
    else:
        key = env.get(KEY_ENV, "").strip().encode()
        origin = KEY_ENV
    if not key:
        raise UsageError("--pseudonymise needs a key, and none was given", hint=KEY_HINT)
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"the pseudonym key in {origin} is too short ({len(key)} bytes, need {MIN_KEY_BYTES})",
                         hint=KEY_HINT)
    return key


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a source's data (users, usage rows, audit records …), read page by page from disk."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif is_list(value):
        for child in value:
            yield from _walk(child)


def _objects(snapshot: Snapshot | None) -> Iterator[dict[str, Any]]:
    for result in snapshot.sources.values() if snapshot else ():
        yield from _walk(result.data)


def _guest_address(upn: str) -> str | None:
    """The invited person's own address inside a guest UPN: j.jansen_partner.nl#EXT#@… -> j.jansen@partner.nl."""
    local = upn.split("@")[0]
    if "#ext#" not in local.casefold() or "_" not in local:
        return None
    name, _, domain = local.split("#")[0].rpartition("_")
    return f"{name}@{domain}" if name and "." in domain else None


def _bounded(text: str, start: int, end: int) -> bool:
    """A whole name: not part of a longer word, address or hyphenated name."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before in "_@.-") and not (after.isalnum() or after in "_@-")


class Pseudonymiser:
    """Replaces the people of a snapshot (names, UPNs, mail addresses) and any address in a text by user-<hmac>."""

    def __init__(self, key: bytes, snapshot: Snapshot | None = None) -> None:
        self._key = key
        self._names: dict[str, str] = {}
        self._addresses: dict[str, str] = {}
        self._by_first_word: dict[str, list[tuple[int, int]]] = {}  # first word -> (length, its offset)
        self.learn(snapshot)

    def learn(self, snapshot: Snapshot | None) -> Pseudonymiser:
        """Also replace the people of this snapshot (last night's, for drift: someone who has left since)."""
        for item in _objects(snapshot):  # two passes over the data, never all of it in memory
            self._add_person(item)
        for item in _objects(snapshot):
            name = item.get("principalDisplayName")
            if item.get("principalType") == "User" and isinstance(name, str) and len(name.strip()) >= 3:
                self._names.setdefault(name.strip(), self.pseudonym(name))
        shapes: dict[str, set[tuple[int, int]]] = {}
        for name in self._names:
            first = WORD.search(name)
            if first is not None:
                shapes.setdefault(first.group(0), set()).add((len(name), first.start()))
        self._by_first_word = {word: sorted(found, reverse=True) for word, found in shapes.items()}
        return self

    def pseudonym(self, identity: str) -> str:
        """user-<first 12 hex of HMAC-SHA256(key, identity lower-cased)>: stable for a key, useless without it."""
        digest = hmac.new(self._key, identity.strip().casefold().encode(), hashlib.sha256).hexdigest()
        return f"user-{digest[:PSEUDONYM_HEX]}"

    def _add_person(self, item: dict[str, Any]) -> None:
        for key in IDENTITY_KEYS & item.keys():
            self._add_identity(item[key])
        addresses = [a.split(":", 1)[-1] for key in ADDRESS_KEYS for a in _strings(item.get(key)) if "@" in a]
        if not any(isinstance(item.get(k), str) for k in USER_KEYS) or not addresses:
            return
        alias = self.pseudonym(addresses[0])
        guests = [_guest_address(a) for a in addresses]
        for address in addresses + [g for g in guests if g]:
            self._addresses.setdefault(address.casefold(), alias)
            local = address.split("@")[0]
            self._add_alias(local.split("#")[0], alias)  # name_partner.nl#EXT# stands alone too
        for key in ALIAS_KEYS:
            for nickname in _strings(item.get(key)):
                self._add_alias(nickname, alias)
        for key in NAME_KEYS:
            name = item.get(key)
            if isinstance(name, str) and len(name.strip()) >= 3:
                self._names.setdefault(name.strip(), alias)

    def _add_alias(self, alias: str, pseudonym: str) -> None:
        """A bare user name (j.jansen, jjansen) is replaced where it stands alone; function words are not."""
        alias = alias.strip()
        if len(alias) >= MIN_ALIAS and alias.casefold() not in ROLE_ALIASES and WORD.search(alias):
            for form in (alias, alias.casefold()):
                self._names.setdefault(form, pseudonym)

    def _add_identity(self, value: Any) -> None:
        """Whoever a createdBy/owner/… field names: an identitySet ({user: {…}}), a list of them, or a plain name."""
        if isinstance(value, list):
            for item in value:
                self._add_identity(item)
        elif isinstance(value, dict):
            inner = value.get("user")
            person: dict[str, Any] = inner if isinstance(inner, dict) else value
            kind = str(person.get("@odata.type", "")).casefold()
            if not (inner is person or "user" in kind or person.keys() & {"userPrincipalName", "email", "mail"}):
                return  # an application or device identity: not a person
            addresses = [a for k in ("userPrincipalName", "email", "mail") for a in _strings(person.get(k)) if "@" in a]
            name = person.get("displayName")
            alias = self.pseudonym(addresses[0] if addresses else name if isinstance(name, str) else "")
            for address in addresses:
                self._addresses.setdefault(address.casefold(), alias)
            if isinstance(name, str) and len(name.strip()) >= 3:
                self._names.setdefault(name.strip(), alias)
        elif isinstance(value, str) and len(value.strip()) >= 3 and "@" not in value:
            self._names.setdefault(value.strip(), self.pseudonym(value))

    def text(self, value: str) -> str:
        """A text with every mail address and every known name (whole names only) replaced by its pseudonym."""
        value = EMAIL.sub(lambda m: self._addresses.get(m.group(0).casefold()) or self.pseudonym(m.group(0)), value)
        return self._names_replaced(value) if self._by_first_word else value

    def _names_replaced(self, value: str) -> str:
        """Known names, found by their first word: for each length a name starting with that word has (longest
        first), one dict lookup of the text there. 300,000 users named 'Medewerker …' cost a few lookups a word,
        not a loop over every name that starts alike (and no giant regex)."""
        out, last = [], 0
        for word in WORD.finditer(value):
            for length, offset in self._by_first_word.get(word.group(0), ()):
                start = word.start() - offset
                end = start + length
                alias = self._names.get(value[start:end]) if start >= last else None
                if alias is not None and _bounded(value, start, end):
                    out += [value[last:start], alias]
                    last = end
                    break
        return "".join(out) + value[last:]

    def _deep(self, value: Any, key: str = "") -> Any:
        if key in KEEP_KEYS:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._deep(v, key) for v in value]
        if isinstance(value, dict):
            return {k: self._deep(v, k) for k, v in value.items()}
        return value

    def finding(self, finding: Finding) -> Finding:
        """The finding with people replaced in every text, object, waiver and attestation."""
        return Finding.model_validate(self._deep(finding.model_dump()))

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot as reports see it: no data, people replaced in URLs and error messages."""
        sources = {key: self._source(result) for key, result in snapshot.sources.items()}
        return snapshot.model_copy(update={"sources": sources})

    def _source(self, result: SourceResult) -> SourceResult:
        error = SourceError.model_validate(self._deep(result.error.model_dump())) if result.error else None
        return result.model_copy(update={"data": None, "url": self.text(result.url), "error": error, "meta": {}})
