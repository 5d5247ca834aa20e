"""One visit as the dashboard holds it, and how each accepted message updates it.

Only messages that passed the wire contract, the sequence check and the consent and purge
checks of `DashboardState` reach `record`; everything here is bounded per visit.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from dashboard import profile, rawlog

SIGNAL_TYPES = ("attention", "attention_summary", "expression", "reading")
"""Signals of which a visit shows the latest message (the summary: of the whole visit)."""
ITEM_TYPES = {"reaction": "reaction", "attention_summary": "attention", "page": "page"}
"""Signals that describe one page or post, kept per item under these keys."""
MAX_ITEMS = 200
"""Items remembered per visit; a feed scrolled for an hour cannot grow a visit without end."""
MAX_TIMELINE = 240
"""Points of the emotion timeline kept per visit; when full, every other point goes and the
spacing doubles, so a long visit keeps its whole shape in bounded memory."""
TIMELINE_STEP_S = 0.5
"""Closest spacing of two timeline points (the agent sends up to 5 expressions a second)."""
ENVELOPE = ("v", "type", "agent", "seq", "visit")
_NOT_INFERRED = frozenset({*ENVELOPE, "ts", "item", "event", "consent", "scopes", "reason"})


@dataclass
class Visit:
    """One visit (a random pseudonym) of one agent; times are the agent's message `ts`."""

    visit: str
    agent: str
    order: int
    consent: str | None = None
    scopes: list[str] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # item -> what it evoked
    signal_seq: dict[str, int] = field(default_factory=dict)  # kind -> seq of the one shown
    messages: int = 0
    last_at: float = 0.0  # dashboard clock at the last message, for retention
    expressions: Counter = field(default_factory=Counter)  # label -> messages
    attention_seen: int = 0  # attention messages
    attention_present: int = 0  # … of which with a face present
    timeline: list[list[Any]] = field(default_factory=list)  # [t, label, valence, score]
    timeline_step_s: float = TIMELINE_STEP_S
    pages: list[dict[str, Any]] = field(default_factory=list)  # page messages, in reading order
    topics: dict[str, float] = field(default_factory=dict)  # topic -> seconds looked at
    counts: Counter = field(default_factory=Counter)  # message type -> accepted messages
    data_points: int = 0  # values inferred about the visitor (see `data_points`)
    first_ts: float | None = None
    last_ts: float | None = None
    raw: OrderedDict = field(default_factory=OrderedDict)  # the raw log (`dashboard.rawlog`)
    # The visitor's answers: conclusion -> (seq, answer), the latest only. Never listed per
    # visit (not in `to_json`, not in `raw`): only aggregated per screen, from k visits.
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)

    def interests(self) -> dict[str, float]:
        total = sum(self.topics.values())
        if total <= 0:
            return {}
        ranked = sorted(self.topics.items(), key=lambda kv: (-kv[1], kv[0]))
        return {topic: round(seconds / total, 2) for topic, seconds in ranked}

    def to_json(self, agent_gone: bool = False) -> dict[str, Any]:
        return {
            "visit": self.visit,
            "agent": self.agent,
            "consent": self.consent,
            "scopes": list(self.scopes),
            "started": self.started,
            "ended": self.ended,
            "active": self.ended is None and not agent_gone,
            **{kind: _copy(self.signals.get(kind)) for kind in SIGNAL_TYPES},
            "items": {item: dict(found) for item, found in self.items.items()},
            "messages": self.messages,
            "counts": dict(self.counts),
            "data_points": self.data_points,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "timeline": [list(point) for point in self.timeline],
            "pages": [dict(page) for page in self.pages],
            "interests": self.interests(),
        }


def _copy(signal: dict[str, Any] | None) -> dict[str, Any] | None:
    return dict(signal) if signal is not None else None


def data_points(message: dict[str, Any]) -> int:
    """Values a message infers about the visitor: each field, each list element; nulls not.

    Ids, the item shown, consent and timestamps are not counted: only what was inferred.
    """
    count = 0
    for name, value in message.items():
        if name in _NOT_INFERRED or value is None:
            continue
        count += len(value) if isinstance(value, list) else 1
    return count


def record(visit: Visit, kind: str, message: dict[str, Any], raw: str | None, now: float) -> None:
    """Update `visit` with one accepted message of type `kind` (dashboard clock `now`)."""
    visit.messages += 1
    visit.counts[kind] += 1
    visit.last_at = now
    ts = message["ts"]
    visit.first_ts = ts if visit.first_ts is None else min(visit.first_ts, ts)
    visit.last_ts = ts if visit.last_ts is None else max(visit.last_ts, ts)
    visit.data_points += data_points(message)
    if raw is not None:
        rawlog.record(visit.raw, kind, message, raw)
    if kind == "visit":
        visit.consent = message["consent"]
        visit.scopes = list(message["scopes"])
        if message["event"] == "start":
            if visit.started is None:
                visit.started = message["ts"]
        else:
            visit.ended = message["ts"]
        return
    fields = {k: v for k, v in message.items() if k not in ENVELOPE}
    if kind in ITEM_TYPES and fields.get("item") is not None:
        item = fields.pop("item")
        if item in visit.items or len(visit.items) < MAX_ITEMS:
            visit.items.setdefault(item, {})[ITEM_TYPES[kind]] = fields
    elif message["seq"] >= visit.signal_seq.get(kind, -1):
        # QoS 1 may deliver out of order: a late message never hides a newer one.
        visit.signals[kind] = fields
        visit.signal_seq[kind] = message["seq"]
    if kind == "expression":
        visit.expressions[message["label"]] += 1
        _add_to_timeline(visit, message)
    elif kind == "page":
        _add_page(visit, message)
    elif kind == "attention":
        visit.attention_seen += 1
        visit.attention_present += bool(message["present"])


def _add_to_timeline(visit: Visit, message: dict[str, Any]) -> None:
    start = visit.started if visit.started is not None else visit.first_ts
    t = round(max(0.0, message["ts"] - (start or message["ts"])), 1)
    label, valence = message["label"], message["valence"]
    timeline = visit.timeline
    if timeline and t - timeline[-1][0] < visit.timeline_step_s and timeline[-1][1] == label:
        return
    timeline.append([t, label, valence])
    if len(timeline) > MAX_TIMELINE:
        last = timeline[-1]
        timeline[:] = timeline[::2]
        if timeline[-1] is not last:
            timeline.append(last)
        visit.timeline_step_s *= 2


def _add_page(visit: Visit, message: dict[str, Any]) -> None:
    page = {k: v for k, v in message.items() if k not in ENVELOPE}
    visit.pages.append(page)
    if len(visit.pages) > MAX_ITEMS:
        del visit.pages[0]
    looked = max(0.0, message["seconds"] - message["away_s"])
    visit.topics[message["topic"]] = round(visit.topics.get(message["topic"], 0.0) + looked, 1)


def pace(visit: Visit) -> float | None:
    """The visitor's reading pace: the agent's personal pace, else the weighted page mean."""
    return profile.pace({"pages": visit.pages, "reading": visit.signals.get("reading")})
