"""The edge agent: frames in, consented coarse signals out over MQTT."""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import cv2

from broker import wire

from .attention import AttentionTracker
from .expression import ExpressionModel, ExpressionTracker
from .face import FaceAnalyzer, FaceObservation
from .feedback import conclusions as feedback_conclusions
from .models import DEFAULT_EXPRESSION_MODEL
from .publisher import SignalPublisher
from .reader import DEFAULT_SCREEN_WIDTH_CM, ItemLayout, ReadingSession
from .sources import Frame, FrameSource
from .stages import FrameContext, Message, Stage, StageSettings, create_stages
from .stages.attention import AttentionStage
from .stages.expression import ExpressionStage
from .stages.reading import ReadingStage

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=Stage)


@dataclass(frozen=True)
class Profile:
    """How much work the agent does per frame: the knobs for small devices."""

    width: int | None  # frames wider than this are scaled down before inference (None: never)
    infer_every: int  # run the face model on every n-th frame, reuse its faces in between
    max_rate_hz: float  # signal messages per second, at most


PROFILES = {
    "default": Profile(width=None, infer_every=1, max_rate_hz=5.0),
    # A Raspberry Pi 4/5: a quarter of the pixels and a third of the inferences of a laptop
    # (at 30 fps the face is still seen 10 times a second; blinks shorter than 100 ms are missed).
    "pi": Profile(width=320, infer_every=3, max_rate_hz=2.0),
}
MAX_INFER_EVERY = 6
"""When the model falls behind the camera, it runs on at most every 6th frame."""


CONSENT_FACE_GAP_S = 1.0
"""Consent given while a face was in front of the camera belongs to that face: when no face
has been seen for this long before its visit started (a detection can miss a frame or two),
the pending consent lapses rather than pass to whoever comes next."""


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
    profile: str = field(
        default="default",
        metadata={"help": "default, or pi: lower resolution and every 3rd frame for small boards"},
    )
    expression_model: str = field(
        default=DEFAULT_EXPRESSION_MODEL,
        metadata={"help": "expression backend (`onlooker models list` shows them)"},
    )
    heartbeat_s: float = field(default=2.0, metadata={"help": "seconds between heartbeats"})
    leave_after_s: float = field(
        default=3.0, metadata={"help": "a visit ends after the face is gone this long"}
    )
    max_visit_s: float = field(
        default=900.0, metadata={"help": "a visit ends after this long, whatever happens"}
    )
    consent_wait_s: float = field(
        default=5.0,
        metadata={
            "help": "viewer consent given with nobody in front of the camera lapses when no "
            "face arrives within this long"
        },
    )
    retention_s: float = field(
        default=600.0,
        metadata={"help": "how long a finished visit is kept (0 = deleted when it ends)"},
    )
    duration_s: float | None = field(default=None, metadata={"help": "stop after this long"})
    screen_width_cm: float = field(
        default=DEFAULT_SCREEN_WIDTH_CM,
        metadata={"help": "physical width of the viewer's screen, for the text box's size in gaze"},
    )

    def __post_init__(self) -> None:
        wire.check_agent_id(self.agent_id)
        wire.check_prefix(self.topic_prefix)
        wire.broker_address(self.broker_url)
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
        if not 0 < self.consent_wait_s <= 60:
            raise ValueError("consent_wait_s must be in (0, 60]")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, not {self.profile!r}")
        if not 5.0 <= self.screen_width_cm <= 500.0:
            raise ValueError("screen_width_cm must be between 5 and 500")
        from .models import check_model_name

        check_model_name(self.expression_model)


