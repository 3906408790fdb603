"""Message normalisation: the ordered rules that turn a raw StockTwits post into tokens.

Entities are replaced by upper-case placeholder words while the text is lower-case, so they survive
punctuation removal and cannot collide with user text; they become `<TICKER>` etc. at the end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

SPECIAL_TOKENS = ("<TICKER>", "<USER>", "<LINK>", "<PRICE>", "<NUMBER>")

# Pictographs, arrows and symbols that carry sentiment on StockTwits (🚀 🐻 📉 ⬆ ↓ ...).
_EMOJI_RANGES = "\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
# Modifiers that only change an emoji's look: dropped so 👍🏽 and 👍 are one token.
_EMOJI_MODIFIERS = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")

# (name, pattern, replacement), applied in this order to lower-cased text.
RULES: tuple[tuple[str, str, str], ...] = (
    ("html_entity", r"&(?:#\d+|#x[0-9a-f]+|[a-z]+);", " "),
    ("link", r"(?:https?://|www\.)\S+", " LINK "),
    ("price", r"\$\d[\d,]*(?:\.\d+)?[km]?\b|\b\d[\d,]*(?:\.\d+)?\$", " PRICE "),
    ("ticker", r"\$[a-z][a-z0-9]*(?:[.\-][a-z0-9]+)?", " TICKER "),
    ("user", r"@\w+", " USER "),
    ("number", r"\d+(?:[.,:]\d+)*", " NUMBER "),
    ("apostrophe", r"['\u2019]", ""),
)
# The same matches as RULES' price pattern, found 2x faster: every match now starts with one of a set of
# characters, which lets the regex engine skip ahead (the original's `\b\d` hides that from it).
# `(?<!\w\d)` after the first digit is the `\b` before it. tests/test_fastpath.py checks they agree.
_FASTER_PATTERNS = {
    "price": r"[$\d](?:(?<=\$)\d[\d,]*(?:\.\d+)?[km]?\b|(?<=\d)(?<!\w\d)[\d,]*(?:\.\d+)?\$)",
}
_COMPILED = tuple((name, re.compile(_FASTER_PATTERNS.get(name, pattern)), repl) for name, pattern, repl in RULES)
# CASHTAG is the placeholder of a kept ticker symbol: $VXX -> " CASHTAGvxx " -> "$vxx".
_PLACEHOLDERS = (*((token[1:-1], token) for token in SPECIAL_TOKENS), ("CASHTAG", "$"))
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _cashtag(match: re.Match) -> str:
    return f" CASHTAG{_NOT_ALNUM.sub('', match.group()[1:])} "


# Non-ASCII letters vanish inside their word (café -> caf); punctuation separates words.
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_NON_ASCII_KEEP_EMOJI = re.compile(f"[^\\x00-\\x7f{_EMOJI_RANGES}]+")
_PUNCTUATION = re.compile(r"[^A-Za-z0-9\s\x80-\U0010ffff]+")
_SPACE_EMOJI = re.compile(f"([{_EMOJI_RANGES}])")


@dataclass(frozen=True)
class TextOptions:
    """Normalisation options; saved with a model so prediction treats text exactly as training."""

    keep_emoji: bool = False
    # Keep each ticker as its own token ($vxx, $sqqq: volatility and inverse funds say "bearish");
    # tickers the vocabulary does not know still become <TICKER>.
    keep_cashtags: bool = False
    max_tokens: int = 100  # a guard against pathological input; real messages are under 60 tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TextOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _apply_rules(text: str, options: TextOptions) -> str:
    """The rules, in order, on lower-cased text: one message, or many joined by _SEPARATOR."""
    for name, pattern, repl in _COMPILED:
        if name == "ticker" and options.keep_cashtags:
            repl = _cashtag
        text = pattern.sub(repl, text)
    if not text.isascii():  # (every step here only ever changes non-ASCII characters)
        if options.keep_emoji:
            text = _NON_ASCII_KEEP_EMOJI.sub("", _EMOJI_MODIFIERS.sub("", text))
            text = _SPACE_EMOJI.sub(r" \1 ", text)
        else:
            text = _NON_ASCII.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    for word, token in _PLACEHOLDERS:
        if word in text:
            text = text.replace(word, token)
    return text


def normalise(message: str, options: TextOptions = TextOptions()) -> list[str]:
    """Tokens of one message; an empty list when nothing is left."""
    tokens = _apply_rules(message.lower(), options).split()
    return tokens[: options.max_tokens]


# The record separator is whitespace to `\s`, `\S` and str.split, like a message's own start and end:
# no rule can match across it or change it, so rules run on joined messages act on each one alone.
_SEPARATOR = "\x1e"


def _normalised_parts(messages: Sequence[str], options: TextOptions) -> list[str]:
    """Each message's normalised text, by one pass of each rule over all messages joined.

    ASCII messages (~97% of StockTwits) are joined apart from the others: a pure-ASCII string is
    scanned faster, and the non-ASCII steps, which cannot change it, skip it entirely.
    """
    ascii_ = [m.isascii() for m in messages]
    if all(ascii_) or not any(ascii_):
        return _apply_rules(_joined(messages).lower(), options).split(_SEPARATOR)
    parts: list[str] = [""] * len(messages)
    for keep in (True, False):
        index = [i for i, a in enumerate(ascii_) if a is keep]
        texts = _apply_rules(_joined([messages[i] for i in index]).lower(), options).split(_SEPARATOR)
        for i, text in zip(index, texts):
            parts[i] = text
    return parts


def _joined(messages: Sequence[str]) -> str:
    joined = _SEPARATOR.join(messages)
    if joined.count(_SEPARATOR) != len(messages) - 1:  # a message holds one: it is whitespace anyway
        joined = _SEPARATOR.join(m.replace(_SEPARATOR, " ") for m in messages)
    return joined


def normalise_flat(messages: Sequence[str], options: TextOptions = TextOptions()) -> tuple[list[str], list[int]]:
    """All messages' tokens end to end, and how many each message has: what prediction needs.

    The same tokens as `normalise` per message, by one pass of each rule over all messages joined,
    without a list per message: keeping thousands of small lists alive sets off Python's garbage
    collector, which then costs as much as the splitting.
    """
    if not messages:
        return [], []
    parts = _normalised_parts(messages, options)
    lengths = list(map(len, map(str.split, parts)))
    cap = options.max_tokens
    if max(lengths) > cap:
        return ([token for part in parts for token in part.split()[:cap]], [min(length, cap) for length in lengths])
    return _SEPARATOR.join(parts).split(), lengths
