"""First signals from a face observation: presence, head pose and a coarse expression."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .face import FaceObservation

# A first, readable rule from FACS prototypes (see ../shared/DESIGN.md): each expression is
# the mean of the blendshapes that stand for its action units. Left/right pairs are averaged.
EXPRESSION_RULES: dict[str, tuple[str, ...]] = {
    "joy": ("mouthSmile", "cheekSquint"),  # AU6 cheek raiser + AU12 lip-corner puller
    "surprise": ("browInnerUp", "browOuterUp", "jawOpen"),  # AU1 + AU2 + AU26
    "anger": ("browDown", "eyeSquint", "mouthPress"),  # AU4 + AU7 + AU24
    "sadness": ("browInnerUp", "browDown", "mouthFrown"),  # AU1 + AU4 + AU15
    "disgust": ("noseSneer", "mouthUpperUp"),  # AU9 + AU10 (weak: the model hardly sees AU9)
}
# Blendshapes that argue against an expression: a smile raises the upper lip too
# (mouthUpperUp ~0.7 on posed joy), so upper-lip raise during a smile is not disgust.
EXPRESSION_INHIBITORS: dict[str, tuple[str, ...]] = {
    "disgust": ("mouthSmile",),
    "sadness": ("mouthSmile",),
}
NEUTRAL_BELOW = 0.25
"""When no expression reaches this mean activation the face is called neutral."""


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: yaw (turn), pitch (nod), roll (tilt)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceSignals:
    """What the screen infers from one frame, before any rate limit or consent gate."""

    present: bool
    faces: int
    expression: str | None = None
    expression_score: float | None = None
    pose: HeadPose | None = None


def head_pose(transform: np.ndarray) -> HeadPose:
    """Euler angles from the facial transformation matrix (rotation part, Y-X-Z order)."""
    r = np.asarray(transform, dtype=np.float64)[:3, :3]
    # Remove scale so that a slightly non-orthonormal matrix still gives sane angles.
    r = r / np.linalg.norm(r, axis=0, keepdims=True)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)


def _shape(blendshapes: dict[str, float], name: str) -> float:
    if name in blendshapes:
        return blendshapes[name]
    left, right = blendshapes.get(name + "Left", 0.0), blendshapes.get(name + "Right", 0.0)
    return (left + right) / 2.0


def expression(blendshapes: dict[str, float]) -> tuple[str, float]:
    """The leading expression and its score in [0, 1]; ``neutral`` when nothing stands out."""
    scores = {}
    for label, names in EXPRESSION_RULES.items():
        score = sum(_shape(blendshapes, n) for n in names) / len(names)
        against = EXPRESSION_INHIBITORS.get(label, ())
        if against:
            score -= sum(_shape(blendshapes, n) for n in against) / len(against)
        scores[label] = max(0.0, score)
    label, score = max(scores.items(), key=lambda item: item[1])
    if score < NEUTRAL_BELOW:
        return "neutral", 1.0 - score
    return label, score


def main_face(faces: list[FaceObservation]) -> FaceObservation | None:
    """The face nearest the camera (largest landmark extent): the screen's main viewer."""
    if not faces:
        return None
    return max(faces, key=lambda f: float(np.ptp(f.landmarks[:, 0]) * np.ptp(f.landmarks[:, 1])))


def face_signals(faces: list[FaceObservation]) -> FaceSignals:
    """Signals from the faces seen in one frame."""
    face = main_face(faces)
    if face is None:
        return FaceSignals(present=False, faces=0)
    label, score = expression(face.blendshapes) if face.blendshapes else (None, None)
    pose = head_pose(face.transform) if face.transform is not None else None
    return FaceSignals(True, len(faces), label, score, pose)
