"""YAML with line numbers: strict booleans, no duplicate keys, every mapping and list knows its line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from m365audit.errors import PolicyFileError

MAX_DEPTH = 64
"""Deeper mappings and lists are refused: no policy file needs them, and every later stage would recurse into them."""

# --------------------------------------------------------------------------- YAML with line numbers


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that remembers the line of itself and of each item."""

    line: int = 0
    lines: list[int]


class _Marked:
    """A constructor's plain error (`!!int` on a word) becomes a YAML error with the node's line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, TypeError, OverflowError) as exc:
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise yaml.constructor.ConstructorError(None, None, f"cannot read the {tag} value: {exc}",
                                                    node.start_mark) from exc


class _Loader(_Marked, yaml.SafeLoader):
    """SafeLoader that keeps line numbers, rejects duplicate keys, leaves dates to the models, and reads
    only true/false as booleans (YAML 1.2): `value: off` or `nl: no` stay the strings they look like."""


class _FastLoader(_Marked, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """_Loader on libyaml's parser (about 10x faster): the same resolvers and constructors, so the same values
    and lines. Only a file it reads without any error is taken from it; anything else is read again by _Loader,
    whose messages (and, should the two parsers ever disagree on a broken file, whose verdict) count."""


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))


def _bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first on line {first}); a second value would silently win")
        self.line = line


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    own: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool, type(None))):
            raise yaml.constructor.ConstructorError(None, None, f"a key must be a plain name, not {describe(key)}",
                                                    key_node.start_mark)
        if key in own:
            raise _DuplicateKey(key, line, own[key])
        own[key] = line
    loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor); the mapping's own keys override them
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_FastLoader.yaml_constructors = _Loader.yaml_constructors


def _decode(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyFileError([f"{label}:{line}: not UTF-8: byte 0x{raw[exc.start]:02x} in column {column}; "
                               "save the file as UTF-8"]) from exc


def read_yaml(path: Path, label: str) -> Any:
    """Parse one YAML file; unreadable bytes, syntax errors and duplicate keys become 'file:line: message'."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyFileError([f"{label}: cannot read: {exc.strerror or exc}"]) from exc
    text = _decode(raw, label)
    try:
        return _shallow(yaml.load(text, Loader=_FastLoader), label)  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, _DuplicateKey, RecursionError, PolicyFileError, ValueError):
        pass  # read again below: the pure-Python parser's verdict and message are the ones users see
    try:
        return _shallow(yaml.load(text, Loader=_Loader), label)  # noqa: S506 - _Loader is a SafeLoader
    except RecursionError:  # the parser recurses per level: [[[[… or a mapping a thousand deep
        raise PolicyFileError([f"{label}:1: nested too deep to read (more than {MAX_DEPTH} levels); a policy "
                               "file is a few levels deep"]) from None
    except _DuplicateKey as exc:
        raise PolicyFileError([f"{label}:{exc.line}: {exc}"]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or str(exc)
        if "'\\t'" in problem:
            problem = f"a tab in column {mark.column + 1 if mark else '?'}; indent with spaces, not tabs"
        raise PolicyFileError([f"{label}:{line}: invalid YAML: {problem}"]) from exc
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text[:exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise PolicyFileError([f"{label}:{line}: invalid YAML: control character 0x{exc.character:02x} in column "
                               f"{column}; remove it"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError([f"{label}:1: invalid YAML: {exc}"]) from exc


def _shallow(doc: Any, label: str) -> Any:
    """The document, if no mapping or list in it is nested deeper than MAX_DEPTH (checked without recursing)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise PolicyFileError([f"{label}:{getattr(node, 'line', 1) or 1}: nested too deep (more than "
                                       f"{MAX_DEPTH} levels); a policy file is a few levels deep"])
            stack += [(child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)]
    return doc


def line_of(doc: Any, loc: Iterable[int | str]) -> int:
    """The line of the deepest node along an error location that exists in the YAML."""
    line = getattr(doc, "line", 0) or 1
    node = doc
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line, node = node.lines[part], node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.lines[part], node[part]
        else:
            break
    return line


def describe(value: object) -> str:
    """A value as a user would name it in a message: 'a list', 'the number 3', "'yes'"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
