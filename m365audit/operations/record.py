"""Turn recorded exchanges into a shareable fixture tenant: people, tenant id and domains consistently pseudonymised."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from m365audit.errors import UsageError
from m365audit.evidence import STORED_DEPTH, strict_loads
from m365audit.graph import body_file_path
from m365audit.operations.orgtraces import OrgTraces

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMAIL = re.compile(r"[A-Za-z0-9._%+'#-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
"""An address or UPN, including guest UPNs (name_partner.nl#EXT#@tenant.onmicrosoft.com)."""
KEPT_HEADERS = ("content-type", "retry-after", "location", "date")
PERSON_FIELDS = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "principalDisplayName",
                 "userDisplayName", "UserId", "userId")
FIRST = ("Anouk", "Bram", "Cato", "Daan", "Eline", "Floris", "Guusje", "Hidde", "Isa", "Jelle", "Kiki", "Lars",
         "Maud", "Niels", "Olga", "Pim", "Roos", "Sem", "Tess", "Ugo", "Vera", "Wessel", "Xandra", "Youri")
LAST = ("Achterberg", "Brinkhuis", "Colijn", "Dijkgraaf", "Eikelboom", "Feenstra", "Groeneveld", "Haverkamp",
        "IJsselstein", "Jongeling", "Klaver", "Lindeboom", "Mulderij", "Noordhoek", "Oudeman", "Poelstra",
        "Rietveld", "Schuttevaer", "Terpstra", "Uitenbroek", "Vlietstra", "Wijnholds", "Zandbergen")


@dataclass
class Exchange:
    """One exchange read from a folder: its file name, request, response meta and decoded body."""

    name: str
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: Any
    is_json: bool
    source: str | None = None


@dataclass
class Pseudonyms:
    """The consistent replacement tables built from one recording."""

    salt: str
    ids: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    originals: set[str] = field(default_factory=set)
    tenant_domains: set[str] = field(default_factory=set)
    _frozen: bool = False
    _domains: re.Pattern[str] | None = None
    parts: dict[str, str] = field(default_factory=dict)
    max_name_words: int = 1
    """Domains replaced wherever they appear (the tenant's verified domains); others only inside addresses."""
    people: int = 0
    org: OrgTraces = field(default_factory=OrgTraces)

    def new_id(self, old: str) -> str:
        key = old.lower()
        if key not in self.ids:
            self.ids[key] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"m365audit-record:{self.salt}:{key}"))
        return self.ids[key]

    locals: dict[str, str] = field(default_factory=dict)

    def person_name(self, old: str) -> str:
        if old not in self.names:
            name, local = self._invent()
            self.names[old] = name
            self.locals[name] = local
        return self.names[old]

    def address(self, old: str, name: str | None = None) -> str:
        """The pseudonym of an address; with the person's name, the address matches the invented name."""
        key = old.lower().replace("%40", "@")
        if key not in self.addresses:
            domain = key.partition("@")[2]
            local = self.locals[self.person_name(name)] if name else self._invent()[1]
            guest = "#ext#" in key  # keep the guest shape: Graph marks invited users this way
            self.addresses[key] = f"{local}_gast.test#EXT#@{self.domain(domain)}" if guest \
                else f"{local}@{self.domain(domain)}"
        return self.addresses[key]

    def patterns(self) -> re.Pattern[str] | None:
        """Freeze the tables after discovery: user names, the longest name in words, and the tenant domains."""
        if not self._frozen:
            self._frozen = True
            self.parts = self.local_parts()
            self.max_name_words = max((len(WORD.findall(n)) for n in self.names), default=1)
            self.org.freeze(self.domains, self.tenant_domains)
            if self.tenant_domains:
                body = "|".join(re.escape(d) for d in sorted(self.tenant_domains, key=len, reverse=True))
                self._domains = re.compile(f"(?<![\\w-])(?:{body})(?![\\w-])", re.IGNORECASE)
        return self._domains

    def local_parts(self) -> dict[str, str]:
        """Distinctive user names (j.jansen) of known addresses, which also turn up alone (e.g. as publisher)."""
        parts: dict[str, str] = {}
        for old, new in self.addresses.items():
            local = old.split("@")[0].split("#")[0]
            if len(local) >= 5 and ("." in local or "_" in local):
                parts[local] = new.split("@")[0].split("#")[0]
        return parts

    def domain(self, old: str) -> str:
        key = old.lower()
        if key not in self.domains:
            n = len(self.domains) + 1
            self.domains[key] = (f"pseudoniem{n}.onmicrosoft.com" if key.endswith(".onmicrosoft.com")
                                 else f"tenant{n}.pseudoniem.test")
        return self.domains[key]

    def _invent(self) -> tuple[str, str]:
        while True:
            k = self.people
            self.people += 1
            first, last = FIRST[k % len(FIRST)], LAST[(5 * k + 3) % len(LAST)]
            suffix = "" if k < len(FIRST) * len(LAST) else f" {k}"
            name = f"{first} {last}{suffix}"
            if name.lower() not in self.originals:
                local = re.sub(r"[^a-z0-9.]", "", f"{first[0]}.{last}{suffix}".lower())
                return name, local if k < len(FIRST) * len(LAST) else f"{local}.{k}"


