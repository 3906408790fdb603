"""Hostile input, generated: every path ends in a result or a clean error, never another exception.

Property-based (Hypothesis, derandomized so CI sees the same examples every run):
- text normalisation: never raises; tokens are non-empty strings without whitespace, at most
  max_tokens of them; the batched path (normalise_flat) gives exactly what
  normalise gives per message, so no message's text leaks into its neighbour's.
- the one reader (`stocksent.readers`, what every command reads through): arbitrary bytes (and
  JSON-, CSV- and gzip-shaped bytes) under every extension, strict or not, give batches of text,
  bad rows with a reason, or a one-line StocksentError.
- the service's request parser: arbitrary bodies give messages or an ApiError (413/422) whose reply
  is short, valid UTF-8 JSON.
And schemathesis against the app's own OpenAPI schema, in process over ASGI: no 5xx, every reply
valid JSON that conforms to the schema, every body the schema rejects refused with a 4xx.
"""

from __future__ import annotations

import gzip
import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stocksent.errors import StocksentError
from stocksent.text import TextOptions, normalise, normalise_flat

SETTINGS = settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# Every code point, lone surrogates included (what a JSON "\ud800" escape or a bad decoder gives).
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
# Text that looks like StockTwits (cashtags, emoji, URLs, numbers, the record separator) mixed with anything.
pieces = st.sampled_from(
    ["$SPY", "$spy", "$BRK.B", " ", "\n", "\x1e", "\x00", "🚀", "👍🏽", "https://x.co/a?b=1", "@bob", "12.5%",
     "$150.25", "calls", "puts", "İ", "ß", "\u200b", "\ufeff", "<TICKER>", "<unk>", "..", "!!!", "'s", "-"]
)  # fmt: skip
messages = st.lists(st.one_of(pieces, st.text(any_char, max_size=8)), max_size=12).map("".join)
options = st.builds(TextOptions, keep_emoji=st.booleans(), keep_cashtags=st.booleans(), max_tokens=st.integers(1, 40))


# --------------------------------------------------------------------------- text normalisation


@settings(SETTINGS, max_examples=300)
@given(message=messages, opts=options)
@example(message="\ud800 $SPY \udfff", opts=TextOptions())
@example(message="a\x1eb", opts=TextOptions(keep_emoji=True))
def test_normalise_never_raises_and_gives_clean_tokens(message, opts):
    tokens = normalise(message, opts)
    assert isinstance(tokens, list) and len(tokens) <= opts.max_tokens
    for token in tokens:
        assert isinstance(token, str) and token, tokens
        assert not any(c.isspace() for c in token) and "\x1e" not in token, tokens


@settings(SETTINGS, max_examples=150)
@given(batch=st.lists(messages, max_size=8), opts=options)
@example(batch=["a\x1eb", "c"], opts=TextOptions())
@example(batch=["ascii $SPY", "émoji 🚀 $SPY", ""], opts=TextOptions(keep_emoji=True, keep_cashtags=True))
def test_batched_normalisation_is_per_message_normalisation(batch, opts):
    one_by_one = [normalise(m, opts) for m in batch]
    tokens, lengths = normalise_flat(batch, opts)
    assert lengths == [len(t) for t in one_by_one]
    assert tokens == [token for t in one_by_one for token in t]


# --------------------------------------------------------------------------- file readers

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(any_char, max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["message", "body", "sentiment", "label", "entities", "x"]), inner, max_size=4),
    ),
    max_leaves=12,
)


def to_json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


csv_cells = st.text(st.sampled_from(string.printable + '"é🚀\x00\ufeff'), max_size=12)
csv_text = st.lists(st.lists(csv_cells, min_size=1, max_size=4).map(",".join), max_size=6).map("\n".join)
file_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(to_json),
    st.lists(json_values.map(to_json), max_size=5).map(b"\n".join),
    csv_text.map(lambda t: ("message,sentiment\n" + t).encode("utf-8", "surrogatepass")),
    csv_text.map(str.encode),
    st.binary(max_size=200).map(gzip.compress),
    json_values.map(lambda v: gzip.compress(to_json(v))),
)


