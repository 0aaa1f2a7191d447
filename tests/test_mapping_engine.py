"""The engine's behaviour: each field key, batches, Arrow, documents, versions, discovery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import nanoarrow as na
import pytest

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping, default_mapping_dir, load_mapping
from ingest.mapping.categories import categories, main, render
from ingest.mapping.paths import compile_path
from tests.helpers.catalog import CATALOG

REPO = Path(__file__).resolve().parents[1]
NORMALIZED = REPO / "mappings" / "okta" / "normalized.toml"


def _mapping(tmp_path: Path, fields: str, head: str = "", lookups: str = "") -> CompiledMapping:
    text = f'[mapping]\nname = "t"\n{head}\n'
    if lookups:
        text += f"[lookups]\n{lookups}\n"
    path = tmp_path / "m.toml"
    path.write_text(text + fields, encoding="utf-8")
    return load_mapping(path)


def test_plain_paths_and_types(tmp_path: Path) -> None:
    """path + type pull and coerce values; missing values are NULL without an issue."""
    mapping = _mapping(
        tmp_path,
        '[fields.id]\npath = "$.a.b[1].c"\ntype = "int"\n'
        '[fields.at]\npath = "$.t"\ntype = "timestamp"\n'
        '[fields.gone]\npath = "$.x.y.z.w.v"\n',
    )
    row, issues = mapping.apply({"a": {"b": [{}, {"c": "42"}]}, "t": "2024-01-02T03:04:05.006Z"})
    assert row == {"id": 42, "at": datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), "gone": None}
    assert issues == []


def test_invalid_optional_value_is_null_with_an_issue(tmp_path: Path) -> None:
    """A value that does not fit an optional field is NULL and the event keeps an issue."""
    mapping = _mapping(tmp_path, '[fields.n]\npath = "$.n"\ntype = "int"\n')
    row, issues = mapping.apply({"n": "twelve"})
    assert row == {"n": None}
    assert issues == ["n: expected an integer, got 'twelve'"]


def test_required_field_rejects_the_event(tmp_path: Path) -> None:
    """Missing or invalid required values reject the event with every reason."""
    mapping = _mapping(
        tmp_path,
        '[fields.id]\npath = "$.id"\nrequired = true\n'
        '[fields.at]\npath = "$.at"\ntype = "timestamp"\nrequired = true\n',
    )
    with pytest.raises(EventRejected) as caught:
        mapping.apply({"at": "yesterday"})
    assert str(caught.value) == (
        "id: missing (required, from $.id); at: not an RFC 3339 timestamp: 'yesterday'"
    )


def test_paths_candidates_first_non_null_wins(tmp_path: Path) -> None:
    """paths tries each candidate; null, null-like strings and empty matches are skipped."""
    mapping = _mapping(
        tmp_path, '[fields.v]\npaths = ["$.a", "$.b[*].x", "$.c"]\ntype = "string"\n'
    )
    assert mapping.apply({"a": "null", "b": [], "c": "third"})[0] == {"v": "third"}
    assert mapping.apply({"a": None, "b": [{"x": None}, {"x": "2nd"}], "c": "3"})[0] == {"v": "2nd"}
    assert mapping.apply({"a": "first", "c": "3"})[0] == {"v": "first"}


def test_default_const_and_from(tmp_path: Path) -> None:
    """default fills NULLs; const is fixed; from derives a field from another output field."""
    mapping = _mapping(
        tmp_path,
        '[fields.kind]\nconst = "okta"\n'
        '[fields.shout]\nfrom = "name"\nvalues = { ada = "ADA" }\n'
        '[fields.name]\npath = "$.name"\ndefault = "nobody"\n',
    )
    assert mapping.apply({"name": "ada"})[0] == {"kind": "okta", "shout": "ADA", "name": "ada"}
    assert mapping.apply({})[0] == {"kind": "okta", "shout": "nobody", "name": "nobody"}
    assert [column.name for column in mapping.columns] == ["kind", "shout", "name"]


def test_values_and_values_default(tmp_path: Path) -> None:
    """values maps raw values; unmatched ones take values_default, or pass through without it."""
    mapping = _mapping(
        tmp_path,
        '[fields.mapped]\npath = "$.r"\nvalues = { SUCCESS = "ok" }\nvalues_default = "other"\n'
        '[fields.kept]\npath = "$.r"\nvalues = { SUCCESS = "ok" }\n'
        '[fields.flag]\npath = "$.n"\ntype = "bool"\nvalues = { "1" = true, "0" = false }\n',
    )
    assert mapping.apply({"r": "SUCCESS", "n": 1})[0] == {
        "mapped": "ok",
        "kept": "ok",
        "flag": True,
    }
    assert mapping.apply({"r": "DENY", "n": "0"})[0] == {
        "mapped": "other",
        "kept": "DENY",
        "flag": False,
    }
    assert mapping.apply({})[0] == {"mapped": None, "kept": None, "flag": None}


def test_array_modes(tmp_path: Path) -> None:
    """array = first / all / join choose how several matches become one value."""
    mapping = _mapping(
        tmp_path,
        '[fields.first]\npath = "$.ips[*].ip"\n'
        '[fields.every]\npath = "$.ips[*].ip"\ntype = "list[string]"\n'
        '[fields.joined]\npath = "$.ips[*].ip"\narray = "join"\nseparator = " > "\n'
        '[fields.first_of_list]\npath = "$.tags"\narray = "first"\n',
    )
    event = {"ips": [{"ip": None}, {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "tags": ["", "b"]}
    assert mapping.apply(event)[0] == {
        "first": "10.0.0.1",
        "every": [None, "10.0.0.1", "10.0.0.2"],
        "joined": "10.0.0.1 > 10.0.0.2",
        "first_of_list": "b",
    }
    assert mapping.apply({"ips": []})[0] == {
        "first": None,
        "every": None,
        "joined": None,
        "first_of_list": None,
    }


def test_null_likes_settings(tmp_path: Path) -> None:
    """null_likes: the mapping's list by default, a field's own list, or off."""
    mapping = _mapping(
        tmp_path,
        '[fields.a]\npath = "$.v"\n'
        '[fields.b]\npath = "$.v"\nnull_likes = false\n'
        '[fields.c]\npath = "$.v"\nnull_likes = ["N/A"]\n',
        head='null_likes = ["null", "-"]',
    )
    assert mapping.apply({"v": "-"})[0] == {"a": None, "b": "-", "c": "-"}
    assert mapping.apply({"v": "N/A"})[0] == {"a": "N/A", "b": "N/A", "c": None}


def test_pattern_extracts_a_group(tmp_path: Path) -> None:
    """pattern keeps the first group of the first match; no match is NULL."""
    mapping = _mapping(
        tmp_path, "[fields.level]\npath = \"$.risk\"\npattern = '(?:^|\\blevel=)([A-Za-z_]+)'\n"
    )
    assert mapping.apply({"risk": "{reasons=Anomalous Device, level=MEDIUM}"})[0] == {
        "level": "MEDIUM"
    }
    assert mapping.apply({"risk": "HIGH"})[0] == {"level": "HIGH"}
    assert mapping.apply({"risk": "{reasons=x}"})[0] == {"level": None}


def test_lookups_json_and_toml_with_lookup_field(tmp_path: Path) -> None:
    """lookup maps a value through a table; lookup_field picks one key of an object entry."""
    (tmp_path / "teams.json").write_text(
        json.dumps({"a": {"team": "red", "size": 3}, "b": "plain"}), encoding="utf-8"
    )
    (tmp_path / "codes.toml").write_text('"7" = "seven"\n', encoding="utf-8")
    mapping = _mapping(
        tmp_path,
        '[fields.team]\npath = "$.k"\nlookup = "teams"\nlookup_field = "team"\n'
        '[fields.size]\npath = "$.k"\nlookup = "teams"\nlookup_field = "size"\ntype = "int"\n'
        '[fields.code]\npath = "$.n"\nlookup = "codes"\n',
        lookups='teams = "teams.json"\ncodes = "codes.toml"',
    )
    assert mapping.apply({"k": "a", "n": 7})[0] == {"team": "red", "size": 3, "code": "seven"}
    assert mapping.apply({"k": "b", "n": 8})[0] == {"team": None, "size": None, "code": None}


def test_struct_items(tmp_path: Path) -> None:
    """struct projects each item of a list onto named, typed members."""
    mapping = _mapping(
        tmp_path,
        '[fields.items]\npath = "$.t"\ntype = "list[json]"\n'
        'struct = { id = "$.id", n = { path = "$.d.n", type = "int" } }\n'
        '[fields.whole]\npath = "$.t"\ntype = "list[json]"\n',
    )
    row, issues = mapping.apply({"t": [{"id": 1, "d": {"n": "5"}}, {"id": "x", "d": {"n": "?"}}]})
    assert row["items"] == [{"id": "1", "n": 5}, {"id": "x", "n": None}]
    assert row["whole"] == ['{"id":1,"d":{"n":"5"}}', '{"id":"x","d":{"n":"?"}}']
    assert issues == ["items: item 1: n: expected an integer, got '?'"]
    assert mapping.columns[0].duckdb_type == 'STRUCT("id" VARCHAR, "n" BIGINT)[]'
    assert mapping.columns[1].duckdb_type == "JSON[]"


def test_json_keeps_key_order(tmp_path: Path) -> None:
    """json values are compact JSON text with the keys in their original order."""
    mapping = _mapping(tmp_path, '[fields.d]\npath = "$.d"\ntype = "json"\n')
    assert mapping.apply({"d": {"z": 1, "a": [True, None]}})[0] == {"d": '{"z":1,"a":[true,null]}'}


def test_non_objects_are_rejected_and_mappings_accepted(tmp_path: Path) -> None:
    """A non-object event is rejected with a reason; any Mapping works like a dict."""
    mapping = _mapping(tmp_path, '[fields.a]\npath = "$.a"\n')

    class Event(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            if key != "a":
                raise KeyError(key)
            return "from a mapping"

        def __iter__(self) -> Any:
            return iter(["a"])

        def __len__(self) -> int:
            return 1

    assert mapping.apply(Event())[0] == {"a": "from a mapping"}
    for value, kind in ([1, 2], "an array"), ("x", "a string"), (None, "null"), (3, "a number"):
        with pytest.raises(EventRejected, match=f"event is not a JSON object \\(got {kind}\\)"):
            mapping.apply(value)  # type: ignore[arg-type]


def test_batch_keeps_input_order_and_indexes(tmp_path: Path) -> None:
    """apply_batch returns accepted rows in input order with indexes into the input."""
    mapping = _mapping(
        tmp_path,
        '[fields.id]\npath = "$.id"\nrequired = true\n[fields.n]\npath = "$.n"\ntype = "int"\n',
    )
    events: list[Any] = [{"id": "a", "n": 1}, "junk", {"n": 2}, {"id": "d", "n": "x"}, {"id": "e"}]
    batch = mapping.apply_batch(events)
    assert batch.accepted == [0, 3, 4]
    assert batch.rejected == [
        (1, "event is not a JSON object (got a string)"),
        (2, "id: missing (required, from $.id)"),
    ]
    assert batch.columns == {"id": ["a", "d", "e"], "n": [1, None, None]}
    assert batch.issues == [[], ["n: expected an integer, got 'x'"], []]
    empty = mapping.apply_batch([])
    assert (empty.columns, empty.accepted, empty.rejected) == ({"id": [], "n": []}, [], [])


def test_to_arrow_uses_the_column_types() -> None:
    """to_arrow gives one typed Arrow column per mapping column, with docs and version."""
    mapping = load_mapping(NORMALIZED)
    event = {
        "uuid": "u1",
        "published": "2024-01-02T03:04:05.678Z",
        "eventType": "user.session.start",
        "target": [{"id": "00u1", "type": "User"}],
    }
    mapped = mapping.apply_batch([event, event]).to_arrow(mapping)
    schema = na.Schema(mapped.schema)
    assert mapped.num_rows == 2
    assert [field.name for field in schema.fields] == [column.name for column in mapping.columns]
    assert schema.metadata[b"mapping_version"] == mapping.version.encode()
    assert schema.field(0).metadata[b"doc"] == mapping.columns[0].doc.encode()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE expected ("
        + ", ".join(f'"{column.name}" {column.duckdb_type}' for column in mapping.columns)
        + ")"
    )
    describe = "SELECT column_name, column_type FROM (DESCRIBE {})"
    types = con.execute(describe.format("mapped")).fetchall()
    assert types == con.execute(describe.format("expected")).fetchall()
    rows = con.execute("SELECT target_user_id, published FROM mapped").fetchall()
    assert [r[0] for r in rows] == ["00u1", "00u1"]
    assert rows[0][1] == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_document_output(tmp_path: Path) -> None:
    """output = document: dotted names nest, NULLs are left out, timestamps end in Z."""
    mapping = _mapping(
        tmp_path,
        '[fields."@timestamp"]\npath = "$.published"\ntype = "timestamp"\n'
        '[fields."user.name"]\npath = "$.actor.alternateId"\n'
        '[fields."user.id"]\npath = "$.actor.id"\n'
        '[fields."okta.debug"]\npath = "$.debug"\ntype = "json"\n'
        '[fields."source.ip"]\npath = "$.ip"\ntype = "ip"\n'
        '[fields."okta.targets"]\npath = "$.target"\ntype = "list[json]"\n'
        'struct = { id = "$.id", at = { path = "$.at", type = "timestamp" }, '
        'extra = { path = "$.x", type = "json" } }\n'
        '[fields."okta.times"]\npath = "$.times"\ntype = "list[timestamp]"\n',
        head='output = "document"',
    )
    document = mapping.apply_document(
        {
            "published": "2024-01-02T04:04:05.678+01:00",
            "actor": {"alternateId": "ada@example.org", "id": None},
            "debug": {"b": "1", "a": 2},
            "target": [{"id": "t1", "at": "2024-01-02T03:04:05Z", "x": [1]}, None],
            "times": ["2024-01-02T03:04:05.000001Z", "later"],
        }
    )
    assert document == {
        "@timestamp": "2024-01-02T03:04:05.678Z",
        "user": {"name": "ada@example.org"},
        "okta": {
            "debug": {"b": "1", "a": 2},
            "targets": [{"id": "t1", "at": "2024-01-02T03:04:05.000Z", "extra": [1]}, None],
            "times": ["2024-01-02T03:04:05.000001Z", None],
        },
    }
    assert json.loads(json.dumps(document)) == document
    with pytest.raises(EventRejected):
        mapping.apply_document([])  # type: ignore[arg-type]


def test_version_covers_file_and_lookups(tmp_path: Path) -> None:
    """The version is 12 hex digits, stable for the same content, new when a lookup changes."""
    (tmp_path / "t.json").write_text('{"a": "1"}', encoding="utf-8")
    fields = '[fields.v]\npath = "$.v"\nlookup = "t"\n'
    first = _mapping(tmp_path, fields, lookups='t = "t.json"')
    again = _mapping(tmp_path, fields, lookups='t = "t.json"')
    (tmp_path / "t.json").write_text('{"a": "2"}', encoding="utf-8")
    changed = _mapping(tmp_path, fields, lookups='t = "t.json"')
    assert len(first.version) == 12
    assert int(first.version, 16) >= 0
    assert first.version == again.version
    assert changed.version != first.version


def test_default_mapping_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OKTADUCK_MAPPINGS wins; otherwise the checkout's mappings/ folder."""
    monkeypatch.delenv("OKTADUCK_MAPPINGS", raising=False)
    assert default_mapping_dir() == REPO / "mappings"
    assert (default_mapping_dir() / "okta" / "normalized.toml").is_file()
    monkeypatch.setenv("OKTADUCK_MAPPINGS", str(tmp_path))
    assert default_mapping_dir() == tmp_path


