"""What the licence checks need from the users, taken from each page as it is read: one decode per page.

Per user the checks read only ``id``, ``userPrincipalName``, ``displayName``, ``accountEnabled``, the ``skuId``
and ``disabledPlans`` of each ``assignedLicenses`` entry and the ``servicePlanId`` and ``capabilityStatus`` of
each ``assignedPlans`` entry. Users whose licence values are equal for those fields get one *shape*: the checks
judge each shape once (on the first user that has it, so an error names the same user as a walk of every user
would) and then name holders from a compact per-user list kept in a temporary file, never in memory.

Values of an unexpected type (a list where a string belongs, an entry that is no object) give the user a shape
of its own holding the raw values, so every malformed user is still judged exactly as before (fail closed).
"""

from __future__ import annotations

import marshal
import os
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from m365audit.evidence import PagedItems

FACTS_KEY = "licence_shapes"
"""The name under which a users collection carries its LicenceFacts (PagedItems.facts)."""

NAME_FIELDS = ("id", "userPrincipalName", "displayName")
LICENCE_FIELDS = ("assignedLicenses", "assignedPlans")


class _Odd(Exception):
    """A value the shape key cannot hold as it is: the user gets a shape of its own."""


def _scalar(value: Any) -> Any:
    """A JSON scalar, typed so that 1, 1.0 and True stay apart (a check's message may show which)."""
    if type(value) is str or value is None:
        return value
    if type(value) in (int, float, bool):
        return (type(value).__name__, value)
    raise _Odd


def _entries(value: Any) -> list[dict[str, Any]] | None:
    """A list of objects as it is, None as None; anything else cannot be a shape key."""
    if value is None:
        return None
    if type(value) is not list or any(type(entry) is not dict for entry in value):
        raise _Odd
    return value


def _licences(value: Any) -> Any:
    entries = _entries(value)
    if entries is None:
        return None
    out = []
    for entry in entries:
        disabled = entry.get("disabledPlans")
        if disabled is not None:
            if type(disabled) is not list:
                raise _Odd
            disabled = tuple(_scalar(p) for p in disabled)
        out.append((_scalar(entry.get("skuId")), disabled))
    return tuple(out)


def _plans(value: Any) -> Any:
    entries = _entries(value)
    if entries is None:
        return None
    out = []
    for entry in entries:
        plan, status = entry.get("servicePlanId"), entry.get("capabilityStatus")
        out.append((plan if type(plan) is str else _scalar(plan), status if type(status) is str else _scalar(status)))
    return tuple(out)


_PLAN = itemgetter("servicePlanId", "capabilityStatus")
_LICENCE = itemgetter("skuId", "disabledPlans")


def _plain_key(user: dict[str, Any]) -> Any:
    """The shape key of a user whose licence fields are all there and all strings: the same key as
    (_licences, _plans) give, built in C (itemgetter, join) for the common case. Raises _Odd (or KeyError,
    TypeError) for anything else, which then takes the careful road."""
    licences, plans = user["assignedLicenses"], user["assignedPlans"]
    if type(licences) is not list or type(plans) is not list:
        raise _Odd
    plan_key = tuple(map(_PLAN, plans))  # an entry that is no object: TypeError; a field missing: KeyError
    licence_key = []
    strings = list(chain.from_iterable(plan_key))
    for sku, disabled in map(_LICENCE, licences):
        if type(disabled) is not list:
            raise _Odd
        licence_key.append((sku, tuple(disabled)))
        strings.append(sku)
        strings += disabled
    "".join(strings)  # TypeError unless every value is a string: 1, 1.0 and True must keep their own shapes
    return tuple(licence_key), plan_key


class LicenceFacts:
    """Users by licence shape: ``shapes`` (first user of each, in order of appearance) and ``users()``."""

    def __init__(self, path: Path | None = None) -> None:
        """``path``: a new file for the per-user list (in the run's spool); None: a temporary file."""
        self.shapes: list[dict[str, Any]] = []
        """Per shape, the first user that has it (only the fields the checks read)."""
        self._index: dict[Any, int] = {}
        if path is None:
            handle, name = tempfile.mkstemp(prefix="m365audit-users-", suffix=".facts")
            os.close(handle)
            path = Path(name)
            weakref.finalize(self, path.unlink, missing_ok=True)
        else:
            path.open("xb").close()
        self.path = path
        self._pages: list[tuple[int, int]] = []
        self._size = 0
        self.count = 0

    def add_page(self, items: list[Any]) -> None:
        """Note the users of one page (any item that is not an object is left to items_of, which refuses it)."""
        rows = []
        for user in items:
            if type(user) is not dict:
                continue
            get = user.get
            try:
                key: Any = _plain_key(user)
            except (_Odd, KeyError, TypeError):
                try:
                    key = (_licences(get("assignedLicenses")), _plans(get("assignedPlans")))
                except _Odd:
                    key = None
            shape = None if key is None else self._index.get(key)
            if shape is None:
                shape = len(self.shapes)
                self.shapes.append({k: user[k] for k in NAME_FIELDS + LICENCE_FIELDS if k in user})
                if key is not None:
                    self._index[key] = shape
            rows.append((get("id"), get("userPrincipalName"), get("displayName"), get("accountEnabled"), shape))
        raw = marshal.dumps(rows)  # our own scratch file, read back by this process only
        with self.path.open("ab") as f:
            f.write(raw)
        self._pages.append((self._size, len(raw)))
        self._size += len(raw)
        self.count += len(rows)

    def finish(self) -> LicenceFacts:
        self._index = {}  # only add_page needs it
        return self

    def users(self) -> Iterator[tuple[dict[str, Any], int]]:
        """Every user in order, as {id, userPrincipalName, displayName, accountEnabled} and its shape."""
        with self.path.open("rb") as f:
            for offset, length in self._pages:
                f.seek(offset)
                for ident, upn, name, enabled, shape in marshal.loads(f.read(length)):
                    user = {"id": ident, "userPrincipalName": upn, "displayName": name, "accountEnabled": enabled}
                    yield {k: v for k, v in user.items() if v is not None}, shape


def facts_writer(path: Path) -> LicenceFacts:
    """The page observer collect gives a users collection spooled at ``path``."""
    return LicenceFacts(path.with_suffix(".facts"))


def licence_facts(users: Iterable[Any]) -> LicenceFacts:
    """The facts of a users source: those noted while it was collected, else taken from it now (kept for the
    next rule on the same PagedItems, so a stored snapshot's users are read once per evaluation)."""
    if isinstance(users, PagedItems):
        found = users.facts.get(FACTS_KEY)
        if isinstance(found, LicenceFacts):
            users.check_readable()  # the collection these facts came from is still whole (fail closed)
            return found
        facts = LicenceFacts()
        for page in users.iter_pages():
            facts.add_page(page)
        users.facts[FACTS_KEY] = facts.finish()
        return facts
    facts = LicenceFacts()
    facts.add_page(list(users))
    return facts.finish()
