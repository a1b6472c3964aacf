"""PagedItems: a collection on disk that reads like a list, one page at a time, and fails loudly when damaged."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from m365audit.evidence import ItemsError, ItemsWriter, PagedItems, is_list


def user(n: int) -> dict[str, Any]:
    return {"id": f"00000000-0000-0000-0000-{n:012d}", "displayName": f"Medewerker {n} ⟨é⟩\n\"x\"",
            "assignedLicenses": [{"skuId": "sku-e3", "disabledPlans": []}], "accountEnabled": n % 7 != 0}


def written(path: Path, pages: list[list[Any]]) -> PagedItems:
    writer = ItemsWriter(path)
    for page in pages:
        writer.add_page(page)
    return writer.finish()


def test_paged_items_read_back_as_the_list_they_were(tmp_path: Path) -> None:
    pages = [[user(n) for n in range(0, 3)], [], [user(n) for n in range(3, 8)], [user(8)]]
    items = written(tmp_path / "users.items", pages)
    expected = [u for page in pages for u in page]
    assert len(items) == 9 and len(items.pages) == 3  # the empty page is not stored
    assert list(items) == expected and items == expected and expected == items
    assert [items[i] for i in range(9)] == expected and items[-1] == user(8) and items[2:5] == expected[2:5]
    assert items != expected[:-1] and items != [*expected[:-1], user(99)]
    assert is_list(items) and items.first_non_object is None
    with pytest.raises(IndexError):
        items[9]
    assert list(items) == expected  # iterable again: each iteration reads the file afresh


def test_each_line_is_one_page_as_compact_json(tmp_path: Path) -> None:
    items = written(tmp_path / "u.items", [[user(1), user(2)], [user(3)]])
    lines = (tmp_path / "u.items").read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[2] == b"" and lines[0].startswith(b'{"id":') and b"\\n" in lines[0]
    assert "⟨é⟩".encode() in lines[0]  # UTF-8 as is, not \\u escapes
    assert [count for _, count in items.raw_pages()] == [2, 1]


def test_the_first_item_that_is_not_an_object_is_known_without_reading_again(tmp_path: Path) -> None:
    items = written(tmp_path / "mixed.items", [[user(1), user(2)], [user(3), "not an object", 4]])
    assert items.first_non_object == 3
    assert written(tmp_path / "none.items", []).first_non_object is None


def test_the_repr_never_holds_the_items(tmp_path: Path) -> None:
    items = written(tmp_path / "big.items", [[user(n) for n in range(1000)]])
    assert repr(items) == "PagedItems(1000 items in 1 pages of big.items)"


def test_a_discarded_writer_leaves_no_file(tmp_path: Path) -> None:
    writer = ItemsWriter(tmp_path / "half.items")
    writer.add_page([user(1)])
    writer.discard()
    assert not (tmp_path / "half.items").exists()


def test_a_writer_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "there.items").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        ItemsWriter(tmp_path / "there.items")
    assert (tmp_path / "there.items").read_bytes() == b"keep"


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete", "reshape"])
def test_a_damaged_file_raises_items_error_never_fewer_items(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "u.items"
    items = written(path, [[user(1), user(2)], [user(3), user(4)]])
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[:-20])
    elif damage == "edit":
        path.write_bytes(raw.replace(b'"id":"00000000-0000-0000-0000-000000000003"', b'"id":"00000000-0000'))
    elif damage == "reshape":
        path.write_bytes(raw.replace(b'},{"id":"00000000-0000-0000-0000-000000000004"',
                                     b',"x":{"id":"00000000-0000-0000-0000-000000000004"'))
    else:
        path.unlink()
    with pytest.raises(ItemsError) as caught:
        list(items)
    assert str(path) in str(caught.value) and "verify" in caught.value.hint


def test_iterating_holds_one_page_not_the_collection(tmp_path: Path) -> None:
    path = tmp_path / "users.items"
    writer = ItemsWriter(path)
    for start in range(0, 20_000, 1000):
        writer.add_page([user(n) for n in range(start, start + 1000)])
    items = writer.finish()
    tracemalloc.start()
    try:
        enabled = sum(1 for u in items if u["accountEnabled"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tracemalloc.start()
    try:
        held = list(items)
        _, peak_list = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert enabled == sum(1 for u in held if u["accountEnabled"]) == 17_142
    tracemalloc.start()
    try:
        one_page = next(items.iter_pages())
        _, peak_page = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(one_page) == 1000
    assert peak < 2 * peak_page, (peak, peak_page)  # about one page of the 20
    assert peak_list > 5 * peak, (peak_list, peak)  # the whole list: about 8x here, growing with the tenant


def test_a_lone_surrogate_from_graph_is_kept_exactly(tmp_path: Path) -> None:
    odd = {"id": "u1", "displayName": "Jan \ud800 de Vries ⟨é⟩"}  # json.loads('"\\ud800"') gives this
    items = written(tmp_path / "u.items", [[odd, user(2)], [user(3)]])
    assert list(items) == [odd, user(2), user(3)]
    assert "⟨é⟩".encode() in (tmp_path / "u.items").read_bytes().split(b"\n")[1]  # only that page is escaped
