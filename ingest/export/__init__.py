"""Export: each sink's cursor over the stored events in ingest order, the formats, one-off
exports, and the sinks (file, stdout, HTTP, syslog, RELP) that deliver the lines."""
