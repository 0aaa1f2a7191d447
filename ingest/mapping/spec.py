"""The mapping file model: TOML -> frozen dataclasses, with every problem found at once.

Validation never stops at the first problem: it collects one line per problem, each naming the
file and the field, and ``InvalidMapping`` carries them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.base.errors import ConfigError, InvalidMapping
from ingest.base.tomlfile import read_toml as read_file
from ingest.mapping import options
from ingest.mapping.names import field_name_problem
from ingest.mapping.options import StructMember
from ingest.mapping.types import (
    ALL_TYPES,
    is_list_type,
)

TOP_KEYS = ("mapping", "lookups", "fields")
MAPPING_KEYS = ("name", "description", "output", "null_likes")
FIELD_KEYS = (
    "path",
    "paths",
    "const",
    "from",
    "type",
    "required",
    "doc",
    "default",
    "null_likes",
    "array",
    "separator",
    "pattern",
    "lookup",
    "lookup_field",
    "values",
    "values_default",
    "struct",
    "merge",
    "when",
)
SOURCE_KEYS = ("path", "paths", "const", "from")
OUTPUTS = ("columns", "document")
DEFAULT_NULL_LIKES = ("null", "")

_MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LOOKUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FieldSpec:
    """One output field as written in the file (values already checked against the type)."""

    name: str
    type: str
    doc: str = ""
    path: str | None = None
    paths: tuple[str, ...] = ()
    const: Any = None
    source_field: str | None = None
    required: bool = False
    default: Any = None
    null_likes: frozenset[str] = frozenset()
    array: str | None = None
    separator: str = ","
    pattern: str | None = None
    lookup: str | None = None
    lookup_field: str | None = None
    values: Mapping[str, Any] | None = None
    values_default: Any = None
    struct: tuple[StructMember, ...] = ()
    merge: bool = False
    when_field: str | None = None
    when_values: frozenset[str] | None = None


@dataclass(frozen=True)
class MappingSpec:
    """A whole mapping file."""

    path: Path
    name: str
    description: str
    output: str
    null_likes: tuple[str, ...]
    lookups: Mapping[str, Path] = field(default_factory=dict)
    fields: tuple[FieldSpec, ...] = ()


def read_toml(path: Path) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its parsed TOML; raise ``InvalidMapping`` when it cannot be read
    (also when it is binary, nested too deeply or larger than 16 MiB)."""
    try:
        return read_file(path, "mapping")
    except ConfigError as err:
        raise InvalidMapping([str(err)]) from None


def parse_spec(path: Path, data: Mapping[str, Any]) -> tuple[MappingSpec, list[str]]:
    """Check a parsed file; return the model (meaningful only without problems) and problems."""
    problems: list[str] = []
    file = str(path)
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"{file}: unknown top-level key {key!r}{_hint(key, TOP_KEYS)}")

    head = data.get("mapping")
    name, description, output = "", "", "columns"
    null_likes: tuple[str, ...] = DEFAULT_NULL_LIKES
    if not isinstance(head, dict):
        problems.append(f"{file}: [mapping]: missing table (with at least name = ...)")
    else:
        name, description, output, null_likes = _mapping_table(file, head, problems)

    lookups = _lookups_table(file, path.parent, data.get("lookups", {}), problems)

    raw_fields = data.get("fields")
    specs: list[FieldSpec] = []
    if not isinstance(raw_fields, dict) or not raw_fields:
        problems.append(f"{file}: [fields]: the mapping declares no fields")
    else:
        for field_name, table in raw_fields.items():
            spec = _field(file, field_name, table, output, null_likes, problems)
            if spec is not None:
                specs.append(spec)
        _cross_checks(file, raw_fields, lookups, output, problems)

    model = MappingSpec(
        path=path,
        name=name,
        description=description,
        output=output,
        null_likes=null_likes,
        lookups=lookups,
        fields=tuple(specs),
    )
    return model, problems


