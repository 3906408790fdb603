"""stocksent.readers, the one reader: every format users have, bad input as one clear line, and the limits.

(The streaming contract itself, batches and line numbers, is tests/test_batch_readers.py.)
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line, write
from stocksent.columns import find_column, parse_labels, resolve_text_column
from stocksent.errors import StocksentError
from stocksent.readers import BadRow, format_of, iter_batches, read_chunks, read_stream


def records(path, strict: bool = True, **kwargs) -> list[dict]:
    """Every row as {"message", "sentiment"}: the columns found by the one rule, bad rows raising."""
    out = []
    for chunk in read_chunks(path, strict=strict, **kwargs):
        names = chunk.batch.schema.names
        text, tag = resolve_text_column(names, kwargs.get("text_column")), find_column(names, ("sentiment",))
        tags = chunk.batch.column(tag).to_pylist() if tag else [None] * chunk.batch.num_rows
        out += [{"message": m, "sentiment": t} for m, t in zip(chunk.batch.column(text).to_pylist(), tags)]
    return out


def texts(path, **kwargs) -> list[str]:
    return [r["message"] for r in records(path, **kwargs)]


def bad_rows(path, **kwargs) -> list[BadRow]:
    found: list[BadRow] = []
    for _ in iter_batches(path, on_bad_row=found.append, **kwargs):
        pass
    return found


# --------------------------------------------------------------------------- the real dataset


def test_real_dataset_counts_and_first_row(real_data_path: Path) -> None:
    rows = records(real_data_path)
    assert len(rows) == 96_967
    assert Counter(r["sentiment"] for r in rows) == {"bullish": 53_704, "bearish": 43_263}
    assert rows[0] == {"message": "$SPY crazy day so far!", "sentiment": "bearish"}
    # Quoted fields keep their embedded newlines, commas and quotes.
    assert any("\n" in r["message"] for r in rows) and any('"' in r["message"] for r in rows)
    labels = np.concatenate(
        [parse_labels(c.batch.column("sentiment"), "x", c.lines) for c in read_chunks(real_data_path)]
    )
    assert Counter(labels.tolist()) == {1: 53_704, 0: 43_263}


# --------------------------------------------------------------------------- formats


def test_csv_with_unnamed_index_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv", ',message,sentiment\n0,"up, up, away",bullish\n1,"he said ""sell""\nnow 📉",bearish\n'
    )
    assert records(path) == [
        {"message": "up, up, away", "sentiment": "bullish"},
        {"message": 'he said "sell"\nnow 📉', "sentiment": "bearish"},
    ]


def test_csv_without_index_header_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "b.csv", "Sentiment,MESSAGE\r\nBullish,moon\r\n BEARISH ,crash\r\n")
    assert texts(path) == ["moon", "crash"]
    (chunk,) = read_chunks(path)
    assert parse_labels(chunk.batch.column("Sentiment"), "b.csv").tolist() == [1, 0]


def test_a_text_column_is_read_by_every_command_alike(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,text\n1,hello\n2,world\n")
    assert records(path) == [{"message": "hello", "sentiment": None}, {"message": "world", "sentiment": None}]


def test_csv_gz_and_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b",message,sentiment\n0,$SPY up,bullish\n"))
    assert records(path) == [{"message": "$SPY up", "sentiment": "bullish"}]
    hidden = tmp_path / "data.csv"  # gzip bytes under a plain .csv name
    hidden.write_bytes(gzip.compress(b"message,sentiment\nhi,bearish\n"))
    assert records(hidden) == [{"message": "hi", "sentiment": "bearish"}]
    other = tmp_path / "export.gz"  # a .gz name without an inner extension: sniffed as CSV from its header
    other.write_bytes(gzip.compress(b",message,sentiment\n0,hi,bullish\n"))
    assert format_of(other) == "csv" and records(other) == [{"message": "hi", "sentiment": "bullish"}]


def test_jsonl_with_message_and_body(tmp_path: Path) -> None:
    lines = [
        {"message": "first", "sentiment": "Bullish"},
        {"body": "second", "entities": {"sentiment": {"basic": "Bearish"}}},
        {"body": "third", "entities": {"sentiment": None}},
        {"message": "fourth"},
    ]
    path = write(tmp_path / "e.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert records(path) == [
        {"message": "first", "sentiment": "Bullish"},
        {"message": "second", "sentiment": "Bearish"},
        {"message": "third", "sentiment": None},
        {"message": "fourth", "sentiment": None},
    ]


def test_jsonl_and_lists_detected_by_content(tmp_path: Path) -> None:
    # The first object gives the columns (later new fields are left out with a warning); the text may
    # be under any of message, body, text in each object.
    path = write(tmp_path / "noext", '{"message": "a", "sentiment": null}\n{"body": "b", "sentiment": "bearish"}\n')
    assert records(path) == [{"message": "a", "sentiment": None}, {"message": "b", "sentiment": "bearish"}]
    listed = write(tmp_path / "list", json.dumps([{"body": "x", "entities": {"sentiment": {"basic": "Bullish"}}}]))
    assert records(listed) == [{"message": "x", "sentiment": "Bullish"}]


def test_stocktwits_api_json(tmp_path: Path) -> None:
    response = {
        "symbol": {"symbol": "SPY"},
        "messages": [
            {"id": 1, "body": "$SPY ripping", "entities": {"sentiment": {"basic": "Bullish"}}},
            {"id": 2, "body": "$SPY meh", "entities": {"sentiment": None}},
            {"id": 3, "body": "$SPY no entities", "entities": None},
            {"id": 4, "body": "$SPY dump", "entities": {"sentiment": {"basic": "Bearish"}}},
        ],
    }
    path = write(tmp_path / "api.json", json.dumps(response, indent=2))
    assert [r["sentiment"] for r in records(path)] == ["Bullish", None, None, "Bearish"]


def test_plain_text_keeps_every_line_in_its_place(tmp_path: Path) -> None:
    path = write(tmp_path / "msgs.txt", "$SPY to the moon\n\n   \nsell, sell, sell\r\n{not json}\n")
    assert texts(path) == ["$SPY to the moon", "", "   ", "sell, sell, sell", "{not json}"]
    assert [chunk.lines.tolist() for chunk in read_chunks(path)] == [[1, 2, 3, 4, 5]]


def test_unknown_extension_is_plain_text_unless_it_has_a_message_header(tmp_path: Path) -> None:
    assert texts(write(tmp_path / "msgs.dat", "buy, now\nsell\n")) == ["buy, now", "sell"]
    assert texts(write(tmp_path / "table.dat", "id,message\n1,sell\n")) == ["sell"]


def test_bracketed_text_without_extension_is_not_json(tmp_path: Path) -> None:
    assert texts(write(tmp_path / "msgs", "[SPY] up\nnew high [ATH]\n")) == ["[SPY] up", "new high [ATH]"]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffmessage,sentiment\nhi,bullish\n".encode("utf-8"))
    assert texts(path) == ["hi"]
    text = tmp_path / "bom.txt"
    text.write_bytes("\ufeffhi\n".encode("utf-8"))
    assert texts(text) == ["hi"]


def test_parquet_and_directories(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["a", "b"], "sentiment": ["Bullish", None]}), tmp_path / "x.parquet")
    write(tmp_path / "y.csv", "body,sentiment\nc,bearish\n")
    assert records(tmp_path) == [
        {"message": "a", "sentiment": "Bullish"},
        {"message": "b", "sentiment": None},
        {"message": "c", "sentiment": "bearish"},
    ]
    write(tmp_path / "z.csv", "body,other\nd,e\n")
    with pytest.raises(StocksentError, match="columns"):  # one schema per stream
        records(tmp_path)


# --------------------------------------------------------------------------- bad input


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(StocksentError) as exc:
        records(missing)
    assert assert_one_line(exc) == f"no such file: {missing}"
    with pytest.raises(StocksentError, match="holds no") as exc:
        records(tmp_path)
    assert_one_line(exc)


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n", gzip.compress(b""), b"\xef\xbb\xbf"])
@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl", "empty.json", "empty.txt", "empty"])
def test_empty_file(tmp_path: Path, content: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(StocksentError, match="is empty") as exc:
        records(path)
    assert_one_line(exc)


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    assert records(write(tmp_path / "h.csv", "message,sentiment\n")) == []


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("message,sentiment\nfine,bullish\ncaf\u00e9,bearish\n".encode("latin-1"))
    with pytest.raises(StocksentError, match=r"line 3: column 'message' is not UTF-8") as exc:
        records(path)
    assert_one_line(exc)
    packed = tmp_path / "bad.csv.gz"
    packed.write_bytes(gzip.compress(b"message\n1\n2\n3\nbad \xff byte\n"))
    with pytest.raises(StocksentError, match=r"line 5: column 'message' is not UTF-8"):
        records(packed)
    text = tmp_path / "bad.txt"
    text.write_bytes(b"message\n1\n2\n\xe2\x82\n")  # a sequence cut short
    with pytest.raises(StocksentError, match=r"line 4: not UTF-8"):
        records(text)
    assert texts(
        write(tmp_path / "e.csv", '\ufeffmessage,sentiment\n"🚀 up\r\nmore",bullish\r\ncafé ☕,bearish\n')
    ) == [
        "🚀 up\r\nmore",
        "café ☕",
    ]


@pytest.mark.parametrize("name", ["cut.gz", "cut.csv.gz", "cut.jsonl.gz", "cut.txt.gz"])
def test_a_truncated_gzip_says_so(tmp_path: Path, name: str) -> None:
    """Issue 20 item 19: never "empty or has no header row"."""
    path = tmp_path / name
    data = b"message\n" + b"".join(b"hello %d\n" % i for i in range(20000)) if "jsonl" not in name else b""
    data = data or b"".join(b'{"message": "hello %d"}\n' % i for i in range(20000))
    for cut in (30, len(gzip.compress(data)) // 2):
        path.write_bytes(gzip.compress(data)[:cut])
        with pytest.raises(StocksentError, match="truncated or corrupt") as exc:
            records(path)
        assert "gzip" in assert_one_line(exc)


@pytest.mark.parametrize(
    "name, content, error",
    [
        ("q.csv", "message,sentiment\nok,bullish\n,,bearish\nmore,bullish\n", r"line 3: wrong number of fields"),
        ("bad.jsonl", '{"message": "ok"}\n\n{"message": "oops",}\n', r"line 3: invalid JSON"),
        ("bad.json", '{\n  "messages": [\n    {"body": "x"}\n    {"body": "y"}\n  ]\n}\n', r"line 4: invalid JSON"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, name: str, content: str, error: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(StocksentError, match=error) as exc:
        records(path)
    assert_one_line(exc)
    assert len(bad_rows(path)) == 1  # without strict: counted, and the other rows read


def test_json_objects_without_message(tmp_path: Path) -> None:
    with pytest.raises(StocksentError, match=r"line 2: 'message' is missing \(fields: id, txt\)"):
        records(write(tmp_path / "x.jsonl", '{"message": "a"}\n{"id": 1, "txt": "b"}\n'))
    with pytest.raises(StocksentError, match=r"no 'message', 'body' or 'text' column \(columns: 'cursor', 'symbol'\)"):
        records(write(tmp_path / "y.json", '{"cursor": {}, "symbol": "SPY"}'))
    with pytest.raises(StocksentError, match="'body' is missing"):
        records(write(tmp_path / "z.json", '{"messages": [{"body": null}]}'))


def test_csv_without_message_column_names_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "id,tweet,label\n1,hi,bullish\n")
    with pytest.raises(
        StocksentError, match=r"no 'message', 'body' or 'text' column \(columns: 'id', 'tweet', 'label'\)"
    ):
        records(path)


def test_error_messages_show_a_few_short_keys(tmp_path: Path) -> None:
    obj = {f"key{i}-" + "x" * 1000: 1 for i in range(1000)}
    with pytest.raises(StocksentError, match="and 992 more") as exc:
        records(write(tmp_path / "k.jsonl", json.dumps(obj) + "\n"))
    assert len(assert_one_line(exc)) < 600


def test_lone_surrogate_escapes_become_the_replacement_character(tmp_path: Path) -> None:
    assert texts(write(tmp_path / "s.jsonl", '{"message": "a\\ud800b"}\n')) == ["a\ufffdb"]


def test_reading_streams_in_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "m.txt", "".join(f"message {i}\n" for i in range(25)))
    chunks = list(read_chunks(path, batch_rows=10))
    assert [c.batch.num_rows for c in chunks] == [10, 10, 5]
    assert [t for c in chunks for t in c.batch.column("message").to_pylist()] == texts(path)


def test_stdin_lines_are_checked_as_they_arrive() -> None:
    got = [c.batch.column("message").to_pylist() for c in read_stream(io.BytesIO(b"a\r\n\n  \nb"), batch_rows=1)]
    assert got == [["a"], [""], ["  "], ["b"]]  # blank lines too: output lines up with input
    seen: list[BadRow] = []
    assert [c.batch.num_rows for c in read_stream(io.BytesIO(b"ok\n\xff\nfine\n"), on_bad_row=seen.append)] == [2]
    assert [str(b) for b in seen] == ["stdin line 2: not UTF-8 (bad byte at offset 0); re-save the file as UTF-8"]


# --------------------------------------------------------------------------- hostile files and the limits


def test_dev_zero_is_refused_at_once() -> None:
    with pytest.raises(StocksentError, match=r"/dev/zero is not a text file: it starts with NUL bytes") as exc:
        next(iter_batches("/dev/zero"))
    assert_one_line(exc)


@pytest.mark.parametrize("name", ["u16.txt", "u16.csv", "u16.jsonl", "u16"])
def test_utf16_is_refused_with_advice(tmp_path: Path, name: str) -> None:
    """Issue 20 item 20: a clear "not UTF-8" line, not a garbled column list."""
    path = tmp_path / name
    path.write_bytes("message\nhello\nworld\n".encode("utf-16"))
    with pytest.raises(StocksentError, match="UTF-16.*not UTF-8") as exc:
        records(path)
    assert_one_line(exc)


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json line 1"),
        ("deep.jsonl", '{"message": "a"}\n' + '{"x":' * 100_000 + "1" + "}" * 100_000 + "\n", "line 2"),
        ("deep", '{"message": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep line 1"),
    ],
)
def test_deeply_nested_json_is_a_bad_row_never_a_recursion_error(tmp_path, name, content, where) -> None:
    """Issue 20 item 14 (the reader's half): one clear line, and the other rows still read."""
    path = write(tmp_path / name, content)
    with pytest.raises(StocksentError, match="nested too deeply") as exc:
        records(path)
    assert where in assert_one_line(exc)
    assert [b.reason for b in bad_rows(path)] == ["JSON nested too deeply to read; messages are flat objects"]


def test_a_line_over_the_cap_is_a_bad_row_and_the_rest_is_read(tmp_path: Path, monkeypatch) -> None:
    """Issue 20 item 3: one cap for every reader, a skipped bad row, never the line in memory."""
    from stocksent.readers import json as json_reader
    from stocksent.readers import plain

    monkeypatch.setattr(json_reader, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(plain, "MAX_RECORD_BYTES", 1000)
    long = json.dumps({"message": "x" * 5000})
    path = tmp_path / "long.jsonl.gz"
    path.write_bytes(gzip.compress(f'{{"message": "a"}}\n{long}\n{{"message": "b"}}\n'.encode()))
    assert [str(b) for b in bad_rows(path)] == [
        f"{path} line 2: line over 1,000 bytes, the most one message row may hold"
    ]
    assert texts(path, strict=False) == ["a", "b"]
    text = write(tmp_path / "long.txt", "short\n" + "x" * 5000 + "\nafter\n")
    assert [b.line for b in bad_rows(text)] == [2] and texts(text, strict=False) == ["short", "after"]


def test_a_json_document_over_its_cap_is_one_line(tmp_path: Path, monkeypatch) -> None:
    from stocksent.readers import json as json_reader

    monkeypatch.setattr(json_reader, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(StocksentError, match=r"over 100 bytes.*JSON Lines") as exc:
        records(write(tmp_path / "big.json", json.dumps([{"body": "x" * 50}] * 5)))
    assert_one_line(exc)


def test_a_csv_record_longer_than_the_block_is_read_and_one_over_the_cap_is_a_bad_row(tmp_path, monkeypatch) -> None:
    """Issue 20 item 18: pyarrow's "straddling object" stopped the whole file; now the long record is
    read, the one over the cap is a bad row with its line, and every other row is read."""
    from stocksent.readers import csv as csv_reader

    monkeypatch.setattr(csv_reader, "BLOCK", 1 << 12)
    monkeypatch.setattr(csv_reader, "MAX_RECORD_BYTES", 1 << 16)
    before = "".join(f'{i},"row {i}\nline two"\n' for i in range(300))
    data = f'id,message\n{before}300,"{"a" * 30_000}"\n301,"{"b" * 100_000}"\n302,after\n303,"x,""y"""\n'
    path = tmp_path / "long.csv"
    for target in (path, tmp_path / "long.csv.gz"):
        target.write_bytes(gzip.compress(data.encode()) if target.suffix == ".gz" else data.encode())
        found = bad_rows(target)
        assert [(b.line, b.reason.split(",")[0]) for b in found] == [(603, "a record over 65")]
        rows = [(c.batch.to_pylist(), c.lines.tolist()) for c in read_chunks(target)]
        messages = [r["message"] for batch, _ in rows for r in batch]
        lines = [line for _, batch_lines in rows for line in batch_lines]
        assert len(messages) == 303 and messages[300] == "a" * 30_000 and messages[301:] == ["after", 'x,"y"']
        assert lines[:2] == [2, 4] and lines[300:] == [602, 604, 605]


@pytest.mark.slow
def test_a_real_record_over_64_mib_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(b'message,n\nfirst,1\n"')
        for _ in range(70):
            handle.write(b"y" * (1 << 20))
        handle.write(b'",2\nlast,3\n')
    assert [b.line for b in bad_rows(path)] == [3]
    assert texts(path, strict=False) == ["first", "last"]


# --------------------------------------------------------------------------- every command: one clear line


def run_cli(capsys, *args) -> tuple[int, str]:
    from stocksent.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def hostile_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Issue 20 items 14, 19, 20: (file, what its one error line says)."""
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    data = b"created_at,symbols,message,sentiment\n" + b"2020-07-06T15:00:00Z,AAPL,$AAPL up,bullish\n" * 20000
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(data)[:2000])
    wide = tmp_path / "wide.csv"
    wide.write_bytes(data.decode().encode("utf-16"))
    return {
        "deep": (deep, "nested too deeply"),
        "truncated": (cut, "truncated or corrupt"),
        "utf16": (wide, "not UTF-8"),
    }


@pytest.mark.parametrize("case", ["deep", "truncated", "utf16"])
def test_every_command_says_what_is_wrong_in_one_line(small_model_dir, tmp_path, capsys, case):
    path, words = hostile_files(tmp_path)[case]
    commands = {
        "score": ["score", path, "--model", small_model_dir, "-o", tmp_path / "s.parquet"],
        "train": ["train", "--data", path, "--out", tmp_path / "m", "--epochs", "1"],
        "index": ["index", path, "--model", small_model_dir, "-o", tmp_path / "i.csv", "--calendar", "24x7"],
        "evaluate": ["evaluate", "--model", small_model_dir, "--data", path],
        "predict": ["predict", "--model", small_model_dir, "--input", path],
    }
    for name, args in commands.items():
        code, err = run_cli(capsys, *args)
        lines = [line for line in err.splitlines() if line.startswith("stocksent: error:")]
        assert code == 2 and len(lines) == 1 and words in lines[0], (name, err)
        assert "Traceback" not in err and "RecursionError" not in err, name
