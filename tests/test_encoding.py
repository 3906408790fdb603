"""The compiled normaliser and vocabulary (encoding.TextEncoder) against the reference, text.py.

Exactness is the whole contract: the same tokens as `text.normalise` / `normalise_flat` and the same
ids as `Vocabulary.encode` on every message of the three data files and under Hypothesis (arbitrary
Unicode, and text built from the characters the rules treat specially), for every option.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import texts_of
from stocksent import compiled, encoding, text
from stocksent.encoding import TextEncoder, character_table, reference_fingerprint
from stocksent.text import TextOptions, normalise, normalise_flat
from stocksent.vocab import Vocabulary

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = ["StockTwits_SPY_Sentiment_2017.gz", "StockTwits_public_2012_2026.csv.gz", "StockEmotions_2020.csv.gz"]
OPTIONS = [
    TextOptions(),
    TextOptions(keep_emoji=True, keep_cashtags=True),  # the default model's
    TextOptions(keep_emoji=True),
    TextOptions(keep_cashtags=True, max_tokens=7),
]
SETTINGS = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
EMPTY = Vocabulary(["<pad>", "<unk>"])


def messages_of(name: str) -> list[str]:
    """Every message of a data file, read as every command reads it."""
    path = DATA / name
    if not path.is_file():
        pytest.fail(f"real dataset missing: expected it at {path}")
    return texts_of(path)


def encoder(options: TextOptions = TextOptions(), vocab: Vocabulary = EMPTY) -> TextEncoder:
    made = TextEncoder(vocab, options)
    assert made.core == "native", compiled.status()
    return made


def per_message(tokens: list[str], lengths: np.ndarray) -> list[list[str]]:
    ends = np.cumsum(lengths)
    return [tokens[e - n : e] for n, e in zip(lengths.tolist(), ends.tolist())]


# --------------------------------------------------------------------------- the port is current


def test_the_compiled_core_is_built_and_implements_this_text_py() -> None:
    """`make install` builds the extension; a change to text.py must come with the port's update."""
    assert compiled.status()["core"] == "native", compiled.status()
    assert reference_fingerprint() == encoding.REFERENCE_FINGERPRINT, (
        "text.py changed: port the change to csrc/normalise.cpp, then set encoding.REFERENCE_FINGERPRINT"
    )


def test_a_changed_text_py_sends_every_message_to_the_reference(monkeypatch) -> None:
    monkeypatch.setattr(text, "RULES", (*text.RULES, ("shout", "!", " ")))
    assert TextEncoder(EMPTY, TextOptions()).core == "reference"


def test_switched_off_it_is_the_reference_with_the_same_ids(monkeypatch) -> None:
    vocab = Vocabulary(["<pad>", "<unk>", "<TICKER>", "buy", "$spy", "<NUMBER>"])
    texts = ["Buy $SPY 100", "$QQQ", "", "é 🚀"]
    options = TextOptions(keep_cashtags=True)
    fast = encoder(options, vocab).encode(texts)
    monkeypatch.setenv(compiled.SWITCH, "0")
    compiled.reset()
    try:
        slow = TextEncoder(vocab, options)
        assert slow.core == "reference" and compiled.status()["reason"].startswith("switched off")
        np.testing.assert_array_equal(slow.encode(texts)[0], fast[0])
        np.testing.assert_array_equal(slow.encode(texts)[1], fast[1])
    finally:
        compiled.reset()


# --------------------------------------------------------------------------- the character table


def test_the_character_table_is_the_reference_s_classes() -> None:
    lower, flags = character_table()
    assert lower[ord("A")] == ord("a") and lower[ord("É")] == ord("é")
    assert lower[ord("İ")] == encoding.NO_LOWER and lower[ord("Σ")] == encoding.NO_LOWER  # 2 code points; context
    bits = {name: 1 << i for i, name in enumerate(["word", "space", "digit", "apostrophe", "modifier"])}
    assert flags[0x1F] & bits["space"] and flags[0xA0] & bits["space"] and not flags[0x200B] & bits["space"]
    assert flags[ord("é")] & bits["word"] and flags[ord("²")] & bits["word"] and not flags[ord("²")] & bits["digit"]
    assert flags[ord("٣")] & bits["digit"] and not flags[0x1F680] & bits["word"]
    assert flags[0x2019] & bits["apostrophe"] and flags[0xFE0F] & bits["modifier"]