def _hint(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mapping_table(
    file: str, head: Mapping[str, Any], problems: list[str]
) -> tuple[str, str, str, tuple[str, ...]]:
    where = f"{file}: [mapping]"
    for key in head:
        if key not in MAPPING_KEYS:
            problems.append(f"{where}: unknown key {key!r}{_hint(key, MAPPING_KEYS)}")
    name = head.get("name")
    if not isinstance(name, str) or not _MAPPING_NAME.fullmatch(name):
        problems.append(f"{where}: name must be a word like 'normalized', got {name!r}")
        name = ""
    description = head.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}: description must be a string")
        description = ""
    output = head.get("output", "columns")
    if output not in OUTPUTS:
        problems.append(f"{where}: output must be 'columns' or 'document', got {output!r}")
        output = "columns"
    null_likes = head.get("null_likes", list(DEFAULT_NULL_LIKES))
    if not isinstance(null_likes, list) or not all(isinstance(v, str) for v in null_likes):
        problems.append(f"{where}: null_likes must be a list of strings")
        null_likes = list(DEFAULT_NULL_LIKES)
    return name, description, output, tuple(null_likes)


def _lookups_table(file: str, base: Path, table: Any, problems: list[str]) -> dict[str, Path]:
    if not isinstance(table, dict):
        problems.append(f'{file}: [lookups]: must be a table of name = "relative/file.json"')
        return {}
    lookups: dict[str, Path] = {}
    for name, target in table.items():
        if not _LOOKUP_NAME.fullmatch(name):
            problems.append(f"{file}: [lookups]: {name!r} is not a valid lookup name")
        elif not isinstance(target, str) or not target:
            problems.append(f"{file}: [lookups]: {name!r} must name a file (a string)")
        else:
            lookups[name] = base / target
    return lookups


def _field(
    file: str,
    name: str,
    table: Any,
    output: str,
    mapping_null_likes: tuple[str, ...],
    problems: list[str],
) -> FieldSpec | None:
    where = f"{file}: field {name!r}"
    before = len(problems)

    def problem(text: str) -> None:
        problems.append(f"{where}: {text}")

    name_problem = field_name_problem(name, output)
    if name_problem is not None:
        problem(name_problem)
    if not isinstance(table, dict):
        problem("must be a table ([fields.NAME] with path = ... and type = ...)")
        return None
    for key, value in table.items():
        if key in FIELD_KEYS:
            continue
        hint = _hint(key, FIELD_KEYS)
        if isinstance(value, dict) and not hint:
            hint = f' (a dotted field name must be quoted: [fields."{name}.{key}"])'
        problem(f"unknown key {key!r}{hint}")

    type_name = table.get("type", "string")
    if type_name not in ALL_TYPES:
        problem(f"unknown type {type_name!r} (one of: {', '.join(ALL_TYPES)})")
        type_name = "string"
    is_list = is_list_type(type_name)

    sources = [key for key in SOURCE_KEYS if key in table]
    if not sources:
        problem("needs a source: one of path, paths, const or from")
    elif len(sources) > 1:
        problem(f"has more than one source ({', '.join(sources)}); keep one")

    path = table.get("path")
    if path is not None:
        options.check_path(path, "path", problem)
    paths = table.get("paths", [])
    if not isinstance(paths, list) or ("paths" in table and not paths):
        problem("paths must be a non-empty list of JSONPaths")
        paths = []
    for candidate in paths:
        options.check_path(candidate, "paths", problem)
    source_field = table.get("from")
    if source_field is not None and not isinstance(source_field, str):
        problem("from must name another field")
        source_field = None
    const = table.get("const")
    if const is not None:
        options.check_value(type_name, const, "const", problem)

    required = table.get("required", False)
    if not isinstance(required, bool):
        problem("required must be true or false")
        required = False
    doc = table.get("doc", "")
    if not isinstance(doc, str):
        problem("doc must be a string")
        doc = ""
    default = table.get("default")
    if default is not None:
        if required:
            problem("a required field cannot have a default")
        default = options.check_value(type_name, default, "default", problem)

    null_likes = options.null_likes(table, output, mapping_null_likes, problem)
    array, separator = options.array(table, type_name, problem)
    pattern = options.pattern(table, is_list, problem)
    lookup, lookup_field = options.lookup(table, is_list, problem)
    values, values_default = options.values(table, type_name, problem)
    struct = options.struct(table, type_name, problem)
    merge = options.merge(table, type_name, problem)
    when_field, when_values = options.when(table, required, problem)

    if len(problems) > before:
        return None
    return FieldSpec(
        name=name,
        type=type_name,
        doc=doc,
        path=path,
        paths=tuple(paths),
        const=const,
        source_field=source_field,
        required=required,
        default=default,
        null_likes=null_likes,
        array=array,
        separator=separator,
        pattern=pattern,
        lookup=lookup,
        lookup_field=lookup_field,
        values=values,
        values_default=values_default,
        struct=struct,
        merge=merge,
        when_field=when_field,
        when_values=when_values,
    )


