"""The strict parser's depth pre-pass agrees with the real nesting, whatever the strings hold."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from m365audit.evidence import MalformedJson, strict_loads
from m365audit.evidence.strictjson import check_depth

HOSTILE = ['[', ']', '{', '}', '"', '\\', '\\"', '"]', '[EXT] ', ':', '\\\\"[', 'é', '\ud83d\ude00', '\\u0022', ' ']


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def text(rng: random.Random) -> str:
    return "".join(rng.choice(HOSTILE) for _ in range(rng.randrange(4)))


def value(rng: random.Random, levels: int) -> Any:
    kind = rng.randrange(4) if levels else 3
    if kind == 0:
        return [value(rng, levels - 1) for _ in range(rng.randrange(3))]
    if kind == 1:
        return {text(rng) + str(i): value(rng, levels - 1) for i in range(rng.randrange(3))}
    return text(rng) if kind == 2 else rng.choice([1, None, True, text(rng)])


@pytest.mark.parametrize("seed", range(4))
def test_the_pre_pass_measures_nesting_exactly(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        doc = value(rng, rng.randrange(1, 9))
        for raw in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                    json.dumps(doc, indent=1).encode()):
            real = depth(doc)
            check_depth(raw, max(real, 1))  # exactly deep enough: accepted
            if real > 1:
                with pytest.raises(MalformedJson) as caught:
                    check_depth(raw, real - 1)
                assert caught.value.code == "TooDeep"


def test_a_parsed_document_is_the_same_as_json_gives() -> None:
    rng = random.Random(7)
    for _ in range(300):
        doc = value(rng, 6)
        raw = json.dumps(doc).encode()  # ensure_ascii: lone surrogates cannot occur in HOSTILE's pairs
        assert strict_loads(raw) == json.loads(raw)