def test_normalized_columns_in_order_and_documented() -> None:
    """normalized.toml declares the agreed columns, in order, each with its Okta source."""
    mapping = load_mapping(NORMALIZED)
    names = [column.name for column in mapping.columns]
    assert names[:4] == ["uuid", "published", "event_type", "legacy_event_type"]
    assert names[-2:] == ["targets", "category"]
    assert len(names) == len(set(names)) == 53
    assert all(len(column.doc) > 10 for column in mapping.columns)
    assert not {"source", "raw", "mapping_version", "ingested_at", "ingest_seq"} & set(names)
    types = {column.name: column.duckdb_type for column in mapping.columns}
    assert types["published"] == "TIMESTAMPTZ"
    assert types["as_number"] == "BIGINT"
    assert types["ip_chain"] == "VARCHAR[]"
    assert types["targets"] == (
        'STRUCT("id" VARCHAR, "type" VARCHAR, "alternate_id" VARCHAR, "display_name" VARCHAR)[]'
    )


def test_target_filters_compile_to_native_loops() -> None:
    """The usual target filter and plain paths run without jsonpath-ng; others fall back."""
    assert compile_path("$.target[?(@.type == 'User')].id").native
    assert compile_path("$.request.ipChain[*].ip").native
    assert compile_path("$.a.b[0].c").singular
    assert not compile_path("$..id").native
    assert not compile_path("$.target[0:2].id").native


