"""Whether an app is Microsoft's own: owned by a Microsoft tenant, or a first-party app id the pack relies on."""

from __future__ import annotations

from collections.abc import Callable

from m365audit.evaluate.checks.base import CheckInput, Obj, ShapeError, catalog_of, lowered

OWNER_TENANTS = "microsoft-tenant-ids"
FIRST_PARTY_CATALOGS = ("microsoft-first-party-apps", "copilot-first-party-apps")


def confirmed(entry: Obj) -> bool:
    """A catalog entry counts towards a pass only when its id is confirmed (no `confirmed: false`)."""
    return entry.get("confirmed") is not False


def microsoft_owned(inp: CheckInput) -> Callable[[Obj], bool]:
    """A test for service principals: Microsoft's when the owner tenant is a known Microsoft tenant or the appId is
    a confirmed first-party app id. An absent owner and an unknown app id mean a third party (judged strictly)."""
    tenants = {lowered(e.get("id")) for e in catalog_of(inp, OWNER_TENANTS) if confirmed(e)}
    app_ids = {lowered(e.get("app_id")) for name in FIRST_PARTY_CATALOGS if name in inp.catalogs
               for e in catalog_of(inp, name) if confirmed(e) and e.get("app_id")}
    tenants.discard("")

    def test(sp: Obj) -> bool:
        owner = sp.get("appOwnerOrganizationId")
        if owner is not None and not isinstance(owner, str):
            raise ShapeError(f"service principal {sp.get('appId')}: appOwnerOrganizationId is not text")
        return bool(owner) and lowered(owner) in tenants or lowered(sp.get("appId")) in app_ids

    return test
