"""Invalid mapping files: every problem is reported on its own line naming file, field, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.base.errors import InvalidMapping, MappingError
from ingest.mapping import check_all, load_mapping

HEAD = '[mapping]\nname = "test"\n'


def _write(directory: Path, body: str, name: str = "m.toml") -> Path:
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def _problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(InvalidMapping) as caught:
        load_mapping(path)
    return caught.value.problems


INVALID = [
    (
        "unknown-field-key",
        HEAD + '[fields.a]\npth = "$.a"\n',
        "field 'a'",
        "unknown key 'pth' (did you mean 'path'?)",
    ),
    ("bad-jsonpath", HEAD + '[fields.a]\npath = "$.a["\n', "field 'a'", "bad JSONPath '$.a['"),
    ("path-without-root", HEAD + '[fields.a]\npath = "a.b"\n', "field 'a'", "must start with '$'"),
    (
        "unknown-type",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "integer"\n',
        "field 'a'",
        "unknown type 'integer'",
    ),
    (
        "lookup-not-declared",
        HEAD + '[fields.a]\npath = "$.a"\nlookup = "nope"\n',
        "field 'a'",
        "lookup 'nope' is not declared in [lookups]",
    ),
    (
        "lookup-file-missing",
        HEAD + '[lookups]\ncat = "missing.json"\n[fields.a]\npath = "$.a"\nlookup = "cat"\n',
        "[lookups] 'cat' (used by field 'a')",
        "cannot read",
    ),
    (
        "from-unknown-field",
        HEAD + '[fields.a]\nfrom = "zzz"\n',
        "field 'a'",
        "from names unknown field 'zzz'",
    ),
    (
        "derived-cycle",
        HEAD + '[fields.a]\nfrom = "b"\n[fields.b]\nfrom = "c"\n[fields.c]\nfrom = "a"\n',
        "field 'a'",
        "derived fields form a cycle: a -> b -> c -> a",
    ),
    (
        "values-on-json",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "json"\nvalues = { X = "y" }\n',
        "field 'a'",
        "values cannot be used with type json",
    ),
    (
        "values-on-list",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "list[string]"\nvalues = { X = "y" }\n',
        "field 'a'",
        "values cannot be used with type list[string]",
    ),
    (
        "values-wrong-type",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "int"\nvalues = { X = "many" }\n',
        "field 'a'",
        "values.X 'many' does not fit type int",
    ),
    (
        "required-with-default",
        HEAD + '[fields.a]\npath = "$.a"\nrequired = true\ndefault = "x"\n',
        "field 'a'",
        "a required field cannot have a default",
    ),
    (
        "default-wrong-type",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "bool"\ndefault = "perhaps"\n',
        "field 'a'",
        "default 'perhaps' does not fit type bool",
    ),
    (
        "column-name-case",
        HEAD + '[fields.Event-Type]\npath = "$.a"\n',
        "field 'Event-Type'",
        "not a valid column name",
    ),
    (
        "column-name-sql",
        HEAD + '[fields.select]\npath = "$.a"\n',
        "field 'select'",
        "reserved SQL word",
    ),
    (
        "column-name-store",
        HEAD + '[fields.raw]\npath = "$.a"\n',
        "field 'raw'",
        "the store adds this column",
    ),
    (
        "duplicate-field",
        HEAD + '[fields.a]\npath = "$.a"\n[fields.a]\npath = "$.b"\n',
        "invalid TOML",
        "Cannot declare ('fields', 'a') twice",
    ),
    ("no-source", HEAD + '[fields.a]\ntype = "string"\n', "field 'a'", "needs a source"),
    (
        "two-sources",
        HEAD + '[fields.a]\npath = "$.a"\nconst = "x"\n',
        "field 'a'",
        "more than one source (path, const)",
    ),
    (
        "join-needs-string",
        HEAD + '[fields.a]\npath = "$.a[*]"\ntype = "int"\narray = "join"\n',
        "field 'a'",
        "array = 'join' makes a string",
    ),
    (
        "all-needs-list",
        HEAD + '[fields.a]\npath = "$.a[*]"\narray = "all"\n',
        "field 'a'",
        "array = 'all' needs a list type",
    ),
    (
        "separator-without-join",
        HEAD + '[fields.a]\npath = "$.a"\nseparator = ";"\n',
        "field 'a'",
        "separator only applies with array = 'join'",
    ),
    (
        "struct-on-scalar",
        HEAD + '[fields.a]\npath = "$.a"\nstruct = { id = "$.id" }\n',
        "field 'a'",
        "struct only applies to type list[json]",
    ),
    (
        "struct-bad-member-path",
        HEAD + '[fields.a]\npath = "$.a"\ntype = "list[json]"\nstruct = { id = "$.[" }\n',
        "field 'a'",
        "struct member 'id': bad JSONPath",
    ),
    (
        "bad-pattern",
        HEAD + '[fields.a]\npath = "$.a"\npattern = "(unclosed"\n',
        "field 'a'",
        "pattern '(unclosed' is not a valid regular expression",
    ),
    (
        "lookup-field-without-lookup",
        HEAD + '[fields.a]\npath = "$.a"\nlookup_field = "name"\n',
        "field 'a'",
        "lookup_field needs lookup",
    ),
    (
        "unknown-top-level",
        "colums = 1\n" + HEAD + '[fields.a]\npath = "$.a"\n',
        "unknown top-level key 'colums'",
        "",
    ),
    (
        "unknown-mapping-key",
        '[mapping]\nname = "test"\noutptu = "columns"\n[fields.a]\npath = "$.a"\n',
        "[mapping]",
        "unknown key 'outptu' (did you mean 'output'?)",
    ),
    (
        "mapping-without-name",
        '[mapping]\n[fields.a]\npath = "$.a"\n',
        "[mapping]",
        "name must be a word",
    ),
    (
        "unknown-output",
        '[mapping]\nname = "t"\noutput = "rows"\n[fields.a]\npath = "$.a"\n',
        "[mapping]",
        "output must be",
    ),
    ("no-fields", HEAD, "[fields]", "declares no fields"),
    (
        "document-unquoted-dotted-name",
        '[mapping]\nname = "t"\noutput = "document"\n[fields.user.name]\npath = "$.a"\n',
        "field 'user'",
        "a dotted field name must be quoted",
    ),
    (
        "document-name-clash",
        '[mapping]\nname = "t"\noutput = "document"\n'
        '[fields.user]\npath = "$.a"\n[fields."user.name"]\npath = "$.b"\n',
        "field 'user.name'",
        "clashes with field 'user'",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "names", "problem"), INVALID, ids=[case[0] for case in INVALID]
)
def test_invalid_file_names_file_field_and_problem(
    tmp_path: Path, case: str, body: str, names: str, problem: str
) -> None:
    """Each kind of invalid file is refused with a line naming the file, the field and why."""
    path = _write(tmp_path, body)
    problems = _problems(path)
    matching = [line for line in problems if names in line and problem in line]
    assert matching, f"no line with {names!r} and {problem!r} in {problems}"
    assert all(line.startswith(f"{path}: ") for line in problems)
    assert all("\n" not in line for line in problems)


def test_bad_lookup_contents(tmp_path: Path) -> None:
    """A lookup file that is not valid JSON, or not an object, is refused with its path."""
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "table.csv").write_text("a,b", encoding="utf-8")
    body = (
        HEAD + '[lookups]\nbroken = "broken.json"\nlisted = "list.json"\ncsv = "table.csv"\n'
        '[fields.a]\npath = "$.a"\nlookup = "broken"\n'
    )
    problems = "\n".join(_problems(_write(tmp_path, body)))
    assert "[lookups] 'broken' (used by field 'a')" in problems
    assert "broken.json is not valid JSON" in problems
    assert "list.json must hold one object" in problems
    assert "must be .json or .toml" in problems


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    """One load reports every problem of the file, not only the first."""
    body = (
        HEAD + '[fields.a]\npath = "$.a["\n[fields.b]\npath = "$.b"\ntype = "number"\n'
        '[fields.c]\nfrom = "nobody"\n[fields.d]\npath = "$.d"\nwhat = 1\n'
    )
    problems = _problems(_write(tmp_path, body))
    assert len(problems) == 4
    for field in "abcd":
        assert any(f"field {field!r}" in line for line in problems)


def test_invalid_mapping_is_a_mapping_error(tmp_path: Path) -> None:
    """Callers can catch MappingError; its text is the problem lines."""
    path = _write(tmp_path, HEAD + '[fields.a]\npath = "$.a["\n')
    with pytest.raises(MappingError, match=r"bad JSONPath"):
        load_mapping(path)


def test_unreadable_and_non_toml_files(tmp_path: Path) -> None:
    """A missing file and a file that is not TOML are refused with the file named."""
    missing = tmp_path / "absent.toml"
    assert _problems(missing)[0].startswith(f"{missing}: cannot read the file")
    garbage = _write(tmp_path, "this is = = not toml", "garbage.toml")
    assert "invalid TOML" in _problems(garbage)[0]


def test_check_all_validates_every_file_and_skips_lookups(tmp_path: Path) -> None:
    """check_all reports problems of every mapping file, ignores lookups/, flags reused names."""
    (tmp_path / "lookups").mkdir()
    _write(tmp_path / "lookups", 'a = "b"\n', "table.toml")
    _write(tmp_path, HEAD + '[fields.a]\npath = "$.a"\n', "good.toml")
    _write(tmp_path, HEAD + '[fields.b]\npath = "$.b"\n', "same_name.toml")
    _write(tmp_path, HEAD + '[fields.c]\npath = "$.c["\n', "bad.toml")
    problems = check_all(tmp_path)
    assert len(problems) == 2
    assert any("bad.toml: field 'c'" in line for line in problems)
    assert any(
        "same_name.toml: [mapping]: name 'test' is already used" in line for line in problems
    )


def test_check_all_on_a_missing_directory(tmp_path: Path) -> None:
    """A directory that is not there is one problem, not an exception."""
    assert check_all(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: not a directory of mapping files"
    ]


def test_the_shipped_mappings_are_valid() -> None:
    """Every mapping file in the repository loads."""
    assert check_all(Path(__file__).resolve().parents[1] / "mappings") == []
