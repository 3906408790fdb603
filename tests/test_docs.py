"""The documentation against the code, so that it cannot go stale unnoticed.

- Every `stocksent ...` example in README.md and docs/ (shell blocks, `$ ` prompts, `\\` line
  continuations, env assignments, `python -m stocksent`, `torchrun ... -m stocksent`, inline code)
  names a real command and only flags that its `--help` lists, taken from the real parser.
- A flag named on its own (`--resume`) is a flag of some command (or of a program the docs name).
- Every relative link in README.md resolves to a file.
- Every file path the docs cite in inline code (`benchmarks/score.py`, `tests/test_x.py::test_y`,
  `inference/fast_cpu.py`) exists, and a cited test function is defined there.

The site's own links and anchors are checked by `mkdocs build --strict` (`make docs`).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "text"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECTS = {">", ">>", "<", ">&", "&>", "2>"}
# Flags of other programs that the docs mention on their own, as `--flag`.
OTHER_PROGRAMS_FLAGS = {
    "--nproc-per-node": "torchrun",
    "--conf": "spark-submit",
    "--max-seconds": "benchmarks/score.py",
}
CITED_PATH = re.compile(r"^(?:[\w.-]+/)*[\w.-]+\.(?:py|md|yml|yaml|toml)(?:::(\w+))?$")


@cache
def hook():
    """docs/hooks/generated.py, the module that also writes the CLI reference's flag tables."""
    spec = importlib.util.spec_from_file_location("docs_generated", ROOT / "docs" / "hooks" / "generated.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def known_flags() -> dict[str, frozenset[str]]:
    """`{command: the flags its --help lists}`; "stocksent" is the program's own."""
    return {name: frozenset(hook().option_strings(p)) for name, p in hook().command_parsers().items()}


def split_blocks(markdown: str) -> tuple[list[tuple[str, list[str]]], str]:
    """The fenced code blocks as (language, lines), and the prose outside them."""
    blocks: list[tuple[str, list[str]]] = []
    prose: list[str] = []
    fence, language, lines = None, "", []
    for line in markdown.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence, language, lines = match.group(1), match.group(2).lower(), []
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            blocks.append((language, lines))
            fence = None
        elif fence is not None:
            lines.append(line)
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def command_lines(lines: list[str]) -> list[str]:
    """A shell block's commands: continuations joined; with `$ ` prompts, only the prompted lines."""
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line.strip())
    prompted = [line[2:] for line in joined if line.startswith("$ ")]
    return prompted if prompted else joined


def examples(markdown: str) -> list[str]:
    """Every command line of the shell blocks, and every inline code span, that runs stocksent."""
    blocks, prose = split_blocks(markdown)
    candidates = [line for language, lines in blocks if language in SHELL_LANGUAGES for line in command_lines(lines)]
    candidates += [span.removeprefix("$ ") for span in INLINE_CODE.findall(prose)]
    return [line for line in candidates if invocations(line)]


