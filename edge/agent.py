"""The edge agent: frames in, consented coarse signals out over MQTT."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from broker import wire

from .face import FaceAnalyzer
from .publisher import SignalPublisher
from .signals import FaceSignals, face_signals
from .sources import FrameSource

logger = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    """Settings of one edge agent; every field has a default."""

    agent_id: str = field(default="kiosk-1", metadata={"help": "name of this screen on the wire"})
    broker_url: str = field(default="mqtt://127.0.0.1:1883", metadata={"help": "MQTT broker"})
    topic_prefix: str = field(default=wire.DEFAULT_PREFIX, metadata={"help": "topic prefix"})
    consent: str = field(
        default="viewer",
        metadata={
            "help": "viewer: the person consents on the viewer page; recorded-source: a "
            "recorded video stands in for a person who agreed to be filmed"
        },
    )
    scopes: tuple[str, ...] = field(
        default=wire.SCOPES,
        metadata={"help": "what a recorded source consents to (a viewer chooses on the page)"},
    )
    max_rate_hz: float = field(default=5.0, metadata={"help": "signal messages per second, max"})
    heartbeat_s: float = field(default=2.0, metadata={"help": "seconds between heartbeats"})
    leave_after_s: float = field(
        default=3.0, metadata={"help": "a visit ends after the face is gone this long"}
    )
    max_visit_s: float = field(
        default=900.0, metadata={"help": "a visit ends after this long, whatever happens"}
    )
    retention_s: float = field(
        default=600.0,
        metadata={"help": "how long a finished visit is kept (0 = deleted when it ends)"},
    )
    duration_s: float | None = field(default=None, metadata={"help": "stop after this long"})

    def __post_init__(self) -> None:
        wire.check_agent_id(self.agent_id)
        wire.check_prefix(self.topic_prefix)
        wire.parse_broker_url(self.broker_url)
        if self.consent not in wire.CONSENT_KINDS:
            raise ValueError(f"consent must be one of {wire.CONSENT_KINDS}, not {self.consent!r}")
        unknown = sorted(set(self.scopes) - set(wire.SCOPES))
        if unknown or not self.scopes:
            raise ValueError(f"scopes must be a non-empty subset of {wire.SCOPES}, not {unknown}")
        if not 0 < self.max_rate_hz <= 5.0:
            raise ValueError("max_rate_hz must be in (0, 5]: signals are published at ≤ 5 Hz")
        if self.heartbeat_s <= 0 or self.leave_after_s < 0:
            raise ValueError("heartbeat_s must be > 0 and leave_after_s ≥ 0")
        if self.max_visit_s <= 0 or self.retention_s < 0:
            raise ValueError("max_visit_s must be > 0 and retention_s ≥ 0")


@dataclass
class Visit:
    """One person's consented stay in front of the screen, under a fresh random pseudonym."""

    id: str
    consent: str
    scopes: tuple[str, ...]
    started_ms: int
    last_seen_ms: int
    started_at: float = field(default_factory=time.monotonic)
    last_sent: float = 0.0


@dataclass
class PastVisit:
    """A finished visit, remembered on the device only to show the viewer what was learned."""

    id: str
    reason: str  # left | withdrawn | forget | max_duration | consent_changed | stopped
    duration_s: float
    ended_at: float = field(default_factory=time.monotonic)
    forgotten: bool = False


def new_pseudonym() -> str:
    """A fresh random visit id: nothing about the face goes into it."""
    return secrets.token_hex(8)


