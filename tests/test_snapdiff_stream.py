"""diff_items: the streamed diff of two collections equals the list diff, in far less memory."""

from __future__ import annotations

import copy
import random
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from m365audit.drift.nights import source_drift
from m365audit.drift.snapdiff import PathChange, _identity, diff, diff_items
from m365audit.models import Snapshot, SourceResult

SKUS = ["c7df2760-2c81-4ef7-b578-5b5392b571df", "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        "639dec6b-bb19-468b-871c-c5c441c4b0cb", "f30db892-07e9-47e9-837c-80727f46fd3d"]
PLANS = ["efb87545-963c-4e0d-99df-69c6916d9eb0", "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
         "57ff2da0-773e-42df-b2af-ffb7a2317929", "fe71d6c3-a2ea-4499-9778-da042bf08063",
         "b737dad2-2f6c-4c65-90e3-ca563267e8b9"]


class Seq(Sequence[Any]):
    """A re-iterable collection like the snapshot's on-disk items: fresh copies on every iteration, no indexing."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self.iterations = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        self.iterations += 1
        for item in self._items:
            yield copy.deepcopy(item)

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("diff_items indexed the collection")


def streamed(old: list[Any], new: list[Any]) -> tuple[list[PathChange], int]:
    """diff_items over Seqs, and how often each side was read (1: streamed, 2: fell back to lists)."""
    a, b = Seq(old), Seq(new)
    changes = diff_items(a, b, "users")
    assert a.iterations == b.iterations
    return changes, a.iterations


# --------------------------------------------------------------------------- random nights


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def user(rng: random.Random, ident: Any) -> dict[str, Any]:
    n = rng.randrange(10_000)
    return {
        "@odata.etag": f'W/"{rng.getrandbits(40)}"', "id": ident, "displayName": f"User {n}",
        "userPrincipalName": f"user{n}@contoso.nl", "accountEnabled": rng.random() < 0.9,
        "assignedLicenses": [{"skuId": s, "disabledPlans": rng.sample(PLANS, rng.randrange(2))}
                             for s in rng.sample(SKUS, rng.randrange(3))],
        "assignedPlans": [{"assignedDateTime": "2025-03-01T10:00:00Z", "service": "exchange", "servicePlanId": p,
                           "capabilityStatus": rng.choice(["Enabled", "Suspended"])}
                          for p in rng.sample(PLANS, rng.randrange(4))],
    }


def mutate(rng: random.Random, item: dict[str, Any]) -> None:
    """One change a night brings: a real one, or only what Graph varies (@odata.*)."""
    what = rng.randrange(7)
    if what == 0:
        item["displayName"] += " (renamed)"
    elif what == 1:
        item["assignedLicenses"].append({"skuId": rng.choice(SKUS), "disabledPlans": []})
    elif what == 2 and item["assignedLicenses"]:
        item["assignedLicenses"].pop(rng.randrange(len(item["assignedLicenses"])))
    elif what == 3 and item["assignedPlans"]:
        plan = rng.choice(item["assignedPlans"])
        plan["capabilityStatus"] = "Deleted" if plan["capabilityStatus"] == "Enabled" else "Enabled"
    elif what == 4:
        item["jobTitle"] = "x" * rng.choice([5, 150])  # past VALUE_CAP too
    elif what == 5:
        item["@odata.type"] = "#microsoft.graph.user"
    else:
        item.pop("accountEnabled", None)


def ids(rng: random.Random, kind: str, n: int) -> list[Any]:
    if kind == "int":
        return rng.sample(range(1, 10 ** 6), n)
    if kind == "small":  # "7" < "12" is false as strings: order by str(id), not by number
        return [str(i) for i in rng.sample(range(1, 3 * n + 2), n)]
    if kind == "positional":
        return [str(i) for i in range(n)]
    return [guid(rng) for _ in range(n)]


def edit(rng: random.Random, items: list[Any], kind: str) -> None:
    """Removals, inserts at random places, moves and swaps, changes."""
    for _ in range(rng.choice([0, 1, 2, 4, 8])):
        op = rng.randrange(5)
        if op == 0 and items:
            items.pop(rng.randrange(len(items)))
        elif op == 1:
            items.insert(rng.randrange(len(items) + 1), user(rng, ids(rng, kind, 1)[0] if kind != "positional"
                                                               else str(len(items) + 1000)))
        elif op == 2 and items:
            items.insert(rng.randrange(len(items) + 1), items.pop(rng.randrange(len(items))))
        elif op == 3 and len(items) > 1:
            i = rng.randrange(len(items) - 1)
            items[i], items[i + 1] = items[i + 1], items[i]
        elif items:
            mutate(rng, rng.choice(items))


def oddity(rng: random.Random, side: list[Any], other: list[Any]) -> None:
    """What must make diff_items fall back to the lists (or, for mixed int/str ids, still match by str)."""
    what = rng.randrange(8)
    if what == 0 and side:
        side.append(copy.deepcopy(rng.choice(side)))  # a duplicate id, the same item
    elif what == 1 and len(side) > 1:
        a, b = rng.sample(range(len(side)), 2)
        side[b]["id"] = side[a]["id"]  # a duplicate id, another item
    elif what == 2:
        side.insert(rng.randrange(len(side) + 1), rng.choice(["x", None, 42, ["a"]]))
    elif what == 3 and side:
        rng.choice(side)["id"] = rng.choice([None, True, 1.5, {"x": 1}])
    elif what == 4 and side:
        del rng.choice(side)["id"]
    elif what == 5 and side:
        item = rng.choice(side)
        item["id"] = int(item["id"]) if str(item["id"]).isdigit() else str(item["id"])  # "5" against 5
    elif what == 6 and side:
        side.append(user(rng, 7))
        side.append(user(rng, "7"))  # unique as values, alike as the str that keys them
    else:
        other.clear()


def night_pair(seed: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(seed)
    kind = rng.choice(["guid", "guid", "guid", "int", "small", "positional"])
    n = rng.choice([0, 1, 2, 3, 6, 12, 40, 120])
    old = [user(rng, ident) for ident in ids(rng, kind, n)]
    new = copy.deepcopy(old)
    for item in new:
        item["@odata.etag"] = f'W/"{rng.getrandbits(40)}"'  # every night, never drift
    edit(rng, new, kind)
    if rng.random() < 0.12:
        rng.shuffle(new)
    if kind == "positional" and rng.random() < 0.6:
        for index, item in enumerate(new):
            item["id"] = str(index)  # Intune numbers settings by position: both sides positional
    if rng.random() < 0.25:
        sides = [old, new]
        rng.shuffle(sides)
        oddity(rng, *sides)
    return old, new


def keyed_by_id(old: list[Any], new: list[Any]) -> bool:
    """When diff_items must stream: diff would key by "id", and no two ids of a side print alike."""
    return _identity(old, new) == "id" and all(len({str(i["id"]) for i in s}) == len(s) for s in (old, new))


def first_ids(changes: list[PathChange]) -> list[str]:
    out: list[str] = []
    for p in changes:
        ident = p.path.removeprefix("users[id=").split("]")[0]
        if not out or out[-1] != ident:
            out.append(ident)
    return out


def test_streamed_diff_equals_the_list_diff_on_random_nights() -> None:
    tally = {"streamed": 0, "fell back": 0, "changes": 0, "not in read order": 0}
    for seed in range(1500):
        old, new = night_pair(seed)
        expected = diff(copy.deepcopy(old), copy.deepcopy(new), "users")
        got, reads = streamed(old, new)
        assert got == expected, f"seed {seed}"
        assert reads == (1 if keyed_by_id(old, new) else 2), f"seed {seed}"
        tally["streamed" if reads == 1 else "fell back"] += 1
        tally["changes"] += bool(expected)
        if reads == 1:
            seen = {str(i["id"]): n for n, i in [*enumerate(old), *enumerate(new)]}  # where read in new, else old
            tally["not in read order"] += first_ids(expected) != sorted(first_ids(expected), key=seen.__getitem__)
    # the cases are meant to exercise both paths, real changes and an order that is not the order read
    assert tally["streamed"] > 900 and tally["fell back"] > 400, tally
    assert tally["changes"] > 950 and tally["not in read order"] > 200, tally


def test_change_order_is_by_id_then_as_diff_gives_it() -> None:
    old = [{"id": "c", "displayName": "C", "n": 1}, {"id": "a", "displayName": "A", "x": {"k": 1, "j": 2}},
           {"id": "b", "displayName": "B"}, {"id": "10", "displayName": "Ten"}]
    new = [{"id": "d", "displayName": "D"}, {"id": "c", "displayName": "C", "n": 2},
           {"id": "a", "displayName": "A", "x": {"k": 2, "j": 3}}, {"id": "9", "displayName": "Nine"},
           {"id": "10", "displayName": "Ten", "@odata.etag": "2"}]
    got, reads = streamed(old, new)
    assert reads == 1
    assert [(p.path, p.change, p.old, p.new) for p in got] == [
        ("users[id=9]", "added", None, "Nine"),
        ("users[id=a].x.j", "changed", "2", "3"),
        ("users[id=a].x.k", "changed", "1", "2"),
        ("users[id=b]", "removed", "B", None),
        ("users[id=c].n", "changed", "1", "2"),
        ("users[id=d]", "added", None, "D"),
    ]
    assert got == diff(old, new, "users")


def test_shuffled_but_equal_is_no_change_and_a_shuffled_change_is_the_list_diff() -> None:
    rng = random.Random(7)
    old = [user(rng, guid(rng)) for _ in range(2000)]
    new = copy.deepcopy(old)
    rng.shuffle(new)
    for item in new:
        item["@odata.etag"] = "changed"
    assert streamed(old, new) == ([], 1)
    for item in rng.sample(new, 30):
        mutate(rng, item)
    del new[5], new[900]
    new.insert(17, user(rng, guid(rng)))
    rng.shuffle(new)
    expected = diff(old, new, "users")
    assert len(expected) > 20
    assert streamed(old, new) == (expected, 1)


@pytest.mark.parametrize(("old", "new"), [
    ([], []), ([], [{"id": "0"}]), ([{"id": "0"}, {"id": "1"}], [{"id": "0"}, {"id": "1", "x": 1}]),
    ([{"id": "a"}], []), ([{"id": 1}, {"id": "1"}], [{"id": 1}]), ([{"id": "a"}], ["a"]),
    ([{"id": "a", "appId": "x"}, {"id": "a", "appId": "y"}], [{"id": "a", "appId": "y"}]),
])
def test_edges_equal_the_list_diff(old: list[Any], new: list[Any]) -> None:
    assert streamed(old, new)[0] == diff(old, new, "users")


# --------------------------------------------------------------------------- memory

USERS = 50_000
GONE = {17, 4_000, 31_337, 49_999}
RENAMED = {0, 2_500, 25_000, 40_001, 49_998}
ARRIVE = {0: 1, 12_345: 2, 30_000: 1, 49_999: 1}  # before old position: how many new users
MOVED = {(100, 44_000), (45_000, 3)}  # (old position, new position): a user read far apart on the two nights


def generated_user(n: int, night: int) -> dict[str, Any]:
    renamed = night == 2 and n in RENAMED
    return {
        "@odata.etag": f'W/"{night}{n}"', "id": f"{n * 2654435761 % 2 ** 32:08x}-0000-4000-8000-{n:012x}",
        "displayName": f"Gebruiker {n}" + (" (hernoemd)" if renamed else ""), "userPrincipalName": f"u{n}@gemeente.nl",
        "mail": f"u{n}@gemeente.nl", "accountEnabled": True, "jobTitle": "Medewerker", "businessPhones": [],
        "assignedLicenses": [{"skuId": SKUS[n % 3], "disabledPlans": []}],
        "assignedPlans": [{"assignedDateTime": "2025-03-01T10:00:00Z", "capabilityStatus": "Enabled",
                           "service": "exchange", "servicePlanId": p} for p in PLANS],
    }


class Generated(Sequence[Any]):
    """50,000 users made on the fly on each iteration, nothing stored: night 1, or night 2 with a few changes."""

    def __init__(self, night: int) -> None:
        self.night = night

    def __len__(self) -> int:
        return USERS if self.night == 1 else USERS - len(GONE) + sum(ARRIVE.values())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.night == 1:
            yield from (generated_user(n, 1) for n in range(USERS))
            return
        yield from (generated_user(n, 2) for n in self._order())

    def _order(self) -> Iterator[int]:
        moved_from = {a for a, _ in MOVED}
        moved_to = {b: a for a, b in MOVED}
        extra = USERS
        for n in range(USERS):
            if n in moved_to:
                yield moved_to[n]
            for _ in range(ARRIVE.get(n, 0)):
                yield extra
                extra += 1
            if n not in GONE and n not in moved_from:
                yield n

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("diff_items indexed the collection")


def peak(work: Any) -> tuple[Any, int]:
    """What work() returns, and the most memory it held at once (tracemalloc, bytes)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = work()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_memory_follows_the_changes_not_the_users() -> None:
    old, new = Generated(1), Generated(2)
    assert sum(1 for _ in new) == len(new)
    streamed_changes, streamed_peak = peak(lambda: diff_items(old, new, "users"))
    listed_changes, listed_peak = peak(lambda: diff(list(old), list(new), "users"))
    assert streamed_changes == listed_changes
    assert [p.change for p in streamed_changes].count("added") == sum(ARRIVE.values())
    assert [p.change for p in streamed_changes].count("removed") == len(GONE)
    assert [p.change for p in streamed_changes].count("changed") == len(RENAMED - GONE)
    print(f"peak at {USERS} users: diff_items {streamed_peak / 2 ** 20:.2f} MiB, "
          f"list diff {listed_peak / 2 ** 20:.1f} MiB")
    # about 0.8 MB of it are the ids' hashes (8 bytes a user a side); holding the ids themselves would not fit
    assert streamed_peak < 2 * 2 ** 20, streamed_peak
    assert listed_peak > 30 * streamed_peak, (listed_peak, streamed_peak)


# --------------------------------------------------------------------------- drift


def snapshot(data: dict[str, Any]) -> Snapshot:
    return Snapshot(tenant_id="t", collected_at=datetime(2026, 1, 1, tzinfo=timezone.utc), tool_version="0",
                    sources={k: SourceResult.model_construct(key=k, ok=True, url="u", data=v, error=None)
                             for k, v in data.items()})


def test_source_drift_streams_collections_and_still_diffs_the_rest() -> None:
    rng = random.Random(3)
    users = [user(rng, guid(rng)) for _ in range(50)]
    tonight = copy.deepcopy(users[1:]) + [user(rng, guid(rng))]
    old_seq, new_seq = Seq(users), Seq(tonight)
    org = {"id": "o", "displayName": "Gemeente"}
    streamed_drift = source_drift(snapshot({"users": old_seq, "org": org, "shape": Seq(users[:2])}),
                                  snapshot({"users": new_seq, "org": {**org, "displayName": "G"}, "shape": {"a": 1}}))
    listed_drift = source_drift(snapshot({"users": users, "org": org, "shape": users[:2]}),
                                snapshot({"users": tonight, "org": {**org, "displayName": "G"}, "shape": {"a": 1}}))
    assert streamed_drift == listed_drift
    assert [(s.source, s.added, s.removed, s.changed) for s in streamed_drift] == [
        ("org", 0, 0, 1), ("shape", 0, 0, 1), ("users", 1, 1, 0)]
    assert (old_seq.iterations, new_seq.iterations) == (1, 1)
