"""What every stage shares: the main face, its head pose, and the rate limit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .face import FaceObservation


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: yaw (turn), pitch (nod), roll (tilt)."""

    yaw: float
    pitch: float
    roll: float


def head_pose(transform: np.ndarray) -> HeadPose:
    """Euler angles from the facial transformation matrix (rotation part, Y-X-Z order)."""
    r = np.asarray(transform, dtype=np.float64)[:3, :3]
    # Remove scale so that a slightly non-orthonormal matrix still gives sane angles.
    r = r / np.linalg.norm(r, axis=0, keepdims=True)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)


def main_face(faces: list[FaceObservation]) -> FaceObservation | None:
    """The face nearest the camera (largest landmark extent): the screen's main viewer."""
    if not faces:
        return None
    if len(faces) == 1:
        return faces[0]  # the usual case, without measuring it
    return max(faces, key=lambda f: float(np.ptp(f.landmarks[:, 0]) * np.ptp(f.landmarks[:, 1])))


class RateLimit:
    """At most `hz` passes a second, on the caller's clock; the first call always passes."""

    def __init__(self, hz: float):
        if hz <= 0:
            raise ValueError("hz must be > 0")
        self.period = 1.0 / hz
        self._last: float | None = None

    def ready(self, now: float) -> bool:
        """True when a period has passed since the last pass (which `now` then becomes)."""
        if self._last is not None and now - self._last < self.period:
            return False
        self._last = now
        return True

    def reset(self) -> None:
        """A new visit: the next call passes."""
        self._last = None
