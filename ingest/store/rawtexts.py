"""A page's events as JSON texts in one buffer, the way the mapping process sends them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

# Arrow's JSON type lands in a DuckDB JSON column as it is: the texts came from orjson, so
# DuckDB's parse to validate them (a tenth of an insert) is skipped
JSON_TEXT = pa.json_(pa.string())


class RawTexts:
    """The JSON text of each event of a page, indexed like the page's events.

    Made from one buffer and its offsets without a Python string per event; its Arrow
    array goes into ``events.raw`` without being copied again (``raw_array``).
    """

    __slots__ = ("array",)

    def __init__(self, array: pa.ExtensionArray) -> None:
        self.array = array

    @classmethod
    def from_buffers(cls, data: bytes, offsets: bytes) -> RawTexts:
        """Texts laid end to end in ``data``; ``offsets``: int32 starts, then the end."""
        count = len(offsets) // 4 - 1
        storage = pa.Array.from_buffers(
            pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        return cls(pa.ExtensionArray.from_storage(JSON_TEXT, storage))

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> str:
        text: str = self.array.storage[index].as_py()
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(self.array.storage.to_pylist())


def raw_array(raw: Sequence[str] | RawTexts, indexes: Sequence[int]) -> pa.Array:
    """The texts at ``indexes`` (ascending, no repeats) as an array of Arrow's JSON type."""
    if not isinstance(raw, RawTexts):
        return pa.array([raw[i] for i in indexes], JSON_TEXT)
    if len(indexes) == len(raw):
        return raw.array
    return raw.array.take(pa.array(indexes, pa.int64()))
