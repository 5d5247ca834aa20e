"""The default expression backend: FACS emotion prototypes read from the 52 blendshapes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..expression import EXPRESSIVE, EmotionEstimate, ExpressionModel, Reason, make_estimate
from ..face import FaceObservation

logger = logging.getLogger(__name__)

# The action unit each blendshape stands for. MediaPipe's blendshapes follow Apple ARKit's
# names; the correspondences are those of ARKit's own descriptions of each coefficient read
# against the FACS manual (Ekman, Friesen & Hager 2002). Left/right pairs are averaged and
# named without the side; "<name>:asym" is |left - right|, a one-sided movement.
ACTION_UNITS: dict[str, str] = {
    "browInnerUp": "AU1 inner brow raiser",
    "browOuterUp": "AU2 outer brow raiser",
    "browDown": "AU4 brow lowerer",
    "eyeWide": "AU5 upper lid raiser",
    "cheekSquint": "AU6 cheek raiser",
    "eyeSquint": "AU7 lid tightener",
    "noseSneer": "AU9 nose wrinkler",
    "mouthUpperUp": "AU10 upper lip raiser",
    "mouthSmile": "AU12 lip corner puller",
    "mouthDimple": "AU14 dimpler",
    "mouthFrown": "AU15 lip corner depressor",
    "mouthLowerDown": "AU16 lower lip depressor",
    "mouthShrugLower": "AU17 chin raiser",
    "mouthPucker": "AU18 lip pucker",
    "mouthStretch": "AU20 lip stretcher",
    "mouthFunnel": "AU22 lip funneler",
    "mouthPress": "AU24 lip presser",
    "jawOpen": "AU26 jaw drop",
    "mouthRollLower": "AU28 lip suck",
    "mouthRollUpper": "AU28 lip suck",
    "eyeBlink": "AU45 blink",
    "mouthSmile:asym": "AU12 lip corner puller, one side (R12)",
    "mouthDimple:asym": "AU14 dimpler, one side (R14)",
}


@dataclass(frozen=True)
class Weight:
    """One entry of the table: a blendshape feature, its weight and where the weight comes from."""

    feature: str
    weight: float  # > 0: evidence for the emotion; < 0: evidence against it
    source: str


_GUIDE = "FACS Investigator's Guide (Ekman, Friesen & Hager 2002) prototype"
_AGAINST_SMILE = (
    "AU12 appears in no negative prototype; MediaPipe's smile also raises the upper lip and "
    "squints the eyes (DESIGN.md: mouthUpperUp 0.70, eyeSquint 0.61 on posed joy), so a smile "
    "cancels that shared evidence; -0.5 lets a full smile outweigh one shared AU"
)

# The mapping as data. Within each emotion every prototype action unit that has a blendshape
# counts equally (positive weights sum to 1), so an emotion's intensity is the mean activation
# of its prototype: nothing here was fitted to any face. The prototypes are those listed in
# DESIGN.md, which follow the FACS prototypes; where the full prototype has AUs left out, the
# source says which and why.
_STILL = (
    "issue 12: on 814 labelled faces of the tuning half (docs/models.md) this blendshape is "
    "0.000 on every face (mediapipe issues #4450, #4436)"
)
_APART = (
    "MediaPipe never reports AU1 and AU4 on the same face (browInnerUp and browDown are never "
    "both above 0.1 on the labelled faces), so AU4 is left out where the prototype pairs them"
)

# The mapping as data. Within each emotion every prototype action unit that has a blendshape
# which moves on real faces counts equally (positive weights sum to 1), so an emotion's
# intensity is the mean activation of its prototype: no weight was fitted to any face. The
# prototypes are those listed in DESIGN.md, which follow the FACS prototypes; where the full
# prototype has AUs left out, the source says which and why. AU6 (cheekSquint) and AU9
# (noseSneer) carry no weight: MediaPipe 1.2 never moves them.
EMOTION_WEIGHTS: dict[str, tuple[Weight, ...]] = {
    "joy": (Weight("mouthSmile", 1.0, f"{_GUIDE} 6+12: AU12 (AU6, cheekSquint: {_STILL})"),),
    "surprise": (
        Weight("browInnerUp", 0.25, f"{_GUIDE} 1+2+5B+26: AU1"),
        Weight("browOuterUp", 0.25, f"{_GUIDE} 1+2+5B+26: AU2"),
        Weight("eyeWide", 0.25, f"{_GUIDE} 1+2+5B+26: AU5"),
        Weight("jawOpen", 0.25, f"{_GUIDE} 1+2+5B+26: AU26"),
    ),
    "anger": (
        Weight("browDown", 1 / 3, f"{_GUIDE} 4+5+7+23/24: AU4"),
        Weight("eyeSquint", 1 / 3, f"{_GUIDE} 4+5+7+23/24: AU7"),
        Weight(
            "mouthPress",
            1 / 3,
            f"{_GUIDE} 4+5+7+23/24: AU24 (AU23 has no blendshape; AU5 left out as in "
            "DESIGN.md, a raised lid and a tightened lid cancel in the blendshapes)",
        ),
        Weight("mouthSmile", -0.5, _AGAINST_SMILE),
    ),
    "sadness": (
        Weight("browInnerUp", 0.5, f"{_GUIDE} 1+4+15: AU1 ({_APART})"),
        Weight("mouthFrown", 0.5, f"{_GUIDE} 1+4+15: AU15"),
        Weight("mouthSmile", -0.5, _AGAINST_SMILE),
    ),
    "fear": (
        Weight("browInnerUp", 1 / 3, f"{_GUIDE} 1+2+4+5+7+20+26: AU1 ({_APART})"),
        Weight("eyeWide", 1 / 3, f"{_GUIDE} 1+2+4+5+7+20+26: AU5"),
        Weight(
            "mouthStretch",
            1 / 3,
            f"{_GUIDE} 1+2+4+5+7+20+26: AU20 (AU2, AU7 and AU26 left out as in DESIGN.md: "
            "shared with surprise and anger, fear is told apart by AU20)",
        ),
        Weight("mouthSmile", -0.5, _AGAINST_SMILE),
    ),
    "disgust": (
        Weight(
            "mouthUpperUp",
            1.0,
            f"EMFACS disgust (Friesen & Ekman 1983) 9 / 10: AU10 (AU9, noseSneer: {_STILL}; "
            "disgust from blendshapes is weak)",
        ),
        Weight("mouthSmile", -0.5, _AGAINST_SMILE),
    ),
    "contempt": (
        Weight("mouthSmile:asym", 0.5, f"{_GUIDE} R12A+R14A: one-sided AU12"),
        Weight("mouthDimple:asym", 0.5, f"{_GUIDE} R12A+R14A: one-sided AU14"),
    ),
}

RESTING: dict[str, float] = {
    "eyeSquint": 0.34,
    "eyeBlink": 0.10,
    "browDown": 0.08,
    "mouthPress": 0.04,
    "browOuterUp": 0.04,
}
"""A relaxed face's level of the features that are not zero at rest: the median over the 208
neutral faces of the tuning half (issue 12; docs/models.md), rounded. A face with its lids at
0.34 squint is at rest, not half-way to anger: only the excess over this level, rescaled to
0..1, is evidence. It serves a still and the first seconds of a visit; the tracker's own
resting baseline (edge.expression) then takes out the visitor's personal resting face."""

