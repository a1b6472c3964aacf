"""A strict kiota JSON parse node: parses a Graph body with msgraph-sdk's models and lists every deviation from them.

kiota's JsonParseNode is lenient: a key the model does not know goes into additional_data, and a value that does
not convert (a GUID that is no GUID, an enum value of the wrong casing, a string where a bool belongs) silently
becomes None. StrictParseNode is the same parser, run through msgraph-sdk's own get_field_deserializers and
discriminators, but it records each such case with its JSON path, so a fixture that Graph could never have sent fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from kiota_abstractions.serialization import Parsable, ParsableFactory
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.dictionary import Dictionary
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.security.audit_data import AuditData
from msgraph.generated.models.security.audit_record_type_dictionary import AuditRecordTypeDictionary

U = TypeVar("U", bound=Parsable)

OPEN_TYPES: tuple[type, ...] = (AuditData, AuditRecordTypeDictionary, Dictionary)
"""Types whose openness is their content: any property may sit on them (Purview's record keys sit on auditData)."""

DIRECTORY_EXTENSION = re.compile(r"extension_[0-9a-fA-F]{32}_\w+")
"""The one kind of undeclared property a directory object may carry. The CSDL marks directoryObject, user,
servicePrincipal, application, organization … OpenType too, but for directory extension attributes
(`extension_<app id without dashes>_<name>`); any other undeclared key there is made up."""


@dataclass(frozen=True)
class Deviation:
    """One place where a body does not fit msgraph-sdk's model: a JSON path and what is wrong there."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def is_annotation(key: str) -> bool:
    """An OData control annotation (@odata.type, @odata.context, property@odata.nextLink …), allowed anywhere."""
    return key.startswith("@odata.") or "@odata." in key


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _sdk(cls: type) -> str:
    """The SDK a model comes from, as pip names it."""
    return "msgraph-beta-sdk" if cls.__module__.startswith("msgraph_beta.") else "msgraph-sdk"


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.replace("_", "").isalnum():
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


class StrictParseNode(JsonParseNode):
    """JsonParseNode that records unknown properties and values that kiota would silently turn into None."""

    def __init__(self, node: Any, path: str = "", deviations: list[Deviation] | None = None) -> None:
        super().__init__(node)
        self.path = path
        self.deviations: list[Deviation] = [] if deviations is None else deviations

    # ---------------------------------------------------------------- bookkeeping

    def _wrong(self, problem: str, path: str | None = None) -> None:
        self.deviations.append(Deviation(path if path is not None else (self.path or "$"), problem))

    def _child(self, node: Any, key: str | int) -> StrictParseNode:
        child = StrictParseNode(node, _child_path(self.path, key), self.deviations)
        if self.on_before_assign_field_values:
            child.on_before_assign_field_values = self.on_before_assign_field_values
        if self.on_after_assign_field_values:
            child.on_after_assign_field_values = self.on_after_assign_field_values
        return child

    def _create_new_node(self, node: Any) -> JsonParseNode:
        return StrictParseNode(node, self.path, self.deviations)

    def get_child_node(self, identifier: str) -> StrictParseNode | None:
        if isinstance(self._json_node, dict) and identifier in self._json_node:
            return self._child(self._json_node[identifier], identifier)
        return None

    def _typed(self, convert: Callable[[], Any], expected: str) -> Any:
        """Run kiota's own conversion; a non-null JSON value that comes back None (or raises) is a deviation."""
        try:
            value = convert()
        except (ValueError, TypeError, binascii.Error) as exc:
            self._wrong(f"{expected} expected, got {_shown(self._json_node)} ({exc})")
            return None
        if value is None and self._json_node is not None:
            self._wrong(f"{expected} expected, got {_shown(self._json_node)}")
        return value

    # ---------------------------------------------------------------- primitives

    def get_str_value(self) -> str | None:
        return self._typed(super().get_str_value, "a string")  # type: ignore[no-any-return]

    def get_bool_value(self) -> bool | None:
        return self._typed(super().get_bool_value, "true or false")  # type: ignore[no-any-return]

    def get_int_value(self) -> int | None:
        if isinstance(self._json_node, bool):
            self._wrong(f"an integer expected, got {_shown(self._json_node)}")
            return None
        return self._typed(super().get_int_value, "an integer")  # type: ignore[no-any-return]

    def get_float_value(self) -> float | None:
        if isinstance(self._json_node, bool):
            self._wrong(f"a number expected, got {_shown(self._json_node)}")
            return None
        return self._typed(super().get_float_value, "a number")  # type: ignore[no-any-return]

    def get_uuid_value(self) -> UUID | None:
        value = self._typed(super().get_uuid_value, "a GUID")
        if isinstance(self._json_node, str) and value is not None and len(self._json_node) != 36:
            self._wrong(f"a GUID in 8-4-4-4-12 form expected, got {_shown(self._json_node)}")
        return value  # type: ignore[no-any-return]

    def get_datetime_value(self) -> datetime | None:
        value = self._typed(super().get_datetime_value, "an ISO 8601 date and time")
        if isinstance(value, datetime) and value.tzinfo is None:
            self._wrong("a date and time with a UTC offset (Edm.DateTimeOffset) expected, "
                        f"got {_shown(self._json_node)}")
        return value  # type: ignore[no-any-return]

    def get_date_value(self) -> date | None:
        return self._typed(super().get_date_value, "an ISO 8601 date")  # type: ignore[no-any-return]

    def get_time_value(self) -> time | None:
        return self._typed(super().get_time_value, "an ISO 8601 time")  # type: ignore[no-any-return]

    def get_timedelta_value(self) -> timedelta | None:
        return self._typed(super().get_timedelta_value, "an ISO 8601 duration")  # type: ignore[no-any-return]

    def get_bytes_value(self) -> bytes | None:
        def strict() -> bytes | None:
            node = self._json_node
            return base64.b64decode(node, validate=True) if isinstance(node, str) else None
        return self._typed(strict, "base64 bytes")  # type: ignore[no-any-return]

    def get_enum_value(self, enum_class: Any) -> Any:
        node = self._json_node
        if node is None:
            return None
        members = [m.value for m in enum_class] if isinstance(enum_class, type) and issubclass(enum_class, Enum) else []
        if not isinstance(node, str) or node not in members:
            near = [m for m in members if isinstance(node, str) and m.casefold() == node.casefold()]
            hint = f" (Graph writes {near[0]!r})" if near else f" (one of {', '.join(map(str, members[:8]))}" + (
                ", …)" if len(members) > 8 else ")")
            self._wrong(f"{_shown(node)} is not a value of {getattr(enum_class, '__name__', enum_class)}{hint}")
        return super().get_enum_value(enum_class)

    # ---------------------------------------------------------------- collections and objects

    def get_collection_of_primitive_values(self, primitive_type: Any) -> list[Any] | None:
        node = self._json_node
        if node is None:
            return None
        if not isinstance(node, list):
            self._wrong(f"a list expected, got {_shown(node)}")
            return None
        getters: dict[Any, str] = {bool: "get_bool_value", str: "get_str_value", int: "get_int_value",
                                   float: "get_float_value", UUID: "get_uuid_value", datetime: "get_datetime_value",
                                   timedelta: "get_timedelta_value", date: "get_date_value", time: "get_time_value",
                                   bytes: "get_bytes_value"}
        getter = getters[primitive_type]
        return [getattr(self._child(item, i), getter)() for i, item in enumerate(node)]

    def get_collection_of_enum_values(self, enum_class: Any) -> list[Any] | None:
        node = self._json_node
        if node is None:
            return None
        if isinstance(node, str):  # a flags enum, written "a,b" by Graph
            return [self._child(part.strip(), i).get_enum_value(enum_class) for i, part in enumerate(node.split(","))]
        if not isinstance(node, list):
            self._wrong(f"a list of {getattr(enum_class, '__name__', 'enum')} values expected, got {_shown(node)}")
            return None
        return [self._child(item, i).get_enum_value(enum_class) for i, item in enumerate(node)]

    def get_collection_of_object_values(self, factory: ParsableFactory[U]) -> list[U] | None:
        node = self._json_node
        if node is None:
            return None
        if not isinstance(node, list):
            self._wrong(f"a list expected, got {_shown(node)}")
            return None
        return [self._child(item, i).get_object_value(factory) for i, item in enumerate(node)]

    def get_object_value(self, factory: ParsableFactory[U]) -> U:
        if self._json_node is not None and not isinstance(self._json_node, dict):
            self._wrong(f"an object expected, got {_shown(self._json_node)}")
        result = super().get_object_value(factory)
        self._check_odata_type(result)
        return result

    def _check_odata_type(self, item: Parsable) -> None:
        node = self._json_node
        if not isinstance(node, dict) or not isinstance(node.get("@odata.type"), str):
            return
        cls = type(item)
        declared = _declared_type(cls)
        written = str(node["@odata.type"]).casefold()
        if declared is not None and declared.casefold() == written:
            return
        if declared is None and written.rsplit(".", 1)[-1] == cls.__name__.casefold():
            return  # a complex type whose model has no default @odata.type
        self._wrong(f"@odata.type {node['@odata.type']!r} is not a type {_sdk(cls)} knows here (it parsed as "
                    f"{cls.__name__})", _child_path(self.path, "@odata.type"))

    def _assign_field_values(self, item: Parsable) -> None:
        node = self._json_node
        if not isinstance(node, dict):
            return
        extra = getattr(item, "additional_data", None)
        extra = {} if extra is None else extra
        deserializers = _deserializers(item)
        open_type = isinstance(item, OPEN_TYPES)
        directory = isinstance(item, DirectoryObject)
        for name, value in node.items():
            if name in deserializers:
                if value is not None:
                    deserializers[name](self._child(value, name))
                continue
            if not (open_type or is_annotation(name) or (directory and DIRECTORY_EXTENSION.fullmatch(name))):
                self._wrong(f"{name!r} is not a property of {type(item).__name__} ({_sdk(type(item))})",
                            _child_path(self.path, name))
            extra[name] = self.try_get_anything(value)


_DESERIALIZERS: dict[type, dict[str, Callable[[Any], None]]] = {}
_DECLARED: dict[type, Any] = {}


def _deserializers(item: Parsable) -> dict[str, Callable[[Any], None]]:
    """The model's get_field_deserializers, built once per class.

    msgraph's deserializers re-import a thousand modules on every call (15 ms for each directory object), and their
    closures set attributes on the first instance. Only the deviations matter here, not the parsed objects, so
    reusing one instance's closures for every item of its class checks exactly the same things, 20 times faster.
    """
    cls = type(item)
    if cls not in _DESERIALIZERS:
        _DESERIALIZERS[cls] = item.get_field_deserializers()
    return _DESERIALIZERS[cls]


def _declared_type(cls: type) -> Any:
    if cls not in _DECLARED:
        _DECLARED[cls] = getattr(cls(), "odata_type", None)
    return _DECLARED[cls]


def check_body(body: Any, model: ParsableFactory[Any], collection: bool) -> list[Deviation]:
    """Every deviation of a response body from msgraph-sdk's model (a collection page or one object)."""
    deviations: list[Deviation] = []
    if not collection:
        StrictParseNode(body, "", deviations).get_object_value(model)
        return deviations
    if not isinstance(body, dict):
        return [Deviation("$", f"a collection page (an object with 'value') expected, got {_shown(body)}")]
    for key, value in body.items():
        if key == "value":
            continue
        if not is_annotation(key):
            deviations.append(Deviation(_child_path("", key), f"{key!r} is not allowed beside 'value' in a collection"))
        elif key == "@odata.count" and (not isinstance(value, int) or isinstance(value, bool)):
            deviations.append(Deviation('["@odata.count"]', f"an integer expected, got {_shown(value)}"))
        elif key == "@odata.nextLink" and not isinstance(value, str):
            deviations.append(Deviation('["@odata.nextLink"]', f"a URL string expected, got {_shown(value)}"))
    if "value" not in body:
        deviations.append(Deviation("value", "a collection page has a 'value' list; this one has none"))
    StrictParseNode(body.get("value"), "value", deviations).get_collection_of_object_values(model)
    return deviations
