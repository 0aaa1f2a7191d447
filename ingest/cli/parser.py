"""The ``oktaduck`` argument parser: every command, its options, its help and examples; each
command's function is in ``ingest.cli.commands``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from ingest.base.tablewriter import FORMATS
from ingest.cli.commands import collect, demo, importing, mappings, query, store
from ingest.cli.help import HelpFormatter, command, commands_overview
from ingest.collect.settings import DEFAULT_TOKEN_ENV
from ingest.config import (
    MAX_GROUP_EVENTS,
)
from ingest.feeds.feedfile import MAX_INT_PARAM
from ingest.simulate import options as simulate_options
from ingest.store.db import DEFAULT_DB
from ingest.store.db import ONE_SHOT_GROUP_BYTES as IMPORT_BATCH_BYTES
from ingest.store.db import ROW_GROUP_SIZE as IMPORT_BATCH

LOG_LEVELS = ("debug", "info", "warning", "error")
# ``import`` maps in this many processes by default: a second one took an import of 100,000
# events from 12,300 to 17,300 events a second on two cores (the CPU per event the same, some
# 45 MB more memory); more than the machine's cores only take turns. ``remap`` keeps one: a
# second took 103,590 rows from 11.3 to 7.2 s in one measure and gained nothing in another
# (tests.perf.bulk), for 250 MB more
BULK_MAPPERS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _add_mappers(p: argparse.ArgumentParser, default: int, why: str) -> None:
    """``--mappers``: how many mapping processes take the pages (or batches) in turn."""
    p.add_argument(
        "--mappers",
        type=whole(1, 16),
        default=default,
        help=f"mapping processes taking the pages in turn, each on a core of its own (default: "
        f"{default}; {why})",
    )


def _add_fetch_mappers(p: argparse.ArgumentParser) -> None:
    """``--mappers`` of the commands that fetch from Okta (``poll``, ``backfill``)."""
    _add_mappers(p, 1, "two on two idle cores catch up about a fifth faster, for 60 MB more")


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number from ``low`` to ``high``: anything else
    (a fraction, 10**30, a negative count) is refused in argparse's one usage line."""

    def convert(text: str) -> int:
        value = text.strip()
        digits = value[1:] if value[:1] in "+-" else value
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}")
        if len(digits) > 18 or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value[:40]}")
        return int(value)

    convert.__name__ = "number"  # argparse names the type in its messages
    return convert


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, ndjson otherwise)",
    )


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, help=f"DuckDB file (default: {DEFAULT_DB})")
    p.add_argument(
        "--config", type=Path, help="config file; its [storage] (a path or a lake) is the store"
    )
    _add_store(p)


STORE_HELP = (
    "the store: a DuckDB file, or a lake's catalog (ducklake: before it is optional): "
    "'postgres:dbname=D host=H user=U', sqlite:PATH or duckdb:PATH; a command that only "
    "reads attaches a lake read-only, with no daemon needed. Its PostgreSQL password comes "
    "from --config's "
    "password_env/password_file for that lake, else from libpq's own PGPASSWORD or ~/.pgpass"
)


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="SPEC", help=STORE_HELP)


