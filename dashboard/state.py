"""What the dashboard knows: agents and visits, built only from validated wire messages."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.wire import OFFLINE, ONLINE, SCOPE_OF, VISIT_TYPES, TopicInfo, WireError

Clock = Callable[[], float]

HEARTBEAT_FIELDS = ("fps", "latency_ms", "model", "model_version", "source", "watching", "uptime_s")
SIGNAL_TYPES = ("attention", "attention_summary", "expression")
"""Signals of which a visit shows the latest message (the summary: of the whole visit)."""
ITEM_TYPES = {"reaction": "reaction", "attention_summary": "attention"}
"""Signals that describe one page or post, kept per item under these keys."""
MAX_ITEMS = 200
"""Items remembered per visit; a feed scrolled for an hour cannot grow a visit without end."""
_ENVELOPE = ("v", "type", "agent", "seq", "visit")
MAX_VISITS = 500
"""Oldest visits are forgotten beyond this many, so a kiosk running for weeks stays small."""
RETENTION_S = 600.0
"""A finished visit is deleted this long after its last message (0: as soon as it ends)."""
CROWD_K = 5
"""Crowd figures are shown only when at least this many visits are behind them."""
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
    messages: int = 0
    last_at: float = 0.0  # dashboard clock at the last message, for retention
    expressions: Counter = field(default_factory=Counter)  # label -> messages
    attention_seen: int = 0  # attention messages
    attention_present: int = 0  # … of which with a face present

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
        }


def _copy(signal: dict[str, Any] | None) -> dict[str, Any] | None:
    return dict(signal) if signal is not None else None


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
    ):
        if heartbeat_timeout_s <= 0:
            raise ValueError("heartbeat_timeout_s must be positive")
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.clock: Clock = clock or time.time
        self.max_visits = max_visits
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
        """Received, accepted per topic kind, and rejected per reason."""
        with self._cond:
            return {
                "received": self._received,
                "accepted": dict(self._accepted),
                "rejected": dict(self._rejected),
            }

    # --- updates --------------------------------------------------------------------------

    def apply(self, info: TopicInfo, message: dict[str, Any] | str) -> None:
        """Apply one decoded message (availability is the string ``online``/``offline``)."""
        with self._cond:
            if info.kind == "available":
                self._apply_availability(info.agent, str(message))
            elif info.kind == "heartbeat" and isinstance(message, dict):
                self._apply_heartbeat(message)
            elif info.kind == "purge" and isinstance(message, dict):
                self._apply_purge(message)
            elif info.kind in VISIT_TYPES and isinstance(message, dict):
                self._apply_visit_message(info.kind, message)
            else:
                raise WireError("unknown_type", f"cannot apply {info.kind!r}")
            self._accepted[info.kind] = self._accepted.get(info.kind, 0) + 1

    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = Agent(agent_id)
        agent.last_seen = self.clock()
        return agent

    def _apply_availability(self, agent_id: str, status: str) -> None:
        if status not in (ONLINE, OFFLINE):
            raise WireError("bad_availability", repr(status[:32]))
        agent = self._agent(agent_id)
        agent.availability = status
        if status == ONLINE:
            agent.live_at = agent.last_seen
        self._agent_changed(agent)

    def _apply_heartbeat(self, message: dict[str, Any]) -> None:
        agent = self._agent(message["agent"])
        agent.heartbeat = {name: message[name] for name in HEARTBEAT_FIELDS}
        agent.last_heartbeat = agent.live_at = agent.last_seen
        self._agent_changed(agent)

    def _apply_purge(self, message: dict[str, Any]) -> None:
        visit = self._visits.get(message["visit"])
        if visit is not None and visit.agent != message["agent"]:
            raise WireError("visit_agent_mismatch", f"{message['agent']} may not purge that visit")
        self._delete_visit(message["visit"])

    def _delete_visit(self, visit_id: str) -> None:
        """Forget a visit and everything derived from it; late messages cannot revive it."""
        self._purged[visit_id] = None
        while len(self._purged) > _PURGED_MEMORY:
            self._purged.popitem(last=False)
        if self._visits.pop(visit_id, None) is not None:
            self._changed("purge", visit_id)

    def _apply_visit_message(self, kind: str, message: dict[str, Any]) -> None:
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
            self._order += 1
            visit = self._visits[visit_id] = Visit(visit_id, agent_id, self._order)
            self._forget_oldest_visits()
        visit.messages += 1
        visit.last_at = self.clock()
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
            else:
                visit.signals[kind] = fields
            if kind == "expression":
                visit.expressions[message["label"]] += 1
            elif kind == "attention":
                visit.attention_seen += 1
                visit.attention_present += bool(message["present"])
        self._changed("visit", visit_id)
        if not known_agent:
            self._agent_changed(agent)

    def _forget_oldest_visits(self) -> None:
        while len(self._visits) > self.max_visits:
            oldest = min(self._visits.values(), key=lambda v: (v.ended is None, v.order))
            del self._visits[oldest.visit]

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
        return visit.to_json(agent_gone=self._gone(visit.agent))

    def _agent_json(self, agent: Agent) -> dict[str, Any]:
        data: dict[str, Any] = {"agent": agent.agent, "online": self._online(agent)}
        data["availability"] = agent.availability
        data.update({name: agent.heartbeat.get(name) for name in HEARTBEAT_FIELDS})
        data["last_heartbeat"] = agent.last_heartbeat
        data["last_seen"] = agent.last_seen
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

    def snapshot(self) -> dict[str, Any]:
        """Agents and visits at one version, consistent with each other."""
        with self._cond:
            self._sweep()
            return {"version": self._version, "agents": self.agents(), "visits": self.visits()}

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

    def crowd(self) -> dict[str, Any]:
        """Figures across visits, each shown only when at least `crowd_k` visits are behind it."""
        with self._cond:
            self._sweep()
            visits = list(self._visits.values())
            with_expression = [v for v in visits if v.expressions]
            with_attention = [v for v in visits if v.attention_seen]
            dominant = Counter(v.expressions.most_common(1)[0][0] for v in with_expression)
            present = sorted(v.attention_present / v.attention_seen for v in with_attention)
            return {
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
            }

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
                if kind == "agent":
                    events.append((kind, self._agent_json(self._agents[key])))
                elif kind == "purge":
                    if key not in self._visits:
                        events.append((kind, {"visit": key}))
                elif key in self._visits:
                    events.append((kind, self._visit_json(self._visits[key])))
            return Changes(self._version, events)