# --------------------------------------------------------------------------- every real message


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_tokens_are_the_reference_s_on_every_message_of_the_data(name) -> None:
    messages = messages_of(name)
    for options in OPTIONS:
        tokens, lengths, fast = encoder(options).tokens(messages)
        reference, reference_lengths = normalise_flat(messages, options)
        assert lengths.tolist() == reference_lengths, options
        assert tokens == reference, options
        assert fast.mean() > 0.999, f"{name}: {fast.mean():.4f} of messages on the compiled path"
    # One at a time too (the reference of the reference), on a sample.
    sample = messages[:: max(1, len(messages) // 2000)]
    assert per_message(*encoder(OPTIONS[1]).tokens(sample)[:2]) == [normalise(m, OPTIONS[1]) for m in sample]


@pytest.mark.slow
def test_ids_are_the_vocabulary_s_on_every_message() -> None:
    messages = [m for name in FILES for m in messages_of(name)]
    options = OPTIONS[1]
    vocab = Vocabulary.build([normalise(m, options) for m in messages[:20000]], min_count=2)
    ids, lengths = encoder(options, vocab).encode(messages)
    tokens, reference_lengths = normalise_flat(messages, options)
    np.testing.assert_array_equal(lengths, reference_lengths)
    np.testing.assert_array_equal(ids, vocab.encode(tokens))
    assert ids.dtype == np.int64 and lengths.dtype == np.int64


# --------------------------------------------------------------------------- Hypothesis

# Every code point, lone surrogates included.
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
# What the rules look at: entity, link, price, ticker, user, number and apostrophe syntax, with
# letters, digits and spaces of other scripts next to them (\w, \d, \s and \b are Unicode in re).
rule_chars = st.sampled_from(
    list("$&#;x0123456789.,:km@_-'’ /abcdefhtpswqAZKMXHTPSW\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x00")
    + ["é", "É", "ß", "İ", "Σ", "ς", "\xa0", "\u2009", "\u3000", "\x85", "\u200b", "\u2028", "٣", "３", "²", "½",
       "ก", "中", "\u0301", "\u00ad", "🚀", "🐻", "👍", "🏽", "\ufe0f", "\u200d", "⬆", "↓", "\u2122", "\U0001f9e0",
       "\U00020000", "\ud800", "K", "Å"]
)  # fmt: skip
pieces = st.sampled_from(
    ["$SPY", "$spy", "$BRK.B", "$brk-a", "$spy.", "$1", "$1,000.50k", "$5m", "$5mm", "$5.k", "$.5", "5$", "12.5$",
     "1,2,3$", "http://", "https://", "www.", "hxxp://", "&amp;", "&#39;", "&#x27;", "&#xzz;", "&;", "@bob", "@_",
     "@", "1:30", "1.2.3", "3.", ".5", "'s", "don’t", "TICKER", "CASHTAG", "<TICKER>", "NUMBER", "Ⅻ"]
)  # fmt: skip
rule_text = st.lists(st.one_of(pieces, st.text(rule_chars, max_size=6)), max_size=10).map("".join)
any_text = st.lists(st.one_of(pieces, st.text(any_char, max_size=8)), max_size=10).map("".join)
options = st.builds(TextOptions, keep_emoji=st.booleans(), keep_cashtags=st.booleans(), max_tokens=st.integers(1, 40))
ENCODERS: dict[TextOptions, TextEncoder] = {}


def same_as_reference(batch: list[str], opts: TextOptions) -> None:
    made = ENCODERS.setdefault(opts, encoder(opts))
    tokens, lengths, _ = made.tokens(batch)
    assert per_message(tokens, lengths) == [normalise(m, opts) for m in batch], batch


@settings(SETTINGS, max_examples=3000)
@given(message=rule_text, opts=options)
@example(message="$5k_", opts=TextOptions())
@example(message="$5,a", opts=TextOptions())
@example(message="$1.5mé", opts=TextOptions())
@example(message="é5$ 5$", opts=TextOptions())
@example(message="$vx1 $a.1b", opts=TextOptions(keep_cashtags=True))
@example(message="https://a\xa0b www.x", opts=TextOptions())
@example(message="Kelvin \u212a $\u212a", opts=TextOptions())
def test_rule_syntax_tokens_are_the_reference_s(message, opts) -> None:
    same_as_reference([message], opts)


@settings(SETTINGS, max_examples=1000)
@given(message=any_text, opts=options)
@example(message="\ud800 $SPY \udfff", opts=TextOptions())
@example(message="a\x1eb", opts=TextOptions(keep_emoji=True))
def test_arbitrary_unicode_tokens_are_the_reference_s(message, opts) -> None:
    same_as_reference([message], opts)


@settings(SETTINGS, max_examples=300)
@given(batch=st.lists(st.one_of(rule_text, any_text), max_size=8), opts=options)
def test_batches_are_the_reference_s(batch, opts) -> None:
    same_as_reference(batch, opts)
    tokens, lengths = normalise_flat(batch, opts)
    vocab = Vocabulary.build([tokens])
    ids, got_lengths = encoder(opts, vocab).encode(batch)
    np.testing.assert_array_equal(got_lengths, lengths)
    np.testing.assert_array_equal(ids, vocab.encode(tokens))


# --------------------------------------------------------------------------- the fast path and its edges


def test_what_the_table_cannot_vouch_for_goes_to_the_reference() -> None:
    batch = ["İstanbul $SPY", "ΑΣ calls", "\U00020000 puts", "plain $SPY 🚀", "café ½ ٣"]
    tokens, lengths, fast = encoder(TextOptions(keep_emoji=True)).tokens(batch)
    assert fast.tolist() == [False, False, False, True, True]
    assert per_message(tokens, lengths) == [normalise(m, TextOptions(keep_emoji=True)) for m in batch]


def test_threads_share_an_encoder() -> None:
    vocab = Vocabulary(["<pad>", "<unk>", "<TICKER>", "buy", "sell"])
    made = encoder(TextOptions(), vocab)
    batch = [f"buy $SPY {i} sell İ" if i % 7 == 0 else f"buy {i} sell" for i in range(5000)]
    expected = made.encode(batch)
    results: list = [None] * 4

    def run(k: int) -> None:
        results[k] = [made.encode(batch) for _ in range(5)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for runs in results:
        for ids, lengths in runs:
            np.testing.assert_array_equal(ids, expected[0])
            np.testing.assert_array_equal(lengths, expected[1])


def test_non_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="strings"):
        encoder().encode(["fine", 3])
