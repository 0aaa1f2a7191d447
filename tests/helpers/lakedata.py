"""Events put into a store the way a poll commits them, without a server: a page per commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from ingest.mapping import CompiledMapping
from ingest.store.db import PageRows, Store


def commit_events(
    store: Store,
    events: Sequence[dict[str, Any]],
    now: datetime,
    page: int = 200,
    source: str = "acme",
) -> None:
    """Commit ``events`` to ``store`` as pages of ``page`` events, one commit each, with the
    cursor after each page."""
    for start in range(0, len(events), page):
        chunk = list(events[start : start + page])
        store.commit_pages([page_rows(store.mapping, chunk, f"next-{start}", source)], now)


def page_rows(
    mapping: CompiledMapping, events: list[dict[str, Any]], next_url: str, source: str = "acme"
) -> PageRows:
    raw = [orjson.dumps(e).decode() for e in events]
    return PageRows(
        source, f"https://{source}.okta.com", next_url, mapping.apply_batch(events), raw, []
    )