CALL_AT = 0.2
"""An emotion is called (rather than neutral) once its prototype AUs average about this much.

FACS scores intensity A (trace) to E (maximum); a mean activation below 0.2 is trace-level,
too little to name an emotion (the earlier rule in edge/signals.py used 0.25). Technically:
the expressive share of the scores is min(1, intensity / (2 * CALL_AT)), so the leading
emotion overtakes neutral near CALL_AT.
"""


MIN_REASON = 0.05
"""Blendshape values below this are trace level (FACS A) and are not given as reasons."""


def feature_value(blendshapes: dict[str, float], feature: str) -> float:
    """One feature from raw blendshapes: the blendshape itself, its left/right mean, or
    `name:asym`, the difference between its halves."""
    if ":" not in feature and feature in blendshapes:
        return blendshapes[feature]
    base = feature.split(":")[0]
    left = blendshapes.get(base + "Left", 0.0)
    right = blendshapes.get(base + "Right", 0.0)
    return abs(left - right) if feature.endswith(":asym") else (left + right) / 2


class BlendshapeExpressionModel(ExpressionModel):
    """Emotions from the Face Landmarker's blendshapes through the FACS weight table."""

    name = "blendshapes"
    version = "facs-1"
    outputs = "8 emotions, valence, arousal; reasons as blendshapes and action units"
    speed = "fast"

    def __init__(
        self, weights: dict[str, tuple[Weight, ...]] | None = None, call_at: float = CALL_AT
    ):
        self.weights = EMOTION_WEIGHTS if weights is None else weights
        unknown = set(self.weights) - set(EXPRESSIVE)
        if unknown:
            raise ValueError(f"unknown emotions {sorted(unknown)}; known: {', '.join(EXPRESSIVE)}")
        if call_at <= 0:
            raise ValueError("call_at must be > 0")
        self.call_at = call_at
        features = {w.feature for table in self.weights.values() for w in table}
        missing = {f for f in features if f not in ACTION_UNITS}
        if missing:
            raise ValueError(f"features without an action unit: {sorted(missing)}")
        self._features = sorted(features)
        self._resting = {f: v for f, v in RESTING.items() if f in features}
        self._rows = {e: tuple((w.feature, w.weight) for w in t) for e, t in self.weights.items()}

    def features(self, blendshapes: dict[str, float]) -> dict[str, float]:
        """The table's features from raw blendshapes: single, left/right mean, or asymmetry."""
        out = {f: feature_value(blendshapes, f) for f in self._features}
        for feature, rest in self._resting.items():
            out[feature] = max(0.0, out[feature] - rest) / (1.0 - rest)
        return out

    def intensities(self, blendshapes: dict[str, float]) -> dict[str, float]:
        """Each emotion's intensity: the weighted sum of its features, clipped to 0..1."""
        x = self.features(blendshapes)
        return {
            e: min(1.0, max(0.0, sum(w * x[f] for f, w in row))) for e, row in self._rows.items()
        }

    def _signs(self, x: dict[str, float], emotion: str) -> tuple[Reason, ...]:
        """The strongest signs of one emotion, however weak, strongest first (at most three)."""
        drivers = sorted(((w * x[f], f) for f, w in self._rows[emotion] if w > 0), reverse=True)
        return tuple(Reason(f, ACTION_UNITS[f], x[f]) for _, f in drivers[:3])

    def estimate(
        self, image_rgb: np.ndarray | None, face: FaceObservation | None
    ) -> EmotionEstimate | None:
        """Scores, label and reasons for one face from its blendshapes (the image is unused)."""
        if face is None or not face.blendshapes:
            return None
        intensity, evidence = self._read(face.blendshapes)
        strongest = max(intensity.values(), default=0.0)
        leader = max(intensity, key=intensity.__getitem__) if intensity else None
        expressive_mass = min(1.0, strongest / (2.0 * self.call_at))
        # Squared intensities share the expressive mass, so a clear leader keeps most of it.
        squares = {e: v * v for e, v in intensity.items()}
        total = sum(squares.values())
        shares = {e: s / total if total else 0.0 for e, s in squares.items()}
        # Neutral is weighed against the leader alone: the leader's share of the expressive
        # mass against the same share of the rest, so an emotion at CALL_AT or above is never
        # outvoted by neutral merely because a second emotion took part of its mass.
        lead_share = shares[leader] if leader is not None and total else 1.0
        scores = {e: expressive_mass * sh for e, sh in shares.items()}
        scores["neutral"] = (1.0 - expressive_mass) * lead_share
        norm = sum(scores.values()) or 1.0
        scores = {e: v / norm for e, v in scores.items()}
        return make_estimate(scores, evidence)

    def evidence(self, blendshapes: dict[str, float]) -> dict[str, tuple[Reason, ...]]:
        """The reasons `estimate` gives each emotion, without its scores: what another model
        (edge.models.fusion) explains its own label with, at a third of the cost."""
        return self._read(blendshapes)[1]

    def _read(
        self, blendshapes: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, tuple[Reason, ...]]]:
        """Each emotion's intensity and its signs above trace; neutral's reason."""
        x = self.features(blendshapes)
        intensity = {}
        evidence = {}
        for emotion, row in self._rows.items():
            intensity[emotion] = min(1.0, max(0.0, sum(w * x[f] for f, w in row)))
            # A trace-level sign is no reason for an emotion (only for neutral, below).
            evidence[emotion] = tuple(r for r in self._signs(x, emotion) if r.value >= MIN_REASON)
        evidence["neutral"] = neutral_reasons(max(intensity.values(), default=0.0))
        return intensity, evidence


NO_SIGN = "no expression's signs above trace"
"""The reason given for neutral: what was looked for and not found (the value is the
strongest expression's intensity, below CALL_AT)."""


def neutral_reasons(strongest: float) -> tuple[Reason, ...]:
    """Why a face reads as neutral: no expression's prototype rose above trace level."""
    return (Reason("", NO_SIGN, round(min(1.0, max(0.0, strongest)), 2)),)
