"""A large collection kept on disk as one line of JSON per page and read back page by page (bounded memory)."""

from __future__ import annotations

import bisect
import hashlib
import json
import marshal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, overload

from m365audit.errors import AuditError
from m365audit.evidence.strictjson import DECODES, STORED_DEPTH, loads

PAGE_ITEMS = 1000
"""Items per page when an in-memory list is written as pages (Graph pages are kept as Graph sent them)."""


class ItemsError(AuditError, ValueError):
    """A page of a stored collection is missing or is not the JSON it was when written (exit 4 if not caught)."""

    hint: str

    def __init__(self, message: str, hint: str = "run `m365audit verify` on the run folder") -> None:
        super().__init__(message, hint)


@dataclass(frozen=True)
class PageRef:
    """Where one page's items are: a byte range holding `item,item,…` (a JSON array without its brackets)."""

    offset: int
    length: int
    count: int


def json_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8; never a raw newline (JSON escapes them).

    A lone surrogate cannot be UTF-8: then the value is written with \\u escapes instead, which reads back to
    exactly the same value. Graph's answers never get here with one (strictjson.loads replaces them); this
    covers data built in code or read from a file that was not parsed through it.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def page_bytes(items: list[Any]) -> bytes:
    """The items of one page as `item,item,…` (a JSON array without its brackets), see json_bytes."""
    return json_bytes(items)[1:-1]


def parse_page(raw: bytes) -> list[Any]:
    """The items of one page line, parsed as strictly as Graph's bodies (MalformedJson, a ValueError, if not)."""
    parsed: list[Any] = loads(b"[" + raw + b"]", max_depth=STORED_DEPTH, repair=False)
    return parsed


class Page(list[Any]):
    """One page of a collection's items as decoded from Graph, with ``raw``: the same items exactly as Graph sent
    them (the bytes between the brackets of the body's ``value`` array), or None when they must be written anew.

    A spool keeps ``raw`` as it is instead of serialising the items again; so a Page is read, never changed: a
    caller that wants other items builds a plain list (a Page whose length changed is written anew all the same).
    """

    __slots__ = ("raw", "_count")

    def __init__(self, items: list[Any], raw: bytes | None) -> None:
        super().__init__(items)
        self.raw = raw
        self._count = len(items)

    def kept_bytes(self) -> bytes | None:
        """``raw`` while the page still holds the items it was made with (by count), else None."""
        return self.raw if len(self) == self._count else None


class PageObserver(Protocol):
    """Takes what it needs from each page as it is written (one decode per page), finished into a fact."""

    def add_page(self, items: list[Any]) -> None: ...

    def finish(self) -> Any: ...