# --------------------------------------------------------------------------- reading


def exchanges_folder(path: Path) -> Path:
    """A run folder, a fixture tenant or an exchanges/ folder -> the folder holding the exchange files."""
    inner = path / "exchanges"
    folder = inner if inner.is_dir() else path
    if not any(folder.glob("*.json")):
        raise UsageError(f"{path} holds no recorded exchanges",
                         hint="give a run folder, a fixture tenant or its exchanges/ folder")
    return folder


def read_exchanges(path: Path) -> list[Exchange]:
    """Every exchange of a folder in file-name order, bodies decoded (JSON when they parse)."""
    folder = exchanges_folder(path)
    found: list[Exchange] = []
    for file in sorted(folder.glob("*.json")):
        doc = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "request" not in doc or "response" not in doc:
            continue
        resp = doc["response"]
        body: Any
        is_json = True
        if "body" in resp:
            body = resp["body"]
        else:
            text = (resp["body_text"] if "body_text" in resp
                    else body_file_path(file, resp["body_file"]).read_bytes().decode("utf-8", errors="replace"))
            try:  # strictly: a body with a repeated key stays text, so the shared copy stays as ambiguous
                body = strict_loads(text.encode("utf-8", "surrogatepass"), max_depth=STORED_DEPTH, repair=False)
            except ValueError:
                body, is_json = text, False
        found.append(Exchange(file.name, dict(doc["request"]), int(resp.get("status", 200)),
                              {str(k): str(v) for k, v in (resp.get("headers") or {}).items()}, body, is_json,
                              doc.get("source")))
    return found


# --------------------------------------------------------------------------- discovery


def _path(exchange: Exchange) -> str:
    url = str(exchange.request.get("url", ""))
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0].rstrip("/").lower()


def _items(body: Any) -> Iterator[dict[str, Any]]:
    if isinstance(body, dict):
        values = body.get("value")
        if isinstance(values, list):
            yield from (v for v in values if isinstance(v, dict))
        elif isinstance(values, dict):
            yield values
        else:
            yield body


def discover(exchanges: list[Exchange], salt: str) -> Pseudonyms:
    """Find the tenant, its domains and every person, and fix their pseudonyms in order of appearance."""
    p = Pseudonyms(salt)
    people_ids: list[str] = []
    names: list[str] = []
    addresses: list[tuple[str, str | None]] = []
    for ex in exchanges:
        path = _path(ex)
        if not ex.is_json:
            _discover_csv(ex.body, names, addresses)
            continue
        for item in _items(ex.body):
            if path.endswith("/organization"):
                if isinstance(item.get("id"), str):
                    people_ids.append(item["id"])
                for d in item.get("verifiedDomains") or []:
                    if isinstance(d, dict) and isinstance(d.get("name"), str):
                        p.domain(d["name"])
                        p.tenant_domains.add(d["name"].lower())
                if isinstance(item.get("displayName"), str):
                    p.names[item["displayName"]] = "Gemeente Pseudoniem"
                p.org.learn_organization(item)
            elif "/branding" in path:
                p.org.learn_branding(item)
            elif path.endswith("/users") or path.endswith("/users/delta"):
                _discover_person(item, people_ids, names, addresses)
            elif item.get("principalType") == "User" or "consentType" in item:
                if isinstance(item.get("principalId"), str):
                    people_ids.append(item["principalId"])
                if item.get("principalType") == "User" and isinstance(item.get("principalDisplayName"), str):
                    names.append(item["principalDisplayName"])
            elif path.endswith("/records"):
                _discover_person(item, people_ids, names, addresses)
    p.originals = {n.lower() for n in names}
    for pid in people_ids:
        p.new_id(pid)
    for name in names:
        p.person_name(name)
    for address, owner in addresses:
        p.address(address, owner)
    return p


def _discover_person(item: dict[str, Any], ids: list[str], names: list[str],
                     addresses: list[tuple[str, str | None]]) -> None:
    if isinstance(item.get("id"), str) and "userPrincipalName" in item:
        ids.append(item["id"])
    if isinstance(item.get("userId"), str) and GUID.fullmatch(item["userId"]):
        ids.append(item["userId"])
    raw = item.get("displayName") or item.get("userDisplayName")
    name = raw if isinstance(raw, str) and raw and not EMAIL.fullmatch(raw) else None
    if name:
        names.append(name)
    for key in PERSON_FIELDS:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            continue
        if EMAIL.fullmatch(value):
            addresses.append((value, name))
        elif key in ("givenName", "surname", "principalDisplayName"):
            names.append(value)


