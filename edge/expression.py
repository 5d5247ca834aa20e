"""Expression inference that explains itself: the replaceable model and the per-visit tracker."""

from __future__ import annotations

import logging
import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .face import FaceObservation
from .signals import RateLimit

logger = logging.getLogger(__name__)

EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust", "contempt")
EXPRESSIVE = EMOTIONS[1:]
SPEEDS = ("fast", "medium", "slow")

# Where each emotion sits on Russell's circumplex of affect (Russell 1980, "A circumplex model
# of affect", J. Pers. Soc. Psychol. 39:1161), as (valence -1..1, arousal 0..1). The positions
# are the usual reading of his figure 2 (pleased/happy, astonished, angry/annoyed, sad/gloomy,
# afraid/alarmed, distressed/disgusted, bored/contemptuous), rounded to one decimal; neutral
# is the calm centre. Valence and arousal are the score-weighted means of these points.
AFFECT: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.1),
    "joy": (0.8, 0.5),
    "surprise": (0.2, 0.9),
    "anger": (-0.6, 0.8),
    "sadness": (-0.7, 0.2),
    "fear": (-0.6, 0.9),
    "disgust": (-0.6, 0.5),
    "contempt": (-0.5, 0.3),
}


@dataclass(frozen=True)
class Reason:
    """One sign that drove an inference: a blendshape, the action unit it stands for, its value."""

    blendshape: str
    action_unit: str  # e.g. "AU12 lip corner puller"
    value: float


@dataclass(frozen=True)
class EmotionEstimate:
    """Emotion scores for one face (a distribution over EMOTIONS) with the reasons for the label."""

    scores: dict[str, float]  # every emotion in EMOTIONS, 0..1, summing to 1
    label: str
    score: float
    valence: float  # -1..1
    arousal: float  # 0..1
    reasons: tuple[Reason, ...] = ()  # at most three, the strongest first
    # Reasons for every emotion the backend can explain; lets the tracker explain its own label.
    evidence: Mapping[str, tuple[Reason, ...]] = field(default_factory=dict, compare=False)
    relative_to_rest: bool = False  # the visit's resting face has been taken out of the scores

    def message_fields(self) -> dict[str, object]:
        """The coarse, publishable part, flat for the wire: label, scores, affect, reasons."""
        return {
            "label": self.label,
            "score": round(self.score, 2),
            "valence": round(self.valence, 2),
            "arousal": round(self.arousal, 2),
            "reason_units": [r.action_unit for r in self.reasons],
            "reason_shapes": [r.blendshape for r in self.reasons],
            "reason_values": [round(r.value, 2) for r in self.reasons],
            "relative_to_rest": self.relative_to_rest,
        }


def affect(scores: Mapping[str, float]) -> tuple[float, float]:
    """Valence and arousal as the score-weighted mean of each emotion's circumplex position."""
    total = sum(scores.get(e, 0.0) for e in EMOTIONS) or 1.0
    valence = sum(scores.get(e, 0.0) * AFFECT[e][0] for e in EMOTIONS) / total
    arousal = sum(scores.get(e, 0.0) * AFFECT[e][1] for e in EMOTIONS) / total
    return max(-1.0, min(1.0, valence)), max(0.0, min(1.0, arousal))


def normalised(scores: Mapping[str, float]) -> dict[str, float]:
    """All EMOTIONS in 0..1: expressive mass over 1 is scaled down, neutral takes the rest."""
    out = {e: min(1.0, max(0.0, float(scores.get(e, 0.0)))) for e in EXPRESSIVE}
    mass = sum(out.values())
    if mass > 1.0:
        out = {e: v / mass for e, v in out.items()}
        mass = 1.0
    return {"neutral": max(0.0, 1.0 - mass), **out}


def from_probabilities(probabilities: Mapping[str, float]) -> dict[str, float]:
    """All EMOTIONS from a classifier's distribution (neutral kept as given), summing to 1."""
    out = {e: max(0.0, float(probabilities.get(e, 0.0))) for e in EMOTIONS}
    total = sum(out.values())
    if total <= 0.0:
        return {e: 1.0 if e == "neutral" else 0.0 for e in EMOTIONS}
    return {e: v / total for e, v in out.items()}


