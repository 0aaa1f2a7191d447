"""Which parts of an Okta event a mapping reads, and which raw fields nothing reads.

Paths are compared in a plain form: ``$.target[?(@.type == 'User')].id`` and
``$.target[0].id`` both read ``target[].id``. A field of type ``json`` reads the whole subtree
under its path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ingest.mapping.compile import CompiledMapping
from ingest.mapping.spec import parse_spec, read_toml

_INDEX = re.compile(r"\[[^\]]*\]")


def plain_path(jsonpath: str) -> str:
    """``$.a.b[?(@.x == 'y')].c`` -> ``a.b[].c``; ``$['a']`` forms -> ``a``."""
    text = jsonpath.strip()
    text = re.sub(r"\['([^']*)'\]", r".\1", text)
    text = _INDEX.sub("[]", text)
    text = text.removeprefix("$").lstrip(".")
    return text.replace(".[]", "[]").replace("[].", "[].")


def paths_read(mapping: CompiledMapping) -> set[str]:
    """Every raw path (plain form) the mapping reads."""
    _, data = read_toml(mapping.path)
    spec, _ = parse_spec(mapping.path, data)
    out: set[str] = set()
    for field in spec.fields:
        sources = ([field.path] if field.path else []) + list(field.paths)
        for source in sources:
            base = plain_path(source)
            if not field.struct:
                out.add(base)
                continue
            for member in field.struct:
                rel = plain_path(member.path)
                joined = f"{base}[].{rel}" if not base.endswith("[]") else f"{base}.{rel}"
                out.add(joined.replace("[][]", "[]"))
    return out


def leaf_paths(value: Any, prefix: str = "") -> Iterable[str]:
    """Plain paths of every non-null leaf of a raw event."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from leaf_paths(item, f"{prefix}[]")
    elif value is not None and prefix:
        yield prefix


def is_read(path: str, read: set[str]) -> bool:
    """True when ``path`` or one of its ancestors is read."""
    if path in read:
        return True
    return any(path[cut] in ".[" and path[:cut] in read for cut in range(len(path) - 1, 0, -1))


def unread_fields(events: Iterable[Any], read: set[str]) -> Counter[str]:
    """For raw events, how many events carry each leaf path that nothing reads."""
    counts: Counter[str] = Counter()
    for event in events:
        counts.update({p for p in leaf_paths(event) if not is_read(p, read)})
    return counts
