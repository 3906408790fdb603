"""Text as the command line shows it: what a message or a file name holds may not drive the terminal.

A message with an ANSI escape (`\\x1b[2J`, `\\x1b]0;title\\x07`), a C1 control (`\\x9b`), a carriage
return or a bidirectional override (U+202E) would clear the screen, rewrite earlier lines or show
text other than what is there. Every such character is shown as its escape (`\\x1b`, `\\u202e`)
in what the commands print for people; JSON gets the same characters as JSON escapes, which
decode to the very same text.
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls, and the Unicode bidirectional embeddings, overrides and isolates.
_CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SHOWN = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}
# json.dumps escapes C0 itself; the rest as \\u escapes, valid JSON for the same characters.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _CONTROLS if c >= 0x20}


def printable(text: str) -> str:
    """`text` with every control character shown as its escape.

    >>> printable("\\x1b[31mred\\x1b[0m")
    '\\\\x1b[31mred\\\\x1b[0m'
    """
    return text.translate(_SHOWN)


def json_escaped(text: str) -> str:
    """JSON text with no control character left raw: JSON escapes C0 itself, the rest become \\u
    escapes, which decode to the same characters.

    >>> json_escaped('{"message": "\x9b2J"}')
    '{"message": "\\\\u009b2J"}'
    """
    return text.translate(_JSON_ESCAPES)
