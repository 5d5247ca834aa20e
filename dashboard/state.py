"""What the dashboard knows: agents and visits, built only from validated wire messages.

`DashboardState` holds the agents and visits, under one lock, and everything that decides
whether a message may change them: the sequence check (`dashboard.sequence`), the visit's
owner and consent, purged visits that must stay gone, the caps, retention. What a visit is
and how a message updates it is `dashboard.visits`; the exact payloads kept, `dashboard.rawlog`;
figures across visits, `dashboard.crowd`; the counters, `dashboard.metrics`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.wire import (
    OFFLINE,
    ONLINE,
    SCOPE_OF,
    VISIT_TYPES,
    TopicInfo,
    WireError,
    scope_of,
)
from dashboard import crowd, profile, visits
from dashboard.metrics import Metrics
from dashboard.rawlog import MAX_RAW  # noqa: F401 (a limit of the state, read by tests)
from dashboard.sequence import MISSING_WINDOW, SEQ_WINDOW, Sequence  # noqa: F401
from dashboard.visits import (  # noqa: F401 (the limits of the state, read by tests)
    ITEM_TYPES,
    MAX_ITEMS,
    MAX_TIMELINE,
    Visit,
)

Clock = Callable[[], float]

HEARTBEAT_FIELDS = ("fps", "latency_ms", "model", "model_version", "source", "watching", "uptime_s")
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
MAX_FUTURE_S = 600.0
"""A `ts` more than this far ahead of the dashboard's clock is refused (`ts_future`)."""
RETENTION_S = 600.0
"""A finished visit is deleted this long after its last message (0: as soon as it ends)."""
CROWD_K = 5
"""Crowd figures are shown only when at least this many visits are behind them."""
SKEW_LIMIT_S = 2.0
"""An agent whose `ts` differs from the dashboard's clock by more than this is flagged."""
_SKEW_SAMPLES = 9
_PURGED_MEMORY = 10_000  # purged ids remembered, so a late message cannot bring one back
_CHANGE_LOG = 1024
_JSON_CACHE = 128  # visit JSONs kept for the other streams: one flush's worth (see below)
STREAM_VISIT_EVENTS_PER_S = 40.0
"""Visit updates the event stream carries per second at most, across all visits. A busy
visit changes 10+ times a second; at 100 kiosks that was 600 visit events a second, half a
core spent building them, more than a page can show. Each update is sent whole, so when
many visits are busy each is sent less often (`STREAM_MAX_DELAY_S` at most); a visit's
start and end, a purge and agents go at once."""
STREAM_MAX_DELAY_S = 2.0


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
    sequence: Sequence = field(default_factory=Sequence)
    skews: deque = field(default_factory=lambda: deque(maxlen=_SKEW_SAMPLES))
    raw_heartbeat: str | None = None
    current_visit: str | None = None  # the visit it sent about last
    rejected: Counter = field(default_factory=Counter)  # reason -> its messages refused

    def skew_s(self) -> float | None:
        """Median of (agent ts − dashboard clock) over the last messages; None before any."""
        if not self.skews:
            return None
        ordered = sorted(self.skews)
        return round(ordered[len(ordered) // 2], 1)


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
        self._dirty: dict[str, None] = {}  # visits changed since the last flush to the log
        self._flushed_at = 0.0  # monotonic time of the last flush
        self._flush_every = 0.0  # seconds between flushes: dirty visits / the budget
        # visit -> (version, its JSON), the most recent few: every stream sends the same build
        self._json_cache: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._announced_health: tuple[bool, int] = (False, 0)  # (behind, dropped) last told
        self.metrics = Metrics()

    # --- counters -------------------------------------------------------------------------

    def count_received(self) -> None:
        """Count one message that arrived on a subscribed topic, valid or not."""
        with self._cond:
            self.metrics.received += 1

    def count_cleared(self) -> None:
        """Count an empty retained payload: a publisher clearing a retained message."""
        with self._cond:
            self.metrics.accepted["cleared"] += 1

    def count_rejected(self, reason: str) -> None:
        """Count one dropped message under `reason` (a `WireError.reason` or our own key)."""
        with self._cond:
            self.metrics.rejected[reason] += 1

    def count_dropped_backlog(self) -> None:
        """Count one message the subscriber's full inbox had to drop (its oldest)."""
        with self._cond:
            self.metrics.dropped_backlog += 1

    def counters(self) -> dict[str, Any]:
        """Received, accepted per topic kind, rejected per reason, duplicates and dropped.

        `dropped` counts messages an agent sent that never arrived (gaps in its `seq`).
        """
        with self._cond:
            return {
                **self.metrics.snapshot(
                    sum(a.sequence.gaps for a in self._agents.values()), time.monotonic()
                ),
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
            applied = self._apply_counted(info, message, raw)
            self._health_changed()
            return applied

    def apply_batch(
        self,
        items: list[tuple[TopicInfo, dict[str, Any] | str, bytes | None]],
        received: int = 0,
        rejected: list[str] = (),  # type: ignore[assignment]
        cleared: int = 0,
        lag_s: float = 0.0,
        backlog: int = 0,
    ) -> list[tuple[tuple[TopicInfo, Any, bytes | None], WireError]]:
        """Apply decoded messages in order under one lock; the subscriber's batch.

        `received` messages arrived, of which `rejected` (reasons) failed validation and
        `cleared` were empty retained payloads. Returns the items refused here, with why.
        """
        errors = []
        with self._cond:
            self.metrics.received += received
            for reason in rejected:
                self.metrics.rejected[reason] += 1
            if cleared:
                self.metrics.accepted["cleared"] += cleared
            for item in items:
                try:
                    self._apply_counted(*item)
                except WireError as exc:
                    errors.append((item, exc))
                    self.metrics.rejected[exc.reason] += 1
            self.metrics.batch(lag_s, backlog, time.monotonic())
            self._health_changed()
        return errors

    def _health(self) -> dict[str, Any]:
        """Whether the dashboard keeps up, for the page: behind, lag, backlog, lost messages."""
        counters = self.metrics.snapshot(
            sum(a.sequence.gaps for a in self._agents.values()), time.monotonic()
        )
        return {name: counters[name] for name in ("behind", "lag_ms", "backlog", "dropped")}

    def _health_changed(self) -> None:
        """Tell the streams when the dashboard falls behind, catches up, or learns of a loss."""
        health = self._health()
        key = (bool(health["behind"]), int(health["dropped"]))
        if key != self._announced_health:
            self._announced_health = key
            self._changed("dashboard_health", "dashboard")

    def _apply_counted(
        self, info: TopicInfo, message: dict[str, Any] | str, raw: bytes | None
    ) -> bool:
        try:
            applied = self._apply_locked(info, message, raw)
        except WireError as exc:
            known = self._agents.get(info.agent)
            if known is not None:  # never an entry for an id that only sent rejects
                known.rejected[exc.reason] += 1
            raise
        if applied:
            self.metrics.accepted[info.kind] += 1
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
        """Recognise re-deliveries, gaps and restarts from `seq`; False for a duplicate."""
        known = self._agents.get(message["agent"])
        now = self.clock()
        if known is not None:
            known.sequence.check_jump(message["seq"], now)  # before any entry is made for it
        agent = self._agent(message["agent"])
        new, restarted = agent.sequence.accept(message["seq"], message["ts"], now)
        if restarted:
            self.metrics.restarts += 1
            for visit in self._visits.values():
                if visit.agent == agent.agent:
                    visit.signal_seq.clear()  # a new process counts from 0: its values are newer
        if not new:
            self.metrics.duplicates += 1
        return new

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
        self.metrics.dropped_forgotten += self._agents.pop(agent_id).sequence.gaps
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
            agent.sequence.online()
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
        self._json_cache.pop(visit_id, None)
        self._dirty.pop(visit_id, None)
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
        visits.record(visit, kind, message, raw, self.clock())
        self._changed("visit", visit_id, batched=kind != "visit")
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

    def _cached_visit_json(self, visit_id: str, version: int) -> dict[str, Any]:
        """The visit's JSON at the `version` it last changed: built once for every stream."""
        cached = self._json_cache.get(visit_id)
        if cached is None or cached[0] != version:
            cached = (version, self._visit_json(self._visits[visit_id]))
            self._json_cache[visit_id] = cached
            self._json_cache.move_to_end(visit_id)
            while len(self._json_cache) > _JSON_CACHE:
                self._json_cache.popitem(last=False)
        return cached[1]

    def _agent_json(self, agent: Agent) -> dict[str, Any]:
        data: dict[str, Any] = {"agent": agent.agent, "online": self._online(agent)}
        data["availability"] = agent.availability
        data.update({name: agent.heartbeat.get(name) for name in HEARTBEAT_FIELDS})
        data["last_heartbeat"] = agent.last_heartbeat
        data["last_seen"] = agent.last_seen
        skew = agent.skew_s()
        data["clock_skew_s"] = skew
        data["clock_skewed"] = skew is not None and abs(skew) > SKEW_LIMIT_S
        sequence = agent.sequence
        data["seq"] = sequence.max_seq if sequence.max_seq >= 0 else None
        data["gaps"] = sequence.gaps
        data["duplicates"] = sequence.duplicates
        data["restarts"] = sequence.restarts
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
            # An agent's pointer to the visit it sent about last now points at nothing, and
            # shows nothing: its view looks the visit up among the visits.
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
                "dashboard_health": self._health(),
            }

    # --- following changes ------------------------------------------------------------------

    def _changed(self, kind: str, key: str, batched: bool = False) -> None:
        """Log a change for the streams; `batched`: a visit's signals, logged by `_flush`."""
        if batched:
            self._dirty[key] = None
        else:
            if kind == "visit":
                self._dirty.pop(key, None)
            self._version += 1
            self._changes.append((self._version, kind, key))
        self._cond.notify_all()

    def _flush(self) -> float | None:
        """Log the visits changed since the last flush, if one is due; None, or the seconds
        until the next is due. Flushes are spaced so that visit updates keep within
        `STREAM_VISIT_EVENTS_PER_S`: one busy visit goes at once, a hundred every 2 s."""
        if not self._dirty:
            return None
        now = time.monotonic()
        wait = self._flushed_at + self._flush_every - now
        if wait > 0:
            return wait
        dirty, self._dirty = self._dirty, {}
        for key in dirty:
            self._changed("visit", key)
        self._flush_every = min(STREAM_MAX_DELAY_S, len(dirty) / STREAM_VISIT_EVENTS_PER_S)
        self._flushed_at = now
        return None

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
        if self._announced_health[0]:
            self._health_changed()  # `behind` ends by itself, with no message to say so
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
            held = list(self._visits.values())
            visit = self._visits.get(visit_id or "")
            return crowd.crowd(held, self.crowd_k, visit, visit_id)

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
        return crowd.feedback_screens(self._visits.values(), self.crowd_k, only)

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait_for_changes(self, since: int, timeout: float) -> Changes:
        """Block up to `timeout` s for changes after version `since`; return the latest of each."""
        with self._cond:
            self._sweep()
            due = self._flush()
            if self._version == since:
                self._cond.wait(timeout if due is None else min(timeout, due))
                self._sweep()
                self._flush()
            if self._version == since:
                return Changes(since, [])
            if since > self._version or not self._changes or self._changes[0][0] > since + 1:
                return Changes(self._version, [], resync=True)
            latest: dict[tuple[str, str], int] = {}
            for version, kind, key in self._changes:
                if version > since:
                    latest.pop((kind, key), None)
                    latest[(kind, key)] = version
            events = []
            for (kind, key), version in latest.items():
                if kind == "agent_gone":
                    return Changes(self._version, [], resync=True)  # a fresh snapshot
                if kind == "agent":
                    if key in self._agents:
                        events.append((kind, self._agent_json(self._agents[key])))
                elif kind == "purge":
                    if key not in self._visits:
                        events.append((kind, {"visit": key}))
                elif kind == "dashboard_health":
                    events.append((kind, self._health()))
                elif kind == "feedback":
                    screens = self._feedback_screens(only=key)
                    events.append((kind, {"agent": key, "screen": screens.get(key)}))
                elif key in self._visits:
                    events.append((kind, self._cached_visit_json(key, version)))
            return Changes(self._version, events)
