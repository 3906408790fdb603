"""The one exception type a user can cause; the CLI turns it into a single line and exit 2."""


class StocksentError(Exception):
    """Bad input or environment: the message says what is wrong and what to do."""
