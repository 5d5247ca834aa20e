"""The dashboard's own counters: what arrived, what was applied, what was refused and why.

Every message that reaches the subscriber is counted once as received and then either as
accepted (per topic kind), as a duplicate, or as rejected (per reason). Messages that never
arrived are counted by `dashboard.sequence` as gaps in each agent's `seq`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

BEHIND_S = 1.0
"""A message that waited this long in the subscriber's inbox means the dashboard is behind."""
BEHIND_HOLD_S = 10.0
"""`behind` stays true this long after the last message that waited too long."""


@dataclass
class Metrics:
    """Counters; the caller holds the state's lock."""

    received: int = 0
    accepted: Counter = field(default_factory=Counter)  # topic kind (and "cleared") -> messages
    rejected: Counter = field(default_factory=Counter)  # reason -> messages
    duplicates: int = 0  # QoS 1 re-deliveries, applied once
    restarts: int = 0  # agent processes that started counting again
    dropped_forgotten: int = 0  # gaps of agents no longer held: `dropped` never goes down
    dropped_backlog: int = 0  # dropped by the subscriber's full inbox (also counted in gaps)
    backlog: int = 0  # messages waiting in the subscriber's inbox after the last batch
    backlog_max: int = 0
    lag_s: float = 0.0  # how long the oldest message of the last batch waited in the inbox
    lag_max_s: float = 0.0
    behind_at: float | None = None  # clock when a message last waited `BEHIND_S` or more

    def batch(self, lag_s: float, backlog: int, now: float) -> None:
        """The subscriber applied a batch whose oldest message waited `lag_s` in its inbox."""
        self.lag_s = lag_s
        self.lag_max_s = max(self.lag_max_s, lag_s)
        self.backlog = backlog
        self.backlog_max = max(self.backlog_max, backlog)
        if lag_s >= BEHIND_S:
            self.behind_at = now

    def snapshot(self, gaps: int, now: float) -> dict[str, object]:
        """The counters as JSON; `gaps`: the lost messages of the agents held now."""
        return {
            "received": self.received,
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "dropped": self.dropped_forgotten + gaps,
            "dropped_backlog": self.dropped_backlog,
            "restarts": self.restarts,
            "backlog": self.backlog,
            "backlog_max": self.backlog_max,
            "lag_ms": round(1000 * self.lag_s),
            "lag_ms_max": round(1000 * self.lag_max_s),
            "behind": self.behind_at is not None and now - self.behind_at < BEHIND_HOLD_S,
        }
