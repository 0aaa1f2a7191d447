"""``--help`` as the user documentation: the formatter, a subcommand whose help is its manual,
and the overview of the commands grouped by what they do."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` as the user documentation. Descriptions and epilogs are paragraphs
    separated by blank lines: a paragraph with an indented line (examples, lists of
    commands) is kept as written, any other is filled to the terminal's width. An option's
    default is added to its help unless the help already says it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if any(line[:1].isspace() for line in paragraph.splitlines()):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


# ``oktaduck --help``: the commands grouped by what they do, in the order a newcomer meets them
COMMAND_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start here", ("demo",)),
    ("collect", ("poll", "backfill", "import", "run", "config check")),
    ("query", ("sql", "feed", "status")),
    ("export and map", ("export", "map", "remap", "mappings check", "mappings coverage")),
    ("move", ("store copy",)),
    ("try things out", ("simulate",)),
)


def command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` is its manual: a one-line ``summary`` (listed under
    its parent), a ``description`` of what it does and the ``examples`` (``# comment`` lines
    and command lines), all shown as written."""
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=HelpFormatter,
    )


def _summaries(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """``{"poll": "...", "config check": "...", ...}``: every subcommand's one-line summary."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                nested = _summaries(child, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": helps.get(name, "")})
    return found


def commands_overview(parser: argparse.ArgumentParser) -> str:
    """The commands grouped by what they do, one line each (``oktaduck --help``, README)."""
    summaries = _summaries(parser)
    width = max(len(name) for name in summaries) + 2
    blocks = []
    for title, names in COMMAND_GROUPS:
        rows = [f"  {name:<{width}}{summaries[name]}" for name in names]
        blocks.append(f"{title}:\n" + "\n".join(rows))
    return "\n\n".join(blocks)
