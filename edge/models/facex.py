"""Expression backend: the MobileNetV2 of the `facex` wheel, as float32, run with ai-edge-litert.

Model: `facex/assets/model_optimized.tflite` from `facex==1.1.0` (code MIT, © Hasby Fahrudin,
github.com/hfahrudin/facex; the training data is not documented anywhere in the package or
its README), rewritten once at fetch time from its weight-quantised form to plain float32
(`edge/models/tflite_float.py`; asset `facex_model_float32.tflite`).

What facex itself does (facex/core.py and facex/utils.py in the wheel), reproduced here:

- faces: OpenCV's frontal-face Haar cascade on the grey frame, `detectMultiScale(grey, 1.1, 4)`;
  the box is used as found: no squaring beyond the cascade's own square, no margin (fer, by
  contrast, widens its box by 10 px a side);
- crop: `grey[y:y+h, x:x+w]`;
- input: `skimage.transform.resize(crop, (200, 200, 3))` - the grey crop as floats in [0, 1],
  Gaussian-smoothed with sigma (scale - 1) / 2 per axis when it is shrunk (skimage's
  anti-aliasing), resized bilinearly with pixel centres aligned, the single channel repeated
  three times; shape 1x200x200x3;
- outputs, in order: anger, disgust, fear, happy, neutral, sadness, surprised (a softmax).
"""

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
from .fer_cnn import crop_square, haar_box

logger = logging.getLogger(__name__)

MODEL_ASSET = "facex_model_float32.tflite"
QUANTISED_ASSET = "facex_model_optimized.tflite"  # the file as shipped, for comparisons
INPUT_SIZE = 200
# The CNN's output order (facex.core.EmotionClassifier.category) and Onlooker's names for it.
# facex has no contempt class: contempt is always 0 from this backend.
FACEX_NAMES = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
FACEX_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
CASCADE_SCALE = 1.1
CASCADE_NEIGHBOURS = 4  # facex: faceCascade.detectMultiScale(gray, 1.1, 4)


def face_box(face: FaceObservation, width: int, height: int) -> tuple[int, int, int, int]:
    """The Haar cascade's box (x0, y0, x1, y1) for this face, derived from the landmarks as for
    the fer-cnn backend (edge/models/fer_cnn.py); unlike fer, facex adds no margin around it."""
    return haar_box(face, width, height, margin_px=0.0)


def model_input(grey_face: np.ndarray) -> np.ndarray:
    """facex's input for one grey crop: skimage's `resize(crop, (200, 200, 3))`, 1x200x200x3.

    skimage converts uint8 to [0, 1], smooths with a Gaussian of sigma max(0, (scale - 1) / 2)
    per axis when shrinking (truncated at 4 sigma, mirrored edges) and interpolates bilinearly
    with pixel centres aligned and mirrored edges (scipy.ndimage.zoom). The same is done here
    with OpenCV's GaussianBlur (BORDER_REFLECT_101 is scipy's "mirror") and a separable
    bilinear resize; on the sample faces it agrees with skimage 0.26 to 2e-7.
    """
    if grey_face.ndim != 2 or min(grey_face.shape) < 2:
        raise ValueError(f"expected a grey face crop (H x W, both ≥ 2), got {grey_face.shape}")
    x = grey_face.astype(np.float32)
    if grey_face.dtype == np.uint8:
        x /= 255.0
    h, w = x.shape
    sigma_y = max(0.0, (h / INPUT_SIZE - 1) / 2)
    sigma_x = max(0.0, (w / INPUT_SIZE - 1) / 2)
    if sigma_x > 0 or sigma_y > 0:
        # scipy's gaussian_filter truncates at 4 sigma: radius int(4 sigma + 0.5)
        kx = 2 * int(4 * sigma_x + 0.5) + 1
        ky = 2 * int(4 * sigma_y + 0.5) + 1
        x = cv2.GaussianBlur(
            x, (kx, ky), sigmaX=sigma_x or 1e-9, sigmaY=sigma_y or 1e-9,
            borderType=cv2.BORDER_REFLECT_101,
        )  # fmt: skip
    i0, i1, wy = _linear(h, INPUT_SIZE)
    x = x[i0] * (1 - wy)[:, None] + x[i1] * wy[:, None]
    j0, j1, wx = _linear(w, INPUT_SIZE)
    small = x[:, j0] * (1 - wx) + x[:, j1] * wx
    return np.repeat(small[None, :, :, None], 3, axis=3).astype(np.float32)


