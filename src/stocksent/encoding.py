"""Raw text -> word ids for one vocabulary and one set of text options: `TextEncoder`.

The reference is `text.normalise_flat` then `Vocabulary.encode`. Where the compiled core is
installed (`compiled.native()`), the same rules run in C++ with the GIL released, straight from each
message's characters to ids through a hash map of the vocabulary: no Python string per token.

Exactness by construction: the C++ code ports each rule of text.py (the regexes' leftmost-first
order and backtracking included), but it does not decide what a character *is*. The classes the
rules ask about (\\w, \\s, \\d, the apostrophe, the emoji ranges and modifiers, punctuation) and
str.lower() are derived here, at first use, for every code point below `TABLE_SIZE`, by running the
reference's own regular expressions and str.lower over them. A message with a character the table
cannot vouch for (one whose lower case is not a single context-free code point, like 'İ' or
'Σ', or one beyond the table) goes to the reference whole. The port covers text.py as it is:
`REFERENCE_FINGERPRINT` is a digest of the rules, patterns, placeholders, options and the code that
applies them; when text.py changes, the digest differs and every message takes the reference
until the port is updated (tests/test_encoding.py fails meanwhile).

>>> encoder = TextEncoder(vocab, TextOptions())            # doctest: +SKIP
>>> encoder.encode(["$SPY to the moon", "puts"])           # doctest: +SKIP
(array([2, 14, 3, 9, 51]), array([4, 1]))
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
from collections.abc import Sequence

import numpy as np

from stocksent import text
from stocksent.compiled import native
from stocksent.text import TextOptions, normalise_flat
from stocksent.vocab import Vocabulary

log = logging.getLogger(__name__)

TABLE_SIZE = 0x20000  # code points with a derived class: the BMP and the emoji plane
NO_LOWER = 0xFFFFFFFF
RULE_NAMES = ("html_entity", "link", "price", "ticker", "user", "number", "apostrophe")  # csrc/normalise.cpp's order
# The digest of text.py that csrc/normalise.cpp implements (`reference_fingerprint()`).
REFERENCE_FINGERPRINT = "bb207b67c8cea1ef"


def reference_fingerprint() -> str:
    """A digest of everything in text.py the compiled rules depend on."""
    parts = {
        "rules": text.RULES,
        "faster": text._FASTER_PATTERNS,
        "special": text.SPECIAL_TOKENS,
        "placeholders": text._PLACEHOLDERS,
        "patterns": [
            p.pattern
            for p in (
                text._EMOJI_MODIFIERS,
                text._NON_ASCII,
                text._NON_ASCII_KEEP_EMOJI,
                text._PUNCTUATION,
                text._SPACE_EMOJI,
                text._NOT_ALNUM,
            )
        ],
        "options": {name: str(field.default) for name, field in TextOptions.__dataclass_fields__.items()},
        "code": [inspect.getsource(f) for f in (text._cashtag, text._apply_rules, text.normalise)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _class_of(pattern: re.Pattern, chars: str) -> np.ndarray:
    """bool per code point: does `pattern`, a class of single characters, match that character?"""
    runs = re.compile(f"(?:{pattern.pattern})+")  # one replacement per run of them: 7x fewer calls for \w
    marked = runs.sub(lambda m: "\0" * len(m.group()), chars)
    hit = np.frombuffer(marked.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) == 0
    hit[0] = pattern.search("\0") is not None  # the marker is code point 0 itself
    return hit


@functools.lru_cache(maxsize=1)
def character_table() -> tuple[np.ndarray, np.ndarray]:
    """(lower, flags): per code point below TABLE_SIZE, str.lower() of it as one code point (NO_LOWER
    where that is not context-free), and bits of csrc/normalise.h's CharFlag, from the reference."""
    chars = "".join(map(chr, range(TABLE_SIZE)))
    apostrophe = next(re.compile(pattern) for name, pattern, _ in text.RULES if name == "apostrophe")
    classes = (
        re.compile(r"\w"),
        re.compile(r"\s"),
        re.compile(r"\d"),
        apostrophe,
        text._EMOJI_MODIFIERS,
        text._NON_ASCII_KEEP_EMOJI,
        text._NON_ASCII,
        text._SPACE_EMOJI,
        text._PUNCTUATION,
    )
    flags = np.zeros(TABLE_SIZE, dtype=np.uint16)
    for bit, pattern in enumerate(classes):
        flags |= _class_of(pattern, chars).astype(np.uint16) << bit
    lower = np.arange(TABLE_SIZE, dtype=np.uint32)
    for i in (i for i, low in enumerate(map(str.lower, chars)) if low != chars[i]):
        lower[i] = _context_free_lower(chars[i])
    return lower, flags