def strip_comment(line: str) -> str:
    """The line without its shell comment: a `#` that starts a word outside quotes, to the end."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def tokens(line: str) -> list[str]:
    lexer = shlex.shlex(strip_comment(line), posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, ""
    return list(lexer)


def invocations(line: str) -> list[list[str]]:
    """The arguments of each `stocksent` run on a shell line (after `stocksent`, up to an operator)."""
    if not re.search(r"\bstocksent\b", line):
        return []
    try:
        words = tokens(line)
    except ValueError:  # unbalanced quotes: not a shell line (or a broken one, which the check reports)
        return [["<unparsable>", line]] if line.lstrip().startswith("stocksent ") else []
    runs, segment = [], []
    for word in [*words, ";"]:
        if word not in OPERATORS:
            segment.append(word)
            continue
        start = 0
        while start < len(segment) and ENV_ASSIGNMENT.match(segment[start]):
            start += 1
        for i in range(start, len(segment)):
            program = segment[i].rsplit("/", 1)[-1] == "stocksent"
            if program and (i == start or segment[i - 1] == "-m"):
                runs.append(segment[i + 1 :])
                break
        segment = []
    return runs


def problems(example: str) -> list[str]:
    """What in one example the parser does not have: an unknown command, or a flag its --help lacks."""
    flags = known_flags()
    found = []
    for args in invocations(example):
        if args[:1] == ["<unparsable>"]:
            found.append(f"cannot parse as a shell line: {example!r}")
            continue
        command, skip_next = "stocksent", False
        for word in args:
            if skip_next:
                skip_next = False
                continue
            if word in REDIRECTS:
                skip_next = True
                continue
            if word == "--":
                break
            option = word.strip("[](),")
            if option.startswith("-") and len(option) > 1 and not re.match(r"-\.?\d", option):
                name = option.split("=", 1)[0]
                if name not in flags[command]:
                    found.append(
                        f"`{name}` is not a flag of `stocksent{'' if command == 'stocksent' else ' ' + command}`"
                    )
            elif command == "stocksent" and option:
                if option not in flags:
                    found.append(f"`stocksent {option}`: no such command")
                    break
                command = option
    return found


def test_the_checker_finds_made_up_flags_and_commands() -> None:
    assert problems("stocksent train --out runs/x --epochs 3") == []
    assert problems("stocksent train --out runs/x --made-up-flag 3") == [
        "`--made-up-flag` is not a flag of `stocksent train`"
    ]
    assert problems("stocksent score --model m x.csv --thread 2") == ["`--thread` is not a flag of `stocksent score`"]
    assert problems("stocksent transmogrify --model m") == ["`stocksent transmogrify`: no such command"]
    assert problems("stocksent --verbose train") == ["`--verbose` is not a flag of `stocksent`"]


def test_the_checker_reads_shell_as_a_user_types_it() -> None:
    markdown = "\n".join(
        [
            "Run `stocksent evaluate --model runs/x --by ticker`, or `stocksent predict --nope`.",
            "```console",
            "$ OMP_NUM_THREADS=1 stocksent predict --model runs/x 'a # b' \\",
            "    --precision float32 --bogus  # a comment --ignored",
            "bullish  0.9  --output-looking text is output, not a flag",
            "```",
            "```sh",
            "torchrun --nproc-per-node 2 -m stocksent train --nprocs 2 | tee log && python -m stocksent bench --jsn",
            "```",
            "```python",
            'subprocess.run(["stocksent", "train", "--python-is-not-checked"])',
            "```",
        ]
    )
    found = [p for example in examples(markdown) for p in problems(example)]
    assert sorted(found) == sorted(
        [
            "`--nope` is not a flag of `stocksent predict`",
            "`--bogus` is not a flag of `stocksent predict`",
            "`--nprocs` is not a flag of `stocksent train`",
            "`--jsn` is not a flag of `stocksent bench`",
        ]
    )


def test_every_documented_command_line_uses_real_commands_and_flags() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in DOC_FILES
        for example in examples(path.read_text(encoding="utf-8"))
        for problem in problems(example)
    ]
    assert found == []
    assert sum(len(examples(path.read_text(encoding="utf-8"))) for path in DOC_FILES) > 50  # the scan sees them


def test_flags_named_on_their_own_are_flags_of_some_command() -> None:
    every_flag = set().union(*known_flags().values(), OTHER_PROGRAMS_FLAGS)
    unknown = []
    for path in DOC_FILES:
        _, prose = split_blocks(path.read_text(encoding="utf-8"))
        for span in INLINE_CODE.findall(prose):
            name = span.split()[0].split("=", 1)[0] if span.startswith("--") else None
            if name and name not in every_flag:
                unknown.append(f"{path.relative_to(ROOT)}: {span}")
    assert unknown == []


def test_every_command_is_documented_in_the_cli_reference() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [name for name in known_flags() if f"<!-- cli-flags {name} -->" not in reference]
    assert missing == []


def test_readme_links_resolve_to_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    _, prose = split_blocks(readme)
    targets = [t.split("#", 1)[0] for t in LINK.findall(prose) if not re.match(r"[a-z]+:|#", t)]
    assert targets, "README.md links to no page"
    assert [t for t in targets if not (ROOT / t).is_file()] == []


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_files_exist(path: Path) -> None:
    _, prose = split_blocks(path.read_text(encoding="utf-8"))
    missing = []
    for span in INLINE_CODE.findall(prose):
        match = CITED_PATH.match(span)
        if not match or span.startswith("../"):
            continue
        relative = span.split("::", 1)[0]
        found = [p for p in (ROOT / relative, ROOT / "src" / "stocksent" / relative) if p.is_file()]
        if not found:
            missing.append(span)
        elif match.group(1) and not re.search(rf"^\s*(async )?def {match.group(1)}\(", found[0].read_text(), re.M):
            missing.append(span)
    assert missing == []
