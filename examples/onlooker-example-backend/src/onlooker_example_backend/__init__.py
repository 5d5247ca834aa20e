"""An example Onlooker expression backend: joy, surprise and sadness from the mouth alone."""

from __future__ import annotations

import logging

from edge.expression import EmotionEstimate, ExpressionModel, Reason, make_estimate, normalised
from edge.face import FaceObservation

logger = logging.getLogger(__name__)

__version__ = "0.1.0"

# emotion -> (blendshapes whose left/right mean is the evidence, the action unit it stands for)
MOUTH_SIGNS: dict[str, tuple[str, str]] = {
    "joy": ("mouthSmile", "AU12 lip corner puller"),
    "surprise": ("jawOpen", "AU26 jaw drop"),
    "sadness": ("mouthFrown", "AU15 lip corner depressor"),
}


def _mean(blendshapes: dict[str, float], name: str) -> float:
    if name in blendshapes:
        return blendshapes[name]
    return (blendshapes.get(name + "Left", 0.0) + blendshapes.get(name + "Right", 0.0)) / 2


class MouthExpressionModel(ExpressionModel):
    """Joy, surprise and sadness from one mouth blendshape each; everything else is neutral."""

    name = "example-mouth"
    version = __version__
    outputs = "joy, surprise, sadness and neutral from the mouth; reasons as action units"
    speed = "fast"

    def __init__(self, gain: float = 1.5):
        if gain <= 0:
            raise ValueError("gain must be > 0")
        self.gain = gain

    def estimate(self, image_rgb, face: FaceObservation | None) -> EmotionEstimate | None:
        """Scores from the mouth's blendshapes; None when the face has no blendshapes."""
        if face is None or not face.blendshapes:
            return None
        values = {e: _mean(face.blendshapes, shape) for e, (shape, _) in MOUTH_SIGNS.items()}
        # normalised() fills in neutral with whatever expressive mass is left over.
        scores = normalised({e: self.gain * v for e, v in values.items()})
        evidence = {e: (Reason(shape, au, values[e]),) for e, (shape, au) in MOUTH_SIGNS.items()}
        strongest = max(values, key=values.__getitem__)
        evidence["neutral"] = evidence[strongest]  # neutral: the strongest sign was this weak
        return make_estimate(scores, evidence)
