"""What the dashboard knows: agents and visits, built only from validated wire messages."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.wire import (
    EXPRESSIONS,
    FEEDBACK_SCOPE,
    GRADES,
    OFFLINE,
    ONLINE,
    SCOPE_OF,
    VISIT_TYPES,
    TopicInfo,
    WireError,
    scope_of,
)
from dashboard import profile

Clock = Callable[[], float]

HEARTBEAT_FIELDS = ("fps", "latency_ms", "model", "model_version", "source", "watching", "uptime_s")
SIGNAL_TYPES = ("attention", "attention_summary", "expression", "reading")
"""Signals of which a visit shows the latest message (the summary: of the whole visit)."""
ITEM_TYPES = {"reaction": "reaction", "attention_summary": "attention", "page": "page"}
"""Signals that describe one page or post, kept per item under these keys."""
MAX_ITEMS = 200
"""Items remembered per visit; a feed scrolled for an hour cannot grow a visit without end."""
_ENVELOPE = ("v", "type", "agent", "seq", "visit")
MAX_VISITS = 500
"""Oldest visits are forgotten beyond this many, so a kiosk running for weeks stays small."""
MAX_VISITS_PER_AGENT = 64
"""Visits held for one agent at most: beyond it, that agent's own oldest visit goes. One
agent (faulty or forged) can never push out another agent's live visit."""
MAX_AGENTS = 256
"""Agents held at most. A silent agent is forgotten after `AGENT_FORGET_S`; when the table is
full, the longest-silent agent that is not online goes, and if every one is online a new id
is refused (`agent_cap`)."""
AGENT_FORGET_S = 900.0
"""An agent not heard from for this long, with no visit held, is forgotten."""
MAX_SEQ_RATE = 200.0
"""Messages per second an agent can plausibly send (it sends fewer than 40): a `seq` further
ahead of the last one than this rate allows since then (plus `SEQ_WINDOW`) is refused as
`seq_jump`, so a forged seq of 2^53 neither counts 9e15 lost messages nor freezes a value."""
MAX_FUTURE_S = 600.0
"""A `ts` more than this far ahead of the dashboard's clock is refused (`ts_future`)."""
RETENTION_S = 600.0
"""A finished visit is deleted this long after its last message (0: as soon as it ends)."""
CROWD_K = 5
"""Crowd figures are shown only when at least this many visits are behind them."""
MAX_TIMELINE = 240
"""Points of the emotion timeline kept per visit; when full, every other point goes and the
spacing doubles, so a long visit keeps its whole shape in bounded memory."""
TIMELINE_STEP_S = 0.5
"""Closest spacing of two timeline points (the agent sends up to 5 expressions a second)."""
MAX_RAW = 32
"""Exact payloads kept per visit (latest per type, and per type and item); oldest out first."""
SEQ_WINDOW = 2048
"""Sequence numbers remembered per agent, to recognise QoS 1 re-deliveries."""
MISSING_WINDOW = 256
"""Skipped sequence numbers remembered per agent, so a late one fills its gap. QoS 1 reorders
only what was in flight (an agent has at most 16 unacknowledged), so this is ample; it also
keeps a made-up agent id that opens a wide gap small (≈ 30 KB, not ≈ 230 KB)."""
SKEW_LIMIT_S = 2.0
"""An agent whose `ts` differs from the dashboard's clock by more than this is flagged."""
_SKEW_SAMPLES = 9
_PURGED_MEMORY = 10_000  # purged ids remembered, so a late message cannot bring one back
_CHANGE_LOG = 1024


