"""Loading a mapping file: validate everything, then compile it once into a ``CompiledMapping``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.base.errors import InvalidMapping
from ingest.mapping.apply import MappedBatch, Plan, apply_event, apply_events, event_document
from ingest.mapping.lookups import BadLookupFile, LookupTable, load_lookup
from ingest.mapping.pipeline import FieldPlan, build_field
from ingest.mapping.spec import MappingSpec, parse_spec, read_toml
from ingest.mapping.types import duckdb_type

if TYPE_CHECKING:
    from nanoarrow.c_schema import CSchema

# Part of every mapping version: raise it when the engine maps the same file differently.
ENGINE_REVISION = "1"


@dataclass(frozen=True)
class Column:
    """One output field of a mapping, as the store and the exports see it."""

    name: str
    type: str
    doc: str
    members: tuple[tuple[str, str], ...] = ()
    """(name, type) of each struct member, for a ``list[json]`` field with ``struct``."""

    @property
    def duckdb_type(self) -> str:
        return duckdb_type(self.type, self.members)

    @property
    def arrow_type(self) -> CSchema:
        from ingest.mapping.arrow import arrow_schema  # nanoarrow: loaded when needed

        return arrow_schema(self.type, self.members)


@dataclass(frozen=True, eq=False)
class CompiledMapping:
    """A validated, compiled mapping file; applying it does no I/O."""

    name: str
    version: str
    path: Path
    columns: tuple[Column, ...]
    output: str
    description: str
    plan: Plan

    def apply(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(row, issues) for one event; raises ``EventRejected`` with the reason."""
        return apply_event(self.plan, event)

    def apply_batch(self, events: Sequence[Mapping[str, Any]]) -> MappedBatch:
        """Map many events at once (the fast path); bad events are listed, not raised."""
        return apply_events(self.plan, events)

    def apply_document(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One event as a nested JSON-ready object (timestamps as RFC 3339 ``Z`` strings)."""
        return event_document(self.plan, event)


def load_mapping(path: str | Path) -> CompiledMapping:
    """Read, validate and compile a mapping file; raise ``MappingError`` listing every problem."""
    path = Path(path)
    content, data = read_toml(path)
    spec, problems = parse_spec(path, data)
    tables = _load_lookups(spec, problems)
    if problems:
        raise InvalidMapping(problems)
    return compile_spec(spec, content, tables)


def _load_lookups(spec: MappingSpec, problems: list[str]) -> dict[str, LookupTable]:
    tables: dict[str, LookupTable] = {}
    for name, file in spec.lookups.items():
        try:
            tables[name] = load_lookup(name, file)
        except BadLookupFile as err:
            users = [repr(f.name) for f in spec.fields if f.lookup == name]
            used = f" (used by field {', '.join(users)})" if users else ""
            problems.append(f"{spec.path}: [lookups] {name!r}{used}: {err}")
    return tables


def mapping_version(content: bytes, tables: Mapping[str, LookupTable]) -> str:
    """First 12 hex digits of SHA-256 over the file, its lookup files and the engine revision."""
    digest = hashlib.sha256()
    digest.update(f"oktaduck-mapping-engine {ENGINE_REVISION}\n".encode())
    digest.update(content)
    for name in sorted(tables):
        digest.update(b"\0" + name.encode() + b"\0" + tables[name].content)
    return digest.hexdigest()[:12]


def compile_spec(
    spec: MappingSpec, content: bytes, tables: Mapping[str, LookupTable]
) -> CompiledMapping:
    """Compile a validated spec (no problems left) into closures."""
    fields = tuple(build_field(field, tables) for field in spec.fields)
    columns = tuple(
        Column(
            name=field.name,
            type=field.type,
            doc=field.doc,
            members=tuple((member.name, member.type) for member in field.struct),
        )
        for field in spec.fields
    )
    return CompiledMapping(
        name=spec.name,
        version=mapping_version(content, tables),
        path=spec.path,
        columns=columns,
        output=spec.output,
        description=spec.description,
        plan=Plan(fields=fields, order=_evaluation_order(fields)),
    )


def _evaluation_order(fields: tuple[FieldPlan, ...]) -> tuple[FieldPlan, ...]:
    """File order, except that a field comes after the fields it uses (``from``, ``when``)."""
    by_name = {field.name: field for field in fields}
    order: list[FieldPlan] = []
    placed: set[str] = set()

    def place(field: FieldPlan) -> None:
        if field.name in placed:
            return
        placed.add(field.name)  # marked first; validation has ruled out cycles
        if field.source_field is not None:
            place(by_name[field.source_field])
        if field.gate_field is not None:
            place(by_name[field.gate_field])
        order.append(field)

    for field in fields:
        place(field)
    return tuple(order)
