"""The raw log: the exact payloads a visit's signals arrived as, shown beside what was inferred.

Per visit, the latest payload of each message type (``visit:start`` and ``visit:end`` for the
visit's brackets) and of each type and item (``page:<item>``), at most `MAX_RAW`, oldest out
first. Deleted with the visit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_RAW = 32
"""Exact payloads kept per visit (latest per type, and per type and item); oldest out first."""


def keep(raw: OrderedDict, key: str, payload: str) -> None:
    """Keep `payload` under `key` as the newest entry; forget the oldest beyond `MAX_RAW`."""
    raw[key] = payload
    raw.move_to_end(key)
    while len(raw) > MAX_RAW:
        raw.popitem(last=False)


def record(raw: OrderedDict, kind: str, message: dict[str, Any], payload: str) -> None:
    """Keep one message's payload under its type, and under its type and item."""
    keep(raw, kind if kind != "visit" else f"visit:{message['event']}", payload)
    if message.get("item") is not None:
        keep(raw, f"{kind}:{message['item']}", payload)