def _cross_checks(
    file: str,
    tables: Mapping[str, Any],
    lookups: Mapping[str, Path],
    output: str,
    problems: list[str],
) -> None:
    """Checks between fields: ``from`` targets, cycles, lookups, document name clashes."""
    derived: dict[str, str] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            continue
        where = f"{file}: field {name!r}"
        source = table.get("from")
        if isinstance(source, str):
            if source in tables:
                derived[name] = source
            else:
                problems.append(f"{where}: from names unknown field {source!r}")
        lookup = table.get("lookup")
        if isinstance(lookup, str) and lookup not in lookups:
            problems.append(f"{where}: lookup {lookup!r} is not declared in [lookups]")
        gate = table.get("when")
        if isinstance(gate, dict) and isinstance(gate.get("field"), str):
            if gate["field"] not in tables:
                problems.append(f"{where}: when names unknown field {gate['field']!r}")
            elif gate["field"] == name:
                problems.append(f"{where}: when cannot name the field itself")
    reported: set[str] = set()
    for start in derived:
        chain = [start]
        current = derived.get(start)
        while current is not None and current not in chain:
            chain.append(current)
            current = derived.get(current)
        if current is not None and current not in reported:
            cycle = [*chain[chain.index(current) :], current]
            reported.update(cycle)
            problems.append(
                f"{file}: field {current!r}: derived fields form a cycle: {' -> '.join(cycle)}"
            )
    _gate_cycles(file, tables, derived, reported, problems)
    if output == "document":
        ordered = sorted(tables)
        for name in ordered:
            for other in ordered:
                if other.startswith((name + ".", name + "[].")):
                    problems.append(
                        f"{file}: field {other!r}: clashes with field {name!r}, "
                        "which would have to be both a value and an object"
                    )
        _array_clashes(file, ordered, problems)


def _array_clashes(file: str, names: Sequence[str], problems: list[str]) -> None:
    """``a[].b`` and ``a.c`` would make ``a`` both an array and an object."""
    forms: dict[str, tuple[bool, str]] = {}
    for name in names:
        prefix = ""
        for part in name.split(".")[:-1]:
            plain = part.removesuffix("[]")
            prefix = f"{prefix}.{plain}" if prefix else plain
            is_array = part.endswith("[]")
            seen = forms.setdefault(prefix, (is_array, name))
            if seen[0] != is_array:
                problems.append(
                    f"{file}: field {name!r}: clashes with field {seen[1]!r}: "
                    f"{prefix!r} cannot be both a one-item array and an object"
                )
                break


def _gate_cycles(
    file: str,
    tables: Mapping[str, Any],
    derived: Mapping[str, str],
    reported: set[str],
    problems: list[str],
) -> None:
    """Cycles that go through a ``when`` (a field gated on a field that depends on it)."""
    gates = {
        name: table["when"]["field"]
        for name, table in tables.items()
        if isinstance(table, dict)
        and isinstance(table.get("when"), dict)
        and table["when"].get("field") in tables
        and table["when"].get("field") != name
    }
    for start in gates:
        if start in reported:
            continue
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            current, chain = stack.pop()
            for follow in (derived.get(current), gates.get(current)):
                if follow is None:
                    continue
                if follow == start:
                    cycle = [*chain, start]
                    reported.update(cycle)
                    problems.append(
                        f"{file}: field {start!r}: when and from form a cycle: "
                        + " -> ".join(cycle)
                    )
                    stack.clear()
                    break
                if follow not in seen:
                    seen.add(follow)
                    stack.append((follow, [*chain, follow]))
