"""Griffe extension: the `>>>` examples of the docstrings become fenced `pycon` blocks.

The docstrings are plain text with doctest lines; Markdown would read `>>>` as nested quotes and
`x["key"]` as a link. Fencing them here keeps the docstrings as they are (doctest-shaped, readable
in `help()`) and renders them as code. `# doctest:` flags are dropped from the page.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")
FLAG = re.compile(r"\s*#\s*doctest:.*$")


def fence_doctests(text: str) -> str:
    """Each run of doctest lines (prompts and the output lines after them) inside a ```pycon fence.

    >>> fence_doctests(">>> 1 + 1\\n2").splitlines()
    ['```pycon', '>>> 1 + 1', '2', '```']
    """
    out: list[str] = []
    indent: str | None = None
    for line in text.splitlines():
        prompt = PROMPT.match(line)
        if indent is None and prompt:
            indent = prompt.group(1)
            out.append(f"{indent}```pycon")
        elif indent is not None and not prompt and not line.strip():
            out.append(f"{indent}```")
            indent = None
        out.append(FLAG.sub("", line) if prompt else line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
