"""Sequence tracking: which of an agent's messages are new, re-delivered, lost, or a restart.

Every message carries the agent's `seq`, counting from 0 in each agent process. QoS 1 may
deliver a message twice (same seq, same ts) and, on a resend, out of order; a restarted
process counts from 0 again. `Sequence` tells these apart for one agent, in bounded memory,
and counts the gaps: messages the agent sent that never arrived.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from broker.wire import WireError

SEQ_WINDOW = 2048
"""Sequence numbers remembered per agent, to recognise QoS 1 re-deliveries."""
MISSING_WINDOW = 256
"""Skipped sequence numbers remembered per agent, so a late one fills its gap. QoS 1 reorders
only what was in flight (an agent has at most 16 unacknowledged), so this is ample; it also
keeps a made-up agent id that opens a wide gap small (≈ 30 KB, not ≈ 230 KB)."""
MAX_SEQ_RATE = 200.0
"""Messages per second an agent can plausibly send (it sends fewer than 40): a `seq` further
ahead of the last one than this rate allows since then (plus `SEQ_WINDOW`) is refused as
`seq_jump`, so a forged seq of 2^53 neither counts 9e15 lost messages nor freezes a value."""


@dataclass
class Sequence:
    """One agent's sequence numbers as they arrived."""

    seqs: OrderedDict = field(default_factory=OrderedDict)  # seq -> ts, the last SEQ_WINDOW
    max_seq: int = -1
    missing: OrderedDict = field(default_factory=OrderedDict)  # seqs skipped, not yet arrived
    restart_possible: bool = False  # "online" arrived: the next low seq may be a new process
    restarts: int = 0
    duplicates: int = 0
    gaps: int = 0  # seqs never received (a late arrival takes one back)
    seq_at: float | None = None  # dashboard clock when max_seq was accepted

    def check_jump(self, seq: int, now: float) -> None:
        """Refuse a seq further ahead than the agent could have counted since the last one."""
        if self.max_seq >= 0 and self.seq_at is not None:
            allowed = SEQ_WINDOW + MAX_SEQ_RATE * max(0.0, now - self.seq_at)
            if seq - self.max_seq > allowed:
                raise WireError(
                    "seq_jump", f"seq {seq} is {seq - self.max_seq} ahead of {self.max_seq}"
                )

    def online(self) -> None:
        """The agent said "online": a low seq that follows may be a new process."""
        self.restart_possible = self.max_seq >= 0

    def accept(self, seq: int, ts: float, now: float) -> tuple[bool, bool]:
        """Record one message: (new, restarted). Not new: a re-delivered duplicate.

        A restarted agent process counts from 0 again: the same seq with another ts, a seq
        far below the last, or any lower seq that is not a late gap-filler right after the
        agent said "online".
        """
        restarted = False
        seen = self.seqs.get(seq)
        if seen is not None:
            if seen == ts:
                self.duplicates += 1
                return False, False
            self._new_process()
            restarted = True
        elif 0 <= seq < self.max_seq:
            if seq in self.missing:
                del self.missing[seq]  # late, not lost: QoS 1 does not keep order on resend
                self.gaps -= 1
            elif self.restart_possible or self.max_seq - seq > SEQ_WINDOW:
                self._new_process()
                restarted = True
        if seq > self.max_seq:
            first = self.max_seq + 1 if self.max_seq >= 0 or self.restarts else seq
            self.gaps += seq - first
            for lost in range(max(first, seq - MISSING_WINDOW), seq):
                self.missing[lost] = None
            while len(self.missing) > MISSING_WINDOW:
                self.missing.popitem(last=False)
            self.max_seq = seq
            self.seq_at = now
        self.seqs[seq] = ts
        while len(self.seqs) > SEQ_WINDOW:
            self.seqs.popitem(last=False)
        self.restart_possible = False
        return True, restarted

    def _new_process(self) -> None:
        self.restarts += 1
        self.seqs.clear()
        self.missing.clear()
        self.max_seq = -1
        self.seq_at = None
