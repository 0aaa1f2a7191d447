"""Checks of a field's optional keys, one function per key (or pair of keys).

Each check reads its keys from the field's table, reports problems through ``problem`` and
returns the checked value(s) for the field's model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.mapping.paths import PathError, compile_path
from ingest.mapping.types import (
    COERCERS,
    SCALAR_TYPES,
    VALUE_MAP_TYPES,
    Invalid,
    is_list_type,
    item_type,
    to_string,
)

Report = Callable[[str], None]
MEMBER_KEYS = ("path", "type")
WHEN_KEYS = ("field", "in")
ARRAY_MODES = ("first", "all", "join")
_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StructMember:
    """One named sub-field of the items of a ``list[json]`` field."""

    name: str
    path: str
    type: str


def check_path(text: Any, key: str, problem: Report) -> None:
    if not isinstance(text, str):
        problem(f"{key} must be a JSONPath string, got {text!r}")
        return
    try:
        compile_path(text)
    except PathError as err:
        problem(f"{key}: {err}")


def check_value(type_name: str, value: Any, key: str, problem: Report) -> Any:
    """Coerce a value written in the file to the field's type; report it when impossible."""
    try:
        if is_list_type(type_name):
            if not isinstance(value, list):
                raise Invalid(f"expected a list for {type_name}")
            coerce = COERCERS[item_type(type_name)]
            return [coerce(item) for item in value]
        return COERCERS[type_name](value)
    except Invalid as err:
        problem(f"{key} {value!r} does not fit type {type_name}: {err}")
        return None


def null_likes(
    table: Mapping[str, Any], output: str, mapping_null_likes: tuple[str, ...], problem: Report
) -> frozenset[str]:
    setting = table.get("null_likes", output == "columns")
    if setting is True:
        return frozenset(mapping_null_likes)
    if setting is False:
        return frozenset()
    if isinstance(setting, list) and all(isinstance(v, str) for v in setting):
        return frozenset(setting)
    problem("null_likes must be true, false or a list of strings")
    return frozenset()


def array(table: Mapping[str, Any], type_name: str, problem: Report) -> tuple[str | None, str]:
    array = table.get("array")
    separator = table.get("separator", ",")
    if array is not None and array not in ARRAY_MODES:
        problem(f"array must be one of {', '.join(ARRAY_MODES)}, got {array!r}")
        array = None
    if array == "all" and not is_list_type(type_name):
        problem(f"array = 'all' needs a list type, not {type_name}")
    if array == "join" and type_name != "string":
        problem(f"array = 'join' makes a string, so the type must be string, not {type_name}")
    if "separator" in table and array != "join":
        problem("separator only applies with array = 'join'")
    if not isinstance(separator, str):
        problem("separator must be a string")
        separator = ","
    return array, separator


def pattern(table: Mapping[str, Any], is_list: bool, problem: Report) -> str | None:
    pattern = table.get("pattern")
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        problem("pattern must be a regular expression string")
        return None
    if is_list:
        problem("pattern cannot be used with a list type")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        problem(f"pattern {pattern!r} is not a valid regular expression: {err}")
        return None
    if compiled.groups > 1:
        problem("pattern may have at most one capturing group")
    return pattern


def lookup(
    table: Mapping[str, Any], is_list: bool, problem: Report
) -> tuple[str | None, str | None]:
    lookup = table.get("lookup")
    lookup_field = table.get("lookup_field")
    if lookup is not None and not isinstance(lookup, str):
        problem("lookup must name a table declared in [lookups]")
        lookup = None
    if lookup is not None and is_list:
        problem("lookup cannot be used with a list type")
    if lookup_field is not None:
        if not isinstance(lookup_field, str):
            problem("lookup_field must be a string")
            lookup_field = None
        elif lookup is None:
            problem("lookup_field needs lookup")
    return lookup, lookup_field


