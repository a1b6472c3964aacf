"""Write snapshot.json as a stream, item by item, so a large tenant is never held twice in memory."""

from __future__ import annotations

import json
from typing import IO, Any

from m365audit.models import Snapshot


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _write_data(out: IO[bytes], data: Any) -> None:
    if not isinstance(data, list):
        out.write(_dumps(data))
        return
    out.write(b"[")
    for index, item in enumerate(data):
        if index:
            out.write(b",")
        out.write(_dumps(item))
    out.write(b"]")


def write_snapshot(snapshot: Snapshot, out: IO[bytes]) -> None:
    """The same JSON document as Snapshot.model_dump_json, written piece by piece (one item at a time)."""
    head = snapshot.model_dump(mode="json", exclude={"sources"})
    out.write(_dumps(head)[:-1] + b',"sources":{')
    for index, (key, source) in enumerate(snapshot.sources.items()):
        if index:
            out.write(b",")
        fields = source.model_dump(mode="json", exclude={"data"})
        out.write(_dumps(key) + b":" + _dumps(fields)[:-1] + b',"data":')
        _write_data(out, source.data)
        out.write(b"}")
    out.write(b"}}\n")
