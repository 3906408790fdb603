"""The tutorial's dataset: where it is (an explicit path, $STOCKSENT_DATA, a verified cached copy) or
its download, verified by sha256 while it streams and written atomically.

Everything a user can get wrong here (a missing file, a failed or corrupt download) is a one-line
StocksentError naming what to do (`--data PATH`, `STOCKSENT_DATA`).

>>> locate_dataset()  # doctest: +SKIP
PosixPath('/home/me/.cache/stocksent/StockTwits_SPY_Sentiment_2017.gz')
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from stocksent.atomic import atomic_open
from stocksent.errors import StocksentError

__all__ = [
    "DATASET_FILENAME",
    "DATASET_SHA256",
    "DATASET_URL",
    "cache_dir",
    "download",
    "locate_dataset",
    "sha256_file",
]

log = logging.getLogger(__name__)

DATASET_SHA256 = "2764ef980af1af85d2c4d180ced1ce54cf20186b7a07c301304dbd72a5a4eeef"
DATASET_URL = (
    "https://raw.githubusercontent.com/garretthoffman/lstm-oreilly/"
    "907bc5a31b5767622c845f31d2dee02fdcf2c971/data/StockTwits_SPY_Sentiment_2017.gz"
)
DATASET_FILENAME = "StockTwits_SPY_Sentiment_2017.gz"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks so large files do not need to fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where the downloaded dataset is kept: $XDG_CACHE_HOME/stocksent, else ~/.cache/stocksent."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "stocksent"


def _existing_file(value: str | os.PathLike, source: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise StocksentError(f"no such file: {path} (from {source})")
    if path.is_dir():
        raise StocksentError(f"{path} (from {source}) is a directory; give the path of the data file")
    return path


def download(url: str, dest: Path, sha256: str, timeout: float = 60) -> Path:
    """Fetch `url` into `dest`, verifying the sha256 while streaming.

    The file is written atomically, so `dest` either holds a verified copy or is untouched:
    a failed, truncated or corrupt download never leaves anything behind.
    """
    dest = Path(dest)
    hint = "pass --data PATH to a local copy of the dataset (or set STOCKSENT_DATA)"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StocksentError(f"cannot create cache directory {dest.parent}: {exc.strerror or exc}; {hint}") from None
    log.info("downloading %s to %s", url, dest)
    digest = hashlib.sha256()
    try:
        with atomic_open(dest, "wb") as out:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                expected_size = response.headers.get("Content-Length")
                received = 0
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
            # http.client's read(amt) returns b"" on a dropped connection instead of raising.
            if expected_size is not None and expected_size.isdigit() and received < int(expected_size):
                raise StocksentError(
                    f"download failed: {url} was cut off after {received} of {expected_size} bytes; "
                    f"nothing was saved; {hint}"
                )
            got = digest.hexdigest()
            if got != sha256.lower():
                # Raised inside atomic_open, so the temporary file is removed and dest is untouched.
                raise StocksentError(
                    f"downloaded file from {url} failed verification: expected sha256 {sha256.lower()}, "
                    f"got {got}; nothing was saved; {hint}"
                )
    except StocksentError:
        raise
    except urllib.error.HTTPError as exc:
        raise StocksentError(f"download failed: {url} answered HTTP {exc.code} {exc.reason}; {hint}") from None
    except urllib.error.URLError as exc:
        raise StocksentError(f"download failed: cannot reach {url} ({exc.reason}); {hint}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise StocksentError(f"download failed: {url} ({type(exc).__name__}: {exc}); {hint}") from None
    return dest


def locate_dataset(
    path: str | os.PathLike | None = None,
    *,
    url: str = DATASET_URL,
    sha256: str = DATASET_SHA256,
    timeout: float = 60,
) -> Path:
    """The dataset file to use: explicit path, else $STOCKSENT_DATA, else a verified cached copy,
    else a fresh download into the cache (so the first run works with no setup)."""
    if path is not None:
        return _existing_file(path, "--data")
    env = os.environ.get("STOCKSENT_DATA")
    if env:
        return _existing_file(env, "STOCKSENT_DATA")
    cached = cache_dir() / DATASET_FILENAME
    if cached.is_file():
        if sha256_file(cached) == sha256.lower():
            return cached
        log.warning("cached dataset %s has the wrong sha256; downloading it again", cached)
        cached.unlink(missing_ok=True)  # never keep a corrupt copy, even if the re-download fails
    return download(url, cached, sha256, timeout)
