"""Message normalisation: the ordered rules that turn a raw StockTwits post into tokens.

Entities are replaced by upper-case placeholder words while the text is lower-case, so they survive
punctuation removal and cannot collide with user text; they become `<TICKER>` etc. at the end.
"""

from __future__ import annotations

import re
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
_COMPILED = tuple((name, re.compile(pattern), repl) for name, pattern, repl in RULES)
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
    def from_dict(cls, data: dict) -> "TextOptions":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def normalise(message: str, options: TextOptions = TextOptions()) -> list[str]:
    """Tokens of one message; an empty list when nothing is left."""
    text = message.lower()
    for name, pattern, repl in _COMPILED:
        if name == "ticker" and options.keep_cashtags:
            repl = _cashtag
        text = pattern.sub(repl, text)
    if options.keep_emoji:
        text = _NON_ASCII_KEEP_EMOJI.sub("", _EMOJI_MODIFIERS.sub("", text))
        text = _SPACE_EMOJI.sub(r" \1 ", text)
    elif not text.isascii():
        text = _NON_ASCII.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    for word, token in _PLACEHOLDERS:
        if word in text:
            text = text.replace(word, token)
    tokens = text.split()
    return tokens[: options.max_tokens]


def normalise_many(messages: list[str], options: TextOptions = TextOptions()) -> list[list[str]]:
    return [normalise(m, options) for m in messages]
