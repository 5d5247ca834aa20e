"""Frame sources: a webcam, a Raspberry Pi camera module, a video file, or still images."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to do."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame; `image` is RGB, `t_ms` is stream time in milliseconds."""

    image: np.ndarray
    t_ms: int
    index: int
    captured: float  # time.monotonic() when the frame was decoded


class FrameSource(ABC):
    """Produces frames until it is exhausted or closed."""

    kind: str  # "camera" | "video" | "images" (the heartbeat's `source` field)
    still: bool = False  # True when frames are unrelated stills (IMAGE mode, not VIDEO)
    fps: float = 30.0  # the pace frames arrive at in real time
    dropped: int = 0  # frames skipped because processing fell behind

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames in order; stop when the source ends."""

    def close(self) -> None:
        """Release the device or file."""


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


BLACK_MEAN = 8.0  # mean 8-bit level below which a frame counts as black
BLACK_WARN_S = 3.0  # a camera that gives only black frames this long gets a warning

CAMERA_PERMISSION_HINT = (
    "if it is connected, the operating system may be withholding it: on macOS allow the "
    "terminal (or Python) in System Settings > Privacy & Security > Camera and start it again; "
    "on Windows turn on Settings > Privacy & security > Camera > 'Let desktop apps access your "
    "camera'; on Linux the user must be in the `video` group"
)

BLACK_FRAMES_HINT = (
    "the camera gives only black frames: is the lens covered or the room dark? On macOS and "
    "Windows black frames also mean the system denied camera access ("
    + CAMERA_PERMISSION_HINT.split(": ", 1)[1]
    + ")"
)


def is_black(image: np.ndarray) -> bool:
    """Whether a frame is (almost) black: a covered lens, a denied camera, or a warming sensor."""
    return float(image.mean()) < BLACK_MEAN


class BlackWatch:
    """Warns once when a camera has sent only black frames for BLACK_WARN_S seconds."""

    def __init__(self, name: str, warn_after_s: float = BLACK_WARN_S):
        self.name, self.warn_after_s = name, warn_after_s
        self.start: float | None = None
        self.lit = self.warned = False

    def see(self, image: np.ndarray, now: float) -> None:
        if self.lit:
            return
        self.start = now if self.start is None else self.start
        self.lit = not is_black(image)
        if not self.lit and not self.warned and now - self.start > self.warn_after_s:
            logger.warning("%s: %s", self.name, BLACK_FRAMES_HINT)
            self.warned = True


class CameraSource(FrameSource):
    """A webcam by index; fails fast when it does not open or stops delivering."""

    kind = "camera"

    def __init__(self, index: int = 0, stall_timeout_s: float = 5.0):
        self.index = index
        self.stall_timeout_s = stall_timeout_s
        self._cap = cv2.VideoCapture(index)
        # Keep only the newest frame: a slow consumer sees the present, not a growing queue.
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(
                f"camera {index} did not open: check that it is connected and not used by "
                f"another program, or pass --source with a video file; {CAMERA_PERMISSION_HINT}"
            )

    def frames(self) -> Iterator[Frame]:
        start = time.monotonic()
        last_ok = start
        index = 0
        black = BlackWatch(f"camera {self.index}")  # many webcams start with black frames
        while True:
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if not ok:
                if now - last_ok > self.stall_timeout_s:
                    raise SourceError(
                        f"camera {self.index} delivered no frame for {self.stall_timeout_s:.0f} s"
                    )
                time.sleep(0.05)
                continue
            last_ok = now
            black.see(bgr, now)
            yield Frame(_to_rgb(bgr), int((now - start) * 1000), index, now)
            index += 1

    def close(self) -> None:
        self._cap.release()


class VideoFileSource(FrameSource):
    """A video file, optionally looping, paced at its own frame rate or as fast as possible."""

    kind = "video"

    def __init__(self, path: str | Path, loop: bool = False, realtime: bool = True):
        self.path = Path(path)
        self.loop = loop
        self.realtime = realtime
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        ok, _ = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok:
            self._cap.release()
            raise SourceError(
                f"{self.path} is not a readable video (corrupt, empty or an unsupported codec); "
                "try another file or re-encode it as H.264 MP4"
            )
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.dropped = 0  # frames skipped because processing fell behind real time

    def frames(self) -> Iterator[Frame]:
        step_ms = 1000.0 / self.fps
        index = 0  # across loops, so stream time keeps increasing (VIDEO mode requires it)
        start = time.monotonic()
        while True:
            read_any = False
            while True:
                t_ms = int(index * step_ms)
                if self.realtime and time.monotonic() - start > (t_ms + 2 * step_ms) / 1000.0:
                    # Behind a camera's pace: drop the frame undecoded instead of queueing.
                    if not self._cap.grab():
                        break
                    read_any = True
                    self.dropped += 1
                    index += 1
                    continue
                ok, bgr = self._cap.read()
                if not ok:
                    break
                read_any = True
                if self.realtime:
                    delay = start + t_ms / 1000.0 - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield Frame(_to_rgb(bgr), t_ms, index, time.monotonic())
                index += 1
            if not (self.loop and read_any):
                return
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource(FrameSource):
    """Still images from a folder (sorted by name) or a single image file."""

    kind = "images"
    still = True

    def __init__(self, path: str | Path, loop: bool = False, interval_s: float = 0.0):
        self.path = Path(path)
        self.loop = loop
        self.interval_s = interval_s
        if self.path.is_dir():
            self.files = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not self.files:
                raise SourceError(f"folder {self.path} holds no images ({sorted(IMAGE_SUFFIXES)})")
        elif self.path.is_file() and self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.files = [self.path]
        else:
            raise SourceError(f"{self.path} is neither an image nor a folder of images")

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            for file in self.files:
                bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if bgr is None:
                    logger.warning("skipping unreadable image %s", file)
                    continue
                yield Frame(_to_rgb(bgr), index * 1000, index, time.monotonic())
                index += 1
                if self.interval_s:
                    time.sleep(self.interval_s)
            if not self.loop:
                return


def open_source(spec: str, loop: bool = False, realtime: bool = True) -> FrameSource:
    """Open a webcam (an integer like ``0``), a Raspberry Pi camera module (``picamera`` or
    ``picamera:N``), a video file, or an image / folder of images."""
    if spec.startswith("picamera"):
        from .picamera import PicameraSource, parse_spec

        index = parse_spec(spec)
        if index is None:
            raise SourceError(f"{spec!r}: a camera module is `picamera` or `picamera:N`")
        return PicameraSource(index)
    if spec.isdigit():
        return CameraSource(int(spec))
    path = Path(spec).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(path, loop=loop, interval_s=0.5 if realtime else 0.0)
    return VideoFileSource(path, loop=loop, realtime=realtime)
