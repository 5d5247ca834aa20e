"""Face analysis: one observation per face, which never leaves the process."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceObservation:
    """Everything the model saw of one face. Private to the device: never published."""

    landmarks: np.ndarray  # (478, 3) normalised x, y, z; iris included
    blendshapes: dict[str, float]  # 52 ARKit-style coefficients in [0, 1]
    transform: np.ndarray | None  # 4x4 facial transformation matrix (head pose), if available


class FaceAnalyzer(ABC):
    """Turns an RGB frame into zero or more `FaceObservation`s."""

    name: str
    version: str

    @abstractmethod
    def analyze(self, image: np.ndarray, t_ms: int, still: bool = False) -> list[FaceObservation]:
        """Observe the faces in one RGB frame; `t_ms` must increase across video frames."""

    def close(self) -> None:
        """Free the model."""


class ModelError(RuntimeError):
    """The face model cannot be loaded; the message says what to do."""


@contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Hold back what MediaPipe's C++ core prints while a graph starts; show it on failure."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreter): nothing to hold
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class MediaPipeFaceLandmarker(FaceAnalyzer):
    """MediaPipe Face Landmarker: 478 landmarks, 52 blendshapes and head pose per face."""

    name = "mediapipe-face-landmarker"
    version = "float16/1"

    def __init__(self, model_path: str | Path, max_faces: int = 2):
        from mediapipe.tasks.python import BaseOptions, vision

        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(
                f"face model {model_path} is missing: run `onlooker models fetch` (or `make demo`)"
            )
        self._vision = vision
        common = dict(
            num_faces=max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with _native_stderr_captured():
                self._video = vision.FaceLandmarker.create_from_options(
                    vision.FaceLandmarkerOptions(
                        base_options=BaseOptions(model_asset_path=str(model_path)),
                        running_mode=vision.RunningMode.VIDEO,
                        **common,
                    )
                )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"face model {model_path} could not be loaded ({exc}); delete it and run "
                "`onlooker models fetch` again"
            ) from exc
        self._image = None  # IMAGE-mode instance, created on the first still
        self._model_path = model_path
        self._common = common
        self._last_t_ms = -1

    def _image_landmarker(self):
        if self._image is None:
            from mediapipe.tasks.python import BaseOptions

            vision = self._vision
            with _native_stderr_captured():
                self._image = vision.FaceLandmarker.create_from_options(
                    vision.FaceLandmarkerOptions(
                        base_options=BaseOptions(model_asset_path=str(self._model_path)),
                        running_mode=vision.RunningMode.IMAGE,
                        **self._common,
                    )
                )
        return self._image

    def analyze(self, image: np.ndarray, t_ms: int, still: bool = False) -> list[FaceObservation]:
        import mediapipe as mp

        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if still:
            result = self._image_landmarker().detect(frame)
        else:
            # VIDEO mode refuses non-increasing timestamps; a looping file restarts its clock.
            t_ms = max(t_ms, self._last_t_ms + 1)
            self._last_t_ms = t_ms
            result = self._video.detect_for_video(frame, t_ms)
        faces = []
        for i, points in enumerate(result.face_landmarks):
            # Three flat lists, then one transpose: half the time of a list of 478 tuples.
            xyz = [[p.x for p in points], [p.y for p in points], [p.z for p in points]]
            landmarks = np.array(xyz, dtype=np.float32).T.copy()
            shapes = result.face_blendshapes[i] if result.face_blendshapes else []
            blendshapes = {c.category_name: float(c.score) for c in shapes}
            matrices = result.facial_transformation_matrixes
            transform = np.asarray(matrices[i], dtype=np.float64) if matrices else None
            faces.append(FaceObservation(landmarks, blendshapes, transform))
        return faces

    def close(self) -> None:
        for landmarker in (self._video, self._image):
            if landmarker is not None:
                landmarker.close()
        self._video = self._image = None