def _discover_csv(text: Any, names: list[str], addresses: list[tuple[str, str | None]]) -> None:
    if not isinstance(text, str) or "User Principal Name" not in text[:500]:
        return
    for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))):
        name = row.get("Display Name") or None
        upn = row.get("User Principal Name") or ""
        if name and not EMAIL.fullmatch(name):
            names.append(name)
        if EMAIL.fullmatch(upn):
            addresses.append((upn, name if name and not EMAIL.fullmatch(name) else None))


# --------------------------------------------------------------------------- replacing


def scrub(text: str, p: Pseudonyms) -> str:
    """Replace every known person id, address, name and tenant domain in one string."""
    domains = p.patterns()
    if text in p.names:
        return p.names[text]
    text = GUID.sub(lambda m: p.ids.get(m.group(0).lower(), m.group(0)), text)
    text = EMAIL.sub(lambda m: _address_like(m.group(0), p), text)
    text = _replace_names(text, p)
    text = _replace_user_names(text, p)
    if domains is not None:
        text = domains.sub(lambda m: p.domains[m.group(0).lower()], text)
    return p.org.scrub(text)


WORD = re.compile(r"\w+")
USER_NAME = re.compile(r"[\w.%+'-]+")


def _replace_names(text: str, p: Pseudonyms) -> str:
    """Known display names inside free text, longest first, on word boundaries (dictionary lookups, no big regex)."""
    words = list(WORD.finditer(text))
    if not words or not p.names:
        return text
    out: list[str] = []
    done = 0
    i = 0
    while i < len(words):
        for k in range(min(p.max_name_words, len(words) - i), 0, -1):
            start, end = words[i].start(), words[i + k - 1].end()
            new = p.names.get(text[start:end]) if end - start >= 3 else None
            if new is not None:
                out.append(text[done:start] + new)
                done, i = end, i + k
                break
        else:
            i += 1
    return "".join(out) + text[done:] if out else text


def _replace_user_names(text: str, p: Pseudonyms) -> str:
    """Distinctive user names (j.jansen) standing alone, e.g. as an agent's publisher."""
    if not p.parts:
        return text

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        bare = token.rstrip(".")
        new = p.parts.get(bare.lower())
        if new is None or text[m.end():m.end() + 1] in ("@", "%"):
            return token
        return new + token[len(bare):]

    return USER_NAME.sub(swap, text)


def _address_like(value: str, p: Pseudonyms) -> str:
    encoded = "%40" in value
    new = p.address(value)
    return new.replace("@", "%40") if encoded else new


def scrub_value(value: Any, p: Pseudonyms) -> Any:
    """scrub() applied to every string (not key) of a JSON value."""
    if isinstance(value, str):
        return scrub(value, p)
    if isinstance(value, list):
        return [scrub_value(v, p) for v in value]
    if isinstance(value, dict):
        return {k: scrub_value(v, p) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class RecordSummary:
    """What pseudonymise wrote."""

    out: Path
    exchanges: int
    people: int
    domains: int
    tenant_id: str | None


def pseudonymise(src: Path, out: Path, salt: str | None = None, note: str = "") -> RecordSummary:
    """Write src's exchanges to out/ as a fixture tenant (FIXTURES.md) with every person pseudonymised."""
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty", hint="choose a new folder; recordings are never merged")
    exchanges = read_exchanges(src)
    p = discover(exchanges, salt or secrets.token_hex(16))
    folder = out / "exchanges"
    folder.mkdir(parents=True, exist_ok=True)
    for ex in exchanges:
        (folder / ex.name).write_text(json.dumps(_fixture_doc(ex, p), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    tenant_id = _tenant_id(exchanges, p)
    meta = {"tenant_id": tenant_id, "display_name": "Gemeente Pseudoniem",
            "description": ("Recorded with m365audit record and pseudonymised: people, tenant id and domains "
                            "are invented; Microsoft's app, plan and SKU ids are real. " + note).strip()}
    (out / "tenant.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return RecordSummary(out, len(exchanges), len(p.addresses) + len(p.names), len(p.domains), tenant_id)


def _fixture_doc(ex: Exchange, p: Pseudonyms) -> dict[str, Any]:
    request: dict[str, Any] = {"method": ex.request.get("method", "GET"), "url": scrub(str(ex.request["url"]), p)}
    if "body" in ex.request:
        request["body"] = scrub_value(ex.request["body"], p)
    headers = {k: scrub(v, p) for k, v in ex.headers.items() if k.lower() in KEPT_HEADERS}
    response: dict[str, Any] = {"status": ex.status, "headers": headers}
    if ex.is_json:
        response["body"] = scrub_value(ex.body, p)
    else:
        response["body_text"] = scrub(str(ex.body), p)
    doc: dict[str, Any] = {"request": request, "response": response}
    if ex.source:
        doc["source"] = ex.source
    return doc


def _tenant_id(exchanges: list[Exchange], p: Pseudonyms) -> str | None:
    for ex in exchanges:
        if _path(ex).endswith("/organization") and ex.is_json:
            for item in _items(ex.body):
                if isinstance(item.get("id"), str):
                    return p.new_id(item["id"])
    return None
