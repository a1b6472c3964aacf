"""snapshot.json written and read page by page: one line per page of items, so no tenant is ever held whole.

The file is one JSON document; its line layout is ours and lets a reader find each page without parsing the
rest::

    {"schema_version":1,…,"sources":{
    "organization":{"key":"organization","ok":true,…,"data":[
    {"id":"…",…}
    ]},
    "users":{…,"data":[
    {…},{…},…,
    {…},{…}
    ]},
    "authorization_policy":{…,"data":{…}}
    }}

A list's items follow its source line, a page per line (`item,item,…`, a comma at the end of every page but
the last), closed by a line `]}`. Snapshots written before this layout (one line) are read whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from m365audit.evidence.items import (
    PAGE_ITEMS,
    PagedItems,
    PageRef,
    first_non_object,
    json_bytes,
    page_bytes,
    parse_page,
)
from m365audit.evidence.strictjson import STORED_DEPTH
from m365audit.evidence.strictjson import loads as strict_loads
from m365audit.models import Snapshot, SourceResult

SOURCES_OPEN = b',"sources":{\n'
DATA_OPEN = b',"data":['
LIST_CLOSE = (b"]}\n", b"]},\n")
END = b"}}\n"


def _dumps(value: Any) -> bytes:
    return json_bytes(value)


def _pages(data: list[Any] | PagedItems) -> Iterator[tuple[bytes, int]]:
    """Each page's bytes and item count: a collection's own pages as they are, a list cut into pages."""
    if isinstance(data, PagedItems):
        yield from data.raw_pages()
        return
    for start in range(0, len(data), PAGE_ITEMS):
        chunk = data[start:start + PAGE_ITEMS]
        yield page_bytes(chunk), len(chunk)


def write_snapshot(snapshot: Snapshot, out: IO[bytes]) -> dict[str, list[PageRef]]:
    """The snapshot as one JSON document, a page at a time; returns where each list source's pages landed."""
    head = snapshot.model_dump(mode="json", exclude={"sources"})
    out.write(_dumps(head)[:-1] + SOURCES_OPEN)
    written: dict[str, list[PageRef]] = {}
    for index, (key, source) in enumerate(snapshot.sources.items()):
        if index:
            out.write(b",\n")
        fields = source.model_dump(mode="json", exclude={"data"})
        out.write(_dumps(key) + b":" + _dumps(fields)[:-1])
        if not isinstance(source.data, (list, PagedItems)):
            out.write(b',"data":' + _dumps(source.data) + b"}")
            continue
        out.write(DATA_OPEN + b"\n")
        refs = written[key] = []
        for number, (raw, count) in enumerate(_pages(source.data)):
            if number:
                out.write(b",\n")
            refs.append(PageRef(out.tell(), len(raw), count))
            out.write(raw)
        out.write(b"\n]}" if refs else b"]}")
    out.write(b"\n" + END)
    return written


def rebound(snapshot: Snapshot, path: Path, pages: dict[str, list[PageRef]]) -> Snapshot:
    """The snapshot with its on-disk lists read from ``path`` (the snapshot.json just written) from now on."""
    sources = {key: result.model_copy(update={"data": result.data.moved_to(path, pages[key])})
               if isinstance(result.data, PagedItems) and key in pages else result
               for key, result in snapshot.sources.items()}
    return snapshot.model_copy(update={"sources": sources})


def moved(snapshot: Snapshot, path: Path) -> Snapshot:
    """The snapshot after its snapshot.json moved (the run folder was renamed into place)."""
    sources = {key: result.model_copy(update={"data": result.data.moved_to(path)})
               if isinstance(result.data, PagedItems) else result for key, result in snapshot.sources.items()}
    return snapshot.model_copy(update={"sources": sources})


class SnapshotFileError(ValueError):
    """snapshot.json is not what m365audit wrote (truncated, edited, or not a snapshot)."""