@settings(SETTINGS, max_examples=300)
@given(
    data=file_bytes,
    suffix=st.sampled_from([".csv", ".jsonl", ".json", ".txt", ".csv.gz", ".jsonl.gz", ".parquet", ""]),
    strict=st.booleans(),
    text_column=st.sampled_from([None, "message", "body"]),
)
@example(data=b"[" * 100_000, suffix=".json", strict=False, text_column=None)
@example(data=b"[" * 100_000 + b"]" * 100_000, suffix="", strict=False, text_column=None)
@example(data=b'"' + b"a" * 200_000, suffix=".csv", strict=False, text_column=None)
@example(
    data=b"\xef\xbb\xbfmessage\n\xed\xa0\x80\n", suffix=".csv", strict=False, text_column=None
)  # an encoded surrogate
@example(data="message\nhi\n".encode("utf-16"), suffix=".csv", strict=False, text_column=None)
@example(data=b'{"message": "a\\ud800"}\n', suffix=".jsonl", strict=True, text_column=None)
def test_readers_give_records_or_one_line_errors(data, suffix, strict, text_column):
    """The one reader every command uses: batches whose text column is text, bad rows with a reason,
    or one line of StocksentError; never another exception."""
    from stocksent.columns import resolve_text_column
    from stocksent.readers import BadRow, read_chunks

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        bad: list[BadRow] = []
        try:
            for chunk in read_chunks(path, text_column, batch_rows=7, strict=strict, on_bad_row=bad.append):
                assert 0 < chunk.batch.num_rows <= 7 and len(chunk.lines) == chunk.batch.num_rows
                text = chunk.batch.column(resolve_text_column(chunk.batch.schema.names, text_column))
                assert text.null_count == 0 and all(isinstance(t, str) for t in text.to_pylist())
        except StocksentError as err:
            assert str(err) and "\n" not in str(err) and "Traceback" not in str(err)
        assert all(str(row) and "\n" not in row.reason for row in bad)


# --------------------------------------------------------------------------- the request parser

request_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(to_json),
    st.dictionaries(st.text(any_char, max_size=300), json_values, max_size=4)
    .map(lambda d: {"messages": ["a"], **d})
    .map(to_json),
    st.lists(st.one_of(st.text(any_char, max_size=30), json_values), max_size=6).map(
        lambda m: to_json({"messages": m})
    ),
    st.integers(1, 3000).map(lambda depth: b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"),
)


@settings(SETTINGS, max_examples=400)
@given(body=request_bodies)
@example(body=b'{"messages": ["a"], "\\ud800": 1}')
@example(body=b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
@example(body=b'{"messages": ["a"], "x": NaN}')
@example(body=to_json({"messages": ["a"] * 2000}))
@example(body=to_json({"messages": ["a" * 10_001]}))
def test_request_parser_gives_messages_or_a_short_json_error(body):
    pytest.importorskip("fastapi")
    from stocksent.serving.app import ApiError, parse_messages
    from stocksent.serving.limits import MAX_CHARS, MAX_MESSAGES

    try:
        messages = parse_messages(body)
    except ApiError as err:
        assert err.status in (413, 422)
        reply = err.response()
        text = reply.body.decode("utf-8")  # strict: valid UTF-8
        parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a reply"))
        assert parsed["error"] == err.code and "\n" not in parsed["message"]
        assert len(reply.body) < 2000, len(reply.body)
        return
    assert isinstance(messages, list) and len(messages) <= MAX_MESSAGES
    assert all(isinstance(m, str) and len(m) <= MAX_CHARS for m in messages)


# --------------------------------------------------------------------------- schemathesis over the OpenAPI schema


@pytest.fixture(scope="module")
def api_schema(small_model_dir):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.config import SchemathesisConfig

    from stocksent.serving.factory import create_app

    # A body the schema refuses gets 422, or 413 where it breaks a limit (too many messages, too long):
    # both documented; schemathesis's default list of rejections lacks 413.
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": ["413", "422"]}}}
    )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(small_model_dir), config=config)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_the_api_holds_to_its_schema(api_schema, mode):
    """Schema-valid requests (positive) on every route, schema-invalid bodies (negative) on /v1/predict."""
    from schemathesis.generation import GenerationMode

    if mode == "positive":
        strategy = api_schema.as_strategy(generation_mode=GenerationMode.POSITIVE)
    else:
        strategy = api_schema["/v1/predict"]["POST"].as_strategy(generation_mode=GenerationMode.NEGATIVE)
    seen = []

    @settings(SETTINGS, max_examples=60 if mode == "positive" else 100)
    @given(case=strategy)
    def holds(case):
        response = case.call()
        seen.append((case.method, case.path, response.status_code))
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert response.headers["content-type"][0].startswith("application/json")
        json.loads(response.content, parse_constant=lambda name: pytest.fail(f"{name} in a reply"))
        case.validate_response(response)  # status documented, body conforms, invalid input refused

    holds()
    statuses = {status for _, _, status in seen}
    assert (200 in statuses) if mode == "positive" else statuses <= {413, 422}, statuses