def _add_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        help="stop the query after this long, e.g. 30s or 5m (default: [query] timeout of "
        "--config, else 60s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oktaduck",
        usage="oktaduck [--log-level LEVEL] COMMAND [options]",
        formatter_class=HelpFormatter,
        description="Keep a complete, exact copy of Okta System Logs in DuckDB, query it with "
        "SQL and named feeds,\nand export it to files, syslog/RELP or HTTP collectors as raw, "
        "normalized, ECS or OCSF events.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("OKTADUCK_LOG_LEVEL", "warning"),
        choices=LOG_LEVELS,
        help="structured JSON logs on stderr at this level (default: warning; env "
        "OKTADUCK_LOG_LEVEL)",
    )
    # the commands are listed, grouped, in the epilog (commands_overview)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS, prog="oktaduck"
    )

    p = command(
        sub,
        "poll",
        "fetch an org's new events once, until caught up, then exit",
        "Run one poll cycle: follow Okta's System Log `next` links from the stored cursor (the "
        "first time, from --lookback ago) and commit the events to the DuckDB file until the org "
        "has nothing newer, then print a summary and exit. Give either --org, for one org whose "
        "API token is read from the environment variable --token-env names (never from the "
        "command line), or --config, for every source of a config file (or the one --source "
        "names; a failing source does not stop the others). Run it again to continue where it "
        "stopped, with no gap and no duplicate. On a terminal a progress line shows the events, "
        "pages, rate-limit waits, events/s and the newest event stored. Exit status: 0 caught "
        "up, 130 stopped by SIGINT or SIGTERM, non-zero on an error.",
        (
            "# one org; the API token is in OKTA_API_TOKEN",
            "oktaduck poll --org https://acme.okta.com --db state/acme.duckdb",
            "# the first time, a week of history instead of a day",
            "oktaduck poll --org https://acme.okta.com --lookback 7d",
            "# one source of a config file",
            "oktaduck poll --config oktaduck.toml --source acme",
        ),
    )
    p.add_argument("--org", help="org URL, e.g. https://acme.okta.com (no config file needed)")
    p.add_argument("--config", type=Path, help="poll every source of this config file (TOML)")
    p.add_argument(
        "--source",
        help="with --config: only this source; with --org: the name to store its events "
        "under (default: the org's host name)",
    )
    p.add_argument(
        "--db",
        type=Path,
        help="DuckDB file, even when the config names a lake (default: the config's "
        f"storage.lake or storage.path, else {DEFAULT_DB})",
    )
    p.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        help="with --org: the environment variable holding the API token",
    )
    p.add_argument(
        "--lookback",
        default="24h",
        help="with --org, on the first poll of the database: how far back to start, "
        "e.g. 24h or 7d (at most 90d)",
    )
    p.add_argument(
        "--page-limit",
        type=whole(1, 1000),
        default=1000,
        help="with --org: events per request, from 1 to 1000",
    )
    p.add_argument(
        "--group-events",
        type=whole(1, MAX_GROUP_EVENTS),
        default=2000,
        help="with --org: events committed per transaction while catching up",
    )
    _add_fetch_mappers(p)
    p.set_defaults(func=collect.cmd_poll)

    p = command(
        sub,
        "run",
        "the daemon: poll every source and feed every sink on schedule",
        "Run the daemon: each source of the config file polls on its own schedule, each sink "
        "exports on its own, retention and the completeness check run in the background, and a "
        "local HTTP API serves health, metrics and the queries that `sql`, `feed`, `status` and "
        "`export` send while the daemon holds the database. SIGTERM or SIGINT finish the group "
        "being committed and exit 0; SIGHUP reads the config file again. Run one daemon per "
        "database: a second one is refused. Check the file first with `oktaduck config check`.",
        (
            "oktaduck run --config oktaduck.toml",
            "# the same config, another database file",
            "oktaduck --log-level info run --config oktaduck.toml --db /var/lib/oktaduck/o.duckdb",
        ),
    )
    p.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    p.add_argument("--db", type=Path, help="DuckDB file (default: the config's storage.path)")
    p.set_defaults(func=collect.cmd_run)

    p = command(
        sub,
        "backfill",
        "fill a source's history from --since, with progress",
        "Fill one configured source's history. On a source with no cursor yet this is its first "
        "poll cycle started further back: when it finishes, polling (and the daemon) continues "
        "from exactly there, with no gap and no duplicate. On a source that already has a "
        "cursor it reads the history before the oldest stored event with bounded queries and "
        "leaves the cursor alone. A progress line shows how far it got (percent, position, "
        "pages, events, rate-limit waits, ETA): redrawn on a terminal, one line per update "
        "elsewhere. It can be interrupted (exit 130) and run again.",
        (
            "# all that Okta keeps",
            "oktaduck backfill --config oktaduck.toml --source acme",
            "oktaduck backfill --config oktaduck.toml --source acme --since 2026-11-01T00:00:00Z",
            "oktaduck backfill --config oktaduck.toml --source acme --since 14d",
        ),
    )
    p.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    p.add_argument("--source", required=True, help="the configured source to backfill")
    p.add_argument(
        "--since",
        default="90d",
        help="how far back: a duration such as 14d, or an RFC 3339 time; at most 90d, "
        "all that Okta keeps",
    )
    p.add_argument(
        "--db",
        type=Path,
        help="DuckDB file, even when the config names a lake (default: the config's "
        "storage.lake or storage.path)",
    )
    _add_fetch_mappers(p)
    p.set_defaults(func=collect.cmd_backfill)

    p = command(
        sub,
        "config",
        "check a config file",
        "Work with config files. `oktaduck config check --help` describes the one action.",
        (
            "oktaduck config check --config oktaduck.toml",
            "oktaduck config check --config oktaduck.toml --strict",
        ),
    )
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = command(
        csub,
        "check",
        "validate a config file without the network",
        "Read a config file as `run` and `poll` would, without any network access: every key "
        "and value, each source's credentials, each sink, the API and the mapping. A file that "
        "cannot be used fails with one line that names the file and says what is wrong. "
        "Warnings (one line each, naming the key) cover secrets that are missing or in files "
        "others can read and "
        "every setting that weakens transport security; they do not fail the check unless "
        "--require-secrets or --strict asks. Prints `OK` with the number of sources and sinks "
        "and the store. With --connect, a configured lake is attached read-only as well.",
        (
            "oktaduck config check --config oktaduck.toml",
            "# in a deployment pipeline: every secret present, no weakened transport",
            "oktaduck config check --config oktaduck.toml --require-secrets --strict",
        ),
    )
    q.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    q.add_argument(
        "--require-secrets",
        action="store_true",
        help="fail (exit 2) when a referenced secret (environment variable or file) is missing",
    )
    q.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2) on any warning: missing secrets, secret files others can read, "
        "and settings that weaken transport security (verify = false, allow_insecure, "
        "syslog without TLS to another host, ...)",
    )
    q.add_argument(
        "--connect",
        action="store_true",
        help="also attach the configured lake read-only, as a reader would, and report its "
        "data files and snapshots; exit 2 when it cannot be reached (the check's only "
        "network access)",
    )
    q.set_defaults(func=collect.cmd_config_check)

    p = command(
        sub,
        "sql",
        "run a read-only SQL query against the store",
        "Run one SQL query (DuckDB's dialect) in a read-only transaction on the database file and "
        "print the rows. While the daemon holds the file, the query goes through its local API "
        "and the output is the same. The query is stopped after --timeout and may not read or "
        "write files or attach other databases. The main tables: events (one row per event, "
        "with its JSON in `raw`), rejects (events that could not be mapped) and cursors.",
        (
            'oktaduck sql "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC"',
            "oktaduck sql --db state/acme.duckdb --format csv "
            '"SELECT * FROM events WHERE published > now() - INTERVAL 1 HOUR"',
            'oktaduck sql --format json --timeout 5m "SELECT actor_login, count(*) FROM events '
            'GROUP BY 1"',
            "oktaduck sql --store 'postgres:dbname=oktaduck host=db.internal user=reader "
            'sslmode=verify-full\' "SELECT count(*) FROM events"',
        ),
    )
    p.add_argument("query", help='SQL, e.g. "SELECT event_type, count(*) FROM events GROUP BY 1"')
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=query.cmd_sql)

    p = command(
        sub,
        "feed",
        "list the feeds (named queries), or run one",
        "Without a NAME, list the feeds: named, parameterized queries over the stored events, "
        "from all System Log events (`logs`) to detections such as brute-force or mfa-fatigue. "
        "With a NAME, run that feed over [--since, --until) and print its rows. Every feed takes "
        "the options below; a feed's own parameters are given as --PARAM VALUE, and "
        "--help-params lists them. While the daemon holds the database the feed runs through "
        "its local API, with the same output.",
        (
            "oktaduck feed",
            "oktaduck feed failed-logins --since 24h --sort descending",
            "oktaduck feed brute-force --since 7d --threshold 20 --window 10m",
            "oktaduck feed brute-force --help-params",
        ),
    )
    p.add_argument("name", nargs="?", help="feed name (omit to list the feeds)")
    p.add_argument("--since", help="start: RFC 3339 or relative (24h, 7d) (default: 7d)")
    p.add_argument("--until", help="end (exclusive): RFC 3339 or relative (default: now)")
    p.add_argument("--sort", help="ascending or descending by time (default: ascending)")
    p.add_argument(
        "--limit",
        type=whole(0, MAX_INT_PARAM),
        help="at most this many rows, 0 for all (default: 100)",
    )
    p.add_argument("--source", help="only this configured source (org) (default: all)")
    p.add_argument(
        "--help-params", action="store_true", help="describe the feed's parameters and exit"
    )
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=query.cmd_feed)

    p = command(
        sub,
        "export",
        "export stored events: one-off to a destination, or to a configured sink",
        "Send stored events somewhere, as NDJSON in the chosen format. With --to, a one-off "
        "export of the events published in [--since, --until), optionally narrowed by an Okta "
        "filter expression or keywords; a file: destination is written whole and then renamed "
        "into place. With --config and --sink, deliver what that sink has not received yet and "
        "move its cursor, exactly as the daemon does; with --since or --until as well, re-send "
        "that range to the sink without moving its cursor. While the daemon holds the database, "
        "the events are read through its local API.",
        (
            "oktaduck export --to file:failed.ndjson --format ecs --since 24h "
            "--filter 'outcome.result eq \"FAILURE\"'",
            "oktaduck export --to stdout --since 1h --q admin",
            "oktaduck export --config oktaduck.toml --sink splunk",
            "oktaduck export --config oktaduck.toml --sink splunk --since 2026-11-01T00:00:00Z",
        ),
    )
    p.add_argument(
        "--to", help="file:PATH, stdout, http(s)://URL, syslog://HOST:PORT or relp://HOST:PORT"
    )
    p.add_argument("--sink", help="a sink of --config (needs --config)")
    p.add_argument(
        "--format",
        choices=("raw", "normalized", "ecs", "ocsf"),
        help="event format (default: raw with --to, the sink's with --sink)",
    )
    p.add_argument("--since", help="published from: RFC 3339 or relative (default: 7d)")
    p.add_argument("--until", help="published before: RFC 3339 or relative (default: now)")
    p.add_argument("--filter", help="only events matching this Okta System Log filter expression")
    p.add_argument("--q", help="only events containing all these keywords")
    _add_db(p)
    p.set_defaults(func=query.cmd_export)

    p = command(
        sub,
        "status",
        "per source: cursor, events stored, lag, rejects; per sink: lag",
        "Show how each source and sink stands: per source the events stored, pages, duplicates "
        "skipped, open rejects, uuid conflicts, the newest event, the cursor's age and lag; per "
        "sink the events it is behind, its lag and last error (the sinks only in table format). "
        "Works on the database file, or through the daemon's API while it runs. In table "
        "format it first names the store; for a lake, with its data files, their size and the "
        "snapshots its catalog keeps.",
        (
            "oktaduck status",
            "oktaduck status --db state/acme.duckdb",
            "oktaduck status --config oktaduck.toml --format json",
            "oktaduck status --store sqlite:/srv/lake/catalog.sqlite",
        ),
    )
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=query.cmd_status)

    p = command(
        sub,
        "simulate",
        "serve a simulated Okta org on 127.0.0.1",
        "Serve a simulated Okta org over HTTP: the System Log API with Okta's paging, filters, "
        "rate-limit headers and 429 answers, seeded with --events events over the last --hours, "
        "optionally adding more every minute. Point `oktaduck poll --org` (or any tool) at it to "
        "try things without a real org. It accepts the token in OKTA_API_TOKEN when that is set, "
        "else the demo token it prints at start; it runs until Ctrl-C.",
        (
            "oktaduck simulate --port 8089 --events 20000",
            "# a live org: new events every minute, a tight rate limit",
            "oktaduck simulate --trickle 120 --rate-limit 20 --window-seconds 60",
        ),
    )
    simulate_options.add_arguments(p)
    p.set_defaults(func=demo.cmd_simulate)

    p = command(
        sub,
        "map",
        "map Okta events from stdin to normalized, ECS or OCSF NDJSON on stdout",
        "Read Okta System Log events from stdin (NDJSON, or one JSON array as the API returns "
        "it) and write each one mapped to the chosen format as NDJSON on stdout, with the "
        "shipped mapping or your own file. An event that cannot be mapped is reported on stderr "
        "with the reason and does not stop the stream; a count of mapped, rejected and "
        "unreadable events ends the run. No database and no network.",
        (
            "oktaduck map --format ecs < events.ndjson > ecs.ndjson",
            "oktaduck map --mapping my-ocsf.toml --strict < events.json",
        ),
    )
    p.add_argument(
        "--format",
        choices=("normalized", "ecs", "ocsf"),
        default="normalized",
        help="the shipped mapping to apply",
    )
    p.add_argument("--mapping", type=Path, help="use this mapping file instead of --format's")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any event was rejected or unreadable"
    )
    p.set_defaults(func=mappings.cmd_map)

    p = command(
        sub,
        "mappings",
        "check mapping files and measure their coverage",
        "Work with the mapping files that turn Okta events into columns, ECS and OCSF: "
        "`check` validates them, `coverage` measures what they classify and what they leave "
        "unread. `oktaduck mappings ACTION --help` describes each.",
        (
            "oktaduck mappings check",
            "oktaduck mappings coverage --db state/acme.duckdb",
        ),
    )
    msub = p.add_subparsers(dest="mappings_command", required=True, metavar="ACTION")
    q = command(
        msub,
        "check",
        "validate every mapping file (no network, no database)",
        "Load and validate every mapping file (*.toml) under a folder, as the poller and the "
        "exporter would load them. Prints each file with its mapping name, output, fields and "
        "version; "
        "on a problem prints one line per problem and exits 1. Run it after editing a mapping, "
        "before `oktaduck remap`.",
        (
            "oktaduck mappings check",
            "oktaduck mappings check --dir my-mappings/",
        ),
    )
    q.add_argument(
        "--dir", type=Path, help="mapping folder (default: the mappings shipped with oktaduck)"
    )
    q.set_defaults(func=mappings.cmd_mappings_check)
    q = command(
        msub,
        "coverage",
        "catalog event types classified, and raw fields no mapping reads",
        "Measure the shipped mappings: how many event types of Okta's catalog get a specific "
        "ECS category and OCSF class, and, from the most recent stored events, which raw "
        "fields no mapping reads (with how many events carry each). An installed copy carries "
        "no catalog: pass --catalog, or it reports the raw fields only.",
        (
            "oktaduck mappings coverage --db state/acme.duckdb",
            "oktaduck mappings coverage --catalog event-types.json --sample 10000",
        ),
    )
    q.add_argument(
        "--catalog",
        type=Path,
        help="Okta event-type catalog, event-types.json (default: the checkout's copy, if any)",
    )
    q.add_argument(
        "--db",
        type=Path,
        help=f"database whose events to inspect (default: {DEFAULT_DB}, when it exists)",
    )
    _add_store(q)
    q.add_argument(
        "--sample", type=whole(1, 10**9), default=100_000, help="most recent events to read"
    )
    q.set_defaults(func=mappings.cmd_mappings_coverage)

    p = command(
        sub,
        "remap",
        "re-apply the current mapping to stored events and rejects",
        "After a mapping changes, bring the stored rows up to date: every event mapped by "
        "another mapping version is mapped again from its raw JSON (an event that now fails "
        "moves to rejects), and every rejected event is tried again. Works in batches, one "
        "transaction each, with a progress line per batch; safe to interrupt and run again. "
        "Cursors are not touched. The mapping must make columns (normalized); ECS and OCSF are "
        "for export. Needs the database to itself: stop the daemon first.",
        (
            "oktaduck remap --db state/acme.duckdb",
            "oktaduck remap --config oktaduck.toml --mapping mappings/okta/normalized.toml",
        ),
    )
    _add_db(p)
    p.add_argument(
        "--mapping", type=Path, help="normalized mapping file (default: the shipped one)"
    )
    p.add_argument(
        "--batch", type=whole(1, MAX_GROUP_EVENTS), default=5000, help="events per transaction"
    )
    _add_mappers(
        p, 1, "with more than a batch to do, the next batches are mapped while one is written"
    )
    p.set_defaults(func=mappings.cmd_remap)

    p = command(
        sub,
        "import",
        "bring archives of Okta events (NDJSON or JSON arrays) into the store",
        "Store the events of archive files: NDJSON (an event, or an array of events, per "
        "line) or JSON arrays, plain, gzip or zstd (known by their first bytes), given as "
        "files, directories (read recursively, in name order: files named *.json, *.ndjson, "
        "*.jsonl, *.log, *.txt, optionally .gz or .zst) or globs (quoted or not); - reads "
        "stdin. Each event is kept byte for byte in raw, deduplicated by uuid against "
        "everything stored (polled or imported), and mapped like a polled one; what is not "
        "an event goes to rejects with its file and line, and the import goes on. A file's "
        "progress commits with its events, so an interrupted import continues where it "
        "stopped, and a file imported before is skipped (--again imports it once more). "
        "No poll cursor is touched. A DuckDB file must be free (stop the daemon first); a "
        "lake takes an import beside its daemons, under a source name of its own. See "
        "docs/import.md.",
        (
            "oktaduck import --db state/acme.duckdb archive/2024/",
            "oktaduck import --config oktaduck.toml --source acme-archive 'dumps/*.ndjson.gz'",
            "oktaduck import --db state/acme.duckdb --unwrap eventbridge s3-export/",
            "zcat old.json.gz | oktaduck import --db state/acme.duckdb -",
        ),
    )
    _add_db(p)
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files, directories or globs; - for stdin"
    )
    p.add_argument(
        "--source",
        default="import",
        help="the source name the events are stored under (default: import); give the "
        "configured source's own name to have them counted as its events",
    )
    p.add_argument(
        "--unwrap",
        default="auto",
        metavar="WRAPPER",
        help="the envelope each event is in: auto (default: chosen per file from its first "
        "record), none, eventbridge ($.detail), hec ($.event), eventhook "
        "($.data.events[*]), or a path like $.detail or $.records[*].event",
    )
    p.add_argument(
        "--batch",
        type=whole(1, MAX_GROUP_EVENTS),
        default=IMPORT_BATCH,
        help=f"events per transaction (default: {IMPORT_BATCH}; fewer when they pass "
        f"{IMPORT_BATCH_BYTES >> 20} MiB)",
    )
    p.add_argument(
        "--max-event-bytes",
        type=whole(1024, 1 << 30),
        default=16 << 20,
        help="a line or array element longer than this goes to rejects, its first 64 KiB "
        "kept (default: 16777216)",
    )
    p.add_argument(
        "--again", action="store_true", help="import files recorded as imported once more"
    )
    _add_mappers(p, BULK_MAPPERS, "as many as this machine has cores, at most 2")
    p.add_argument(
        "--data",
        help="data path of a new lake named by --store (a folder or s3://...); a lake made "
        "before knows its own",
    )
    p.set_defaults(func=importing.cmd_import)

    p = command(
        sub,
        "store",
        "move a store between a DuckDB file and a lake",
        "Work with the store as a whole: `copy` moves everything from a DuckDB file into a "
        "lake, or back. `oktaduck store ACTION --help` describes each.",
        (
            "oktaduck store copy --from state/oktaduck.duckdb --config oktaduck.toml",
            "oktaduck store copy --config oktaduck.toml --to state/oktaduck.duckdb",
        ),
    )
    ssub = p.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    q = command(
        ssub,
        "copy",
        "copy events, cursors, rejects and sink cursors into a new store",
        "Copy a DuckDB file into a new lake, or a lake into a new DuckDB file: the events (every "
        "column, in ingest order, a transaction per batch), each source's cursor, the rejects, "
        "the uuid conflicts and the export cursors (counting the same events on the lake, "
        "which numbers its events itself). An interrupted copy continues where it stopped "
        "when run again; a target holding anything else is refused. At the end both sides "
        "are compared: rows of every table, and per day the events' uuids and raw JSON. "
        "Stop the daemons writing the source first. A SPEC is a file's path or a lake's "
        "catalog (postgres:..., sqlite:PATH, duckdb:PATH); --config stands for the side "
        "left out and gives a lake its password and S3 keys.",
        (
            "oktaduck store copy --from state/oktaduck.duckdb --config oktaduck.toml",
            "oktaduck store copy --config oktaduck.toml --to state/copy.duckdb",
            "oktaduck store copy --from state/oktaduck.duckdb --to duckdb:lake/catalog.duckdb "
            "--data lake/data",
        ),
    )
    q.add_argument("--from", dest="source", metavar="SPEC", help="the store to copy from")
    q.add_argument("--to", dest="target", metavar="SPEC", help="the new store to copy into")
    q.add_argument(
        "--config", type=Path, help="config file: its store stands for --from or --to left out"
    )
    q.add_argument(
        "--data", help="data path of a new lake named by its catalog (a folder or s3://...)"
    )
    q.add_argument(
        "--batch",
        type=whole(1, 10_000_000),
        default=50_000,
        help="events per transaction",
    )
    q.set_defaults(func=store.cmd_store_copy)

    p = command(
        sub,
        "demo",
        "ingest from a built-in simulated org and print a summary",
        "The quickest look at oktaduck: start a simulated Okta org in this process, poll it into "
        "a fresh database (late events and a burst of failed sign-ins included) and print what "
        "was stored. No account, token or network beyond 127.0.0.1 needed. The database "
        "is recreated each time; explore it afterwards with `oktaduck sql --db ...`.",
        (
            "oktaduck demo",
            "oktaduck demo --db /tmp/demo.duckdb --events 50000",
        ),
    )
    p.add_argument("--db", type=Path, default=Path("state/demo.duckdb"), help="demo database")
    p.add_argument(
        "--events",
        type=whole(1, 1_000_000),
        default=3000,
        help="events the simulated org holds, up to 1000000",
    )
    p.set_defaults(func=demo.cmd_demo)

    parser.epilog = (
        commands_overview(parser)
        + "\n\nstart with `oktaduck demo`; `oktaduck COMMAND --help` describes each command."
        + "\n\nexamples:\n  oktaduck demo\n"
        + "  oktaduck poll --org https://acme.okta.com --db state/acme.duckdb\n"
        + '  oktaduck sql --db state/acme.duckdb "SELECT count(*) FROM events"'
    )
    return parser