def _linear(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis as scipy.ndimage.zoom(grid_mode=True, mode="mirror") makes
    them: pixel centres aligned, positions beyond the edge mirrored about the edge pixel."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.abs(pos)  # mirrored about the first pixel
    pos = np.where(pos > n_in - 1, 2 * (n_in - 1) - pos, pos)  # and about the last
    lo = np.clip(np.floor(pos).astype(np.intp), 0, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


class FacexExpressionModel(ExpressionModel):
    """facex's MobileNetV2 on a 200x200 grey face crop (landmarker box, or the Haar cascade)."""

    name = "facex"
    version = "facex-1.1.0-float32"
    outputs = "7 emotions (no contempt), valence, arousal; reasons: FACS signs for its label"
    speed = "medium"  # 6.4 ms p50 per face on one x86-64 core (float32), resize included

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        if model_path is None:
            from ..assets import asset_path

            model_path = asset_path(MODEL_ASSET)
        self.model_path = Path(model_path)
        # LiteRT announces its CPU delegate on the native stderr; show that only on failure.
        try:
            with _native_stderr_captured():
                self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"cannot load the facex model {model_path}: {exc}") from exc
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        shape_in = tuple(int(v) for v in inp["shape"])
        shape_out = tuple(int(v) for v in out["shape"])
        if (
            shape_in != (1, INPUT_SIZE, INPUT_SIZE, 3)
            or inp["dtype"] != np.float32
            or shape_out != (1, len(FACEX_NAMES))
        ):
            raise ValueError(
                f"{model_path} is not facex's model: it takes {shape_in} "
                f"{np.dtype(inp['dtype']).name} and gives {shape_out}; expected "
                f"(1, {INPUT_SIZE}, {INPUT_SIZE}, 3) float32 and (1, {len(FACEX_NAMES)})"
            )
        self._input = inp["index"]
        self._output = out["index"]
        self._cascade: cv2.CascadeClassifier | None = None
        self._facs = BlendshapeExpressionModel()

    def detect(self, grey: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face by OpenCV's Haar cascade, as facex finds it (x0, y0, x1, y1)."""
        if self._cascade is None:
            path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            self._cascade = cv2.CascadeClassifier(str(path))
        found = self._cascade.detectMultiScale(grey, CASCADE_SCALE, CASCADE_NEIGHBOURS)
        if len(found) == 0:
            return None
        x, y, w, h = (int(v) for v in max(found, key=lambda r: int(r[2]) * int(r[3])))
        return x, y, x + w, y + h

    def probabilities(self, grey_face: np.ndarray) -> np.ndarray:
        """The CNN's seven outputs (FACEX_NAMES order) for one grey face crop of any size."""
        if self._interpreter is None:
            raise RuntimeError("the facex model is closed")
        self._interpreter.set_tensor(self._input, model_input(grey_face))
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
        box = face_box(face, w, h) if face is not None else self.detect(grey)
        if box is None or box[2] - box[0] < 8 or box[3] - box[1] < 8:
            return None
        p = self.probabilities(crop_square(grey, box))
        scores = from_probabilities(dict(zip(FACEX_LABELS, p.tolist(), strict=True)))
        top = np.argsort(p)[::-1][:3]
        cnn = tuple(
            Reason(f"facex:{FACEX_NAMES[i]}", "facex MobileNetV2 output", float(p[i])) for i in top
        )
        facs = {}
        if face is not None and face.blendshapes:
            # A CNN has no parts to point at; what it can be checked against is the action
            # units the landmarker measured in the same face for the same emotion.
            facs = self._facs.estimate(None, face).evidence
        evidence = {e: facs.get(e) or cnn for e in EMOTIONS}
        return make_estimate(scores, evidence)

    def close(self) -> None:
        self._interpreter = None
