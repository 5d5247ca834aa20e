"""The default expression backend: two face CNNs and the FACS blendshapes, weighed together.

Neither source is good enough alone on faces it has never seen (docs/models.md): facex's
MobileNetV2 reads joy, surprise and neutral well but hardly ever says anger; the FER2013 CNN
sees anger and sadness more often but mistakes much for them; the blendshapes carry the
action units (brow lowerer, lip presser, lip corner depressor) that tell anger and sadness
apart, yet name a wrong emotion on most faces by their prototype table alone. A small linear
head (a class-balanced multinomial logistic regression, `fusion_head.json`) weighs the three:
the CNNs' log-probabilities and the blendshape features. It was fitted once, on the tuning
half of the labelled sets only, by `python -m benchmarks.expression_fit`; the file records
what it was fitted on.

The CNNs cost milliseconds per face, the landmarker's blendshapes nothing: the CNNs run at
most every `cnn_interval_s` (an expression does not change 30 times a second) and their last
answer is combined with every frame's fresh blendshapes in between.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..expression import (
    EMOTIONS,
    EmotionEstimate,
    ExpressionModel,
    Reason,
    from_probabilities,
    make_estimate,
)
from ..face import FaceObservation
from .blendshapes import ACTION_UNITS, BlendshapeExpressionModel, feature_value

logger = logging.getLogger(__name__)

CLASSES = ("neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust")
"""What the head answers (EMOTIONS without contempt: too few labelled faces to learn it)."""
FEATURE_VERSION = "fusion-2"
HEAD_FILE = Path(__file__).with_name("fusion_head.json")
PROB_FLOOR = 1e-4  # log-probabilities are clipped here: a CNN's 1e-9 and 1e-5 mean the same
DEAD_BLENDSHAPES = ("cheekSquint", "noseSneer")
"""0.000 on every real face (edge.models.blendshapes: mediapipe issues #4450, #4436)."""
BLENDSHAPE_FEATURES = tuple(f for f in ACTION_UNITS if f not in DEAD_BLENDSHAPES)


def feature_names() -> list[str]:
    """The head's inputs, in order."""
    from .facex import FACEX_LABELS
    from .fer_cnn import FER_LABELS

    return (
        [f"facex:log_{e}" for e in FACEX_LABELS]
        + [f"fer:log_{e}" for e in FER_LABELS]
        + [f"bs:{f}" for f in BLENDSHAPE_FEATURES]
    )


def blendshape_features(blendshapes: dict[str, float]) -> np.ndarray:
    """The action-unit features of edge.models.blendshapes (pairs averaged, `:asym` apart),
    raw: the head learned the resting levels itself."""
    return np.array([feature_value(blendshapes, f) for f in BLENDSHAPE_FEATURES])


class FeatureParts:
    """The two CNNs, run on the crops each was trained on, and the blendshape features."""

    def __init__(self, threads: int = 1):
        from .facex import FacexExpressionModel
        from .fer_cnn import FerCnnExpressionModel

        self.facex = FacexExpressionModel(threads=threads)
        self.fer = FerCnnExpressionModel(threads=threads)

    def cnn_features(self, image_rgb: np.ndarray, face: FaceObservation) -> np.ndarray | None:
        """Both CNNs' log-probabilities for the face (None: the crop is degenerate)."""
        import cv2

        from . import facex, fer_cnn

        grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape[:2]
        box_x = facex.face_box(face, w, h)
        box_f = fer_cnn.face_box(face, w, h)
        if box_x[2] - box_x[0] < 8 or box_x[3] - box_x[1] < 8:
            return None
        p_x = self.facex.probabilities(fer_cnn.crop_square(grey, box_x))
        p_f = self.fer.probabilities(fer_cnn.crop_square(grey, box_f))
        return np.log(np.maximum(np.concatenate([p_x, p_f]), PROB_FLOOR))

    def features(self, image_rgb: np.ndarray, face: FaceObservation) -> np.ndarray:
        """Every input of the head for one face."""
        cnn = self.cnn_features(image_rgb, face)
        if cnn is None:
            cnn = np.full(14, math.log(1 / 7))
        return np.concatenate([cnn, blendshape_features(face.blendshapes)])

    def close(self) -> None:
        self.facex.close()
        self.fer.close()


def load_head(path: str | Path = HEAD_FILE) -> dict:
    """The fitted head; ValueError naming the file when it does not fit this code."""
    path = Path(path)
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the fusion head {path}: {exc}") from exc
    names = feature_names()
    if head.get("feature_version") != FEATURE_VERSION or head.get("features") != names:
        raise ValueError(
            f"{path} was fitted for other features ({head.get('feature_version')}); refit it "
            "with `python -m benchmarks.expression_fit TUNE_DIR`"
        )
    shapes = [np.shape(head.get(k)) for k in ("mean", "scale", "weights", "bias")]
    if shapes != [(len(names),), (len(names),), (len(names), len(CLASSES)), (len(CLASSES),)]:
        raise ValueError(f"{path} has arrays of shapes {shapes}; refit it")
    if tuple(head.get("classes", ())) != CLASSES:
        raise ValueError(f"{path} answers {head.get('classes')}, expected {list(CLASSES)}")
    return head


class FusionExpressionModel(ExpressionModel):
    """facex + FER2013 CNNs + FACS blendshapes through a fitted linear head (the default)."""

    name = "fusion"
    version = FEATURE_VERSION
    outputs = "7 emotions (no contempt), valence, arousal; reasons: FACS signs for its label"
    speed = "fast"  # the CNNs run at most twice a second; in between 0.1 ms per frame

    def __init__(
        self,
        threads: int = 1,
        cnn_interval_s: float = 0.5,
        head_path: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if cnn_interval_s < 0:
            raise ValueError("cnn_interval_s must be ≥ 0 (0 runs the CNNs on every face)")
        head = load_head(head_path or HEAD_FILE)
        self._mean = np.array(head["mean"])
        self._scale = np.array(head["scale"])
        self._weights = np.array(head["weights"])
        self._bias = np.array(head["bias"])
        self.cnn_interval_s = cnn_interval_s
        self._clock = clock
        self._parts = FeatureParts(threads=threads)
        self._facs = BlendshapeExpressionModel()
        self._cnn: np.ndarray | None = None
        self._cnn_at = -math.inf

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """The head's distribution over CLASSES for one feature vector."""
        logits = ((features - self._mean) / self._scale) @ self._weights + self._bias
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()

    def estimate(
        self, image_rgb: np.ndarray | None, face: FaceObservation | None
    ) -> EmotionEstimate | None:
        """Scores from the head; reasons are the face's FACS signs for the label."""
        if face is None or not face.blendshapes or image_rgb is None:
            return None
        now = self._clock()
        if self._cnn is None or now - self._cnn_at >= self.cnn_interval_s:
            cnn = self._parts.cnn_features(image_rgb, face)
            if cnn is not None:
                self._cnn, self._cnn_at = cnn, now
        if self._cnn is None:
            return None
        x = np.concatenate([self._cnn, blendshape_features(face.blendshapes)])
        p = self.probabilities(x)
        scores = from_probabilities(dict(zip(CLASSES, p.tolist(), strict=True)))
        facs = self._facs.evidence(face.blendshapes)
        fallback = (Reason("", "fusion head: CNNs and blendshapes", float(p.max())),)
        evidence = {e: facs.get(e) or fallback for e in EMOTIONS}
        return make_estimate(scores, evidence)

    def forget(self) -> None:
        """A new visit or an unrelated still: the CNNs run on the next face."""
        self._cnn, self._cnn_at = None, -math.inf

    def close(self) -> None:
        self._parts.close()
