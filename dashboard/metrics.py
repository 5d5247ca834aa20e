"""The dashboard's own counters: what arrived, what was applied, what was refused and why.

Every message that reaches the subscriber is counted once as received and then either as
accepted (per topic kind), as a duplicate, or as rejected (per reason). Messages that never
arrived are counted by `dashboard.sequence` as gaps in each agent's `seq`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    """Counters; the caller holds the state's lock."""

    received: int = 0
    accepted: Counter = field(default_factory=Counter)  # topic kind (and "cleared") -> messages
    rejected: Counter = field(default_factory=Counter)  # reason -> messages
    duplicates: int = 0  # QoS 1 re-deliveries, applied once
    restarts: int = 0  # agent processes that started counting again
    dropped_forgotten: int = 0  # gaps of agents no longer held: `dropped` never goes down

    def snapshot(self, gaps: int) -> dict[str, object]:
        """The counters as JSON; `gaps`: the lost messages of the agents held now."""
        return {
            "received": self.received,
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "duplicates": self.duplicates,
            "dropped": self.dropped_forgotten + gaps,
            "restarts": self.restarts,
        }
