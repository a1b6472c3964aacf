"""Privacy: --pseudonymise catches every form a person takes; record leaves nothing that names the organisation."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from m365audit.audit import AuditOptions, run_audit
from m365audit.operations import pseudonymise
from tests.conftest import FIXED_NOW, TENANTS

KEY = b"test-pseudonym-key-0123456789"
GUEST_UPN = "kees.klaas_partner.example#EXT#@gemeenteproefstad.onmicrosoft.com"
PEOPLE = [
    {"id": "5f0c2b1e-9a8d-4c7b-8e6f-1a2b3c4d5e6f", "userPrincipalName": "p.puk@proefstad.voorbeeld.nl",
     "displayName": "Piet Puk", "mailNickname": "ppuk42", "accountEnabled": True, "userType": "Member",
     "assignedLicenses": [], "assignedPlans": []},
    {"id": "6a1d3c2f-0b9e-4d8c-9f7a-2b3c4d5e6f70", "userPrincipalName": GUEST_UPN, "displayName": "Kees Klaas",
     "mail": "kees.klaas@partner.example", "mailNickname": "kees.klaas_partner.example#EXT#",
     "accountEnabled": True, "userType": "Guest", "assignedLicenses": [], "assignedPlans": []},
]
AGENTS = {  # name -> (publisher, extra fields): every form in which a person can stand in another field
    "Agent alias": ("ppuk42", {}),
    "Agent local part": ("p.puk", {}),
    "Agent guest UPN": (GUEST_UPN, {}),
    "Agent guest alias": ("kees.klaas_partner.example#EXT#", {}),
    "Agent guest address": ("kees.klaas@partner.example", {}),
    "Agent of Piet Puk and Kees Klaas": ("Gemeente Proefstad", {}),
    "Agent created by": ("Truus Trien", {"createdBy": {"user": {"id": "7b2e4d3a-1c0f-4e9d-8a7b-3c4d5e6f7081",
                                                                "displayName": "Truus Trien"}}}),
}
FORMS = ["ppuk42", "p.puk", "piet puk", "kees.klaas", "kees klaas", "partner.example", "truus trien"]


def _plant(tmp: Path) -> Path:
    tenant = tmp / "tenant"
    shutil.copytree(TENANTS / "copilot-pilot", tenant)
    users = tenant / "exchanges" / "030-users-page-1.json"
    doc = json.loads(users.read_text(encoding="utf-8"))
    doc["response"]["body"]["value"] += PEOPLE
    users.write_text(json.dumps(doc), encoding="utf-8")
    packages = tenant / "exchanges" / "190-copilot-packages.json"
    doc = json.loads(packages.read_text(encoding="utf-8"))
    model = next(p for p in doc["response"]["body"]["value"] if p["displayName"] == "Notulen-agent")
    for n, (name, (publisher, extra)) in enumerate(AGENTS.items()):
        doc["response"]["body"]["value"].append({**model, **extra, "displayName": name, "publisher": publisher,
                                                 "id": f"P_{n:08d}-1b3d-4f5a-9c7e-0d2f4b6a8c1e",
                                                 "appId": f"{n:08d}-ee6a-5e9d-b662-2c2174951d2d"})
    packages.write_text(json.dumps(doc), encoding="utf-8")
    return tenant


def _audit(tenant: Path, reports: Path, key: bytes | None) -> Path:
    result = asyncio.run(run_audit(AuditOptions(reports=reports, replay=tenant, now=FIXED_NOW, concurrency=1,
                                                lang="en", pseudonym_key=key)))
    return result.run_dir


EVIDENCE = ("snapshot.json", "manifest.json", "manifest.sha256")


def report_bytes(run: Path) -> bytes:
    """Every file the run wrote for readers: all but the evidence (exchanges, snapshot, manifest, policy copies)."""
    return b"\n".join(p.read_bytes().lower() for p in sorted(run.rglob("*")) if p.is_file()
                      and p.name not in EVIDENCE and "exchanges" not in p.parts and "policies" not in p.parts
                      and p.suffix != ".yaml")


def test_pseudonymised_reports_hold_no_form_of_a_person(tmp_path: Path) -> None:
    tenant = _plant(tmp_path)
    plain = report_bytes(_audit(tenant, tmp_path / "plain", None))
    assert [f for f in FORMS if f.encode() not in plain] == [], "each form reaches the plain report"
    pseudo = report_bytes(_audit(tenant, tmp_path / "pseudo", KEY))
    assert [f for f in FORMS if f.encode() in pseudo] == []
    assert b"publisher: gemeente proefstad" in pseudo, "an organisation as publisher stays named"
    assert b"admin" in pseudo, "ordinary words are not taken for aliases"


# --------------------------------------------------------------------------- record: the organisation


ORGANISATION: dict[str, Any] = {
    "city": "Randwijk aan Zee", "street": "Raadhuisplein 7", "postalCode": "9999 ZZ", "state": "Zeeland-Noord",
    "businessPhones": ["+31 99 123 4567"], "marketingNotificationEmails": ["communicatie@proefstad.voorbeeld.nl"],
    "securityComplianceNotificationPhones": ["+31 99 765 4321"],
    "privacyProfile": {"contactEmail": "privacy@proefstad.voorbeeld.nl",
                       "statementUrl": "https://www.proefstad.voorbeeld.nl/privacy"},
}
HOSTS = ["gemeenteproefstad.sharepoint.com", "gemeenteproefstad-my.sharepoint.com",
         "gemeenteproefstad-admin.sharepoint.com", "proefstad-voorbeeld-nl.mail.protection.outlook.com"]
BRANDING = "Welkom bij de Werkplek van Proefstad-Zuid"


def _plant_organisation(tmp: Path) -> tuple[Path, list[str]]:
    tenant = tmp / "org"
    shutil.copytree(TENANTS / "copilot-pilot", tenant)
    org_file = tenant / "exchanges" / "010-organization.json"
    doc = json.loads(org_file.read_text(encoding="utf-8"))
    org = doc["response"]["body"]["value"][0]
    org.update(ORGANISATION)
    domains = [d["name"] for d in org["verifiedDomains"]]
    org_file.write_text(json.dumps(doc), encoding="utf-8")
    packages = tenant / "exchanges" / "190-copilot-packages.json"
    doc = json.loads(packages.read_text(encoding="utf-8"))
    agent = doc["response"]["body"]["value"][-1]
    agent["shortDescription"] = ("Zoekt in " + ", ".join(f"https://{h}/sites/x" for h in HOSTS)
                                 + " voor Randwijk aan Zee, bel +31 (99) 123-4567")
    packages.write_text(json.dumps(doc), encoding="utf-8")
    (tenant / "exchanges" / "015-branding.json").write_text(json.dumps({
        "request": {"method": "GET", "url": f"/v1.0/organization/{org['id']}/branding"},
        "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": {
            "signInPageText": BRANDING, "usernameHintText": "naam@proefstad.voorbeeld.nl",
            "customPrivacyAndCookiesText": "Privacy bij Proefstad-Zuid"}}}), encoding="utf-8")
    assert "gemeenteproefstad.onmicrosoft.com" in domains
    forms = ["randwijk aan zee", "raadhuisplein", "9999 zz", "zeeland-noord", "99 123 4567", "99) 123-4567",
             "99 765 4321", "proefstad-zuid", "werkplek van", "gemeenteproefstad", "proefstad.voorbeeld",
             "proefstad-voorbeeld-nl", *(d.lower() for d in domains)]
    return tenant, forms


def test_record_leaves_nothing_that_names_the_organisation(tmp_path: Path) -> None:
    tenant, forms = _plant_organisation(tmp_path)
    source = b"\n".join(p.read_bytes().lower() for p in sorted(tenant.rglob("*")) if p.is_file())
    assert [f for f in forms if f.encode() not in source] == [], "each form is planted"
    out = tmp_path / "shared"
    pseudonymise(tenant, out, salt="test")
    written = b"\n".join(p.read_bytes().lower() for p in sorted(out.rglob("*")) if p.is_file())
    assert [f for f in forms if f.encode() in written] == []
    assert b"sharepoint.com" in written, "Microsoft's own host names stay (only the tenant's part goes)"
