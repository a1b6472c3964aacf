"""Graph's JSON bodies parsed for the pipeline: a lone UTF-16 surrogate becomes U+FFFD, so every report can be written.

JSON may escape half of a UTF-16 pair on its own ("\\ud800"); json.loads turns it into a string that no UTF-8
writer accepts, so one odd display name would crash the snapshot, the findings or the report. The exchange
keeps Graph's exact bytes as evidence; only the parsed data carries the replacement character.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def parse(raw: bytes) -> Any:
    """json.loads, with lone surrogates replaced; the check costs one scan of the bytes when there are none."""
    doc = json.loads(raw)
    return _repaired(doc) if _SURROGATE_ESCAPE.search(raw) else doc


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    if isinstance(value, dict):
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    return value
