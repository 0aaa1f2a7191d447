"""What sinks read from an event (time, type, severity): any JSON in, only documented results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base.clock import FakeClock
from ingest.export.sinks import HttpSink, HttpSinkConfig, SyslogSink, SyslogSinkConfig
from ingest.export.sinks.fields import event_time, event_type, syslog_severity

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["2026-11-01T12:00:00.000Z", "2026-11-01T12:00:00", "INFO", "warn", "High"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "published",
        "@timestamp",
        "time",
        "eventType",
        "event_type",
        "event",
        "event.action",
        "metadata",
        "severity",
        "log",
        "log.level",
        "x",
    ]
)
events = st.dictionaries(keys, json_values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(events)
def test_any_event_gives_a_time_a_type_and_a_severity_or_none(event: dict[str, Any]) -> None:
    """Readers never raise; they return the documented types."""
    when = event_time(event)
    assert when is None or isinstance(when, float)
    kind = event_type(event)
    assert kind is None or (isinstance(kind, str) and kind)
    severity = syslog_severity(event)
    assert severity is None or 0 <= severity <= 7


@pytest.fixture(scope="module")
def hec() -> Iterator[HttpSink]:
    sink = HttpSink(HttpSinkConfig("http://127.0.0.1:1", preset="splunk-hec-event", host="h"))
    yield sink
    sink.close()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(json_values, min_size=1, max_size=5))
def test_any_json_line_becomes_a_well_formed_message(hec: HttpSink, values: list[Any]) -> None:
    """Any JSON line yields one syslog frame and one HEC envelope that parses back to it."""
    lines = [orjson.dumps(v) for v in values]
    frames = SyslogSink(SyslogSinkConfig("127.0.0.1", 1), FakeClock()).frames(lines)
    count = 0
    while frames:
        length, rest = frames.split(b" ", 1)
        message, frames = rest[: int(length)], rest[int(length) :]
        assert message.startswith(b"<") and message.endswith(lines[count])
        count += 1
    assert count == len(lines)
    [body] = list(hec._bodies(lines))
    decoded = orjson.loads(b"[" + body.replace(b'}{"event":', b'},{"event":') + b"]")
    assert [d["event"] for d in decoded] == values
