"""The ground floor: what every layer above uses and nothing here imports from them.

The exception tree (``errors``), secret redaction and secret reading, structured logs, the
clock, the one backoff policy, durations and times, hostile-TOML reading, crash points for
the exactly-once tests, the writer of result tables, and interpreter settings."""