def make_estimate(
    scores: Mapping[str, float],
    evidence: Mapping[str, tuple[Reason, ...]] | None = None,
    relative_to_rest: bool = False,
    label: str | None = None,
) -> EmotionEstimate:
    """An estimate from scores over EMOTIONS: the label is the top score unless given."""
    full = {e: float(scores.get(e, 0.0)) for e in EMOTIONS}
    if label is None:
        label = max(EMOTIONS, key=full.__getitem__)
    valence, arousal = affect(full)
    evidence = dict(evidence or {})
    return EmotionEstimate(
        scores=full,
        label=label,
        score=full[label],
        valence=valence,
        arousal=arousal,
        reasons=tuple(evidence.get(label, ()))[:3],
        evidence=evidence,
        relative_to_rest=relative_to_rest,
    )


class ExpressionModel(ABC):
    """The replaceable expression stage: one face in, an explained EmotionEstimate out."""

    name: str
    version: str = "1"
    outputs: str = "scores for " + ", ".join(EMOTIONS)
    speed: str = "fast"  # fast: < 1 ms per face; medium: < 10 ms; slow: more

    @abstractmethod
    def estimate(
        self, image_rgb: np.ndarray | None, face: FaceObservation | None
    ) -> EmotionEstimate | None:
        """Estimate the expression of one face; None when the backend finds no face to read."""

    def forget(self) -> None:
        """Drop anything carried over from earlier frames: a new visit, or unrelated stills."""

    def close(self) -> None:
        """Free the model."""


@dataclass(frozen=True)
class Reaction:
    """How the viewer reacted while one content item was on screen (published scores)."""

    item: str
    seconds: float
    frames: int  # frames with a face while the item was shown
    peak: dict[str, float]
    mean: dict[str, float]

    def message_fields(self) -> dict[str, object]:
        """Flat for the wire: peak and mean as lists in EMOTIONS order, rounded (empty: no face)."""
        return {
            "item": self.item,
            "seconds": round(self.seconds, 1),
            "frames": self.frames,
            "peak": [round(self.peak[e], 2) for e in EMOTIONS] if self.frames else [],
            "mean": [round(self.mean[e], 2) for e in EMOTIONS] if self.frames else [],
        }


@dataclass(frozen=True)
class Calibration:
    """One calibration step: the level this person reached when asked to show an emotion."""

    emotion: str
    level: float  # median score of the emotion while it was being shown
    gain: float  # multiplier applied to that emotion for the rest of the visit
    frames: int


CALIBRATION_TARGET = 0.8
"""A calibrated person's posed emotion counts as this score for the rest of the visit."""
CALIBRATION_GAIN = (0.5, 3.0)
"""Gains are clipped to this range: a calibration cannot switch an emotion on from nothing."""
RESTING_PERCENTILE = 10
"""The resting face is the face at its most relaxed: each emotion's 10th percentile over the
visit so far, first read after `baseline_s` and then once a second. A stern face is stern all
the time, so its low percentile stays high; a visitor who smiles through the first seconds
relaxes at some moment later, and from then on the smile no longer counts as rest."""
RESTING_BINS = 50  # the scores' histogram per emotion has 0.02-wide bins
_ROWS = np.arange(len(EXPRESSIVE))
MAX_RESTING = 0.6
"""A resting face is at most 0.6 of an expression: a higher level at the most relaxed moment
means an expression was held throughout, and only this much of it is taken as rest."""


