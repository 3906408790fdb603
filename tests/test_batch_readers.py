"""Streaming readers: every format, bad rows with their lines, columns, batches, files of many kinds."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stocksent.columns import resolve_text_column
from stocksent.errors import StocksentError
from stocksent.readers import BadRow, expand_inputs, format_of, iter_batches, read_chunks


def rows_of(inputs, **kwargs) -> tuple[dict, list[BadRow]]:
    bad: list[BadRow] = []
    batches = list(iter_batches(inputs, on_bad_row=bad.append, **kwargs))
    table = pa.Table.from_batches(batches) if batches else None
    return (table.to_pydict() if table is not None else {}), bad


def api_message(i: int, body: str, sentiment: str | None = None) -> dict:
    return {
        "id": 1000 + i,
        "body": body,
        "created_at": f"2017-05-0{i % 9 + 1}T14:00:00Z",
        "user": {"id": 7 + i, "username": f"user{i}", "followers": 3},
        "symbols": [{"id": 1, "symbol": "SPY", "title": "SPDR S&P 500"}, {"id": 2, "symbol": "QQQ"}],
        "entities": {"sentiment": {"basic": sentiment} if sentiment else None},
    }


def test_csv_multiline_values_and_bad_rows_with_physical_line_numbers(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        b'id,message,x\n1,"two\nlines $SPY",a\n\n2,,b\n3,bad\xff byte,c\n4,too,many,fields\n5,"ok ""quoted""",d\n'
    )
    rows, bad = rows_of(path)
    # line 4 is blank (skipped silently); 5 has an empty message (a row: no words, so no label later);
    # 6 a bad byte; 7 four fields
    assert rows == {"id": ["1", "2", "5"], "message": ["two\nlines $SPY", "", 'ok "quoted"'], "x": ["a", "b", "d"]}
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [(6, "column"), (7, "wrong")]
    assert str(bad[0]) == f"{path} line 6: column 'message' is not UTF-8 (bad byte at offset 3)"
    lines = [line for chunk in read_chunks(path) for line in chunk.lines.tolist()]
    assert lines == [2, 5, 8]  # each row's first physical line


def test_csv_gz_is_read_like_csv_and_values_stay_text(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_text("id,message,n\n007,hello $SPY,1.50\n8,bye,2\n", encoding="utf-8")
    packed = tmp_path / "b.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert (
        rows_of(plain)[0]
        == rows_of(packed)[0]
        == {"id": ["007", "8"], "message": ["hello $SPY", "bye"], "n": ["1.50", "2"]}
    )


def test_strict_stops_at_the_first_bad_row_with_its_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b'message\n"a\nb"\nfine\n\xff\nlast\n')
    with pytest.raises(StocksentError, match=r"s\.csv line 5: column 'message' is not UTF-8"):
        list(iter_batches(path, strict=True))


def test_jsonl_plain_rows_keep_their_fields_and_count_bad_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [
        json.dumps({"message": "up $SPY", "id": 1, "tags": ["a"], "score": None}),
        "{not json",
        json.dumps({"message": 5, "id": 2}),
        "",
        json.dumps({"message": "down", "id": 3}),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"message": "\xff"}\n')
    rows, bad = rows_of(path)
    assert rows == {"message": ["up $SPY", "down"], "id": [1, 3], "tags": ['["a"]', None], "score": [None, None]}
    assert [b.line for b in bad] == [2, 3, 6]
    assert "invalid JSON" in bad[0].reason and "'message' is int" in bad[1].reason and "UTF-8" in bad[2].reason


def test_api_objects_are_flattened_from_jsonl_gz_and_pages(tmp_path):
    page = {"response": {"status": 200}, "messages": [api_message(1, "$SPY calls", "Bullish"), api_message(2, "puts")]}
    gz = tmp_path / "stream.jsonl.gz"
    gz.write_bytes(gzip.compress((json.dumps(page) + "\n" + json.dumps(api_message(3, "")) + "\n").encode()))
    pretty = tmp_path / "page.json"
    pretty.write_text(json.dumps(page, indent=2), encoding="utf-8")
    for path in (gz, pretty):
        rows, bad = rows_of(path)
        assert rows["id"][:2] == [1001, 1002] and rows["user_id"][:2] == [8, 9]
        assert rows["symbols"][0] == ["SPY", "QQQ"] and rows["sentiment"][:2] == ["Bullish", None]
        assert rows["body"][:2] == ["$SPY calls", "puts"] and rows["created_at"][0] == "2017-05-02T14:00:00Z"
    batch = next(iter_batches(gz))
    assert batch.schema.field("symbols").type == pa.list_(pa.string()) and batch.schema.field("id").type == pa.int64()
    rows, bad = rows_of(gz)
    assert rows["body"][2] == "" and bad == []  # an empty message is a row (no words: no label)


