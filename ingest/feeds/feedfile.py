"""Named feeds: ``.sql`` files shipped with the package, each with a header.

A feed file starts with comment lines that describe it::

    -- title: Failed sign-ins
    -- description: Sign-in attempts that did not succeed ...
    -- param: user string | only this user's login (actor.alternateId), case-insensitive
    -- param: threshold int = 10 | failures that make a burst
    -- order: published
    -- late: json_extract(e.raw, '$.debugContext.debugData') AS debug_data

followed by one SELECT that uses named parameters only (``$user``). Every feed also takes
the standard parameters ``since``, ``until``, ``sort``, ``limit`` and ``source`` (the body
uses ``$since``/``$until``/``$source`` in its WHERE clause); the runner orders the rows by the
``order`` column and applies the limit, so a feed never repeats that part.

``late`` columns are computed only for the rows that survive the order and limit: the body
selects ``ingest_seq AS _seq`` from ``events`` and each ``late`` expression reads that row as
``e``. Parsing JSON out of ``raw`` costs a few microseconds an event; done late it is paid
for 100 rows instead of every row in a 30-day window.

What many feeds share is written once, in fragment files next to the feeds (``_name.sql``:
a comment header, then SQL text), and a feed uses one with ``{{ name }}`` on a line of its
body, with arguments where the fragment has ``{{ arg }}`` holes::

    WHERE {{ in_window }} AND event_type = 'user.session.start'
    {{ sliding_window from=failures key=login count=count(*) at_least=$threshold }}

(a value with spaces is quoted: ``count="count(DISTINCT login)"``).

``_in_window.sql`` is the since/until/source condition, ``_client_columns.sql`` the client,
place and network columns, ``_event_columns.sql`` the actor, client and message columns that
end the SELECT of most event feeds (a fragment may use another that takes no arguments, as
this one uses ``{{ client_columns }}``), ``_sliding_window.sql`` the windowed counting and
merging of the detections, and ``_mfa_factor_changes.sql`` and ``_api_token_changes.sql`` the
whole of two pairs of feeds that differ only in the event types they read. The text is put
together here, when the feed is loaded, and not kept as DuckDB macros or views in the database
file: feeds run on read-only connections, inside read-only
transactions, on files written by any earlier version, where a macro the schema did not yet
create could not be added; composed SQL runs on every one of them and plans exactly as if it
were written out (``Feed.body`` holds it written out).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from ingest.base.errors import ConfigError
from ingest.base.timeparse import parse_duration, parse_time, shown
from ingest.filters.okta_filter import search_to_sql

PARAM_TYPES = ("string", "int", "float", "bool", "timestamp", "duration")
_HEADER = re.compile(r"^--\s*(title|description|param|order|late):\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s+(\w+)(?:\s*=\s*([^|]*?))?\s*\|\s*(.+)$")
_USE = re.compile(r"\{\{\s*(\w+)((?:\s+\w+=(?:\"[^\"]*\"|[^\s\"}]+))*)\s*\}\}")
_ARG = re.compile(r"(\w+)=(?:\"([^\"]*)\"|([^\s\"}]+))")
_HOLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SEARCH_PARAMS = ("filter", "q")
# what {{ in_window }} puts in a body: a feed with late columns must hold it, and the late
# join repeats it, so that a lake (whose events view cannot prune by ingest_seq) reads only
# the window's files rather than every event's raw text
WINDOW = "published >= $since AND published < $until"
SORTS = {"asc": "ASC", "ascending": "ASC", "desc": "DESC", "descending": "DESC"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    doc: str


STANDARD: tuple[Param, ...] = (
    Param("since", "timestamp", "7d", "start of the window: RFC 3339 or relative (24h, 7d)"),
    Param("until", "timestamp", "now", "end of the window (exclusive)"),
    Param("sort", "string", "ascending", "ascending or descending (ASCENDING/DESCENDING too)"),
    Param("limit", "int", "100", "at most this many rows; 0 for all"),
    Param("source", "string", None, "only events of this configured source (org)"),
)


@dataclass(frozen=True)
class Feed:
    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    order: str
    body: str
    late: tuple[str, ...] = ()

    @property
    def all_params(self) -> tuple[Param, ...]:
        return STANDARD + self.params

    def param(self, name: str) -> Param:
        for p in self.all_params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.all_params)
        raise ConfigError(f"feed {self.name}: unknown parameter {name!r} (known: {known})")


def parse_feed(name: str, text: str, fragments: dict[str, str] | None = None) -> Feed:
    """Parse one feed file; a malformed header names the feed and the line.

    ``{{ fragment }}`` uses in the body are replaced by the fragment's text (the shipped
    fragments unless ``fragments`` is given); an unknown fragment or a missing or extra
    argument names the feed and the line.
    """
    if fragments is None:
        fragments = load_fragments()
    meta: dict[str, str] = {}
    params: list[Param] = []
    late: list[str] = []
    body_lines: list[str] = []
    in_header = True
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line.strip()) if in_header else None
        if match:
            key, value = match.groups()
            if key == "param":
                pm = _PARAM.match(value)
                if not pm or pm.group(2) not in PARAM_TYPES:
                    raise ConfigError(f"feed {name} line {number}: bad param line: {value!r}")
                params.append(Param(pm.group(1), pm.group(2), pm.group(3) or None, pm.group(4)))
            elif key == "late":
                late.append(value.strip())
            elif key == "description" and "description" in meta:
                meta[key] += " " + value.strip()
            else:
                meta[key] = value.strip()
            continue
        if in_header and line.strip().startswith("--") and "description" in meta:
            meta["description"] += " " + line.strip()[2:].strip()
            continue
        in_header = False
        body_lines.append(_compose(name, number, line, fragments))
    for key in ("title", "description"):
        if key not in meta:
            raise ConfigError(f"feed {name}: the header has no '-- {key}:' line")
    body = "\n".join(body_lines).strip().rstrip(";")
    searchable = any(p.name in SEARCH_PARAMS for p in params)
    if (late or searchable) and "_seq" not in body:
        raise ConfigError(
            f"feed {name}: late columns and filter/q need the body to select ingest_seq AS _seq"
        )
    if late and WINDOW not in body:
        raise ConfigError(f"feed {name}: late columns need the body's rows in {{{{ in_window }}}}")
    return Feed(
        name,
        meta["title"],
        meta["description"],
        tuple(params),
        meta.get("order", "published"),
        body,
        tuple(late),
    )


def _compose(feed: str, number: int, line: str, fragments: dict[str, str]) -> str:
    """One body line with its ``{{ fragment arg=value }}`` uses written out."""

    def use(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fragments:
            known = ", ".join(sorted(fragments))
            raise ConfigError(f"feed {feed} line {number}: no fragment {name!r} (known: {known})")
        args = {m[0]: m[1] or m[2] for m in _ARG.findall(match.group(2))}
        holes = set(_HOLE.findall(fragments[name]))
        if set(args) != holes:
            wanted = ", ".join(sorted(holes)) or "none"
            raise ConfigError(
                f"feed {feed} line {number}: fragment {name} takes the arguments {wanted}"
            )
        return _HOLE.sub(lambda hole: args[hole.group(1)], fragments[name])

    if "{{" not in line:
        return line
    composed = _USE.sub(use, line)
    if "{{" in composed:
        raise ConfigError(f"feed {feed} line {number}: a malformed {{{{ fragment }}}} use")
    return composed


def load_fragments() -> dict[str, str]:
    """Every shipped fragment (``_name.sql``) by name, without its comment header."""
    fragments = {}
    for entry in resources.files("ingest.feeds").iterdir():
        if entry.name.startswith("_") and entry.name.endswith(".sql"):
            lines = entry.read_text(encoding="utf-8").splitlines()
            while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
                lines.pop(0)
            fragments[entry.name[1 : -len(".sql")]] = "\n".join(lines).strip()
    return _nested(fragments)


def _nested(fragments: dict[str, str]) -> dict[str, str]:
    """Fragments with their uses of argument-less fragments (``{{ client_columns }}``) written out.

    A fragment may build on others: a hole named like a fragment that, once written out, has
    no holes of its own is that fragment; every other hole stays an argument.
    """

    def written_out(text: str, plain: dict[str, str]) -> str:
        return _HOLE.sub(lambda hole: plain.get(hole.group(1), hole.group(0)), text)

    for _ in fragments:
        plain = {name: text for name, text in fragments.items() if not _HOLE.search(text)}
        nested = {name: written_out(text, plain) for name, text in fragments.items()}
        if nested == fragments:
            break
        fragments = nested
    return fragments


def load_feeds() -> dict[str, Feed]:
    """Every shipped feed by name (the file name without ``.sql``; ``_name.sql`` are fragments)."""
    fragments = load_fragments()
    feeds = {}
    for entry in sorted(resources.files("ingest.feeds").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql") and not entry.name.startswith("_"):
            name = entry.name[: -len(".sql")]
            feeds[name] = parse_feed(name, entry.read_text(encoding="utf-8"), fragments)
    return feeds


def get_feed(name: str) -> Feed:
    feeds = load_feeds()
    if name not in feeds:
        raise ConfigError(f"no feed named {name!r}; `oktaduck feed` lists them")
    return feeds[name]


MAX_INT_PARAM = 1_000_000_000  # int parameters are counts (thresholds, limits)
MAX_TEXT_PARAM = 10_000  # characters of a string parameter


def _convert(feed: Feed, param: Param, text: Any, now: datetime) -> Any:
    key = f"feed {feed.name}: {param.name}"
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text).lower() if isinstance(text, bool) else str(text)
    if len(text) > MAX_TEXT_PARAM:
        raise ConfigError(f"{key}: longer than {MAX_TEXT_PARAM} characters")
    if "\x00" in text or _unencodable(text):
        raise ConfigError(f"{key}: contains a NUL character or bytes that are not UTF-8")
    if param.type == "int":
        digits = text.strip()
        if not _INT.fullmatch(digits) or not 0 <= int(digits) <= MAX_INT_PARAM:
            raise ConfigError(
                f"{key}: expected a whole number from 0 to {MAX_INT_PARAM}, got {shown(text)}"
            )
        return int(digits)
    if param.type == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a number, got {shown(text)}")
        return number
    if param.type == "bool":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{key}: expected true or false, got {shown(text)}")
        return text.lower() in ("true", "1", "yes")
    if param.type == "timestamp":
        return parse_time(text, now, key)
    if param.type == "duration":
        return parse_duration(text, key)
    return text


_INT = re.compile(r"\+?[0-9]{1,12}")


def _unencodable(text: str) -> bool:
    """Lone surrogates: what undecodable bytes of a command-line argument become."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass(frozen=True)
