"""``--help`` is the user documentation: every command describes itself, shows examples that
really parse, and documents every option; the README names every command."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from ingest.cli import COMMAND_GROUPS, build_parser, commands_overview
from tests.helpers import REPO, run_cli

SHELL = {"<", ">", "|", "&&", ";", "2>"}  # an example's command ends where the shell takes over


def _children(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every subcommand, nested ones too, with the words that select it."""
    for name, child in _children(parser):
        yield (*path, name), child
        yield from _commands(child, (*path, name))


def _leaves() -> list[str]:
    return [" ".join(p) for p, sub in _commands(build_parser()) if not list(_children(sub))]


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    """The command lines under ``examples:`` in a help's epilog (``#`` lines are comments)."""
    epilog = parser.epilog or ""
    _, found, rest = epilog.partition("examples:\n")
    assert found, f"{parser.prog}: no examples"
    return [line.strip() for line in rest.splitlines() if line.strip().startswith("oktaduck ")]


COMMANDS = [(" ".join(path), sub) for path, sub in _commands(build_parser())]
ALL = [("", build_parser()), *COMMANDS]


def test_the_parser_has_the_commands_we_expect() -> None:
    names = [name for name, _ in COMMANDS]
    assert {"poll", "run", "backfill", "config check", "mappings check", "demo"} <= set(names)
    assert len(names) >= 15


@pytest.mark.parametrize(("name", "parser"), ALL, ids=[n or "oktaduck" for n, _ in ALL])
def test_every_command_describes_itself_with_examples_and_documents_every_option(
    name: str, parser: argparse.ArgumentParser
) -> None:
    description = parser.description or ""
    assert len(description) >= 40 and description.rstrip().endswith((".", ")")), description
    assert len(_examples(parser)) >= 2
    assert name == "" or parser.prog == f"oktaduck {name}"  # not the top level's usage
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
            continue
        text = action.help or ""
        assert text and text != argparse.SUPPRESS, f"{name} {action.option_strings}: no help"
        assert len(text) >= 10, f"{name} {action.option_strings}: {text!r}"


def _parse(line: str) -> argparse.Namespace:
    """An example as ``main`` parses it: unknown ``--PARAM VALUE`` only for a feed."""
    words = shlex.split(line)
    assert words[0] == "oktaduck"
    end = next((i for i, w in enumerate(words) if w in SHELL), len(words))
    args, extra = build_parser().parse_known_args(words[1:end])
    assert not extra or args.command == "feed", f"{line}: unknown {extra}"
    return args


EXAMPLES = [(name, line) for name, parser in ALL for line in _examples(parser)]


@pytest.mark.parametrize(("name", "line"), EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_every_example_parses_and_runs_the_command_it_illustrates(name: str, line: str) -> None:
    args = _parse(line)
    selected = [args.command]
    selected += [v for k, v in vars(args).items() if k.endswith("_command") and v]
    if name:
        assert " ".join(selected).startswith(name), f"{line} is not an example of {name}"
    assert "TOKEN=" not in line and "--token " not in line  # secrets never on a command line


def test_an_example_with_a_flag_that_does_not_exist_is_caught() -> None:
    with pytest.raises(AssertionError, match="unknown"):
        _parse("oktaduck poll --org https://acme.okta.com --no-such-flag")
    with pytest.raises(SystemExit):  # argparse's usage error: a value it refuses
        _parse("oktaduck poll --org https://acme.okta.com --page-limit 5000")


def test_the_overview_groups_every_command_once() -> None:
    grouped = [name for _, names in COMMAND_GROUPS for name in names]
    assert sorted(grouped) == sorted(_leaves())
    overview = commands_overview(build_parser())
    for name in grouped:
        assert f"\n  {name} " in f"\n{overview}"


def test_oktaduck_help_starts_a_newcomer_at_demo() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "start here:\n  demo " in done.stdout
    assert "usage: oktaduck [--log-level LEVEL] COMMAND" in done.stdout
    sub = run_cli("mappings", "check", "--help")
    assert sub.returncode == 0 and sub.stdout.startswith("usage: oktaduck mappings check")
    assert "examples:\n  oktaduck mappings check\n" in sub.stdout


def test_every_command_is_named_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [name for name in _leaves() if f"oktaduck {name}" not in readme]
    assert missing == []