def test_catalog_builder(tmp_path: Path) -> None:
    """The builder maps each event type to its category; the first version listing it wins."""
    catalog = {
        "versions": [
            {"eventTypes": [{"id": "b.x", "category": "two"}, {"id": "a.x", "category": "one"}]},
            {"eventTypes": [{"id": "a.x", "category": "old"}, {"id": "c.x", "category": "three"}]},
        ]
    }
    assert categories(catalog) == {"a.x": "one", "b.x": "two", "c.x": "three"}
    source = tmp_path / "catalog.json"
    source.write_text(json.dumps(catalog), encoding="utf-8")
    out = tmp_path / "out" / "categories.json"
    assert main([str(source), str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == categories(catalog)
    assert main([str(tmp_path / "missing.json"), str(out)]) == 1


def test_shipped_category_lookup_matches_the_catalog() -> None:
    """mappings/okta/lookups/categories.json is exactly what the builder makes of the catalog."""
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    shipped = REPO / "mappings" / "okta" / "lookups" / "categories.json"
    assert shipped.read_bytes() == render(categories(catalog))


def test_plain_dotted_paths_are_mapped_by_generated_columns(tmp_path: Path) -> None:
    """Fields read from `$.a.b` get a whole-column function; others keep the extractor."""
    normalized = load_mapping(NORMALIZED)
    by_name = {field.name: field for field in normalized.plan.fields}
    assert by_name["geo_city"].column is not None
    assert by_name["client_ip"].column is not None
    for name in ("target_user_id", "ip_chain", "as_number", "outcome", "category"):
        assert by_name[name].column is None, name
    mapping = _mapping(
        tmp_path,
        '[fields.city]\npath = "$.c.geo.city"\n[fields.n]\npath = "$.n"\ntype = "int"\n',
        head='null_likes = ["null", ""]',
    )
    rows = mapping.apply_batch(
        [
            {"c": {"geo": {"city": "Oslo"}}, "n": 1},
            {"c": {"geo": {"city": "null"}}, "n": "2"},
            {"c": {"geo": {"city": 7}}, "n": "null"},
            {"c": {"geo": "flat"}, "n": None},
            {"c": []},
        ]
    )
    assert rows.columns["city"] == ["Oslo", None, "7", None, None]
    assert rows.columns["n"] == [1, 2, None, None, None]
    assert rows.issues == [[], [], [], [], []]