def values(
    table: Mapping[str, Any], type_name: str, problem: Report
) -> tuple[dict[str, Any] | None, Any]:
    values = table.get("values")
    values_default = table.get("values_default")
    if values is None:
        if values_default is not None:
            problem("values_default needs values")
        return None, None
    if type_name not in VALUE_MAP_TYPES:
        problem(f"values cannot be used with type {type_name}")
        return None, None
    if not isinstance(values, dict):
        problem('values must be a table like {SUCCESS = "success"}')
        return None, None
    mapped = {
        key: check_value(type_name, value, f"values.{key}", problem)
        for key, value in values.items()
    }
    if values_default is not None:
        values_default = check_value(type_name, values_default, "values_default", problem)
    return mapped, values_default


def struct(table: Mapping[str, Any], type_name: str, problem: Report) -> tuple[StructMember, ...]:
    struct = table.get("struct")
    if struct is None:
        return ()
    if type_name != "list[json]":
        problem(f"struct only applies to type list[json], not {type_name}")
        return ()
    if not isinstance(struct, dict) or not struct:
        problem('struct must be a table like {id = "$.id", kind = {path = "$.type"}}')
        return ()
    members: list[StructMember] = []
    for name, member in struct.items():
        if not _MEMBER_NAME.fullmatch(name):
            problem(f"struct member {name!r} is not a valid name (letters, digits, _)")
            continue
        member_path: Any
        member_type: Any
        if isinstance(member, str):
            member_path, member_type = member, "string"
        elif isinstance(member, dict):
            for key in member:
                if key not in MEMBER_KEYS:
                    problem(f"struct member {name!r}: unknown key {key!r}")
            member_path, member_type = member.get("path"), member.get("type", "string")
        else:
            problem(f"struct member {name!r} must be a JSONPath or {{path = ..., type = ...}}")
            continue
        if member_type not in SCALAR_TYPES:
            problem(f"struct member {name!r}: type must be one of {', '.join(SCALAR_TYPES)}")
            continue
        check_path(member_path, f"struct member {name!r}", problem)
        members.append(StructMember(name, str(member_path), member_type))
    return tuple(members)


def merge(table: Mapping[str, Any], type_name: str, problem: Report) -> bool:
    """``merge = true``: every path of ``paths`` contributes its matches (a list type)."""
    setting = table.get("merge", False)
    if not isinstance(setting, bool):
        problem("merge must be true or false")
        return False
    if setting and "paths" not in table:
        problem("merge only applies with paths")
    if setting and not is_list_type(type_name):
        problem(f"merge makes a list, so the type must be a list type, not {type_name}")
    if setting and table.get("array") not in (None, "all"):
        problem("merge keeps every match: array must be 'all' or left out")
    return bool(setting)


def when(
    table: Mapping[str, Any], required: bool, problem: Report
) -> tuple[str | None, frozenset[str] | None]:
    """``when = { field = "NAME", in = [...] }``: keep the value only for those values of NAME.

    Without ``in``: keep it wherever NAME has a value. Values are compared as text.
    """
    gate = table.get("when")
    if gate is None:
        return None, None
    if not isinstance(gate, dict):
        problem('when must be a table like { field = "class_uid", in = [3002] }')
        return None, None
    for key in gate:
        if key not in WHEN_KEYS:
            problem(f"when: unknown key {key!r} (use field and in)")
    field = gate.get("field")
    if not isinstance(field, str) or not field:
        problem("when.field must name another field")
        field = None
    if required:
        problem("a required field cannot have when (it would be missing where the gate is shut)")
    if "in" not in gate:
        return field, None
    allowed = gate["in"]
    if (
        not isinstance(allowed, list)
        or not allowed
        or not all(isinstance(v, str | int | float | bool) for v in allowed)
    ):
        problem("when.in must be a non-empty list of strings, numbers or booleans")
        allowed = []
    texts: set[str] = set()
    for value in allowed:
        try:
            texts.add(to_string(value))  # compared as text, like values and lookup keys
        except Invalid as err:
            problem(f"when.in: {err}")
    return field, frozenset(texts)
