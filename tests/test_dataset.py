"""Tests for stocksent.dataset: the tutorial's file located, downloaded, verified, and never kept corrupt."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import assert_one_line, write
from stocksent import dataset
from stocksent.dataset import DATASET_FILENAME, DATASET_SHA256, cache_dir, download, locate_dataset, sha256_file
from stocksent.errors import StocksentError


def test_real_dataset_hash(real_data_path: Path) -> None:
    assert sha256_file(real_data_path) == DATASET_SHA256


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
    assert dataset.DATASET_URL.endswith("/" + DATASET_FILENAME)
    assert "907bc5a31b5767622c845f31d2dee02fdcf2c971" in dataset.DATASET_URL
    assert len(DATASET_SHA256) == 64
