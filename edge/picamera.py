"""The Raspberry Pi camera module (CSI) through Picamera2 and libcamera.

On Raspberry Pi OS a camera module is not a V4L2 webcam that ``cv2.VideoCapture(0)`` can
open: it is reached through libcamera, whose Python binding, Picamera2, comes from apt
(``python3-picamera2``), not from PyPI. A virtual environment sees it only when it was created
with ``--system-site-packages``.

Frame time comes from the camera itself: each completed request carries ``SensorTimestamp``
in its metadata, the time (nanoseconds, CLOCK_BOOTTIME) at which the sensor started exposing
the frame. Stream time is measured from the first frame's timestamp, so a frame the pipeline
dropped shows as a gap of two frame periods, not as an evenly spaced lie, and ``captured`` is
the moment of exposure on this process's monotonic clock, not the moment Python got the array.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from .sources import BlackWatch, Frame, FrameSource, SourceError, _to_rgb

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Picamera2 is not importable. On Raspberry Pi OS: `sudo apt install -y python3-picamera2`, "
    "then create the virtual environment with the system's packages visible: "
    "`python3 -m venv --system-site-packages .venv && .venv/bin/pip install .` "
    "(docs/operations.md). A USB webcam needs no Picamera2: pass --source 0."
)


def import_picamera2() -> type:
    """The ``Picamera2`` class, or SourceError saying how to install it."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise SourceError(f"{INSTALL_HINT} ({exc})") from exc
    return Picamera2


def available() -> bool:
    """Whether Picamera2 imports and libcamera lists at least one camera."""
    try:
        cls = import_picamera2()
        return bool(cls.global_camera_info())
    except Exception:  # noqa: BLE001 - any failure means "no camera module here"
        return False


def parse_spec(spec: str) -> int | None:
    """``picamera`` → 0, ``picamera:1`` → 1; None for anything else."""
    if spec == "picamera":
        return 0
    if spec.startswith("picamera:") and spec[len("picamera:") :].isdigit():
        return int(spec[len("picamera:") :])
    return None


def _boottime_s() -> float | None:
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else None


class PicameraSource(FrameSource):
    """A camera module by its libcamera number; timed by the sensor's own timestamps."""

    kind = "camera"

    def __init__(
        self,
        index: int = 0,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        stall_timeout_s: float = 5.0,
    ):
        self.index = index
        self.fps = fps
        self.stall_timeout_s = stall_timeout_s
        cls = import_picamera2()
        cameras = cls.global_camera_info()
        if index >= len(cameras):
            raise SourceError(
                f"camera module {index} not found: libcamera lists {len(cameras)} camera(s); "
                "check the ribbon cable (contacts facing the right way, latch closed), then "
                "`rpicam-hello --list-cameras`"
            )
        try:
            self._camera = cls(index)
            # RGB888 is libcamera's name for 8-bit B, G, R in memory order: a BGR array.
            config = self._camera.create_video_configuration(
                main={"size": size, "format": "RGB888"},
                controls={"FrameRate": fps},
                buffer_count=4,
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds; all mean the same
            raise SourceError(
                f"camera module {index} did not start ({exc}): is another program using it "
                "(the agent's service: `sudo systemctl stop onlooker-agent`)?"
            ) from exc

    def _capture(self) -> tuple[Any, dict[str, Any]]:
        try:
            request = self._camera.capture_request(wait=self.stall_timeout_s)
        except TimeoutError as exc:
            raise SourceError(
                f"camera module {self.index} delivered no frame for {self.stall_timeout_s:.0f} s"
            ) from exc
        try:
            return request.make_array("main"), request.get_metadata()
        finally:
            request.release()  # give the buffer back to libcamera at once

    def frames(self) -> Iterator[Frame]:
        first_ns: int | None = None
        index = last_ms = 0
        black = BlackWatch(f"camera module {self.index}")
        while True:
            bgr, metadata = self._capture()
            stamp = metadata.get("SensorTimestamp")
            now = time.monotonic()
            if stamp is None:  # not from libcamera's pipeline: fall back to arrival time
                stamp, captured = int(now * 1e9), now
            else:
                boottime = _boottime_s()
                age = 0.0 if boottime is None else max(0.0, boottime - stamp / 1e9)
                captured = now - age
            if first_ns is None:
                first_ns = stamp
            t_ms = int(round((stamp - first_ns) / 1e6))
            if index and t_ms <= last_ms:  # VIDEO mode needs strictly increasing stream time
                t_ms = last_ms + 1
            last_ms = t_ms
            black.see(bgr, captured)
            yield Frame(_to_rgb(bgr), t_ms, index, captured)
            index += 1

    def close(self) -> None:
        try:
            self._camera.stop()
        finally:
            self._camera.close()
