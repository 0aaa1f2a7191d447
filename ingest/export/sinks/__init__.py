"""Sinks: deliver batches of formatted NDJSON lines to files, stdout, HTTP or syslog.

The contract every sink keeps is written in :mod:`ingest.export.sinks.base`; each sink's module
says what "accepted" means for it.
"""

from ingest.base.errors import SinkRejected, SinkUnavailable
from ingest.export.sinks.base import Sink
from ingest.export.sinks.file import FileSink, FileSinkConfig
from ingest.export.sinks.http import HttpSink, HttpSinkConfig, retry_after_seconds
from ingest.export.sinks.relp import RelpSink
from ingest.export.sinks.stdout import StdoutSink
from ingest.export.sinks.syslog import SyslogSink, SyslogSinkConfig

__all__ = [
    "FileSink",
    "FileSinkConfig",
    "HttpSink",
    "HttpSinkConfig",
    "RelpSink",
    "Sink",
    "SinkRejected",
    "SinkUnavailable",
    "StdoutSink",
    "SyslogSink",
    "SyslogSinkConfig",
    "retry_after_seconds",
]
