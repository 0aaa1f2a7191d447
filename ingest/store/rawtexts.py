"""A page's events as JSON texts in one buffer, the way the mapping process sends them, and
what makes two texts of one event the same content."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence

import orjson
from nanoarrow.c_array import CArray

from ingest.mapping.arrow import json_list, json_texts


class RawTexts:
    """The JSON text of each event of a page, indexed like the page's events.

    Made from one buffer and its offsets without a Python string per event; its Arrow
    array goes into ``events.raw`` without being copied again (``raw_array``).
    """

    __slots__ = ("_starts", "array", "data")

    def __init__(self, data: bytes, offsets: bytes) -> None:
        """Texts laid end to end in ``data``; ``offsets``: little-endian int32 starts, then
        the end."""
        self.data = data
        self._starts = array("i", offsets)
        if sys.byteorder == "big":
            self._starts.byteswap()
        self.array = json_texts(data, offsets, len(self._starts) - 1)

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.data[self._starts[index] : self._starts[index + 1]].decode()

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def bytes_at(self, index: int) -> bytes:
        """The text at ``index`` as UTF-8 bytes (no decoding)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.data[self._starts[index] : self._starts[index + 1]]

    def size(self, index: int) -> int:
        """The length in bytes of the text at ``index``."""
        return self._starts[index + 1] - self._starts[index]


def text_bytes(raw: Sequence[str] | RawTexts, index: int) -> bytes:
    """The text at ``index`` as UTF-8 bytes."""
    return raw.bytes_at(index) if isinstance(raw, RawTexts) else raw[index].encode()


def text_size(raw: Sequence[str] | RawTexts, index: int) -> int:
    """The length of the text at ``index``: in bytes, or in characters for a ``str`` (the
    same for the ASCII that makes up nearly all of an event)."""
    return raw.size(index) if isinstance(raw, RawTexts) else len(raw[index])


def total_size(raw: Sequence[str] | RawTexts) -> int:
    """The length of all the texts (see ``text_size``)."""
    return len(raw.data) if isinstance(raw, RawTexts) else sum(map(len, raw))


def raw_array(raw: Sequence[str] | RawTexts, indexes: Sequence[int]) -> CArray:
    """The texts at ``indexes`` (ascending, no repeats) as an array of Arrow's JSON type."""
    if isinstance(raw, RawTexts) and len(indexes) == len(raw):
        return raw.array
    return json_list([raw[i] for i in indexes])


def same_content(a: bytes, b: bytes) -> bool:
    """Whether two JSON texts of an event hold the same content: the same bytes, or the same
    JSON written otherwise (key order, whitespace, escapes, number spelling such as ``1.5e3``
    for ``1500.0``). Types count: ``1``, ``1.0`` and ``true`` differ. A text that does not
    decode (or is too deep to write back) is the same only as its own bytes."""
    if a == b:
        return True
    try:
        return _canonical(a) == _canonical(b)
    except (orjson.JSONDecodeError, TypeError):
        return False


def _canonical(text: bytes) -> bytes:
    """The text's JSON written one way: keys sorted, no whitespace, orjson's numbers."""
    return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)
