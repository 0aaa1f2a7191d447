"""The ECS and OCSF event-type tables: built from the catalog by rules, shipped as built.

The shipped tables must be exactly what ``python -m ingest.mapping.taxonomy`` makes of Okta's
catalog (the facts of ``shared/okta/event-types.json`` the builders read, kept with the tests
in tests/catalog), cover every catalog event type, and the coverage figures in
mappings/README.md must be current.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.base.errors import MappingError
from ingest.mapping import taxonomy
from ingest.mapping.classify import classify_ecs, classify_ocsf, verb
from ingest.mapping.taxonomy import (
    ECS_TABLE,
    OCSF_TABLE,
    build,
    catalog_coverage,
    catalog_entries,
    coverage,
    main,
    read_catalog,
    render,
)
from tests.helpers.catalog import CATALOG

REPO = Path(__file__).resolve().parents[1]
LOOKUPS = REPO / "mappings" / "okta" / "lookups"
README = (REPO / "mappings" / "README.md").read_text(encoding="utf-8")


def test_shipped_tables_match_the_builder(tmp_path: Path) -> None:
    """lookups/ecs_event_types.json and ocsf_event_types.json are the builder's output."""
    count = build(CATALOG, tmp_path)
    assert count == len(catalog_entries(read_catalog(CATALOG)))
    for name in (ECS_TABLE, OCSF_TABLE):
        assert (LOOKUPS / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"{name} is stale: run python -m ingest.mapping.taxonomy "
            "tests/catalog/event-types.json mappings/okta/lookups"
        )


def test_every_catalog_event_type_has_an_entry() -> None:
    """Both tables cover every event type of the catalog (the 1,178 public ones included)."""
    entries = catalog_entries(read_catalog(CATALOG))
    ids = {entry["id"] for entry in entries}
    for name in (ECS_TABLE, OCSF_TABLE):
        assert set(json.loads((LOOKUPS / name).read_text("utf-8"))) == ids
    public = [e for e in entries if e.get("internal") is False and not e.get("beta")]
    assert len(public) == coverage(read_catalog(CATALOG))["public"] == 1178


def test_coverage_figures_are_in_the_readme() -> None:
    """The README states the current coverage figures, out of 1,178 public event types."""
    rows = {row["mapping"]: row for row in catalog_coverage(CATALOG)}
    for name in ("ecs", "ocsf"):
        row = rows[name]
        assert row["public_types"] == 1178
        assert row["specific"] + row["fallback"] == row["public_types"]
        figure = f"{row['specific']:,} of 1,178 ({row['share']})"
        assert figure in README, f"README should say {figure!r} for {name}"


def test_catalog_coverage_reads_the_shared_catalog_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a path, catalog_coverage reads shared/okta/event-types.json next to the checkout
    (here pointed at the tests' copy, which may be the only one there is)."""
    default = taxonomy.DEFAULT_CATALOG
    assert default == REPO.parent / "shared" / "okta" / "event-types.json"
    monkeypatch.setattr(taxonomy, "DEFAULT_CATALOG", CATALOG)
    assert catalog_coverage() == catalog_coverage(CATALOG)


def test_builder_on_a_small_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI writes both tables for any catalog, one sorted entry per line."""
    catalog = tmp_path / "catalog.json"
    types = [
        {"id": "user.session.start", "category": "x", "internal": False, "beta": False},
        {"id": "zone.delete", "category": "x", "internal": False, "beta": False},
        {"id": "example.new.thing", "category": "x", "internal": True, "beta": False},
    ]
    catalog.write_text(json.dumps({"versions": [{"eventTypes": types}]}), encoding="utf-8")
    assert main([str(catalog), str(tmp_path / "out")]) == 0
    ecs = (tmp_path / "out" / ECS_TABLE).read_text("utf-8")
    assert ecs.splitlines()[1].startswith('  "example.new.thing": ')
    table = json.loads(ecs)
    assert table["user.session.start"]["category"] == ["authentication", "session"]
    ocsf = json.loads((tmp_path / "out" / OCSF_TABLE).read_text("utf-8"))
    assert ocsf["zone.delete"]["type_uid"] == 300404
    assert "2 of 2 public event types" in capsys.readouterr().out


def test_builder_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or malformed catalog is an error with a message, not a traceback."""
    assert main([str(tmp_path / "missing.json"), str(tmp_path)]) == 1
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"versions": []}', encoding="utf-8")
    with pytest.raises(MappingError, match="no versions"):
        build(bad, tmp_path)


def test_render_is_one_entry_per_line() -> None:
    """Tables diff well: sorted keys, one entry a line, a final newline."""
    text = render({"b": {"x": 1}, "a": {"y": [2]}}).decode()
    assert text == '{\n  "a": {"y":[2]},\n  "b": {"x":1}\n}\n'


@pytest.mark.parametrize(
    ("event_type", "action"),
    [
        ("user.account.update_password", "update"),
        ("user.mfa.factor.reset_all", "update"),
        ("app.oauth2.as.token.grant.access_token", "grant"),
        ("zone.make_blacklist", "update"),
        ("user.lifecycle.delete.initiated", "delete"),
        ("group.user_membership.add", "create"),
        ("policy.evaluate_sign_on", None),
    ],
)
def test_verbs(event_type: str, action: str | None) -> None:
    """The action word of an id is found from the end, compound words by their first part."""
    assert verb(event_type) == action


def test_unknown_ids_get_the_fallback() -> None:
    """An id no rule knows is ECS iam/info and OCSF 6003 (with a CRUD verb when there is one)."""
    assert not classify_ecs("example.thing.happened").specific
    assert classify_ocsf("example.thing.happened").class_uid == 6003
    assert classify_ocsf("example.thing.happened").activity_id == 99
    assert classify_ocsf("example.thing.create").activity_id == 1