@dataclass
class Agent:
    """One edge agent as seen from the dashboard (times are on the dashboard's clock)."""

    agent: str
    availability: str | None = None
    live_at: float | None = None  # last heartbeat or "online", whichever came last
    last_heartbeat: float | None = None
    last_seen: float | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)
    announced_online: bool = False
    seqs: OrderedDict = field(default_factory=OrderedDict)  # seq -> ts, the last SEQ_WINDOW
    max_seq: int = -1
    missing: OrderedDict = field(default_factory=OrderedDict)  # seqs skipped, not yet arrived
    restart_possible: bool = False  # "online" arrived: the next low seq may be a new process
    restarts: int = 0
    duplicates: int = 0
    gaps: int = 0  # seqs never received (a late arrival takes one back)
    skews: deque = field(default_factory=lambda: deque(maxlen=_SKEW_SAMPLES))
    raw_heartbeat: str | None = None
    current_visit: str | None = None  # the visit it sent about last
    seq_at: float | None = None  # dashboard clock when max_seq was accepted
    rejected: Counter = field(default_factory=Counter)  # reason -> its messages refused

    def skew_s(self) -> float | None:
        """Median of (agent ts − dashboard clock) over the last messages; None before any."""
        if not self.skews:
            return None
        ordered = sorted(self.skews)
        return round(ordered[len(ordered) // 2], 1)


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
    raw: OrderedDict = field(default_factory=OrderedDict)  # "kind" or "kind:item" -> payload
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


_NOT_INFERRED = frozenset({*_ENVELOPE, "ts", "item", "event", "consent", "scopes", "reason"})


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


def _keep_raw(raw: OrderedDict, key: str, payload: str) -> None:
    raw[key] = payload
    raw.move_to_end(key)
    while len(raw) > MAX_RAW:
        raw.popitem(last=False)


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
    page = {k: v for k, v in message.items() if k not in ("v", "type", "agent", "seq", "visit")}
    visit.pages.append(page)
    if len(visit.pages) > MAX_ITEMS:
        del visit.pages[0]
    looked = max(0.0, message["seconds"] - message["away_s"])
    visit.topics[message["topic"]] = round(visit.topics.get(message["topic"], 0.0) + looked, 1)


def visit_pace(visit: Visit) -> float | None:
    """The visitor's reading pace: the agent's personal pace, else the weighted page mean."""
    return profile.pace({"pages": visit.pages, "reading": visit.signals.get("reading")})


def _emotion(reaction: dict[str, Any]) -> float:
    """How strongly an item moved the viewer: the mean share of expressions other than neutral."""
    return round(1.0 - reaction["mean"][0], 2) if reaction.get("mean") else 0.0


def _percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list, rounded to 2 decimals."""
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)


@dataclass(frozen=True)
class Changes:
    """What changed since a version: `events` are (kind, entity JSON); `resync` means start over."""

    version: int
    events: list[tuple[str, dict[str, Any]]]
    resync: bool = False


class DashboardState:
    """Thread-safe agents, visits and counters; `wait_for_changes` lets streams follow along."""

    def __init__(
        self,
        heartbeat_timeout_s: float = 10.0,
        clock: Clock | None = None,
        max_visits: int = MAX_VISITS,
        retention_s: float = RETENTION_S,
        crowd_k: int = CROWD_K,
        max_agents: int = MAX_AGENTS,
        max_visits_per_agent: int = MAX_VISITS_PER_AGENT,
        agent_forget_s: float = AGENT_FORGET_S,
    ):
        if heartbeat_timeout_s <= 0:
            raise ValueError("heartbeat_timeout_s must be positive")
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.clock: Clock = clock or time.time
        self.max_visits = max_visits
        self.max_agents = int(max_agents)
        self.max_visits_per_agent = int(max_visits_per_agent)
        self.agent_forget_s = float(agent_forget_s)
        if self.max_agents < 1 or self.max_visits_per_agent < 1 or self.agent_forget_s <= 0:
            raise ValueError("max_agents and max_visits_per_agent ≥ 1, agent_forget_s > 0")
        # Visits forgotten for the caps: their consent, so a visit rebuilt from a later
        # message keeps the scopes its viewer chose (and the consent re-check with them).
        self._evicted: OrderedDict[str, tuple[str, str | None, list[str]]] = OrderedDict()
        if retention_s < 0 or crowd_k < 1:
            raise ValueError("retention_s must be ≥ 0 and crowd_k ≥ 1")
        self.retention_s = float(retention_s)
        self.crowd_k = int(crowd_k)
        self._purged: OrderedDict[str, None] = OrderedDict()
        self._cond = threading.Condition()
        self._agents: dict[str, Agent] = {}
        self._visits: dict[str, Visit] = {}
        self._order = 0
        self._version = 0
        self._changes: deque[tuple[int, str, str]] = deque(maxlen=_CHANGE_LOG)
        self._received = 0
        self._rejected: dict[str, int] = {}
        self._accepted: dict[str, int] = {}
        self._duplicates = 0
        self._restarts = 0
        self._dropped_forgotten = 0  # gaps of agents no longer held: `dropped` never goes down

    # --- counters -------------------------------------------------------------------------

    def count_received(self) -> None:
        """Count one message that arrived on a subscribed topic, valid or not."""
        with self._cond:
            self._received += 1

    def count_cleared(self) -> None:
        """Count an empty retained payload: a publisher clearing a retained message."""
        with self._cond:
            self._accepted["cleared"] = self._accepted.get("cleared", 0) + 1

    def count_rejected(self, reason: str) -> None:
        """Count one dropped message under `reason` (a `WireError.reason` or our own key)."""
        with self._cond:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def counters(self) -> dict[str, Any]:
        """Received, accepted per topic kind, rejected per reason, duplicates and dropped.

        `dropped` counts messages an agent sent that never arrived (gaps in its `seq`).
        """
        with self._cond:
            return {
                "received": self._received,
                "accepted": dict(self._accepted),
                "rejected": dict(self._rejected),
                "duplicates": self._duplicates,
                "dropped": self._dropped_forgotten
                + sum(agent.gaps for agent in self._agents.values()),
                "restarts": self._restarts,
                "agents": len(self._agents),
                "agents_online": sum(self._online(a) for a in self._agents.values()),
                "visits": len(self._visits),
                "visits_active": sum(
                    v.ended is None and not self._gone(v.agent) for v in self._visits.values()
                ),
            }

    # --- updates --------------------------------------------------------------------------

    def apply(
        self, info: TopicInfo, message: dict[str, Any] | str, raw: bytes | None = None
    ) -> bool:
        """Apply one decoded message (availability is the string ``online``/``offline``).

        `raw` is the exact payload as it left the device, kept to be shown beside what was
        inferred from it. Returns False for a re-delivered duplicate, which changes nothing.
        """
        with self._cond:
            try:
                applied = self._apply_locked(info, message, raw)
            except WireError as exc:
                known = self._agents.get(info.agent)
                if known is not None:  # never an entry for an id that only sent rejects
                    known.rejected[exc.reason] += 1
                raise
            if applied:
                self._accepted[info.kind] = self._accepted.get(info.kind, 0) + 1
            return applied

    def _apply_locked(
        self, info: TopicInfo, message: dict[str, Any] | str, raw: bytes | None
    ) -> bool:
        if info.kind == "available":
            self._apply_availability(info.agent, str(message))
        elif isinstance(message, dict) and info.kind in ("heartbeat", *VISIT_TYPES):
            self._check_ts(message)
            if not self._check_seq(message):
                return False
            text = raw.decode("utf-8", errors="replace") if raw is not None else None
            if info.kind == "heartbeat":
                self._apply_heartbeat(message, text)
            elif info.kind == "purge":
                self._apply_purge(message)
            elif info.kind == "feedback":
                self._apply_feedback(message)
            else:
                self._apply_visit_message(info.kind, message, text)
        else:
            raise WireError("unknown_type", f"cannot apply {info.kind!r}")
        return True

    def _check_ts(self, message: dict[str, Any]) -> None:
        if message["ts"] > self.clock() + MAX_FUTURE_S:
            raise WireError("ts_future", f"ts {message['ts']} is far ahead of this clock")

    def _check_seq(self, message: dict[str, Any]) -> bool:
        """Recognise re-deliveries, gaps and restarts from `seq`; False for a duplicate.

        QoS 1 may deliver a message twice: same agent, same seq, same ts. A restarted agent
        process counts from 0 again: the same seq with another ts, a seq far below the last,
        or any lower seq that is not a late gap-filler right after the agent said "online".
        """
        agent = self._agents.get(message["agent"])
        seq, ts = message["seq"], message["ts"]
        now = self.clock()
        if agent is not None and agent.max_seq >= 0 and agent.seq_at is not None:
            allowed = SEQ_WINDOW + MAX_SEQ_RATE * max(0.0, now - agent.seq_at)
            if seq - agent.max_seq > allowed:
                raise WireError(
                    "seq_jump", f"seq {seq} is {seq - agent.max_seq} ahead of {agent.max_seq}"
                )
        agent = self._agent(message["agent"])
        seen = agent.seqs.get(seq)
        if seen is not None:
            if seen == ts:
                agent.duplicates += 1
                self._duplicates += 1
                return False
            self._new_process(agent)
        elif 0 <= seq < agent.max_seq:
            if seq in agent.missing:
                del agent.missing[seq]  # late, not lost: QoS 1 does not keep order on resend
                agent.gaps -= 1
            elif agent.restart_possible or agent.max_seq - seq > SEQ_WINDOW:
                self._new_process(agent)
        if seq > agent.max_seq:
            first = agent.max_seq + 1 if agent.max_seq >= 0 or agent.restarts else seq
            agent.gaps += seq - first
            for lost in range(max(first, seq - MISSING_WINDOW), seq):
                agent.missing[lost] = None
            while len(agent.missing) > MISSING_WINDOW:
                agent.missing.popitem(last=False)
            agent.max_seq = seq
            agent.seq_at = now
        agent.seqs[seq] = ts
        while len(agent.seqs) > SEQ_WINDOW:
            agent.seqs.popitem(last=False)
        agent.restart_possible = False
        return True

    def _new_process(self, agent: Agent) -> None:
        agent.restarts += 1
        self._restarts += 1
        agent.seqs.clear()
        agent.missing.clear()
        agent.max_seq = -1
        agent.seq_at = None
        for visit in self._visits.values():
            if visit.agent == agent.agent:
                visit.signal_seq.clear()  # a new process counts from 0: its values are newer

    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            if len(self._agents) >= self.max_agents:
                self._forget_silent_agents()
            if len(self._agents) >= self.max_agents and not self._forget_one_agent():
                raise WireError("agent_cap", f"{self.max_agents} agents held, all online")
            agent = self._agents[agent_id] = Agent(agent_id)
        agent.last_seen = self.clock()
        return agent

    def _forget_agent(self, agent_id: str) -> None:
        for visit in [v.visit for v in self._visits.values() if v.agent == agent_id]:
            self._delete_visit(visit, purged=False)
        self._dropped_forgotten += self._agents.pop(agent_id).gaps
        self._changed("agent_gone", agent_id)

    def _forget_silent_agents(self) -> None:
        """Forget agents silent for `agent_forget_s` that hold no visit."""
        now = self.clock()
        holding = {v.agent for v in self._visits.values()}
        silent = [
            a.agent
            for a in self._agents.values()
            if a.agent not in holding and now - (a.last_seen or 0.0) >= self.agent_forget_s
        ]
        for agent_id in silent:
            self._forget_agent(agent_id)

    def _forget_one_agent(self) -> bool:
        """The table is full: forget the longest-silent agent that is not online."""
        offline = [a for a in self._agents.values() if not self._online(a)]
        if not offline:
            return False
        holding = {v.agent for v in self._visits.values()}
        oldest = min(offline, key=lambda a: (a.agent in holding, a.last_seen or 0.0))
        self._forget_agent(oldest.agent)
        return True

    def _apply_availability(self, agent_id: str, status: str) -> None:
        if status not in (ONLINE, OFFLINE):
            raise WireError("bad_availability", repr(status[:32]))
        agent = self._agent(agent_id)
        agent.availability = status
        if status == ONLINE:
            agent.live_at = agent.last_seen
            agent.restart_possible = agent.max_seq >= 0
        self._agent_changed(agent)

    def _apply_heartbeat(self, message: dict[str, Any], raw: str | None = None) -> None:
        agent = self._agent(message["agent"])
        agent.heartbeat = {name: message[name] for name in HEARTBEAT_FIELDS}
        agent.last_heartbeat = agent.live_at = agent.last_seen
        # Heartbeats are sent fresh every 2 s, never queued for long: their ts is the agent's
        # clock now. The median of the last few ignores one slow delivery.
        agent.skews.append(message["ts"] - agent.last_seen)
        agent.raw_heartbeat = raw
        self._agent_changed(agent)

    def _apply_purge(self, message: dict[str, Any]) -> None:
        visit = self._visits.get(message["visit"])
        if visit is not None and visit.agent != message["agent"]:
            raise WireError("visit_agent_mismatch", f"{message['agent']} may not purge that visit")
        self._delete_visit(message["visit"])

    def _delete_visit(self, visit_id: str, purged: bool = True) -> None:
        """Forget a visit and everything derived from it; late messages cannot revive it."""
        if purged:
            self._purged[visit_id] = None
            while len(self._purged) > _PURGED_MEMORY:
                self._purged.popitem(last=False)
            self._evicted.pop(visit_id, None)
        gone = self._visits.pop(visit_id, None)
        if gone is not None:
            self._changed("purge", visit_id)
            if gone.answers:
                self._changed("feedback", gone.agent)  # its answers leave the aggregate too

    def _apply_feedback(self, message: dict[str, Any]) -> None:
        """The visitor graded a conclusion: kept with the visit (the latest answer per
        conclusion), deleted with it; never makes a visit, never keeps it alive longer."""
        visit_id, agent_id = message["visit"], message["agent"]
        if visit_id in self._purged:
            raise WireError("purged_visit", f"visit {visit_id} was purged")
        visit = self._visits.get(visit_id)
        if visit is None:
            raise WireError("unknown_visit", f"no visit {visit_id} to answer about")
        if visit.agent != agent_id:
            raise WireError("visit_agent_mismatch", f"visit {visit_id} belongs to {visit.agent}")
        scope = scope_of("feedback", message)
        if scope not in visit.scopes:
            raise WireError("not_consented", f"visit {visit_id} did not consent to {scope}")
        conclusion = message["conclusion"]
        previous = visit.answers.get(conclusion)
        if previous is None or message["seq"] >= previous[0]:
            visit.answers[conclusion] = (message["seq"], message["answer"])
        self._agent(agent_id)
        self._changed("feedback", agent_id)

    def _apply_visit_message(self, kind: str, message: dict[str, Any], raw: str | None) -> None:
        visit_id, agent_id = message["visit"], message["agent"]
        if visit_id in self._purged:
            raise WireError("purged_visit", f"visit {visit_id} was purged")
        visit = self._visits.get(visit_id)
        if visit is not None and visit.agent != agent_id:
            # Pseudonyms are random; the same one from another agent is a spoof or a bug.
            raise WireError("visit_agent_mismatch", f"visit {visit_id} belongs to {visit.agent}")
        if (
            visit is not None
            and kind in SCOPE_OF
            and visit.scopes
            and SCOPE_OF[kind] not in visit.scopes
        ):
            # The agent's gate should never let this through; the dashboard checks again.
            raise WireError("not_consented", f"visit {visit_id} did not consent to {kind}")
        known_agent = agent_id in self._agents
        agent = self._agent(agent_id)
        if visit is None:
            evicted = self._evicted.get(visit_id)
            if evicted is not None and evicted[0] != agent_id:
                evicted = None
            if (
                evicted is not None
                and kind in SCOPE_OF
                and evicted[2]
                and SCOPE_OF[kind] not in evicted[2]
            ):
                # Forgotten for room, not for lack of consent: the scopes still hold.
                raise WireError("not_consented", f"visit {visit_id} did not consent to {kind}")
            self._make_room_for_visit(agent_id)
            self._order += 1
            visit = self._visits[visit_id] = Visit(visit_id, agent_id, self._order)
            if evicted is not None:
                del self._evicted[visit_id]
                visit.consent, visit.scopes = evicted[1], list(evicted[2])
        agent.current_visit = visit_id
        visit.messages += 1
        visit.counts[kind] += 1
        visit.last_at = self.clock()
        ts = message["ts"]
        visit.first_ts = ts if visit.first_ts is None else min(visit.first_ts, ts)
        visit.last_ts = ts if visit.last_ts is None else max(visit.last_ts, ts)
        visit.data_points += data_points(message)
        if raw is not None:
            key = kind if kind != "visit" else f"visit:{message['event']}"
            _keep_raw(visit.raw, key, raw)
            if message.get("item") is not None:
                _keep_raw(visit.raw, f"{kind}:{message['item']}", raw)
        if kind == "visit":
            visit.consent = message["consent"]
            visit.scopes = list(message["scopes"])
            if message["event"] == "start":
                if visit.started is None:
                    visit.started = message["ts"]
            else:
                visit.ended = message["ts"]
        else:
            fields = {k: v for k, v in message.items() if k not in _ENVELOPE}
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
        self._changed("visit", visit_id)
        if not known_agent:
            self._agent_changed(agent)

    def _evict(self, visit: Visit) -> None:
        """Forget a visit to make room; remember its consent in case it is rebuilt."""
        self._evicted[visit.visit] = (visit.agent, visit.consent, list(visit.scopes))
        while len(self._evicted) > _PURGED_MEMORY:
            self._evicted.popitem(last=False)
        self._delete_visit(visit.visit, purged=False)

    def _make_room_for_visit(self, agent_id: str) -> None:
        """Room for one more visit of `agent_id`, within its own cap and the global one.

        Within its cap an agent loses its own oldest visit (ended ones first). At the global
        cap the oldest ended or abandoned visit of any agent goes, else the agent's own
        oldest; another agent's live visit never does. Nothing to give up: `visit_cap`.
        """
        own = [v for v in self._visits.values() if v.agent == agent_id]
        if len(own) >= self.max_visits_per_agent:
            self._evict(min(own, key=lambda v: (v.ended is None, v.order)))
            return
        if len(self._visits) < self.max_visits:
            return
        idle = [v for v in self._visits.values() if v.ended is not None or self._gone(v.agent)]
        if idle:
            self._evict(min(idle, key=lambda v: v.order))
        elif own:
            self._evict(min(own, key=lambda v: v.order))
        else:
            raise WireError("visit_cap", f"{self.max_visits} live visits of other agents held")

    # --- reads ------------------------------------------------------------------------------

    def _online(self, agent: Agent) -> bool:
        if agent.availability == OFFLINE or agent.live_at is None:
            return False
        return self.clock() - agent.live_at <= self.heartbeat_timeout_s

    def _gone(self, agent_id: str) -> bool:
        """Known to be gone (will, "offline", or heartbeats stopped), not merely unheard of."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return False
        if agent.availability == OFFLINE:
            return True
        return agent.live_at is not None and not self._online(agent)

    def _visit_json(self, visit: Visit) -> dict[str, Any]:
        # A killed agent never sends "end": its open visits stop being active with it.
        data = visit.to_json(agent_gone=self._gone(visit.agent))
        data["profile"] = profile.describe(data)
        return data

    def _agent_json(self, agent: Agent) -> dict[str, Any]:
        data: dict[str, Any] = {"agent": agent.agent, "online": self._online(agent)}
        data["availability"] = agent.availability
        data.update({name: agent.heartbeat.get(name) for name in HEARTBEAT_FIELDS})
        data["last_heartbeat"] = agent.last_heartbeat
        data["last_seen"] = agent.last_seen
        skew = agent.skew_s()
        data["clock_skew_s"] = skew
        data["clock_skewed"] = skew is not None and abs(skew) > SKEW_LIMIT_S
        data["seq"] = agent.max_seq if agent.max_seq >= 0 else None
        data["gaps"] = agent.gaps
        data["duplicates"] = agent.duplicates
        data["restarts"] = agent.restarts
        data["rejected"] = dict(agent.rejected)
        visit = self._visits.get(agent.current_visit or "")
        live = visit is not None and visit.ended is None and data["online"]
        attention = visit.signals.get("attention") if live and visit is not None else None
        data["visit"] = visit.visit if live and visit is not None else None
        if attention is not None:
            data["viewers"] = attention["faces"]
        else:
            data["viewers"] = 0 if data["online"] else None
        return data

    def agents(self) -> list[dict[str, Any]]:
        """All agents, sorted by id."""
        with self._cond:
            return [self._agent_json(self._agents[a]) for a in sorted(self._agents)]

    def agent(self, agent_id: str) -> dict[str, Any] | None:
        with self._cond:
            agent = self._agents.get(agent_id)
            return self._agent_json(agent) if agent is not None else None

    def visits(self) -> list[dict[str, Any]]:
        """All remembered visits, newest (first seen last) first."""
        with self._cond:
            self._sweep()
            ordered = sorted(self._visits.values(), key=lambda v: v.order, reverse=True)
            return [self._visit_json(v) for v in ordered]

    def visit(self, visit_id: str) -> dict[str, Any] | None:
        with self._cond:
            self._sweep()
            visit = self._visits.get(visit_id)
            return self._visit_json(visit) if visit is not None else None

    def raw(self, visit_id: str) -> dict[str, str] | None:
        """The exact payloads kept for a visit: latest per type, and per type and item."""
        with self._cond:
            self._sweep()
            visit = self._visits.get(visit_id)
            return dict(visit.raw) if visit is not None else None

    def raw_heartbeat(self, agent_id: str) -> str | None:
        with self._cond:
            agent = self._agents.get(agent_id)
            return agent.raw_heartbeat if agent is not None else None

    def purge(self, visit_id: str) -> bool:
        """Delete one visit here (an admin action); False if there was none."""
        with self._cond:
            known = visit_id in self._visits
            self._delete_visit(visit_id)
            return known

    def reset(self) -> int:
        """Delete every visit (between volunteers); agents stay. Returns how many went."""
        with self._cond:
            ids = list(self._visits)
            for visit_id in ids:
                self._delete_visit(visit_id)
            for agent in self._agents.values():
                agent.current_visit = None
            return len(ids)

    def snapshot(self) -> dict[str, Any]:
        """Agents and visits at one version, consistent with each other."""
        with self._cond:
            self._sweep()
            return {
                "version": self._version,
                "agents": self.agents(),
                "visits": self.visits(),
                "feedback": {"k": self.crowd_k, "screens": self._feedback_screens()},
            }

    # --- following changes ------------------------------------------------------------------

    def _changed(self, kind: str, key: str) -> None:
        self._version += 1
        self._changes.append((self._version, kind, key))
        self._cond.notify_all()

    def _agent_changed(self, agent: Agent) -> None:
        online = self._online(agent)
        flipped = online != agent.announced_online
        agent.announced_online = online
        self._changed("agent", agent.agent)
        if flipped:
            for visit in self._visits.values():
                if visit.agent == agent.agent and visit.ended is None:
                    self._changed("visit", visit.visit)

    def _sweep(self) -> None:
        """Turn heartbeat timeouts and retention expiry into changes (no message says them)."""
        for agent in self._agents.values():
            if self._online(agent) != agent.announced_online:
                self._agent_changed(agent)
        now = self.clock()
        expired = [
            v.visit
            for v in self._visits.values()
            if (v.ended is not None or self._gone(v.agent)) and now - v.last_at >= self.retention_s
        ]
        for visit_id in expired:
            self._delete_visit(visit_id)
        self._forget_silent_agents()

    def crowd(self, visit_id: str | None = None) -> dict[str, Any]:
        """Figures across visits, each shown only when at least `crowd_k` visits are behind it.

        With `visit_id`, also how that visit compares (`compare`), under the same rule.
        """
        with self._cond:
            self._sweep()
            visits = list(self._visits.values())
            with_expression = [v for v in visits if v.expressions]
            with_attention = [v for v in visits if v.attention_seen]
            dominant = Counter(v.expressions.most_common(1)[0][0] for v in with_expression)
            present = sorted(v.attention_present / v.attention_seen for v in with_attention)
            paces = {v.visit: p for v in visits if (p := visit_pace(v)) is not None}
            ordered_paces = sorted(paces.values())
            emotional = self._item_figure(visits, "reaction", _emotion)
            skimmed = self._item_figure(visits, "page", lambda page: float(page["skim"]))
            result = {
                "k": self.crowd_k,
                "visits": len(visits),
                "expressions": self._figure(
                    len(with_expression),
                    lambda: {
                        label: round(n / len(with_expression), 2) for label, n in dominant.items()
                    },
                ),
                "present_share": self._figure(
                    len(with_attention),
                    lambda: {
                        "p25": _percentile(present, 25),
                        "median": _percentile(present, 50),
                        "p75": _percentile(present, 75),
                    },
                ),
                "pace_wpm": self._figure(
                    len(paces),
                    lambda: {
                        "p25": _percentile(ordered_paces, 25),
                        "median": _percentile(ordered_paces, 50),
                        "p75": _percentile(ordered_paces, 75),
                    },
                ),
                "most_emotional_item": emotional,
                "most_skimmed_item": skimmed,
            }
            visit = self._visits.get(visit_id or "")
            if visit_id is not None:
                result["compare"] = self._compare(visit, paces, emotional, skimmed)
            return result

    def _item_figure(
        self, visits: list[Visit], key: str, measure: Callable[[dict[str, Any]], float]
    ) -> dict[str, Any]:
        """The item that scores highest on `measure`, among items at least k visits saw."""
        per_item: dict[str, list[float]] = {}
        behind = 0
        for visit in visits:
            found = [(item, measure(e[key])) for item, e in visit.items.items() if key in e]
            behind += bool(found)
            for item, value in found:
                per_item.setdefault(item, []).append(value)

        def best() -> dict[str, Any] | None:
            shared = {i: sum(v) / len(v) for i, v in per_item.items() if len(v) >= self.crowd_k}
            if not shared:
                return None
            item = max(sorted(shared), key=lambda i: shared[i])
            return {"item": item, "value": round(shared[item], 2), "visits": len(per_item[item])}

        figure = self._figure(behind, best)
        if figure["withheld"] is None and figure["value"] is None:
            figure["withheld"] = "no item seen by enough visits"
        return figure

    def _compare(
        self,
        visit: Visit | None,
        paces: dict[str, float],
        emotional: dict[str, Any],
        skimmed: dict[str, Any],
    ) -> dict[str, Any]:
        if visit is None:
            return {"visit": None, "withheld": "no such visit"}
        mine = paces.get(visit.visit)
        others = [p for v, p in paces.items() if v != visit.visit]
        percentile = None
        withheld = None
        if mine is None:
            withheld = "no reading pace for this visit"
        elif len(paces) < self.crowd_k:
            withheld = "not enough visits"
        else:
            below = sum(p < mine for p in others) + 0.5 * sum(p == mine for p in others)
            percentile = round(100 * below / len(others)) if others else None
        top_item = (emotional.get("value") or {}).get("item")
        skim_item = (skimmed.get("value") or {}).get("item")
        mine_top = max(
            ((i, _emotion(e["reaction"])) for i, e in visit.items.items() if "reaction" in e),
            key=lambda kv: kv[1],
            default=(None, 0.0),
        )[0]
        page = (visit.items.get(skim_item or "") or {}).get("page")
        return {
            "visit": visit.visit,
            "pace_wpm": mine,
            "pace_percentile": percentile,
            "pace_withheld": withheld,
            "most_emotional_item": top_item,
            "same_most_emotional": top_item is not None and top_item == mine_top,
            "most_skimmed_item": skim_item,
            "skimmed_it_too": bool(page and page["skim"]),
        }

    def feedback(self) -> dict[str, Any]:
        """What visitors said about each screen's conclusions, over the visits that answered.

        Per screen (agent) and conclusion kind, the answers (one per visit, the latest), each
        figure withheld below `crowd_k` answering visits; for the expression, a confusion
        table: the screen's overall expression of a visit against what the visitor said they
        felt. Nothing per visit.
        """
        with self._cond:
            self._sweep()
            return {"k": self.crowd_k, "screens": self._feedback_screens()}

    def _feedback_screens(self, only: str | None = None) -> dict[str, Any]:
        answered: dict[str, list[Visit]] = {}
        for visit in self._visits.values():
            if visit.answers and (only is None or visit.agent == only):
                answered.setdefault(visit.agent, []).append(visit)
        return {agent: self._feedback_screen(visits) for agent, visits in sorted(answered.items())}

    def _feedback_screen(self, visits: list[Visit]) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for kind in FEEDBACK_SCOPE:
            said = [v.answers[kind][1] for v in visits if kind in v.answers]
            if not said:
                continue
            counts = Counter(said)
            if kind == "feeling":
                felt = {word: counts[word] for word in EXPRESSIONS if counts[word]}
                kinds[kind] = self._figure(len(said), lambda f=felt: f)
            else:
                kinds[kind] = self._figure(
                    len(said),
                    lambda c=counts: {
                        **{grade: c[grade] for grade in GRADES},
                        "graded": c["right"] + c["wrong"],
                    },
                )
        pairs = [
            (v.expressions.most_common(1)[0][0], v.answers["feeling"][1])
            for v in visits
            if "feeling" in v.answers and v.expressions
        ]

        def table() -> dict[str, dict[str, int]]:
            rows: dict[str, dict[str, int]] = {}
            for inferred, felt in sorted(pairs):
                row = rows.setdefault(inferred, {})
                row[felt] = row.get(felt, 0) + 1
            return rows

        return {"visits": len(visits), "kinds": kinds, "confusion": self._figure(len(pairs), table)}

    def _figure(self, behind: int, compute: Callable[[], Any]) -> dict[str, Any]:
        if behind < self.crowd_k:
            return {"visits": behind, "value": None, "withheld": "not enough visits"}
        return {"visits": behind, "value": compute(), "withheld": None}

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait_for_changes(self, since: int, timeout: float) -> Changes:
        """Block up to `timeout` s for changes after version `since`; return the latest of each."""
        with self._cond:
            self._sweep()
            if self._version == since:
                self._cond.wait(timeout)
                self._sweep()
            if self._version == since:
                return Changes(since, [])
            if since > self._version or not self._changes or self._changes[0][0] > since + 1:
                return Changes(self._version, [], resync=True)
            latest: dict[tuple[str, str], None] = {}
            for version, kind, key in self._changes:
                if version > since:
                    latest.pop((kind, key), None)
                    latest[(kind, key)] = None
            events = []
            for kind, key in latest:
                if kind == "agent_gone":
                    return Changes(self._version, [], resync=True)  # a fresh snapshot
                if kind == "agent":
                    if key in self._agents:
                        events.append((kind, self._agent_json(self._agents[key])))
                elif kind == "purge":
                    if key not in self._visits:
                        events.append((kind, {"visit": key}))
                elif kind == "feedback":
                    screens = self._feedback_screens(only=key)
                    events.append((kind, {"agent": key, "screen": screens.get(key)}))
                elif key in self._visits:
                    events.append((kind, self._visit_json(self._visits[key])))
            return Changes(self._version, events)