def _context_free_lower(char: str) -> int:
    """The code point str.lower() turns `char` into wherever it stands, or NO_LOWER (e.g. 'İ' -> two
    code points; 'Σ' -> 'ς' at a word's end, else 'σ')."""
    low = char.lower()
    if len(low) != 1 or ord(low) >= TABLE_SIZE:
        return NO_LOWER
    for before in ("", "a", "A", " "):
        for after in ("", "a", "A", " "):
            if (before + char + after).lower() != before.lower() + low + after.lower():
                return NO_LOWER
    return ord(low)


class TextEncoder:
    """Messages -> (all word ids end to end, each message's length), as the engines take them.

    `core` is "native" (compiled rules and hash map) or "reference" (text.normalise_flat and
    Vocabulary.encode); both give the same ids. Safe to share between threads.
    """

    def __init__(self, vocab: Vocabulary, options: TextOptions):
        self.vocab, self.options = vocab, options
        self._compiled = _compiled_encoder(vocab, options)
        self.core = "native" if self._compiled is not None else "reference"

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """int64 ids of all messages end to end, int64 tokens per message.

        >>> TextEncoder(Vocabulary(["<pad>", "<unk>", "up"]), TextOptions()).encode(["Up up", ""])
        (array([2, 2]), array([2, 0]))
        """
        if self._compiled is None:
            tokens, lengths = normalise_flat(texts, self.options)
            return self.vocab.encode(tokens), np.asarray(lengths, dtype=np.int64)
        ids, lengths, _ = self._compiled.encode(texts)
        return np.frombuffer(ids, dtype=np.int64), np.frombuffer(lengths, dtype=np.int64)

    def tokens(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(tokens end to end, tokens per message, bool per message: the compiled rules made its
        tokens, not the reference): what the tests compare and the benchmark counts."""
        if self._compiled is None:
            tokens, lengths = normalise_flat(texts, self.options)
            return tokens, np.asarray(lengths, dtype=np.int64), np.zeros(len(texts), dtype=bool)
        tokens, lengths, fast = self._compiled.tokens(texts)
        return tokens, np.frombuffer(lengths, dtype=np.int64), np.frombuffer(fast, dtype=np.uint8).astype(bool)


def compiled_text() -> bool:
    """Whether `TextEncoder` normalises with the compiled rules in this process: the core is
    installed and implements this text.py. Where it does, normalising releases the GIL, so threads
    of one process normalise side by side (`stocksent score` then scores in threads, not processes).

    >>> compiled_text()  # doctest: +SKIP
    True
    """
    if native() is None:
        return False
    try:
        current = reference_fingerprint()
    except OSError:  # no source to read (a frozen install): cannot tell what the port would run
        current = "unknown"
    if current != REFERENCE_FINGERPRINT:
        _warn_once(current)
        return False
    return True


def _compiled_encoder(vocab: Vocabulary, options: TextOptions):
    if not compiled_text():
        return None
    module = native()
    lower, flags = character_table()
    replacements = [repl for _, _, repl in text.RULES]  # in RULE_NAMES' order (part of the fingerprint)
    return module.TextEncoder(
        lower=lower,
        flags=flags,
        placeholders=list(text._PLACEHOLDERS),
        replacements=replacements,
        cashtag=text._PLACEHOLDERS[-1][0],
        keep_emoji=options.keep_emoji,
        keep_cashtags=options.keep_cashtags,
        max_tokens=options.max_tokens,
        words=vocab.words,
        ticker_id=vocab.ticker_id,
        reference=functools.partial(normalise_flat, options=options),
    )


@functools.lru_cache(maxsize=1)
def _warn_once(current: str) -> None:
    log.warning(
        "text.py differs from what the compiled normaliser implements (digest %s, expected %s): "
        "messages are normalised by the reference",
        current,
        REFERENCE_FINGERPRINT,
    )
