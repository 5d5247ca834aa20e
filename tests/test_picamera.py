"""The Picamera2 source through its import seam: a stand-in `picamera2` module with a
`Picamera2` class that behaves like the real one (requests with a BGR array and metadata
carrying SensorTimestamp); everything from `open_source` down is the real source."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edge import picamera
from edge.sources import SourceError, open_source

PERIOD_NS = 33_333_333  # 30 fps


class FakeRequest:
    def __init__(self, camera: FakePicamera2, array: np.ndarray, stamp: int | None):
        self.camera, self.array, self.stamp = camera, array, stamp

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main" and not self.camera.released_all_but(self)
        return self.array

    def get_metadata(self) -> dict:
        return {} if self.stamp is None else {"SensorTimestamp": self.stamp, "FrameDuration": 33333}

    def release(self) -> None:
        self.camera.outstanding.remove(self)


class FakePicamera2:
    """The parts of picamera2.Picamera2 the source uses, with the same signatures."""

    cameras = [{"Model": "imx708", "Num": 0}]
    instances: list[FakePicamera2] = []
    stamps: list[int | None] = []  # SensorTimestamp of each frame, in order
    stall_after: int | None = None  # raise TimeoutError after this many frames
    level = 100  # every pixel's value (0: a covered lens)

    def __init__(self, camera_num: int = 0):
        self.camera_num = camera_num
        self.config = None
        self.started = self.closed = False
        self.delivered = 0
        self.outstanding: list[FakeRequest] = []
        self.waits: list[float | None] = []
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return FakePicamera2.cameras

    def create_video_configuration(self, main=None, controls=None, buffer_count=6, **kw):
        return {"main": dict(main or {}), "controls": dict(controls or {}), "buffers": buffer_count}

    def configure(self, config) -> None:
        self.config = config

    def start(self) -> None:
        assert self.config is not None, "configure() must come before start()"
        self.started = True

    def released_all_but(self, request) -> bool:
        return any(r is not request for r in self.outstanding)

    def capture_request(self, wait=None, flush=None):
        assert self.started
        self.waits.append(wait)
        if self.stall_after is not None and self.delivered >= self.stall_after:
            raise TimeoutError("Frame wait timed out")
        width, height = self.config["main"]["size"]
        # B, G, R planes as libcamera's RGB888 lays them out: blue 200, green 100, red 10
        array = np.empty((height, width, 3), np.uint8)
        array[..., 0], array[..., 1], array[..., 2] = 2 * self.level, self.level, self.level // 10
        stamp = self.stamps[self.delivered] if self.delivered < len(self.stamps) else None
        self.delivered += 1
        request = FakeRequest(self, array, stamp)
        self.outstanding.append(request)
        return request

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.instances = []
    FakePicamera2.cameras = [{"Model": "imx708", "Num": 0}, {"Model": "imx219", "Num": 1}]
    FakePicamera2.stall_after = None
    FakePicamera2.level = 100
    return FakePicamera2


def take(source, n):
    out = []
    for frame in source.frames():
        out.append(frame)
        if len(out) == n:
            break
    return out


def test_frames_are_rgb_and_timed_by_the_sensor_timestamps(fake_picamera2):
    boot = 7_000_000_000_000  # a sensor clock that started long before the source
    # frame 3 was dropped by the pipeline: its neighbours are two periods apart
    fake_picamera2.stamps = [boot + i * PERIOD_NS for i in (0, 1, 2, 4, 5)]
    source = open_source("picamera:1")
    camera = fake_picamera2.instances[-1]
    assert camera.camera_num == 1 and camera.started
    assert camera.config["main"] == {"size": (640, 480), "format": "RGB888"}
    assert camera.config["controls"]["FrameRate"] == 30.0
    assert source.kind == "camera" and not source.still
    frames = take(source, 5)
    assert [f.t_ms for f in frames] == [0, 33, 67, 133, 167]
    assert [f.index for f in frames] == list(range(5))
    assert frames[0].image.shape == (480, 640, 3)
    assert tuple(frames[0].image[0, 0]) == (10, 100, 200)  # BGR from libcamera, RGB out
    assert camera.outstanding == []  # every request's buffer went back to libcamera
    assert set(camera.waits) == {5.0}
    source.close()
    assert camera.closed and not camera.started


def test_plain_picamera_means_the_first_camera_and_equal_stamps_still_advance(fake_picamera2):
    fake_picamera2.stamps = [10**12, 10**12, 10**12 + 2 * PERIOD_NS]
    source = open_source("picamera")
    assert fake_picamera2.instances[-1].camera_num == 0
    times = [f.t_ms for f in take(source, 3)]
    assert times == [0, 1, 67]  # strictly increasing, as MediaPipe's VIDEO mode requires
    source.close()


def test_a_stalled_camera_module_is_a_clear_error(fake_picamera2):
    fake_picamera2.stamps = [i * PERIOD_NS for i in range(3)]
    fake_picamera2.stall_after = 2
    source = open_source("picamera")
    with pytest.raises(SourceError, match="delivered no frame for 5 s"):
        take(source, 10)
    source.close()


def test_a_missing_camera_module_names_the_cable(fake_picamera2):
    fake_picamera2.cameras = []
    with pytest.raises(SourceError, match="ribbon cable"):
        open_source("picamera")
    with pytest.raises(SourceError, match="picamera:N"):
        open_source("picamera:x")


def test_without_picamera2_the_message_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(SourceError) as info:
        open_source("picamera")
    message = str(info.value)
    assert "sudo apt install -y python3-picamera2" in message
    assert "--system-site-packages" in message
    assert not picamera.available()


def test_available_when_the_module_lists_a_camera(fake_picamera2):
    assert picamera.available()
    fake_picamera2.cameras = []
    assert not picamera.available()


def test_a_covered_lens_is_named_after_seconds_of_black_frames(fake_picamera2, caplog):
    fake_picamera2.level = 0
    fake_picamera2.stamps = [i * PERIOD_NS for i in range(200)]  # 30 fps for 6.6 s
    source = open_source("picamera")
    with caplog.at_level("WARNING", logger="edge.sources"):
        frames = take(source, 200)
    source.close()
    assert len(frames) == 200
    warnings = [r.getMessage() for r in caplog.records if "black frames" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("camera module 0: ")
    assert "lens covered" in warnings[0]