class ExpressionTracker:
    """Per visit: resting baseline, calibration, smoothing with hysteresis, reactions per item."""

    def __init__(
        self,
        baseline_s: float = 3.0,
        smoothing_s: float = 0.3,
        switch_margin: float = 0.1,
        switch_hold_s: float = 0.5,
        publish_hz: float = 2.0,
        gap_s: float = 1.0,
    ):
        if baseline_s < 0 or smoothing_s < 0 or switch_margin < 0 or switch_hold_s < 0:
            raise ValueError("baseline_s, smoothing_s, switch_margin and switch_hold_s must be ≥ 0")
        if not 0 < publish_hz <= 5.0:
            raise ValueError("publish_hz must be in (0, 5]: scores are published at ≤ 5 Hz")
        self.baseline_s = baseline_s
        self.smoothing_s = smoothing_s
        self.switch_margin = switch_margin
        self.switch_hold_s = switch_hold_s
        self.publish_hz = publish_hz
        self.gap_s = gap_s
        self.reset()

    # --- the visit ---------------------------------------------------------------------------

    def reset(self) -> None:
        """A new visit: forget the baseline, the calibration, the label and the open item."""
        self._t0: float | None = None
        self._resting = np.zeros((len(EXPRESSIVE), RESTING_BINS), dtype=np.int64)
        self._rest_learned_at: float | None = None
        self.baseline: dict[str, float] | None = None
        self.gains: dict[str, float] = {}
        self._calibrating: str | None = None
        self._calibration_levels: list[float] = []
        self._smoothed: dict[str, float] | None = None
        self._last_t: float | None = None
        self.label: str | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0
        self._reasons: dict[str, tuple[Reason, ...]] = {}
        self.current: EmotionEstimate | None = None
        self._rate = RateLimit(self.publish_hz)
        self._item: str | None = None
        self._item_t0 = 0.0
        self._item_frames = 0
        self._item_sum: dict[str, float] = {}
        self._item_peak: dict[str, float] = {}

    def update(self, t_s: float, estimate: EmotionEstimate | None) -> EmotionEstimate | None:
        """Feed one frame's raw estimate (None: no face); return the smoothed, explained one."""
        if estimate is None:
            self.current = None  # nothing stale is published while no face is seen
            return None
        if self._t0 is None:
            self._t0 = t_s
        scores = estimate.scores
        if self.baseline_s > 0:
            self._learn_rest(t_s, scores)
        adjusted = self._adjusted(scores)
        if self._calibrating is not None:
            self._calibration_levels.append(adjusted[self._calibrating])
        smoothed = self._smooth(t_s, adjusted)
        self._switch(t_s, smoothed)
        for emotion, reasons in estimate.evidence.items():
            if reasons:  # the latest signs seen for each emotion explain it when it is published
                self._reasons[emotion] = reasons
        if estimate.reasons:
            self._reasons[estimate.label] = estimate.reasons
        assert self.label is not None
        reasons = self._reasons.get(self.label, estimate.reasons)
        self.current = make_estimate(
            smoothed,
            evidence={self.label: reasons},
            relative_to_rest=self.baseline is not None,
            label=self.label,
        )
        if self._item is not None:
            self._item_frames += 1
            for e, v in smoothed.items():
                self._item_sum[e] = self._item_sum.get(e, 0.0) + v
                self._item_peak[e] = max(self._item_peak.get(e, 0.0), v)
        return self.current

    def should_publish(self, t_s: float) -> bool:
        """True at most `publish_hz` times a second while there is an estimate to publish."""
        return self.current is not None and self._rate.ready(t_s)

    # --- the steps of update -------------------------------------------------------------------

    def _learn_rest(self, t_s: float, scores: Mapping[str, float]) -> None:
        """Count the scores; after `baseline_s`, read the resting level again each second."""
        bins = [min(RESTING_BINS - 1, int(scores.get(e, 0.0) * RESTING_BINS)) for e in EXPRESSIVE]
        self._resting[_ROWS, bins] += 1
        assert self._t0 is not None
        if t_s - self._t0 < self.baseline_s:
            return
        if self._rest_learned_at is not None and t_s - self._rest_learned_at < 1.0:
            return
        self._rest_learned_at = t_s
        cumulative = np.cumsum(self._resting, axis=1)
        wanted = cumulative[:, -1] * RESTING_PERCENTILE / 100.0
        # The lower edge of the bin holding the percentile: never more than the true level.
        first = np.argmax(cumulative >= wanted[:, None], axis=1) / RESTING_BINS
        if self.baseline is None:
            logger.debug("resting baseline learned after %.1f s", t_s - self._t0)
        self.baseline = {
            e: min(MAX_RESTING, float(v)) for e, v in zip(EXPRESSIVE, first, strict=True)
        }

    def _adjusted(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Take out the resting face, apply the calibration gains, renormalise."""
        expressive = {e: scores.get(e, 0.0) for e in EXPRESSIVE}
        if self.baseline is not None:
            # What a face shows at rest is not an expression: only the excess over the resting
            # level counts, rescaled so that a full-blown expression still reaches 1.
            expressive = {
                e: max(0.0, v - self.baseline[e]) / (1.0 - self.baseline[e])
                for e, v in expressive.items()
            }
        for e, gain in self.gains.items():
            expressive[e] *= gain
        return normalised(expressive)

    def _smooth(self, t_s: float, scores: dict[str, float]) -> dict[str, float]:
        """Exponential moving average with time constant `smoothing_s`, restarted after a gap."""
        previous, last_t = self._smoothed, self._last_t
        self._last_t = t_s
        if previous is None or last_t is None or t_s - last_t > self.gap_s or self.smoothing_s == 0:
            self._smoothed = dict(scores)
        else:
            alpha = 1.0 - math.exp(-max(0.0, t_s - last_t) / self.smoothing_s)
            self._smoothed = {e: previous[e] + alpha * (scores[e] - previous[e]) for e in EMOTIONS}
        return self._smoothed

    def _switch(self, t_s: float, smoothed: dict[str, float]) -> None:
        """Hysteresis: a new label must lead the current one by a margin for `switch_hold_s`."""
        leader = max(EMOTIONS, key=smoothed.__getitem__)
        if self.label is None:
            self.label = leader
            return
        if leader == self.label or smoothed[leader] - smoothed[self.label] < self.switch_margin:
            self._candidate = None
            return
        if self._candidate != leader:
            self._candidate, self._candidate_since = leader, t_s
        if t_s - self._candidate_since >= self.switch_hold_s:
            self.label, self._candidate = leader, None

    # --- reactions per content item ----------------------------------------------------------

    def start_item(self, item_id: str, t_s: float) -> Reaction | None:
        """A new page or post is on screen; close the previous one and return its reaction."""
        reaction = self.end_item(t_s)
        self._item, self._item_t0 = item_id, t_s
        return reaction

    def end_item(self, t_s: float) -> Reaction | None:
        """The current item left the screen: its peak and mean of every emotion, or None."""
        if self._item is None:
            return None
        n = self._item_frames
        reaction = Reaction(
            item=self._item,
            seconds=max(0.0, t_s - self._item_t0),
            frames=n,
            peak=dict(self._item_peak) if n else {},
            mean={e: v / n for e, v in self._item_sum.items()} if n else {},
        )
        self._item = None
        self._item_frames = 0
        self._item_sum, self._item_peak = {}, {}
        return reaction

    # --- calibration ("show me a happy face") -----------------------------------------------

    def start_calibration(self, emotion: str) -> None:
        """Start collecting the level this person reaches while showing `emotion`."""
        if emotion not in EXPRESSIVE:
            raise ValueError(
                f"cannot calibrate {emotion!r}; known emotions: {', '.join(EXPRESSIVE)}"
            )
        self._calibrating = emotion
        self._calibration_levels = []

    def end_calibration(self) -> Calibration | None:
        """Stop collecting; the gain for the emotion holds for the rest of the visit."""
        emotion, levels = self._calibrating, self._calibration_levels
        self._calibrating, self._calibration_levels = None, []
        if emotion is None:
            return None
        if not levels:
            logger.warning("calibration of %s saw no face; nothing changed", emotion)
            return None
        # The level was measured with any earlier gain applied; calibrate the unscaled level.
        level = statistics.median(levels) / self.gains.get(emotion, 1.0)
        low, high = CALIBRATION_GAIN
        gain = min(high, max(low, CALIBRATION_TARGET / max(level, 1e-6)))
        self.gains[emotion] = gain
        logger.debug("calibrated %s: level %.2f, gain %.2f", emotion, level, gain)
        return Calibration(emotion, level, gain, len(levels))

    @property
    def calibrating(self) -> str | None:
        """The emotion being calibrated right now, if any."""
        return self._calibrating


def label_flips(labels: list[str | None]) -> int:
    """How many times a sequence of labels changes (None, no face, is skipped)."""
    seen = [label for label in labels if label is not None]
    return sum(1 for a, b in zip(seen[:-1], seen[1:], strict=True) if a != b)
