"""Mapped values as Arrow arrays, the form in which DuckDB takes a page in.

The arrays are built with nanoarrow, Arrow's C library behind small Python bindings, and reach
DuckDB through Arrow's C stream interface (any Arrow library reads them the same way, e.g.
``pyarrow.table(x)``). pyarrow would do the same work at about the same speed, but loading it
keeps some 55 MB of its libraries resident in every process that inserts (tests/perf).

Types: ints are int64, floats float64, timestamps microseconds in UTC, JSON text strings; a
``list[T]`` is a list of ``T``, and a ``list[json]`` with members a list of structs.
"""

from __future__ import annotations

import io
import itertools
import sys
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import nanoarrow as na
from nanoarrow.c_array import CArray
from nanoarrow.c_array_stream import CArrayStream
from nanoarrow.c_schema import CSchema

from ingest.mapping.types import is_list_type, item_type

# Arrow's canonical JSON type: DuckDB stores it in a JSON column as it is, without parsing it
# to validate it (the texts come from orjson), which saves about a tenth of an insert.
JSON_TEXT = na.c_schema(
    na.Schema(
        na.string(),
        metadata={"ARROW:extension:name": "arrow.json", "ARROW:extension:metadata": ""},
    )
)
TIMESTAMP = na.c_schema(na.timestamp("us", timezone="UTC"))
STRING = na.c_schema(na.string())
INT64 = na.c_schema(na.int64())
BOOL = na.c_schema(na.bool_())

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_Members = tuple[tuple[str, str], ...]


@lru_cache
def scalar_schema(type_name: str) -> CSchema:
    """The Arrow type of one value of a scalar mapping type."""
    if type_name in ("int", "epoch_ms"):
        return INT64
    if type_name == "float":
        return na.c_schema(na.float64())
    if type_name == "bool":
        return na.c_schema(na.bool_())
    if type_name == "timestamp":
        return TIMESTAMP
    return STRING


@lru_cache
def arrow_schema(type_name: str, members: _Members = ()) -> CSchema:
    """The Arrow type of a column; ``members`` are (name, type) of a ``list[json]`` struct."""
    if members:
        return na.c_schema(na.list_(_struct_schema(members)))
    if is_list_type(type_name):
        return na.c_schema(na.list_(scalar_schema(item_type(type_name))))
    return scalar_schema(type_name)


@lru_cache
def _struct_schema(members: _Members) -> na.Schema:
    return na.struct({name: scalar_schema(kind) for name, kind in members})


def micros(value: datetime) -> int:
    """Microseconds since the epoch, exactly (an aware datetime)."""
    return (value - _EPOCH) // _MICROSECOND


def column(values: Sequence[Any], type_name: str, members: _Members = ()) -> CArray:
    """``values`` (one per row, ``None`` for null) as an array of the column's Arrow type."""
    if members or is_list_type(type_name):
        return _list(values, type_name, members)
    if type_name == "timestamp":
        values = [None if v is None else micros(v) for v in values]
    return na.c_array(values, scalar_schema(type_name))


def strings(values: Sequence[str | None]) -> CArray:
    """Text values (``None`` for null) as a string array."""
    return na.c_array(values, STRING)


def repeated(value: Any, count: int, type_name: str) -> CArray:
    """One value on every row."""
    return column([value] * count, type_name)


def _list(values: Sequence[Any], type_name: str, members: _Members) -> CArray:
    lengths = (0 if v is None else len(v) for v in values)
    offsets = _int32(itertools.accumulate(lengths, initial=0))
    flat = [item for v in values if v for item in v]
    if members:
        children = [column(_member(flat, name), kind) for name, kind in members]
        validity, nulls = _validity(flat)
        child = na.c_array_from_buffers(
            _struct_schema(members), len(flat), [validity], null_count=nulls, children=children
        )
    else:
        child = column(flat, item_type(type_name))
    validity, nulls = _validity(values)
    return na.c_array_from_buffers(
        arrow_schema(type_name, members),
        len(values),
        [validity, offsets],
        null_count=nulls,
        children=[child],
    )