@dataclass
class Visit:
    """One person's consented stay in front of the screen, under a fresh random pseudonym."""

    id: str
    consent: str
    scopes: tuple[str, ...]
    started_ms: int
    last_seen_ms: int
    started_at: float = field(default_factory=time.monotonic)


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
    """Runs the loop source → face analyzer → stages → consent gate → publisher.

    The agent keeps the visit and the consent; each signal is a stage (`edge/stages/`) that
    owns its state, its reset, its rate limit and its messages (docs/architecture.md).
    """

    def __init__(
        self,
        config: AgentConfig,
        source: FrameSource,
        analyzer: FaceAnalyzer,
        publisher: SignalPublisher | None = None,
        expression_model: ExpressionModel | None = None,
    ):
        from .models import create_expression_model

        self.config = config
        self.source = source
        self.analyzer = analyzer
        self.profile = PROFILES[config.profile]
        self.max_rate_hz = min(config.max_rate_hz, self.profile.max_rate_hz)
        self.infer_every = self.profile.infer_every  # raised while the model falls behind
        self.stages: list[Stage] = create_stages(
            StageSettings(
                max_rate_hz=self.max_rate_hz,
                screen_width_cm=config.screen_width_cm,
                expression_model=expression_model
                or create_expression_model(config.expression_model),
            )
        )
        self._item: str | None = None  # the page or post on the viewer's screen
        self._layout: ItemLayout | None = None
        self._t_s = 0.0  # stream time of the latest frame
        self.publisher = publisher or SignalPublisher(
            config.broker_url, config.agent_id, config.topic_prefix
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # The scopes consented to; empty means no consent (nothing about a person leaves).
        self._scopes: tuple[str, ...] = (
            tuple(config.scopes) if config.consent == "recorded-source" else ()
        )
        # Viewer consent waiting for its visit: (monotonic time given, a face was present).
        self._pending: tuple[float, bool] | None = None
        self._last_face_at: float | None = None  # monotonic time of the last frame with a face
        self.consents_lapsed = 0
        self.visit: Visit | None = None
        self.last_visit: PastVisit | None = None
        self.visits_started = 0
        self.frames = 0
        self.fps = 0.0
        self._fps_window = (time.monotonic(), 0)  # (start, frames) of the current second
        self.latency_ms = 0.0
        self.face_present = False  # in the latest analysed frame
        self._started = time.monotonic()

    # --- the stages -----------------------------------------------------------------------

    def _stage(self, kind: type[S]) -> S:
        return next(stage for stage in self.stages if isinstance(stage, kind))

    @property
    def expression_model(self) -> ExpressionModel:
        return self._stage(ExpressionStage).model

    @property
    def expression(self) -> ExpressionTracker:
        """The expression stage's tracker (one visit's baseline, calibration, smoothing)."""
        return self._stage(ExpressionStage).tracker

    @property
    def attention(self) -> AttentionTracker:
        """The attention stage's tracker."""
        return self._stage(AttentionStage).tracker

    @attention.setter
    def attention(self, tracker: AttentionTracker) -> None:
        self._stage(AttentionStage).tracker = tracker

    @property
    def reading(self) -> ReadingSession:
        """The reading stage's session of the current visit."""
        return self._stage(ReadingStage).session

    def _active_stages(self, visit: Visit) -> list[Stage]:
        # Each stage runs only for the scopes the viewer chose: what is not consented to is not
        # even computed.
        return [stage for stage in self.stages if stage.runs_for(visit.scopes)]

    def _publish_locked(self, visit: Visit, stage: Stage, messages: list[Message]) -> None:
        # A stage that runs for another scope (attention, for reading) publishes nothing of its
        # own without its own consent; the publisher checks again.
        if stage.scope not in visit.scopes:
            return
        for message in messages:
            self.publisher.publish(message.kind, visit=visit.id, **message.fields)

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
            if self.visit is None and self.config.consent == "viewer":
                # Pending until a face arrives: tied to the face present now, or to one that
                # arrives within consent_wait_s if nobody is there yet.
                self._pending = (time.monotonic(), self.face_present)

    def _lapse_pending_locked(self, now: float) -> bool:
        """Drop viewer consent that waited too long for its face; True if it lapsed."""
        if self._pending is None or self.visit is not None or self.config.consent != "viewer":
            return False
        given_at, face_then = self._pending
        last_face = max(given_at, self._last_face_at or given_at)
        # A face-tied consent lapses once frames show the face gone; any pending consent lapses
        # after consent_wait_s (also when no frame is analysed meanwhile).
        lapsed = now - given_at > self.config.consent_wait_s or (
            face_then and not self.face_present and now - last_face > CONSENT_FACE_GAP_S
        )
        if lapsed:
            logger.info(
                "consent lapsed: %s",
                "the face it was given with left" if face_then else "no face arrived in time",
            )
            self._scopes = ()
            self._pending = None
            self.consents_lapsed += 1
        return lapsed

    def withdraw_consent(self) -> None:
        """The viewer said stop: publish nothing more, end the visit and purge it everywhere."""
        with self._lock:
            self._scopes = ()
            self._pending = None
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
            return self._purge_locked("forget")

    def _purge_locked(self, reason: str) -> bool:
        """Purge the last visit everywhere, once; False when none is left to purge."""
        past = self.last_visit
        if past is None or past.forgotten:
            return False
        self.publisher.purge(past.id, reason)
        past.forgotten = True
        return True

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
                # What the screen concluded, to be graded by the visitor (after the visit).
                "conclusions": feedback_conclusions(ledger) if past and ledger else [],
                "answers": dict(ledger.answers) if ledger else {},
            }

    def feedback(self, conclusion: str, answer: str) -> dict:
        """The visitor graded one conclusion of their finished visit: publish it under the
        visit's pseudonym (the publisher checks the scope). ValueError when it cannot go."""
        with self._lock:
            self._expire_locked()
            past = self.last_visit
            if self.visit is not None or past is None or past.forgotten:
                raise ValueError("answers are given after a visit, until it is forgotten")
            ledger = self.publisher.ledgers.get(past.id)
            shown = {c["kind"] for c in feedback_conclusions(ledger)}
            if conclusion not in shown:
                raise ValueError(f"the screen drew no {conclusion!r} conclusion in this visit")
            if not self.publisher.publish(
                "feedback", visit=past.id, conclusion=conclusion, answer=answer
            ):
                raise ValueError(f"{answer!r} is not an answer to {conclusion!r}")
            return {"conclusion": conclusion, "answer": answer}

    def status(self) -> dict:
        """What the viewer page shows: consent, whether the screen is watching, presence."""
        with self._lock:
            self._lapse_pending_locked(time.monotonic())
            return {
                "agent": self.config.agent_id,
                "consent_kind": self.config.consent,
                "consented": bool(self._scopes),
                "scopes": list(self._scopes),
                "retention_s": self.config.retention_s,
                "watching": self.visit is not None,
                "visit": self.visit.id if self.visit else None,
                "face_present": self.face_present,
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
        still = self.source.still
        # A camera (or a video paced like one) cannot wait: when the model is slower than the
        # frames arrive, it runs on fewer of them instead of building a queue.
        adaptive = not still and getattr(self.source, "realtime", True)
        budget_ms = 1000.0 / (self.source.fps or 30.0)
        model_ms: float | None = None
        skipped = self.infer_every  # frames since the last inference: infer on the first
        try:
            for frame in self.source.frames():
                if self._stop.is_set() or time.monotonic() >= deadline:
                    break
                if not still and skipped + 1 < self.infer_every:
                    # Between inferences nothing new is known: the frame only counts for fps.
                    skipped += 1
                    self._count_frame(frame)
                    continue
                skipped = 0
                frame = self._scaled(frame)
                started = time.perf_counter()
                faces = self.analyzer.analyze(frame.image, frame.t_ms, still=still)
                spent = (time.perf_counter() - started) * 1000.0
                model_ms = spent if model_ms is None else 0.8 * model_ms + 0.2 * spent
                if adaptive:
                    needed = math.ceil(model_ms / (0.8 * budget_ms))
                    self.infer_every = min(MAX_INFER_EVERY, max(self.profile.infer_every, needed))
                self._on_frame(frame, faces)
                del faces  # observations stay in this process and die here
                self._count_frame(frame)
        finally:
            self._stop.set()
            with self._lock:
                self._end_visit_locked("stopped")
            heartbeat.join(timeout=self.config.heartbeat_s + 1)
            self.publisher.stop()

    def _count_frame(self, frame: Frame) -> None:
        """Frame rate (every frame handled, analysed or not) and capture-to-signal latency."""
        now = time.monotonic()
        self.latency_ms = (now - frame.captured) * 1000.0
        self.frames += 1
        start, count = self._fps_window
        count += 1
        if now - start >= 1.0:
            self.fps = count / (now - start)
            start, count = now, 0
        self._fps_window = (start, count)

    def _scaled(self, frame: Frame) -> Frame:
        """The frame at the profile's width (landmarks are normalised, so nothing else moves)."""
        width = self.profile.width
        height, actual = frame.image.shape[:2]
        if width is None or actual <= width:
            return frame
        size = (width, round(height * width / actual))
        # INTER_LINEAR: a fifth of INTER_AREA's cost, and the model resizes again anyway.
        image = cv2.resize(frame.image, size, interpolation=cv2.INTER_LINEAR)
        return dataclasses.replace(frame, image=image)

    def _on_frame(self, frame: Frame, faces: list[FaceObservation]) -> None:
        present = bool(faces)
        t_ms, t_s, now = frame.t_ms, frame.t_ms / 1000.0, time.monotonic()
        with self._lock:
            self.face_present = present
            self._t_s = t_s
            self._expire_locked()
            visit = self.visit
            if present:
                self._last_face_at = now
            if visit is None:
                if self._lapse_pending_locked(now) or not (self._scopes and present):
                    return
                self._pending = None
                visit = self._start_visit_locked(t_ms)
            if present:
                visit.last_seen_ms = t_ms
            elif t_ms - visit.last_seen_ms > self.config.leave_after_s * 1000:
                self._end_visit_locked("left")
                return
            if t_ms - visit.started_ms > self.config.max_visit_s * 1000:
                self._end_visit_locked("max_duration")
                return
            stages = self._active_stages(visit)
        ctx = FrameContext(frame, faces, t_s, now)
        # The models run outside the lock: the viewer page's consent requests never wait on them.
        for stage in stages:
            ctx.prepared[stage.name] = stage.prepare(ctx)
        with self._lock:
            if self.visit is not visit:
                return  # withdrawn or forgotten meanwhile: nothing of this frame is kept
            for stage in stages:
                self._publish_locked(visit, stage, stage.on_frame(ctx))

    def show_item(self, item: str | None, layout: ItemLayout | None = None) -> None:
        """The viewer's screen now shows `item` (a page or post; None: nothing)."""
        if item is not None and not wire.ITEM_ID.match(item):
            raise ValueError(f"item id {item!r} must match {wire.ITEM_ID.pattern}")
        if layout is not None and layout.item != item:
            raise ValueError("the layout describes another item")
        with self._lock:
            if item == self._item:
                return
            self._item, self._layout = item, layout
            if self.visit is not None:
                self._switch_item_locked(self.visit, item)

    def _switch_item_locked(self, visit: Visit, item: str | None) -> None:
        """Close the item on screen, publishing what was learned during it; open `item`."""
        layout = self._layout if item is not None else None
        for stage in self._active_stages(visit):
            self._publish_locked(visit, stage, stage.on_item(item, layout, self._t_s))

    # --- calibration, asked for by the viewer page (held for one visit, then forgotten) -------

    def calibrate_expression(self, emotion: str, phase: str) -> dict:
        """ "Show a happy face": start or end collecting how this viewer shows `emotion`."""
        with self._lock:
            if self.visit is None or "expression" not in self.visit.scopes:
                raise ValueError("calibration needs a running visit with expression consent")
            return self._stage(ExpressionStage).calibrate(emotion, phase)

    def calibrate_gaze(self, phase: str, region: int | None = None) -> dict:
        """Look-at-the-dots: start, point at `region` 0..8 (None: between dots), or end."""
        with self._lock:
            if self.visit is None or not {"attention", "reading"} & set(self.visit.scopes):
                raise ValueError("calibration needs a running visit with attention consent")
            result, fitted = self._stage(AttentionStage).calibrate_gaze(phase, region)
            if fitted is not None:
                self._stage(ReadingStage).set_screen_calibration(fitted)
            return result

    def calibrate_reading(
        self, phase: str, left: float | None = None, right: float | None = None
    ) -> dict:
        """ "Read this line": start collecting the gaze, or end with the line's left and right
        edges (shares of the screen's width) and fit the gaze-to-text mapping from it."""
        with self._lock:
            if self.visit is None or "reading" not in self.visit.scopes:
                raise ValueError("the line calibration needs a running visit with reading consent")
            return self._stage(ReadingStage).calibrate_line(phase, left, right)

    def _start_visit_locked(self, t_ms: int) -> Visit:
        if self.last_visit is not None:
            # One visit at a time is remembered on the device; the previous one goes now.
            self.publisher.forget_ledger(self.last_visit.id)
            self.last_visit = None
        self.visit = Visit(new_pseudonym(), self.config.consent, self._scopes, t_ms, t_ms)
        self.visits_started += 1
        # The stages hold nothing here: they are new, or were reset when the last visit ended.
        if self._item is not None:  # opened at this frame's stream time (`_on_frame` set it)
            self._switch_item_locked(self.visit, self._item)
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
        visit = self.visit
        if visit is None:
            return
        if reason not in ("withdrawn", "forget"):
            # What the screen concluded, once more at the end; never after a "stop".
            self._switch_item_locked(visit, None)
            for stage in self._active_stages(visit):
                self._publish_locked(visit, stage, stage.end_visit(self._t_s))
        self.visit = None
        for stage in self.stages:
            stage.reset()  # calibrations belong to the visit too; the next one starts clean
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
                model=f"{self.analyzer.name}+{self.expression_model.name}"[:64],
                model_version=f"{self.analyzer.version}+{self.expression_model.version}"[:48],
                source=self.source.kind,
                uptime_s=time.monotonic() - self._started,
                watching=watching,
            )
            if self._stop.wait(self.config.heartbeat_s):
                return
