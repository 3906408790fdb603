"""JSON values to rows: StockTwits API message objects flattened, other objects kept, into Arrow batches.

The file's first message object decides its kind:
- a StockTwits API message (a `body` and a `user`, `entities` or `symbols`): flattened to `id`
  (int64), `created_at`, `user_id` (int64), `symbols` (list<string>), `sentiment` (the author's
  tag, `entities.sentiment.basic`) and `body`. With `reshares` (the index), a reshare whose own body
  is empty or the original's text again is read as the original (its id, time, user, text and tag),
  so a message and its copies count once, and a `reshare_of_id` column marks it.
- any other object keeps its fields (the first object's: later new ones are dropped with a
  warning, since every batch has one schema; nested values as JSON text). Its message is the text
  column's value, else the object's own `message`, `body` or `text`; its `sentiment` may also be
  `{"basic": ...}` or `entities.sentiment.basic`, as exports hold it.
A JSON value may be one message object, a list of them, or an API page `{"messages": [...]}`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from stocksent.columns import TEXT_COLUMNS, resolve_text_column
from stocksent.readers.rows import BadRow, BadRowSink, ReadOptions, keep_columns

log = logging.getLogger(__name__)

API_FIELDS = ("id", "created_at", "user_id", "symbols", "sentiment", "body")
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone "\ud800" escape: valid JSON, not valid UTF-8


def is_api_object(obj: dict) -> bool:
    """A StockTwits API message object, by its shape."""
    return "body" in obj and any(
        isinstance(obj.get(k), t) for k, t in (("user", dict), ("entities", dict), ("symbols", list))
    )


def api_row(obj: dict, reshares: bool = False) -> dict:
    """What users need from an API message object (the rest is layout and avatars); see the module doc.

    >>> api_row({"id": 7, "body": "$F up", "symbols": [{"symbol": "F"}], "user": {"id": 3}})["symbols"]
    ['F']
    >>> api_row({"id": 2, "body": "", "reshare_message": {"message": {"id": 1, "body": "$F up"}}}, True)["id"]
    1
    """
    row = _api_fields(obj)
    if not reshares:
        return row
    row["reshare_of_id"] = None
    reshare = obj.get("reshare_message")
    original = reshare.get("message") if isinstance(reshare, dict) else None
    if isinstance(original, dict):
        source = _api_fields(original)
        own = (row["body"] or "").strip() if isinstance(row["body"], str) else ""
        if source["id"] is not None and isinstance(source["body"], str) and source["body"].strip():
            if not own or own == source["body"].strip():  # a copy, not the resharer's own words
                source["reshare_of_id"] = source["id"]
                source["symbols"] = source["symbols"] or row["symbols"]
                return source
    return row


def _api_fields(obj: dict) -> dict:
    user, symbols = obj.get("user"), obj.get("symbols")
    return {
        "id": _int_or_none(obj.get("id")),
        "created_at": None if obj.get("created_at") is None else str(obj["created_at"]),
        "user_id": _int_or_none(user.get("id")) if isinstance(user, dict) else None,
        "symbols": [str(s.get("symbol")) for s in symbols if isinstance(s, dict) and s.get("symbol") is not None]
        if isinstance(symbols, list)
        else None,
        "sentiment": _tag(obj),
        "body": obj.get("body"),
    }


def _tag(obj: dict) -> str | None:
    """The author's tag: `sentiment` (text, or {"basic": ...}), else StockTwits' entities.sentiment.basic."""
    value = obj.get("sentiment")
    if isinstance(value, dict):
        value = value.get("basic")
    if value is None:
        entities = obj.get("entities")
        nested = entities.get("sentiment") if isinstance(entities, dict) else None
        value = nested.get("basic") if isinstance(nested, dict) else None
    return value if isinstance(value, str) or value is None else json.dumps(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
        return number if -(2**63) <= number < 2**63 else None
    return None


class ObjectBatches:
    """JSON values of one file to Arrow batches of its rows (see the module doc)."""

    def __init__(self, source: str, options: ReadOptions, bad: BadRowSink):
        self.source, self.options, self.bad = source, options, bad
        self.api: bool | None = None
        self.names: list[str] = []
        self.text = ""
        self.pending: list[dict] = []
        self.lines: list[int] = []
        self.types: list | None = None
        self.warned: set[str] = set()

    @property
    def rows(self) -> int:
        return len(self.pending)

    def add_value(self, value: Any, line: int) -> None:
        """One parsed JSON value: an object, a list of them, or a page {"messages": [...]}."""
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            items = value["messages"]
        elif isinstance(value, list):
            items = value
        else:
            self.add_object(value, line)
            return
        for index, item in enumerate(items):
            self.add_object(item, line, f"message {index + 1} of {len(items)}: ")

    def add_object(self, obj: Any, line: int, where: str = "") -> None:
        if not isinstance(obj, dict):
            self.bad(BadRow(self.source, line, f"{where}expected a JSON object, got {type(obj).__name__}"))
            return
        if self.api is None:
            self._first(obj)
        row = api_row(obj, self.options.reshares) if self.api else self._plain(obj)
        message = row.get(self.text)
        if not isinstance(message, str):
            what = "is missing" if message is None else f"is {type(message).__name__}, not text"
            fields = ", ".join(str(k)[:40] for k in list(obj)[:5]) or "none"
            self.bad(BadRow(self.source, line, f"{where}{self.text!r} {what} (fields: {fields})"))
            return
        self.pending.append(row)
        self.lines.append(line)

    def _first(self, obj: dict) -> None:
        self.api = is_api_object(obj)
        if self.api:
            names = [*API_FIELDS, *(["reshare_of_id"] if self.options.reshares else [])]
        else:
            names = list(obj)
            if "sentiment" not in names and isinstance(obj.get("entities"), dict):
                names.append("sentiment")  # StockTwits' tag, as the API nests it
        self.text = resolve_text_column(names, self.options.text_column, self.source)
        self.names = keep_columns(names, self.options.columns, self.text, self.source)

    def _plain(self, obj: dict) -> dict:
        """A plain object's row: its fields, its message under the text column's name, its tag."""
        row = dict(obj)
        if self.options.text_column is None and self.text not in row:
            found = next((k for k in TEXT_COLUMNS if k in row), None)
            if found is not None:
                row[self.text] = row.pop(found)
        if "sentiment" in self.names:
            row["sentiment"] = _tag(obj)
        if self.options.columns is None:
            for key in row.keys() - set(self.names) - self.warned - {"entities", *TEXT_COLUMNS}:
                self.warned.add(key)
                log.warning("%s: field %r is not in the first object; it is left out", self.source, key)
        return row

    def flush(self, limit: int | None = None):
        """(batch, lines) of the pending rows (at most `limit`)."""
        import numpy as np
        import pyarrow as pa

        cut = limit or len(self.pending)
        rows, self.pending = self.pending[:cut], self.pending[cut:]
        lines, self.lines = self.lines[:cut], self.lines[cut:]
        arrays = [self._array(k, name, [row.get(name) for row in rows]) for k, name in enumerate(self.names)]
        batch = pa.RecordBatch.from_arrays(arrays, names=self.names)
        if self.types is None and not self.api:
            self.types = [field.type for field in batch.schema]
        return batch, np.asarray(lines, dtype=np.int64)

    def _array(self, k: int, name: str, values: list):
        import pyarrow as pa

        if self.api:
            kind = {"id": pa.int64(), "user_id": pa.int64(), "reshare_of_id": pa.int64()}.get(name, pa.string())
            kind = pa.list_(pa.string()) if name == "symbols" else kind
            return pa.array(_valid_text(values), kind)
        values = [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in values]
        values = _valid_text(values)
        if self.types is not None:
            return _as_type(values, self.types[k], self.source, name)
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types: keep them as text
            array = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values])
        return array.cast(pa.string()) if pa.types.is_null(array.type) else array


def _valid_text(values: list) -> list:
    """Strings with each lone surrogate (from a "\\ud800" escape) as U+FFFD: Arrow text is UTF-8."""
    out = values
    for i, value in enumerate(values):
        if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            out = list(values) if out is values else out
            out[i] = _SURROGATE.sub("\ufffd", value)
        elif isinstance(value, list) and any(isinstance(v, str) and _SURROGATE.search(v) for v in value):
            out = list(values) if out is values else out
            out[i] = [_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for v in value]
    return out


def _as_type(values: list, type_, source: str, name: str):
    """A later batch's values in the type the first batch gave the column."""
    import pyarrow as pa

    from stocksent.errors import StocksentError

    if pa.types.is_string(type_):
        values = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
    try:
        return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        kinds = sorted({type(v).__name__ for v in values if v is not None})
        raise StocksentError(
            f"{source}: field {name!r} was {type_} in the first rows but later holds {', '.join(kinds)}; "
            "make the field's type consistent or leave it out with --columns"
        ) from None