def test_parquet_rows_with_null_messages_are_bad_rows_with_their_index(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "message": ["a", None, " ", "d"]}), path)
    rows, bad = rows_of(path)
    assert rows == {"id": [1, 3, 4], "message": ["a", " ", "d"]}
    assert [(b.row, b.reason) for b in bad] == [(2, "no message (null)")]
    assert [chunk.lines.tolist() for chunk in read_chunks(path)] == [[1, 3, 4]]


def test_batches_hold_exactly_batch_rows_of_one_file_and_columns_select(tmp_path):
    for name in ("a", "b"):
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "message", "extra"])
            writer.writerows([[f"{name}{i}", f"message {i}", "x"] for i in range(25)])
    batches = list(iter_batches(tmp_path, batch_rows=10, columns=["id"]))
    assert [b.num_rows for b in batches] == [10, 10, 5, 10, 10, 5]
    assert batches[0].schema.names == ["id", "message"]
    assert batches[3].column("id")[0].as_py() == "b0"
    chunks = list(read_chunks(tmp_path, batch_rows=10))
    assert chunks[-1].bytes_done == chunks[-1].bytes_total and chunks[2].source.endswith("a.csv")


def test_text_column_default_message_then_body_then_text_then_explicit(tmp_path):
    assert resolve_text_column(["id", "body", "message"], None) == "message"
    assert resolve_text_column(["id", "Body"], None) == "Body"
    assert resolve_text_column(["id", "text", "body"], None) == "body"
    assert resolve_text_column(["id", "text"], None) == "text"
    assert resolve_text_column(["id", "tweet"], "tweet") == "tweet"
    with pytest.raises(StocksentError, match="--text-column"):
        resolve_text_column(["id", "tweet"], None)
    path = tmp_path / "t.csv"
    path.write_text("id,text\n1,hello\n", encoding="utf-8")
    assert rows_of(path)[0] == {"id": ["1"], "text": ["hello"]}  # `text` is read as by every command
    other = tmp_path / "u.csv"
    other.write_text("id,tweet\n1,hello\n", encoding="utf-8")
    assert rows_of(other, text_column="tweet")[0] == {"id": ["1"], "tweet": ["hello"]}
    with pytest.raises(StocksentError, match="no 'message', 'body' or 'text' column"):
        list(iter_batches(other))


def test_files_with_other_columns_cannot_share_an_output(tmp_path):
    (tmp_path / "a.csv").write_text("message\nhi\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("message,other\nhi,x\n", encoding="utf-8")
    with pytest.raises(StocksentError, match="columns"):
        list(iter_batches([tmp_path / "a.csv", tmp_path / "b.csv"]))


def test_inputs_globs_directories_and_formats_by_content(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.csv").write_text("message\nhi\n", encoding="utf-8")
    (tmp_path / "sub" / "_SUCCESS").write_text("", encoding="utf-8")
    (tmp_path / "y.csv").write_text("message\nho\n", encoding="utf-8")
    assert [p.name for p in expand_inputs(tmp_path)] == ["x.csv", "y.csv"]
    assert [p.name for p in expand_inputs(str(tmp_path / "*.csv"))] == ["y.csv"]
    with pytest.raises(StocksentError, match="no files match"):
        expand_inputs(str(tmp_path / "*.parquet"))
    with pytest.raises(StocksentError, match="no such file"):
        expand_inputs(tmp_path / "missing.csv")
    blob = tmp_path / "export"
    blob.write_bytes(gzip.compress(b'{"message": "hi"}\n'))
    assert format_of(blob) == "jsonl" and rows_of(blob)[0] == {"message": ["hi"]}


def test_real_messages_read_as_python_csv_reads_them(real_data_path):
    """The real file (quoted, multi-line messages, an unnamed index column) in 4 MiB blocks."""
    with gzip.open(real_data_path, "rt", encoding="utf-8", newline="") as handle:
        expected = [row[1] for row in csv.reader(handle)][1:]
    bad: list[BadRow] = []
    got = [
        t
        for b in iter_batches(real_data_path, batch_rows=30000, on_bad_row=bad.append)
        for t in b.column("message").to_pylist()
    ]
    assert got == expected and bad == []
