"""MkDocs hook: the parts of pages that the code defines, generated from the code at build time.

- `<!-- cli-flags train -->`: `stocksent train`'s usage line and flag table (`stocksent`: the
  program's own), from the real argparse parser (`stocksent.cli.build_parser`), so the CLI
  reference cannot disagree with `--help`.
- `<!-- presets -->`: every training option with its value in each preset (`stocksent.config`).

An unknown marker argument fails the build. tests/test_docs.py uses `command_parsers` and
`option_strings` to check every `stocksent ...` example in README.md and docs/.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import json
import re

CLI_FLAGS = re.compile(r"<!-- cli-flags ([\w-]+) -->")
PRESETS = "<!-- presets -->"
USAGE_WIDTH = 88


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """`{command: its parser}` for every `stocksent` command, and `"stocksent"` for the program itself."""
    from stocksent.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"stocksent": parser, **sub.choices}


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag `--help` lists for this parser (`-h`, `--help`, `--no-linear-blend`, ...)."""
    return {flag for action in parser._actions for flag in action.option_strings}


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, HTML-escaped (`<unk>`), pipes escaped."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    if not action.option_strings:
        return "one or more" if action.nargs == "+" else ("any number" if action.nargs == "*" else "")
    return f"`{action.metavar or action.dest.upper()}`" + (" ..." if action.nargs in ("+", "*") else "")


def usage(parser: argparse.ArgumentParser) -> str:
    """`parser`'s usage as `--help` prints it at a fixed width, without the `usage: ` prefix."""
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=USAGE_WIDTH)
    first, *rest = parser.format_usage().removeprefix("usage: ").rstrip().splitlines()
    return "\n".join([first, *(line.removeprefix(" " * len("usage: ")) for line in rest)])


def flag_table(parser: argparse.ArgumentParser) -> str:
    """The usage line and a Markdown table of the command's arguments, in the parser's order."""
    formatter = parser._get_formatter()
    rows = ["| argument | value | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        name = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.metavar or action.dest}`"
        required = " (required)" if action.required and action.option_strings else ""
        what = _cell(formatter._expand_help(action)) if action.help else ""
        rows.append(f"| {name}{required} | {_value(action)} | {what} |")
    return f"```text\n{usage(parser)}\n```\n\n" + "\n".join(rows) + "\n"


def presets_table() -> str:
    """Every `TrainConfig` option: its `stocksent train` flag and its value in each preset, as a
    `--config` JSON file writes it."""
    from stocksent.config import PRESETS as presets
    from stocksent.config import TrainConfig

    flags = {a.dest: a.option_strings[0] for a in command_parsers()["train"]._actions if a.option_strings}
    names = sorted(presets, key=lambda name: name != "default")
    rows = ["| option | flag | " + " | ".join(f"`{n}` preset" for n in names) + " |", "|---" * (len(names) + 2) + "|"]
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "out", "preset", "resume"):
            continue
        values = [dataclasses.asdict(TrainConfig(**presets[n]))[field.name] for n in names]
        flag = f"`{flags[field.name]}`" if field.name in flags else "`--config` file"
        shown = " | ".join(f"`{json.dumps(v)}`" for v in values)
        rows.append(f"| `{field.name}` | {flag} | {shown} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, **kwargs) -> str:
    """MkDocs event: markers become the generated Markdown."""
    if CLI_FLAGS.search(markdown):
        parsers = command_parsers()

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in parsers:
                raise ValueError(f"<!-- cli-flags {name} -->: stocksent has no command {name!r}")
            return flag_table(parsers[name])

        markdown = CLI_FLAGS.sub(replace, markdown)
    if PRESETS in markdown:
        markdown = markdown.replace(PRESETS, presets_table())
    return markdown