class Agent:
    """Runs the loop source → face analyzer → signals → consent gate → publisher."""

    def __init__(
        self,
        config: AgentConfig,
        source: FrameSource,
        analyzer: FaceAnalyzer,
        publisher: SignalPublisher | None = None,
    ):
        self.config = config
        self.source = source
        self.analyzer = analyzer
        self.publisher = publisher or SignalPublisher(
            config.broker_url, config.agent_id, config.topic_prefix
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # The scopes consented to; empty means no consent (nothing about a person leaves).
        self._scopes: tuple[str, ...] = (
            tuple(config.scopes) if config.consent == "recorded-source" else ()
        )
        self.visit: Visit | None = None
        self.last_visit: PastVisit | None = None
        self.visits_started = 0
        self.frames = 0
        self.fps = 0.0
        self.latency_ms = 0.0
        self.last_signals = FaceSignals(present=False, faces=0)
        self._started = time.monotonic()

    # --- consent, driven by the viewer page -----------------------------------------------

    @property
    def consented(self) -> bool:
        return bool(self._scopes)

    def give_consent(self, scopes: Iterable[str] = wire.SCOPES) -> None:
        """The viewer agreed to `scopes`: a visit starts as soon as a face is present."""
        chosen = tuple(s for s in wire.SCOPES if s in set(scopes))
        unknown = sorted(set(scopes) - set(wire.SCOPES))
        if unknown or not chosen:
            raise ValueError(f"consent needs one or more of {wire.SCOPES}, not {unknown}")
        with self._lock:
            if self.visit is not None and self.visit.scopes != chosen:
                # A changed choice is a new visit, under a new name.
                self._end_visit_locked("consent_changed")
            self._scopes = chosen

    def withdraw_consent(self) -> None:
        """The viewer said stop: publish nothing more, end the visit and purge it everywhere."""
        with self._lock:
            self._scopes = ()
            if self.visit is not None:
                self._end_visit_locked("withdrawn")
                self._purge_locked("withdrawn")

    def forget(self) -> bool:
        """ "Forget me": end the visit if it runs and purge it everywhere; False if none."""
        with self._lock:
            if self.visit is not None:
                if self.config.consent == "viewer":
                    self._scopes = ()
                self._end_visit_locked("forget")
            if self.last_visit is None or self.last_visit.forgotten:
                return False
            self._purge_locked("forget")
            return True

    def _purge_locked(self, reason: str) -> None:
        past = self.last_visit
        if past is not None and not past.forgotten:
            self.publisher.purge(past.id, reason)
            past.forgotten = True

    def _expire_locked(self) -> None:
        """Past the retention period the device forgets what it published about a visit."""
        past = self.last_visit
        if past is not None and time.monotonic() - past.ended_at >= self.config.retention_s:
            self.publisher.forget_ledger(past.id)
            self.last_visit = None

    def learned(self) -> dict | None:
        """What left the device about the current or last visit: counts and exact payloads."""
        with self._lock:
            self._expire_locked()
            visit_id = self.visit.id if self.visit else self.last_visit and self.last_visit.id
            if visit_id is None:
                return None
            ledger = self.publisher.ledgers.get(visit_id)
            past = self.last_visit if self.visit is None else None
            return {
                "visit": visit_id,
                "active": self.visit is not None,
                "ended_reason": past.reason if past else None,
                "duration_s": round(
                    past.duration_s if past else time.monotonic() - self.visit.started_at, 1
                ),
                "forgotten": bool(past and past.forgotten),
                "kept_for_s": (
                    round(max(0.0, self.config.retention_s - (time.monotonic() - past.ended_at)))
                    if past and not past.forgotten
                    else None
                ),
                "messages": dict(ledger.counts) if ledger else {},
                "expressions": dict(ledger.labels) if ledger else {},
                "last": dict(ledger.last) if ledger else {},
            }

    def status(self) -> dict:
        """What the viewer page shows: consent, whether the screen is watching, presence."""
        with self._lock:
            return {
                "agent": self.config.agent_id,
                "consent_kind": self.config.consent,
                "consented": bool(self._scopes),
                "scopes": list(self._scopes),
                "retention_s": self.config.retention_s,
                "watching": self.visit is not None,
                "visit": self.visit.id if self.visit else None,
                "face_present": self.last_signals.present,
                "fps": round(self.fps, 1),
            }

    # --- the loop ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process frames until the source ends, the duration passes or `stop()` is called."""
        self.publisher.start(wait_s=5.0)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        deadline = (
            time.monotonic() + self.config.duration_s if self.config.duration_s else float("inf")
        )
        window_start, window_frames = time.monotonic(), 0
        try:
            for frame in self.source.frames():
                if self._stop.is_set() or time.monotonic() >= deadline:
                    break
                faces = self.analyzer.analyze(frame.image, frame.t_ms, still=self.source.still)
                signals = face_signals(faces)
                del faces  # observations stay in this process and die here
                now = time.monotonic()
                self.latency_ms = (now - frame.captured) * 1000.0
                self.frames += 1
                window_frames += 1
                if now - window_start >= 1.0:
                    self.fps = window_frames / (now - window_start)
                    window_start, window_frames = now, 0
                self._on_signals(signals, frame.t_ms, now)
        finally:
            self._stop.set()
            with self._lock:
                self._end_visit_locked("stopped")
            heartbeat.join(timeout=self.config.heartbeat_s + 1)
            self.publisher.stop()

    def _on_signals(self, signals: FaceSignals, t_ms: int, now: float) -> None:
        with self._lock:
            self.last_signals = signals
            self._expire_locked()
            visit = self.visit
            if visit is None:
                if not (self._scopes and signals.present):
                    return
                visit = self._start_visit_locked(t_ms)
            if signals.present:
                visit.last_seen_ms = t_ms
            elif t_ms - visit.last_seen_ms > self.config.leave_after_s * 1000:
                self._end_visit_locked("left")
                return
            if t_ms - visit.started_ms > self.config.max_visit_s * 1000:
                self._end_visit_locked("max_duration")
                return
            if now - visit.last_sent < 1.0 / self.config.max_rate_hz:
                return
            visit.last_sent = now
            if "attention" in visit.scopes:
                pose = signals.pose
                self.publisher.publish(
                    "attention",
                    visit=visit.id,
                    present=signals.present,
                    faces=signals.faces,
                    yaw=pose.yaw if pose else None,
                    pitch=pose.pitch if pose else None,
                    roll=pose.roll if pose else None,
                )
            if "expression" in visit.scopes and signals.expression is not None:
                self.publisher.publish(
                    "expression",
                    visit=visit.id,
                    label=signals.expression,
                    score=signals.expression_score,
                )

    def _start_visit_locked(self, t_ms: int) -> Visit:
        if self.last_visit is not None:
            # One visit at a time is remembered on the device; the previous one goes now.
            self.publisher.forget_ledger(self.last_visit.id)
            self.last_visit = None
        self.visit = Visit(new_pseudonym(), self.config.consent, self._scopes, t_ms, t_ms)
        self.visits_started += 1
        logger.info(
            "visit %s started (%s consent to %s)",
            self.visit.id, self.config.consent, ", ".join(self._scopes),
        )  # fmt: skip
        self.publisher.publish(
            "visit", visit=self.visit.id, event="start", consent=self.config.consent,
            scopes=list(self._scopes),
        )  # fmt: skip
        return self.visit

    def _end_visit_locked(self, reason: str) -> None:
        visit, self.visit = self.visit, None
        if visit is None:
            return
        logger.info("visit %s ended (%s)", visit.id, reason)
        self.publisher.publish(
            "visit", visit=visit.id, event="end", consent=visit.consent, scopes=list(visit.scopes)
        )
        self.last_visit = PastVisit(visit.id, reason, time.monotonic() - visit.started_at)
        if self.config.consent == "viewer":
            self._scopes = ()  # the next person in front of the screen must agree anew

    def _heartbeat_loop(self) -> None:
        while True:
            with self._lock:
                watching = self.visit is not None
            self.publisher.publish(
                "heartbeat",
                qos=0,
                fps=min(self.fps, 1000.0),
                latency_ms=min(self.latency_ms, 60_000.0),
                model=self.analyzer.name,
                model_version=self.analyzer.version,
                source=self.source.kind,
                uptime_s=time.monotonic() - self._started,
                watching=watching,
            )
            if self._stop.wait(self.config.heartbeat_s):
                return