def _member(items: list[Any], name: str) -> list[Any]:
    """Each struct's value of member ``name`` (``None`` for a null struct or a missing
    member); ``dict.get`` mapped in C over a page's structs takes half the time of a loop."""
    try:
        return list(map(dict.get, items, itertools.repeat(name)))
    except TypeError:  # a null struct, or a mapping of another kind
        return [None if item is None else item.get(name) for item in items]


def _validity(values: Sequence[Any]) -> tuple[bytes | None, int]:
    """Arrow's validity bitmap of ``values`` (``None`` when none is null) and the null count.

    Counted in C, and the bits set by nanoarrow as a boolean array's (the same layout): a
    loop in Python over a page's values took nearly a tenth of building its Arrow columns."""
    nulls = values.count(None)
    if not nulls:
        return None, 0
    flags = na.c_array([value is not None for value in values], BOOL)
    return bytes(flags.view().buffer(1)), nulls


def _int32(values: Any) -> bytes:
    """int32 values as Arrow lays them out (little-endian)."""
    out = array("i", values)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def json_texts(data: bytes, offsets: bytes, count: int) -> CArray:
    """``count`` JSON texts laid end to end in ``data``; ``offsets``: little-endian int32
    starts, then the end."""
    return na.c_array_from_buffers(JSON_TEXT, count, [None, offsets, data])


def json_list(texts: Sequence[str]) -> CArray:
    """JSON texts as an array of Arrow's JSON type."""
    encoded = [text.encode() for text in texts]
    offsets = _int32(itertools.accumulate(map(len, encoded), initial=0))
    return json_texts(b"".join(encoded), offsets, len(encoded))


class Table:
    """Named columns of equal length, in one or more batches, readable as an Arrow stream.

    DuckDB reads a registered object's schema and then its rows, so every call of
    ``__arrow_c_stream__`` gives a new stream over the same batches.
    """

    __slots__ = ("batches", "schema")

    def __init__(self, schema: CSchema, batches: Sequence[CArray]) -> None:
        self.schema = schema
        self.batches = list(batches)

    @classmethod
    def of(cls, columns: dict[str, CArray], *more: dict[str, CArray]) -> Table:
        """A batch of ``columns`` (arrays of the same length), named as given, and one of each
        of ``more`` (the same names and types, e.g. the next pages)."""
        schema = struct_schema([na.Schema(a.schema, name=n) for n, a in columns.items()])
        return cls(schema, [batch(schema, list(c.values())) for c in (columns, *more)])

    @property
    def num_rows(self) -> int:
        return sum(b.length for b in self.batches)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        stream = CArrayStream.from_c_arrays(self.batches, self.schema)
        return stream.__arrow_c_stream__(requested_schema)


def to_ipc(columns: dict[str, CArray]) -> bytes:
    """Arrays of equal length as an Arrow IPC stream of one batch, the columns named as given.

    The mapping process sends a page's columns this way: the polling process reads them back
    (``from_ipc``) at the cost of copying bytes, where decoding the values and building the
    arrays again cost it some 7 us of CPU an event more (docs/performance.md)."""
    from nanoarrow.ipc import StreamWriter

    out = io.BytesIO()
    StreamWriter.from_writable(out).serialize_stream(Table.of(columns))
    return out.getvalue()


def from_ipc(data: bytes) -> dict[str, CArray]:
    """The named columns of the one batch of a stream written by ``to_ipc``."""
    from nanoarrow.ipc import InputStream

    with na.c_array_stream(InputStream.from_readable(data)) as stream:
        batches = list(stream)
    if len(batches) != 1:
        raise ValueError(f"an IPC stream of {len(batches)} batches, not one")
    (whole,) = batches
    return {whole.child(i).schema.name or "": whole.child(i) for i in range(whole.n_children)}


def struct_schema(fields: Sequence[na.Schema], metadata: dict[str, str] | None = None) -> CSchema:
    """The schema of a batch whose columns are ``fields`` (each named)."""
    return na.c_schema(na.Schema(na.Type.STRUCT, fields=fields, metadata=metadata))


def batch(schema: CSchema, arrays: Sequence[CArray]) -> CArray:
    """``arrays`` as the columns of one batch of ``schema``."""
    length = arrays[0].length if arrays else 0
    return na.c_array_from_buffers(schema, length, [None], children=arrays)
