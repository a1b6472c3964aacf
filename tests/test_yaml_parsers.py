"""Policy YAML is read by libyaml first and by the pure-Python parser when libyaml finds anything wrong.

The fast road may only ever give what the careful road gives: the same values, the same lines, and for a
broken file the careful road's message. These tests read every YAML file in the repository and a set of
awkward documents both ways and compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from m365audit.errors import PolicyFileError
from m365audit.policy import yamlread
from m365audit.policy.yamlread import LineDict, LineList, read_yaml

ROOT = Path(__file__).resolve().parent.parent


def _utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:  # refused before any parser sees it (tests/data/bad_policies/not-utf8)
        return False
    return True


YAML_FILES = sorted(p for p in ROOT.rglob("*.yaml") if ".venv" not in p.parts and ".git" not in p.parts and _utf8(p))

AWKWARD = {
    "booleans-stay-words": "a: off\nb: no\nc: yes\nd: true\ne: FALSE\nf: On\n",
    "dates-stay-strings": "d: 2026-04-01\nt: 2026-04-01T10:00:00Z\n",
    "numbers": "i: 0x1F\no: 0o17\nf: 1.5e3\ninf: .inf\nn: ~\nbig: 123456789012345678901234567890\n",
    "merge-keys": "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n",
    "anchors-and-aliases": "a: &v [1, 2]\nb: *v\n",
    "block-scalars": "t: |\n  line one\n  line two\nf: >\n  folded\n  text\n",
    "quoted": "s: 'it''s'\nd: \"tab\\there \\u00e9\"\nk: 'x: y'\n",
    "flow": "m: {a: [1, {b: c}], d: e}\n",
    "unicode": "naam: Gemeente Zandhoeve \u2013 \u00e9\u00e9n\n",
    "bom": "\ufeffa: 1\n",
    "empty": "",
    "comments-only": "# niets\n",
    "list-top": "- a\n- b: 1\n  c: 2\n",
    "duplicate-key": "a: 1\nb: 2\na: 3\n",
    "duplicate-nested": "x:\n  k: 1\n  k: 2\n",
    "tab-indent": "a:\n\tb: 1\n",
    "unclosed-flow": "a: [1, 2\n",
    "bad-indent": "a:\n  b: 1\n c: 2\n",
    "control-char": "a: \x01\n",
    "bad-int-tag": "a: !!int word\n",
    "unknown-tag": "a: !python/object:os.system ls\n",
    "key-is-a-list": "? [a, b]\n: 1\n",
    "two-documents": "a: 1\n---\nb: 2\n",
    "deep": "a: " + "[" * 80 + "]" * 80 + "\n",
    "too-deep": "a: " + "[" * 70 + "]" * 70 + "\n",
    "directive": "%YAML 1.1\n---\na: 1\n",
    "colon-in-plain": "url: https://graph.microsoft.com/v1.0/users?$top=999\n",
}


def lines_of(value: Any) -> Any:
    """The values with the line of every mapping, list, key and item beside them."""
    if isinstance(value, LineDict):
        return ("map", value.line, {k: (value.lines[k], lines_of(v)) for k, v in value.items()})
    if isinstance(value, LineList):
        return ("list", value.line, [(line, lines_of(v)) for line, v in zip(value.lines, value, strict=True)])
    return (type(value).__name__, value)


def both_ways(text: str) -> tuple[Any, Any]:
    """(fast, careful): each parser's document with its lines, or the exception type it raised."""
    results = []
    for loader in (yamlread._FastLoader, yamlread._Loader):
        try:
            results.append(lines_of(yaml.load(text, Loader=loader)))  # noqa: S506 - both are SafeLoaders
        except Exception as exc:  # noqa: BLE001 - the type is the result here
            results.append(("raised", type(exc).__name__))
    return results[0], results[1]


def test_the_fast_parser_is_libyaml_here() -> None:
    """Otherwise the comparisons below compare the pure parser with itself (CI installs PyYAML with libyaml)."""
    assert yaml.__with_libyaml__, "PyYAML without libyaml: policy files are read by the pure parser only"
    assert issubclass(yamlread._FastLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_in_the_repository_reads_the_same_both_ways(path: Path) -> None:
    fast, careful = both_ways(path.read_bytes().decode("utf-8-sig"))
    assert fast == careful


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_an_awkward_document_is_never_accepted_by_the_fast_parser_alone(name: str) -> None:
    """Where libyaml accepts, the careful parser accepts the same document; where libyaml refuses, the careful
    parser decides (read_yaml falls back to it)."""
    fast, careful = both_ways(AWKWARD[name])
    if fast[0] != "raised":
        assert fast == careful


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_read_yaml_gives_the_careful_parsers_result_or_message(name: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(AWKWARD[name].encode("utf-8"))

    def read() -> Any:
        try:
            return lines_of(read_yaml(path, "rules.yaml"))
        except PolicyFileError as exc:
            return ("error", exc.problems)

    both = read()
    monkeypatch.setattr(yamlread, "_FastLoader", yamlread._Loader)  # the careful parser alone
    assert both == read()