def read_snapshot(path: Path) -> Snapshot:
    """A stored snapshot; list data stays on disk as PagedItems over this file (each page checked once here).

    Only the envelope is validated with pydantic; the data stays plain JSON, as Graph sent it.
    Raises SnapshotFileError naming the line that is wrong.
    """
    with path.open("rb") as f:
        first = f.readline()
        if not first.endswith(SOURCES_OPEN):
            f.seek(0)
            return _envelope(_whole(path, f.read()), path)
        head = _loads(path, 1, first[:-len(SOURCES_OPEN)] + b"}")
        head["sources"] = sources = {}
        number = 1
        while True:
            line = f.readline()
            number += 1
            if line in (END, END.rstrip(b"\n")):
                break
            if not line.endswith(b"\n"):
                raise SnapshotFileError(f"{path}:{number}: the file ends before the snapshot does (truncated?)")
            body = line[:-1]
            if body.endswith(DATA_OPEN):
                key, fields = _source_line(path, number, body[:-1] + b"null}")
                fields["data"], number = _list(path, f, number)
            else:
                key, fields = _source_line(path, number, body[:-1] if body.endswith(b",") else body)
            sources[key] = fields
        if f.read().strip():
            raise SnapshotFileError(f"{path}:{number + 1}: something follows the end of the snapshot")
    return _envelope(head, path)


def read_head(path: Path) -> dict[str, Any]:
    """The snapshot's own fields (tenant, times, version) without reading any source."""
    with path.open("rb") as f:
        first = f.readline()
        if first.endswith(SOURCES_OPEN):
            head = _loads(path, 1, first[:-len(SOURCES_OPEN)] + b"}")
        else:
            f.seek(0)
            head = _whole(path, f.read())
    if not isinstance(head, dict):
        raise SnapshotFileError(f"{path}: not a snapshot (the document is not an object)")
    return {k: v for k, v in head.items() if k != "sources"}


def _loads(path: Path, number: int, raw: bytes) -> Any:
    try:
        return strict_loads(raw, max_depth=STORED_DEPTH, repair=False)
    except ValueError as exc:
        raise SnapshotFileError(f"{path}:{number}: not valid JSON ({exc})") from exc


def _whole(path: Path, raw: bytes) -> Any:
    try:
        return strict_loads(raw, max_depth=STORED_DEPTH, repair=False)
    except ValueError as exc:
        raise SnapshotFileError(f"{path}: not valid JSON ({exc})") from exc


def _source_line(path: Path, number: int, body: bytes) -> tuple[str, dict[str, Any]]:
    doc = _loads(path, number, b"{" + body + b"}")
    if not isinstance(doc, dict) or len(doc) != 1 or not isinstance(next(iter(doc.values())), dict):
        raise SnapshotFileError(f"{path}:{number}: expected one source, \"key\":{{…}}")
    key, fields = next(iter(doc.items()))
    return key, fields


def _list(path: Path, f: IO[bytes], number: int) -> tuple[PagedItems, int]:
    """The pages after a source line, up to its closing `]}`: offsets and counts, every page parsed once."""
    pages: list[PageRef] = []
    total = 0
    non_object: int | None = None
    while True:
        offset = f.tell()
        line = f.readline()
        number += 1
        if line in LIST_CLOSE:
            return PagedItems(path, pages, non_object), number
        if not line.endswith(b"\n"):
            raise SnapshotFileError(f"{path}:{number}: the file ends inside a list (truncated?)")
        raw = line[:-1]
        if raw.endswith(b","):
            raw = raw[:-1]
        try:
            items = parse_page(raw)
        except ValueError as exc:
            raise SnapshotFileError(f"{path}:{number}: a page of items is not valid JSON ({exc})") from exc
        if not items:
            raise SnapshotFileError(f"{path}:{number}: an empty page (the file was edited)")
        if non_object is None:
            non_object = first_non_object(items, total)
        pages.append(PageRef(offset, len(raw), len(items)))
        total += len(items)
        del items  # checked and counted: let it go before the next page is parsed


def _envelope(doc: Any, path: Path) -> Snapshot:
    """Validate the envelope (tenant, times, each source's fields, ok xor error); the data stays plain JSON."""
    try:
        sources = {key: SourceResult.model_validate({**raw, "data": None}).model_copy(update={"data": raw.get("data")})
                   for key, raw in doc["sources"].items()}
        return Snapshot.model_validate({**doc, "sources": {}}).model_copy(update={"sources": sources})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SnapshotFileError(f"{path}: not a snapshot ({str(exc).splitlines()[0]})") from exc
