"""What one request may hold: the server checks, the app enforces, /v1/model reports."""

MAX_MESSAGES = 1024
MAX_CHARS = 10_000
# Room for MAX_MESSAGES x MAX_CHARS of 4-byte UTF-8 plus JSON syntax; a larger body is refused unread.
MAX_BODY_BYTES = 48 * 1024 * 1024