class PagedItems(Sequence[Any]):
    """A source's items on disk: len() and iteration cost one page of memory; each iteration parses afresh.

    Indexing reads the whole page holding the item, so it is for the odd lookup (``organization[0]``), not
    for loops; iterate instead. ``first_non_object`` is the index of the first item that is not a JSON object
    (None when all are), known without reading the pages again. ``facts`` holds what page observers took from
    the pages while they were written (by name; empty for a stored snapshot), so rules need not read them again.

    While a collection is still in the run's spool, ``decoded`` is a second file holding each page's items as
    they were decoded from Graph's body (marshal, written and read by this process only): every later reader of
    tonight's pages gets those items back without decoding the JSON again. Each JSON page is still read and
    compared with the SHA-256 it had when written, so a damaged spool is an ItemsError as before. A stored
    snapshot has no decoded copy.
    """

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so not hashable

    def __init__(self, path: Path, pages: list[PageRef], first_non_object: int | None = None,
                 facts: dict[str, Any] | None = None,
                 decoded: tuple[Path, list[PageRef], list[bytes]] | None = None) -> None:
        self.path = path
        self.pages = pages
        self.first_non_object = first_non_object
        self.facts: dict[str, Any] = {} if facts is None else facts
        self.decoded = decoded
        self._starts: list[int] = []
        total = 0
        for page in pages:
            self._starts.append(total)
            total += page.count
        self._len = total

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        for items in self.iter_pages():
            yield from items
            del items  # let this page go before the next one is parsed

    def iter_pages(self) -> Iterator[list[Any]]:
        """Every page as a fresh list of parsed items, in order."""
        if not self.pages:
            return
        if self.decoded is not None:
            yield from self._iter_decoded()
            return
        with self._open() as f:
            for index, page in enumerate(self.pages):
                yield self._parse(index, page, self._read(f, page))

    def _decoded_pages(self, only: int | None = None) -> list[list[Any]]:
        """Every page (or page number ``only``) from the already-decoded copy; a page at a time when iterated."""
        return list(self._iter_decoded(only))

    def _iter_decoded(self, only: int | None = None) -> Iterator[list[Any]]:
        assert self.decoded is not None
        path, refs, digests = self.decoded
        numbers = range(len(refs)) if only is None else range(only, only + 1)
        try:
            f = path.open("rb")
        except OSError as exc:
            raise ItemsError(f"the decoded items at {path} cannot be read: {exc.strerror}") from exc
        with f, self._open() as json_file:
            for number in numbers:
                page, ref = self.pages[number], refs[number]
                if hashlib.sha256(self._read(json_file, page)).digest() != digests[number]:
                    raise ItemsError(f"{self.path}: page {number + 1} (byte {page.offset}) is not the JSON it was "
                                     "when written")
                f.seek(ref.offset)
                raw = f.read(ref.length)
                if len(raw) != ref.length:
                    raise ItemsError(f"{path}: a page at byte {ref.offset} is cut short (the file was truncated)")
                items: list[Any] = marshal.loads(raw)  # our own scratch file, written by this process
                if len(items) != page.count:
                    raise ItemsError(f"{path}: page {number + 1} holds {len(items)} items, {page.count} were written")
                DECODES["decoded_pages"] += 1
                yield items

    def check_readable(self) -> None:
        """ItemsError when the file is gone or shorter than its pages (facts taken from it are then not used)."""
        with self._open() as f:
            end = f.seek(0, 2)
        if self.pages and end < self.pages[-1].offset + self.pages[-1].length:
            raise ItemsError(f"{self.path}: the file is shorter than its pages (it was truncated)")

    def raw_pages(self) -> Iterator[tuple[bytes, int]]:
        """Every page's exact bytes (`item,item,…`) and item count, for copying without parsing."""
        if not self.pages:
            return
        with self._open() as f:
            for page in self.pages:
                yield self._read(f, page), page.count

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("PagedItems index out of range")
        number = bisect.bisect_right(self._starts, index) - 1
        page = self.pages[number]
        if self.decoded is not None:
            return self._decoded_pages(number)[0][index - self._starts[number]]
        with self._open() as f:
            items = self._parse(number, page, self._read(f, page))
        return items[index - self._starts[number]]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        if len(other) != self._len:
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    def __repr__(self) -> str:
        # never the items: a repr of 300,000 users would be hundreds of megabytes
        return f"PagedItems({self._len} items in {len(self.pages)} pages of {self.path.name})"

    def moved_to(self, path: Path, pages: list[PageRef] | None = None) -> PagedItems:
        """The same items at another place (the run folder renamed, or copied into snapshot.json).

        The facts stay behind: they were taken for the evaluation of the night that collected them.
        """
        return PagedItems(path, self.pages if pages is None else pages, self.first_non_object)

    def _open(self) -> IO[bytes]:
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise ItemsError(f"the stored items at {self.path} cannot be read: {exc.strerror}") from exc

    def _read(self, f: IO[bytes], page: PageRef) -> bytes:
        f.seek(page.offset)
        raw = f.read(page.length)
        if len(raw) != page.length:
            raise ItemsError(f"{self.path}: a page at byte {page.offset} is cut short (the file was truncated)")
        return raw

    def _parse(self, number: int, page: PageRef, raw: bytes) -> list[Any]:
        DECODES["stored_pages"] += 1
        try:
            items = parse_page(raw)
        except ValueError as exc:
            raise ItemsError(f"{self.path}: page {number + 1} (byte {page.offset}) is not valid JSON: {exc}") \
                from exc
        if len(items) != page.count:
            raise ItemsError(f"{self.path}: page {number + 1} holds {len(items)} items, {page.count} were written")
        return items


def first_non_object(items: Iterable[Any], start: int = 0) -> int | None:
    """The index (counted from ``start``) of the first item that is not a JSON object, or None."""
    for index, item in enumerate(items, start):
        if not isinstance(item, dict):
            return index
    return None


class ItemsWriter:
    """Appends pages to a new file and hands back a PagedItems; a failed source discards its file."""

    def __init__(self, path: Path, observers: Mapping[str, Callable[[Path], PageObserver]] | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = path.open("xb")
        self._observers = {name: make(path) for name, make in (observers or {}).items()}
        self._decoded_path = path.with_suffix(".decoded")
        self._decoded: IO[bytes] | None = self._decoded_path.open("xb")
        self._decoded_refs: list[PageRef] = []
        self._digests: list[bytes] = []
        self._pages: list[PageRef] = []
        self._count = 0
        self._first_non_object: int | None = None

    def add_page(self, items: list[Any]) -> None:
        """One page of items, written at once; an empty page adds nothing."""
        if not items:
            return
        assert self._file is not None, "add_page after finish"
        if self._first_non_object is None:
            self._first_non_object = first_non_object(items, self._count)
        for observer in self._observers.values():
            observer.add_page(items)
        assert self._decoded is not None
        binary = marshal.dumps(items if type(items) is list else list(items))  # marshal takes no subclass
        self._decoded_refs.append(PageRef(self._decoded.tell(), len(binary), len(items)))
        self._decoded.write(binary)
        kept = items.kept_bytes() if isinstance(items, Page) else None
        raw = page_bytes(items) if kept is None else kept  # Graph's own bytes of these items, when it can be
        self._digests.append(hashlib.sha256(raw).digest())
        self._pages.append(PageRef(self._file.tell(), len(raw), len(items)))
        self._file.write(raw + b"\n")
        self._count += len(items)

    def finish(self) -> PagedItems:
        """Close the file: the items written so far, readable page by page."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._decoded is not None:
            self._decoded.close()
            self._decoded = None
        return PagedItems(self.path, self._pages, self._first_non_object,
                          {name: observer.finish() for name, observer in self._observers.items()},
                          (self._decoded_path, self._decoded_refs, self._digests))

    def discard(self) -> None:
        """Close and delete the file (the source failed: no partial data is kept)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._decoded is not None:
            self._decoded.close()
            self._decoded = None
        self._decoded_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def is_list(value: object) -> bool:
    """A JSON array as a source holds it: a list in memory or PagedItems on disk."""
    return isinstance(value, (list, PagedItems))
