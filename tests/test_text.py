"""Tests for stocksent.text: each normalisation rule with examples, the emoji option, TextOptions."""

from __future__ import annotations

import json

import pytest

from stocksent.text import RULES, SPECIAL_TOKENS, TextOptions, normalise, normalise_flat

EMOJI = TextOptions(keep_emoji=True)


@pytest.mark.parametrize(
    "message, tokens",
    [
        # lower case
        ("Hello WORLD", ["hello", "world"]),
        ("BUY Calls", ["buy", "calls"]),
        # tickers, any case, with a class suffix, glued to a word
        ("$AAPL up", ["<TICKER>", "up"]),
        ("$spy and $Tsla", ["<TICKER>", "and", "<TICKER>"]),
        ("$BRK.B is fine", ["<TICKER>", "is", "fine"]),
        ("buy$SPY", ["buy", "<TICKER>"]),
        # users
        ("@bob said", ["<USER>", "said"]),
        ("thanks @Jane_Doe99!", ["thanks", "<USER>"]),
        # links
        ("see https://t.co/abc123 now", ["see", "<LINK>", "now"]),
        ("http://example.com/a?b=1&c=2", ["<LINK>"]),
        ("go to www.stocktwits.com/x", ["go", "to", "<LINK>"]),
        # prices: a dollar sign and a number, before or after, with cents, thousands, k/m
        ("$12.50 target", ["<PRICE>", "target"]),
        ("sold at $245", ["sold", "at", "<PRICE>"]),
        ("$1,250.75 or 12$ or $5k", ["<PRICE>", "or", "<PRICE>", "or", "<PRICE>"]),
        # other numbers
        ("up 3.5% in 2017", ["up", "<NUMBER>", "in", "<NUMBER>"]),
        ("at 10:30, 1,000 shares", ["at", "<NUMBER>", "<NUMBER>", "shares"]),
        ("3x", ["<NUMBER>", "x"]),
        # HTML entities dropped (named, decimal, hex)
        ("AT&amp;T &gt; VZ", ["at", "t", "vz"]),
        ("&#39;sell&#x27; &quot;now&quot;", ["sell", "now"]),
        # non-ASCII dropped, inside a word too
        ("café naïve", ["caf", "nave"]),
        ("€50 ¥", ["<NUMBER>"]),
        # punctuation dropped, apostrophes join
        ("wow!!! ...what? (yes)", ["wow", "what", "yes"]),
        ("don't won\u2019t", ["dont", "wont"]),
        ("short-term #SPY", ["short", "term", "spy"]),
        # whitespace of any kind splits
        ("  a\tb\nc\r\nd  ", ["a", "b", "c", "d"]),
        # nothing left
        ("", []),
        ("!!! ... ???", []),
        ("🚀🚀🚀", []),
    ],
)
def test_rules(message: str, tokens: list[str]) -> None:
    assert normalise(message) == tokens


def test_placeholders_cannot_collide_with_user_text() -> None:
    # The words the rules use internally are lower-cased user text, never a special token.
    assert normalise("TICKER user LINK Price number") == ["ticker", "user", "link", "price", "number"]
    assert normalise("<TICKER>") == ["ticker"]
    assert set(normalise("$SPY @a http://x $1 2")) <= set(SPECIAL_TOKENS)


def test_rule_order_price_before_ticker_before_number() -> None:
    assert [name for name, _, _ in RULES][:6] == ["html_entity", "link", "price", "ticker", "user", "number"]
    # A link's digits and a ticker-like path are part of the link, not numbers or tickers.
    assert normalise("https://x.com/$SPY/2017") == ["<LINK>"]
    assert normalise("$SPY 250") == ["<TICKER>", "<NUMBER>"]
    assert normalise("$250") == ["<PRICE>"]


def test_keep_emoji_keeps_pictographs_as_separate_tokens() -> None:
    assert normalise("$SPY to the moon🚀🚀 🐻📉", EMOJI) == ["<TICKER>", "to", "the", "moon", "🚀", "🚀", "🐻", "📉"]
    # Without the option they vanish like any other non-ASCII character.
    assert normalise("$SPY to the moon🚀🚀 🐻📉") == ["<TICKER>", "to", "the", "moon"]
    # Skin tones and variation selectors only change the look: one token either way.
    assert normalise("👍🏽 👍 ❤️", EMOJI) == ["👍", "👍", "❤"]
    # Arrows count; other non-ASCII letters are still dropped.
    assert normalise("up⬆ café", EMOJI) == ["up", "⬆", "caf"]
    assert normalise("🚀", EMOJI) == ["🚀"]


def test_max_tokens_caps_the_output() -> None:
    message = " ".join(["word"] * 299 + ["last"])
    assert len(normalise(message)) == 100
    assert normalise(message, TextOptions(max_tokens=3)) == ["word"] * 3
    assert normalise(message, TextOptions(max_tokens=300))[-1] == "last"


def test_normalise_flat_is_normalise_per_message() -> None:
    messages = ["$SPY up 🚀", "", "@a sell"]
    expected = [normalise(m, EMOJI) for m in messages]
    assert normalise_flat(messages, EMOJI) == ([t for tokens in expected for t in tokens], [len(t) for t in expected])
    assert normalise_flat([]) == ([], [])


def test_text_options_round_trip() -> None:
    options = TextOptions(keep_emoji=True, max_tokens=42)
    data = options.to_dict()
    assert data["keep_emoji"] is True and data["max_tokens"] == 42
    assert set(data) == {f for f in TextOptions.__dataclass_fields__}
    assert TextOptions.from_dict(json.loads(json.dumps(data))) == options
    # Unknown keys (from a newer version) are ignored; missing ones take their defaults.
    assert TextOptions.from_dict({**data, "future_option": 1}) == options
    assert TextOptions.from_dict({}) == TextOptions()
    assert TextOptions() == TextOptions(keep_emoji=False, max_tokens=100)
    every = TextOptions(
        **{name: not value if isinstance(value, bool) else 7 for name, value in TextOptions().to_dict().items()}
    )
    assert TextOptions.from_dict(json.loads(json.dumps(every.to_dict()))) == every


def test_keep_cashtags_keeps_each_ticker_as_its_own_token() -> None:
    options = TextOptions(keep_cashtags=True)
    assert normalise("$VXX and $SPY up, buy$SQQQ", options) == ["$vxx", "and", "$spy", "up", "buy", "$sqqq"]
    assert normalise("$BRK.B", options) == ["$brkb"]
    # Prices are still prices, and ordinary words that spell the placeholder stay words.
    assert normalise("$12.50 cashtag", options) == ["<PRICE>", "cashtag"]
    assert normalise("$VXX and $SPY") == ["<TICKER>", "and", "<TICKER>"]


def test_real_messages_tokens_are_clean(real_data_path) -> None:
    from conftest import texts_of

    messages = texts_of(real_data_path)[:3000]
    for options in (TextOptions(), EMOJI):
        for token in normalise_flat(messages, options)[0]:
            assert token in SPECIAL_TOKENS or token == token.lower(), token
            assert token.strip() == token and token
            if not options.keep_emoji:
                assert token.isascii(), token
    # The real data is full of tickers, so the placeholder appears in most messages.
    with_ticker = sum("<TICKER>" in normalise(m) for m in messages)
    assert with_ticker > len(messages) // 2
