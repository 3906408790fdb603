"""What one request may hold and how long it may take: the server checks, the app enforces, /v1/model reports."""

MAX_MESSAGES = 1024
MAX_CHARS = 10_000
# Room for MAX_MESSAGES x MAX_CHARS of 4-byte UTF-8 plus JSON syntax; a larger body is refused unread.
MAX_BODY_BYTES = 48 * 1024 * 1024
# A request's head (request line and headers): at most this many bytes, arriving within HEADER_TIMEOUT_S
# of the connection opening (or of the previous response); uvicorn itself has no such limit.
MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT_S = 10.0
# The body: each piece within BODY_IDLE_TIMEOUT_S of the one before, all of it within BODY_TIMEOUT_S
# (48 MiB in 60 s needs 0.8 MB/s; real requests of 1,024 messages are under 1 MB).
BODY_TIMEOUT_S = 60.0
BODY_IDLE_TIMEOUT_S = 10.0
# Client-given text (an unknown key, a value) is echoed in an error reply up to this many characters.
ECHO_CHARS = 100
# Work in flight: the bodies of the requests being read, parsed, waiting or scored hold at most this
# together (a request alone always gets in); a request that finds no room waits up to QUEUE_WAIT_S,
# then gets a JSON 503 with Retry-After: RETRY_AFTER_S (admission.py).
MAX_INFLIGHT_BYTES = 8 * 1024 * 1024
QUEUE_WAIT_S = 5.0
RETRY_AFTER_S = 1
# SIGTERM: requests in flight get this long to finish (then a JSON 503); waiting ones a 503 at once.
SHUTDOWN_GRACE_S = 10
# GET /v1/index: at most this many tickers per request, and this many rows in a reply (about 10 MB
# of JSON); a query that would give more is refused with the advice to narrow it.
MAX_INDEX_TICKERS = 12
MAX_INDEX_ROWS = 10_000
