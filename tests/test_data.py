"""Tests for stocksent.data: reading every supported format, bad input, splits and the dataset download."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stocksent import data
from stocksent.data import (
    DATASET_FILENAME,
    DATASET_SHA256,
    LABELS,
    LabelledData,
    cache_dir,
    download,
    locate_dataset,
    parse_label,
    read_labelled,
    read_records,
    read_texts,
    sha256_file,
    split_indices,
)
from stocksent.errors import StocksentError


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- the real dataset


def test_real_dataset_counts_and_first_row(real_data_path: Path) -> None:
    records = read_records(real_data_path)
    assert len(records) == 96_967
    assert Counter(r["sentiment"] for r in records) == {"bullish": 53_704, "bearish": 43_263}
    assert records[0] == {"message": "$SPY crazy day so far!", "sentiment": "bearish"}
    # Quoted fields keep their embedded newlines, commas and quotes.
    assert any("\n" in r["message"] for r in records)
    assert any('"' in r["message"] for r in records)

    labelled = read_labelled(real_data_path)
    assert len(labelled.messages) == len(labelled.labels) == 96_967
    assert labelled.skipped == 0
    assert Counter(labelled.labels) == {1: 53_704, 0: 43_263}
    assert labelled.messages[0] == "$SPY crazy day so far!"
    assert labelled.labels[0] == 0

    assert read_texts(real_data_path) == [r["message"] for r in records]


def test_real_dataset_hash(real_data_path: Path) -> None:
    assert sha256_file(real_data_path) == DATASET_SHA256


# --------------------------------------------------------------------------- formats


def test_csv_with_unnamed_index_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        ',message,sentiment\n0,"up, up, away",bullish\n1,"he said ""sell""\nnow 📉",bearish\n',
    )
    assert read_records(path) == [
        {"message": "up, up, away", "sentiment": "bullish"},
        {"message": 'he said "sell"\nnow 📉', "sentiment": "bearish"},
    ]
    assert read_labelled(path) == LabelledData(
        messages=["up, up, away", 'he said "sell"\nnow 📉'], labels=[1, 0], skipped=0
    )


def test_csv_without_index_header_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "b.csv", "Sentiment,MESSAGE\r\nBullish,moon\r\n BEARISH ,crash\r\n")
    got = read_labelled(path)
    assert got.messages == ["moon", "crash"]
    assert got.labels == [1, 0]


def test_csv_without_sentiment_column_has_no_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,text\n1,hello\n2,world\n")
    assert read_records(path) == [
        {"message": "hello", "sentiment": None},
        {"message": "world", "sentiment": None},
    ]
    assert read_texts(path) == ["hello", "world"]


def test_csv_gz(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b",message,sentiment\n0,$SPY up,bullish\n"))
    assert read_records(path) == [{"message": "$SPY up", "sentiment": "bullish"}]


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"  # gzip bytes under a plain .csv name
    path.write_bytes(gzip.compress(b"message,sentiment\nhi,bearish\n"))
    assert read_labelled(path).labels == [0]
    # And a .gz name without an inner extension is sniffed as CSV from its header.
    other = tmp_path / "export.gz"
    other.write_bytes(gzip.compress(b",message,sentiment\n0,hi,bullish\n"))
    assert read_records(other) == [{"message": "hi", "sentiment": "bullish"}]


def test_jsonl_with_message_and_body(tmp_path: Path) -> None:
    lines = [
        {"message": "first", "sentiment": "Bullish"},
        {"body": "second", "entities": {"sentiment": {"basic": "Bearish"}}},
        {"body": "third", "entities": {"sentiment": None}},
        {"message": "fourth"},
    ]
    path = write(tmp_path / "e.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert read_records(path) == [
        {"message": "first", "sentiment": "Bullish"},
        {"message": "second", "sentiment": "Bearish"},
        {"message": "third", "sentiment": None},
        {"message": "fourth", "sentiment": None},
    ]
    got = read_labelled(path)
    assert got.messages == ["first", "second"]
    assert got.labels == [1, 0]
    assert got.skipped == 2


def test_jsonl_detected_by_content(tmp_path: Path) -> None:
    path = write(tmp_path / "noext", '{"message": "a"}\n{"body": "b", "sentiment": "bearish"}\n')
    assert read_records(path) == [
        {"message": "a", "sentiment": None},
        {"message": "b", "sentiment": "bearish"},
    ]


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
    assert [r["sentiment"] for r in read_records(path)] == ["Bullish", None, None, "Bearish"]
    got = read_labelled(path)
    assert got.messages == ["$SPY ripping", "$SPY dump"]
    assert got.labels == [1, 0]
    assert got.skipped == 2


def test_top_level_json_list(tmp_path: Path) -> None:
    path = write(tmp_path / "list", json.dumps([{"body": "x", "entities": {"sentiment": {"basic": "Bullish"}}}]))
    assert read_records(path) == [{"message": "x", "sentiment": "Bullish"}]


def test_plain_text(tmp_path: Path) -> None:
    path = write(tmp_path / "msgs.txt", "$SPY to the moon\n\n   \nsell, sell, sell\r\n{not json}\n")
    assert read_texts(path) == ["$SPY to the moon", "sell, sell, sell", "{not json}"]
    assert all(r["sentiment"] is None for r in read_records(path))


def test_unknown_extension_is_plain_text_unless_it_has_a_message_header(tmp_path: Path) -> None:
    path = write(tmp_path / "msgs.dat", "buy, now\nsell\n")
    assert read_texts(path) == ["buy, now", "sell"]


def test_bracketed_text_without_extension_is_not_json(tmp_path: Path) -> None:
    path = write(tmp_path / "msgs", "[SPY] up\nnew high [ATH]\n")
    assert read_texts(path) == ["[SPY] up", "new high [ATH]"]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffmessage,sentiment\nhi,bullish\n".encode("utf-8"))
    assert read_labelled(path).messages == ["hi"]


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bullish", 1),
        ("Bullish", 1),
        (" BULLISH\n", 1),
        ("bearish", 0),
        ("BeArIsH", 0),
        ("neutral", None),
        ("", None),
        (None, None),
        (1, None),
    ],
)
def test_parse_label(value: object, expected: int | None) -> None:
    assert parse_label(value) == expected


def test_labels_order_matches_class_ids() -> None:
    assert LABELS == ("bearish", "bullish")
    assert [parse_label(name) for name in LABELS] == [0, 1]


def test_unlabelled_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mix.csv",
        "message,sentiment\na,bullish\nb,\nc,neutral\nd,Bearish\ne\n",
    )
    got = read_labelled(path)
    assert got.messages == ["a", "d"]
    assert got.labels == [1, 0]
    assert got.skipped == 3
    assert read_texts(path) == ["a", "b", "c", "d", "e"]


def test_all_unlabelled_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "none.csv", "message,sentiment\na,\nb,neutral\n")
    with pytest.raises(StocksentError, match=r"no rows labelled bullish or bearish \(2 rows read\)"):
        read_labelled(path)
    with pytest.raises(StocksentError, match="sentiment"):
        read_labelled(write(tmp_path / "plain.txt", "a\nb\n"))


# --------------------------------------------------------------------------- bad input


def assert_one_line(exc: pytest.ExceptionInfo[StocksentError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(StocksentError) as exc:
        read_records(missing)
    assert assert_one_line(exc) == f"no such file: {missing}"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StocksentError, match="is a directory") as exc:
        read_texts(tmp_path)
    assert_one_line(exc)


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n", gzip.compress(b""), b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(StocksentError, match="is empty") as exc:
        read_records(path)
    assert_one_line(exc)


def test_header_only_csv_has_no_messages(tmp_path: Path) -> None:
    with pytest.raises(StocksentError, match="no messages"):
        read_records(write(tmp_path / "h.csv", "message,sentiment\n"))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("message,sentiment\nfine,bullish\ncaf\u00e9,bearish\n".encode("latin-1"))
    with pytest.raises(StocksentError, match=r"not UTF-8.*line 3") as exc:
        read_records(path)
    assert_one_line(exc)


def test_not_utf8_inside_gzip_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress(b"message\n1\n2\n3\nbad \xff byte\n"))
    with pytest.raises(StocksentError, match=r"not UTF-8.*line 5"):
        read_records(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(b"message\n" + b"hello\n" * 1000)[:30])
    with pytest.raises(StocksentError, match="truncated or corrupt") as exc:
        read_records(path)
    assert_one_line(exc)


@pytest.mark.parametrize(
    "name, content, error",
    [
        ("q.csv", 'message,sentiment\nok,bullish\n"never closed,bearish\nmore,bullish\n', r"line 3: malformed CSV"),
        ("bad.jsonl", '{"message": "ok"}\n\n{"message": "oops",}\n', r"line 3: invalid JSON"),
        ("bad.json", '{\n  "messages": [\n    {"body": "x"}\n    {"body": "y"}\n  ]\n}\n', r"line 4: invalid JSON"),
    ],
)
def test_malformed_file_names_the_line(tmp_path: Path, name: str, content: str, error: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(StocksentError, match=error) as exc:
        read_records(path)
    assert_one_line(exc)


def test_json_objects_without_message(tmp_path: Path) -> None:
    with pytest.raises(
        StocksentError, match=r"line 2: object has no 'message' or 'body' field \(fields found: id, txt\)"
    ):
        read_records(write(tmp_path / "x.jsonl", '{"message": "a"}\n{"id": 1, "txt": "b"}\n'))
    with pytest.raises(StocksentError, match="no 'messages' list"):
        read_records(write(tmp_path / "y.json", '{"cursor": {}, "symbol": "SPY"}'))
    with pytest.raises(StocksentError, match="'body' must be a string"):
        read_records(write(tmp_path / "z.json", '{"messages": [{"body": null}]}'))


def test_csv_without_message_column_names_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "id,tweet,label\n1,hi,bullish\n")
    with pytest.raises(StocksentError, match=r"no 'message' column \(columns found: 'id', 'tweet', 'label'\)") as exc:
        read_records(path)
    assert_one_line(exc)


# --------------------------------------------------------------------------- split


def test_split_sizes_disjoint_and_covering() -> None:
    train, val, test = split_indices(1000, seed=0)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(test) and set(val).isdisjoint(test)
    assert sorted(train + val + test) == list(range(1000))
    assert train != sorted(train)  # actually shuffled
    assert all(type(i) is int for i in train[:5])


def test_split_rounding_and_real_size() -> None:
    train, val, test = split_indices(96_967, seed=1)
    assert (len(train), len(val)) == (int(96_967 * 0.8), int(96_967 * 0.1))
    assert len(train) + len(val) + len(test) == 96_967
    assert [len(x) for x in split_indices(7, seed=0)] == [5, 0, 2]


def test_split_deterministic_per_seed() -> None:
    assert split_indices(500, seed=42) == split_indices(500, seed=42)
    assert split_indices(500, seed=42) != split_indices(500, seed=43)


def test_split_custom_fractions_and_invalid() -> None:
    train, val, test = split_indices(100, seed=0, fractions=(0.5, 0.25, 0.25))
    assert (len(train), len(val), len(test)) == (50, 25, 25)
    with pytest.raises(StocksentError, match="fractions"):
        split_indices(100, seed=0, fractions=(0.8, 0.3, 0.1))


# --------------------------------------------------------------------------- download / locate


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.routes: path -> (status, body, declared Content-Length or None)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.hits[self.path] += 1  # type: ignore[attr-defined]
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        if route is None:
            self.send_error(404)
            return
        status, body, length = route
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes = {}  # type: ignore[attr-defined]
    httpd.hits = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def url_of(httpd: http.server.ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


GOOD = b",message,sentiment\n0,$SPY up,bullish\n1,$SPY down,bearish\n"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty per-test cache directory; STOCKSENT_DATA unset so the cache is actually used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STOCKSENT_DATA", raising=False)
    return tmp_path / "xdg" / "stocksent"


def cache_contents(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_cache_dir_follows_xdg_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "stocksent"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "stocksent"


def test_download_good_file(server, tmp_path: Path) -> None:
    server.routes["/good.gz"] = (200, GOOD, None)
    dest = tmp_path / "dl" / "file.gz"
    assert download(url_of(server, "/good.gz"), dest, GOOD_SHA, timeout=10) == dest
    assert dest.read_bytes() == GOOD
    assert cache_contents(dest.parent) == ["file.gz"]


def test_download_hash_mismatch_leaves_nothing(server, cache: Path) -> None:
    corrupt = GOOD.replace(b"up", b"uq")
    server.routes["/data.gz"] = (200, corrupt, None)
    with pytest.raises(StocksentError) as exc:
        locate_dataset(url=url_of(server, "/data.gz"), sha256=GOOD_SHA, timeout=10)
    message = assert_one_line(exc)
    assert GOOD_SHA in message and hashlib.sha256(corrupt).hexdigest() in message
    assert "expected" in message and "got" in message
    assert cache_contents(cache) == []


def test_truncated_download_leaves_nothing(server, cache: Path) -> None:
    server.routes["/short.gz"] = (200, GOOD[:10], len(GOOD))  # promises more than it sends
    with pytest.raises(StocksentError, match=r"download failed.*cut off after 10 of \d+ bytes.*--data"):
        download(url_of(server, "/short.gz"), cache / DATASET_FILENAME, GOOD_SHA, timeout=10)
    assert cache_contents(cache) == []


def test_download_http_500(server, cache: Path) -> None:
    server.routes["/boom"] = (500, b"internal error", None)
    with pytest.raises(StocksentError) as exc:
        locate_dataset(url=url_of(server, "/boom"), sha256=GOOD_SHA, timeout=10)
    message = assert_one_line(exc)
    assert "download failed" in message and "500" in message
    assert "--data" in message and "STOCKSENT_DATA" in message
    assert cache_contents(cache) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_download_connection_refused(cache: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/data.gz"
    with pytest.raises(StocksentError) as exc:
        locate_dataset(url=url, sha256=GOOD_SHA, timeout=5)
    message = assert_one_line(exc)
    assert "download failed" in message and "--data" in message
    assert cache_contents(cache) == []


def test_locate_downloads_once_then_uses_cache(server, cache: Path) -> None:
    server.routes["/data.gz"] = (200, GOOD, None)
    url = url_of(server, "/data.gz")
    first = locate_dataset(url=url, sha256=GOOD_SHA, timeout=10)
    assert first == cache / DATASET_FILENAME
    assert first.read_bytes() == GOOD
    assert locate_dataset(url=url, sha256=GOOD_SHA, timeout=10) == first
    assert server.hits["/data.gz"] == 1
    assert cache_contents(cache) == [DATASET_FILENAME]
    assert read_labelled(first).labels == [1, 0]


def test_locate_redownloads_cached_file_with_bad_hash(server, cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / DATASET_FILENAME).write_bytes(b"stale or corrupt")
    server.routes["/data.gz"] = (200, GOOD, None)
    got = locate_dataset(url=url_of(server, "/data.gz"), sha256=GOOD_SHA, timeout=10)
    assert got.read_bytes() == GOOD
    assert server.hits["/data.gz"] == 1
    assert cache_contents(cache) == [DATASET_FILENAME]


def test_locate_bad_cached_file_removed_when_redownload_fails(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / DATASET_FILENAME).write_bytes(b"stale or corrupt")
    with pytest.raises(StocksentError, match="--data"):
        locate_dataset(url=f"http://127.0.0.1:{closed_port()}/x", sha256=GOOD_SHA, timeout=5)
    assert cache_contents(cache) == []


def test_locate_precedence(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}/never"  # any download attempt would fail
    cache.mkdir(parents=True)
    cached = cache / DATASET_FILENAME
    cached.write_bytes(GOOD)
    explicit = write(tmp_path / "explicit.csv", "message\nx\n")
    from_env = write(tmp_path / "env.csv", "message\ny\n")

    assert locate_dataset(url=nowhere, sha256=GOOD_SHA) == cached
    monkeypatch.setenv("STOCKSENT_DATA", str(from_env))
    assert locate_dataset(url=nowhere, sha256=GOOD_SHA) == from_env
    assert locate_dataset(str(explicit), url=nowhere, sha256=GOOD_SHA) == explicit
    assert locate_dataset(explicit, url=nowhere, sha256=GOOD_SHA) == explicit


def test_locate_missing_explicit_or_env_path(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.gz"
    with pytest.raises(StocksentError, match=f"no such file: {missing}"):
        locate_dataset(missing)
    with pytest.raises(StocksentError, match="is a directory"):
        locate_dataset(tmp_path)
    monkeypatch.setenv("STOCKSENT_DATA", str(missing))
    with pytest.raises(StocksentError, match=r"no such file: .*STOCKSENT_DATA"):
        locate_dataset()


def test_default_url_and_hash_are_the_pinned_dataset() -> None:
    assert data.DATASET_URL.endswith("/" + DATASET_FILENAME)
    assert "907bc5a31b5767622c845f31d2dee02fdcf2c971" in data.DATASET_URL
    assert len(DATASET_SHA256) == 64


# --------------------------------------------------------------------------- hostile files and streaming


def test_dev_zero_is_refused_at_once() -> None:
    with pytest.raises(StocksentError, match=r"/dev/zero is not a text file: it holds NUL bytes") as exc:
        next(data.iter_texts("/dev/zero"))
    assert_one_line(exc)


def test_utf16_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("hello\nworld\n".encode("utf-16"))
    with pytest.raises(StocksentError, match="UTF-16"):
        read_records(path)


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json:"),
        ("deep.jsonl", '{"message": "a"}\n' + '{"x":' * 100_000 + "1" + "}" * 100_000 + "\n", "line 2:"),
        ("deep", '{"message": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep:"),
    ],
)
def test_deeply_nested_json_is_a_one_line_error(tmp_path: Path, name: str, content: str, where: str) -> None:
    with pytest.raises(StocksentError, match="nested too deeply") as exc:
        read_records(write(tmp_path / name, content))
    assert where in assert_one_line(exc)


def test_a_10_mb_csv_field_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", 'message,sentiment\n"' + "a" * 10_000_000 + '",bullish\nok,bearish\n')
    assert [len(r["message"]) for r in read_records(path)] == [10_000_000, 2]


def test_a_field_over_the_limit_says_so_not_check_the_quotes(tmp_path: Path, monkeypatch) -> None:
    import csv

    before = csv.field_size_limit(1000)
    monkeypatch.setattr(data, "MAX_LINE_CHARS", 1000)
    try:
        with pytest.raises(StocksentError, match=r"line 3: a field is over 1,000 characters") as exc:
            read_records(write(tmp_path / "f.csv", 'message\nok\n"' + "a" * 2000 + '"\n'))
    finally:
        csv.field_size_limit(before)
    assert "check the quotes" not in assert_one_line(exc)


def test_too_long_line_and_too_big_document(tmp_path: Path, monkeypatch) -> None:
    from stocksent import textfile

    monkeypatch.setattr(textfile, "MAX_LINE_CHARS", 100)
    monkeypatch.setattr(textfile, "_CHUNK", 16)
    with pytest.raises(StocksentError, match=r"line 2 is over 100 characters") as exc:
        read_texts(write(tmp_path / "long.txt", "short\n" + "x" * 500 + "\n"))
    assert_one_line(exc)
    monkeypatch.setattr(textfile, "MAX_DOCUMENT_CHARS", 100)
    with pytest.raises(StocksentError, match=r"over 100 characters.*JSON Lines") as exc:
        read_texts(write(tmp_path / "big.json", json.dumps([{"body": "x" * 50}] * 5)))
    assert_one_line(exc)


def test_utf8_split_across_reads_and_errors_keep_their_line(tmp_path: Path, monkeypatch) -> None:
    from stocksent import textfile

    monkeypatch.setattr(textfile, "_CHUNK", 1)  # every multi-byte character straddles two reads
    path = write(tmp_path / "e.csv", '\ufeffmessage,sentiment\n"🚀 up\r\nmore",bullish\r\ncafé ☕,bearish\n')
    assert read_records(path) == [
        {"message": "🚀 up\r\nmore", "sentiment": "bullish"},
        {"message": "café ☕", "sentiment": "bearish"},
    ]
    path.write_bytes(b"message\n1\n2\n\xe2\x82\n")  # a sequence cut short
    with pytest.raises(StocksentError, match=r"not UTF-8.*line 4"):
        read_records(path)


def test_error_messages_show_a_few_short_keys(tmp_path: Path) -> None:
    obj = {f"key{i}-" + "x" * 1000: 1 for i in range(1000)}
    with pytest.raises(StocksentError, match="and 995 more") as exc:
        read_records(write(tmp_path / "k.jsonl", json.dumps(obj) + "\n"))
    assert len(assert_one_line(exc)) < 600


def test_iter_texts_streams_in_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "m.txt", "".join(f"message {i}\n" for i in range(25)))
    chunks = list(data.iter_texts(path, chunk=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [t for c in chunks for t in c] == read_texts(path)
    with pytest.raises(StocksentError, match="no messages"):
        list(data.iter_texts(write(tmp_path / "h.csv", "message\n")))


def test_stdin_lines_are_checked_as_they_arrive() -> None:
    import io

    assert list(data.iter_stdin_texts(io.BytesIO(b"a\r\n\n  \nb"), chunk=1)) == [["a"], ["b"]]
    with pytest.raises(StocksentError, match=r"stdin is not UTF-8 text \(bad byte at line 2.*send UTF-8"):
        list(data.iter_stdin_texts(io.BytesIO(b"ok\n\xff\n")))


def test_lone_surrogate_escapes_are_kept_as_read(tmp_path: Path) -> None:
    assert read_texts(write(tmp_path / "s.jsonl", '{"message": "a\\ud800b"}\n')) == ["a\ud800b"]