class BoundFeed:
    """A feed with its parameters checked and converted, ready to run."""

    feed: Feed
    sql: str
    params: dict[str, Any]


def bind(feed: Feed, given: dict[str, Any], now: datetime) -> BoundFeed:
    """Check and convert the parameters; build the SQL (body + order + limit)."""
    for name in given:
        feed.param(name)
    values: dict[str, Any] = {}
    for param in feed.all_params:
        raw = given.get(param.name)
        values[param.name] = _convert(feed, param, raw if raw is not None else param.default, now)
    sort = SORTS.get(str(values.pop("sort")).lower())
    if sort is None:
        raise ConfigError(f"feed {feed.name}: sort must be ascending or descending")
    limit = values.pop("limit")
    if limit is None or limit < 0:
        raise ConfigError(f"feed {feed.name}: limit must be 0 (all) or more")
    if values["since"] >= values["until"]:
        raise ConfigError(f"feed {feed.name}: since must be before until")
    used = {m for m in re.findall(r"\$(\w+)", feed.body)} | {"since", "until"}
    params = {k: v for k, v in values.items() if k in used and k not in SEARCH_PARAMS}
    where, search_params = _search(values)
    params.update(search_params)
    columns = [column.strip() for column in feed.order.split(",")]
    order = ", ".join(f'feed."{column}" {sort}' for column in columns)
    sql = f"SELECT * FROM (\n{feed.body}\n) AS feed{where} ORDER BY {order}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    if feed.late:
        sql = (
            f"SELECT feed.* EXCLUDE (_seq), {', '.join(feed.late)} "
            f"FROM (\n{sql}\n) AS feed JOIN events e "
            "ON e.ingest_seq = feed._seq AND e.published >= $since AND e.published < $until "
            f"ORDER BY {order}"
        )
    elif "_seq" in feed.body:
        sql = f"SELECT * EXCLUDE (_seq) FROM (\n{sql}\n) AS feed"
    return BoundFeed(feed, sql, params)


def _search(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Okta ``filter`` and ``q`` as a condition on the feed's rows (by ingest_seq)."""
    condition = search_to_sql(values.get("filter"), values.get("q"))
    if condition is None:
        return "", {}
    return (
        " WHERE feed._seq IN (SELECT ingest_seq FROM events WHERE published >= $since "
        f"AND published < $until AND {condition.sql})",
        condition.params,
    )
