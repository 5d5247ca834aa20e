"""Attention tracker on real videos through the real MediaPipe Face Landmarker.

Each video is decoded and analysed once per module; the tracker then runs over the stored
observations at the stream times `VideoFileSource` gives (frame index / file frame rate).

True transitions were found by writing the frames around each cut as PNGs with OpenCV and
looking at them:
- face_noface.mov (26.4 fps): the man is on screen in frames 0-71; frame 72 is black and the
  animated title follows. The face leaves at frame 72 (2.727 s).
- noface_face.mov (26.5 fps): title animation up to frame 95, hard cut to the man at frame 96.
  The face enters at frame 96 (3.623 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge.attention import AttentionEvent, AttentionSample, AttentionTracker
from edge.face import FaceObservation, MediaPipeFaceLandmarker
from edge.sources import VideoFileSource

pytestmark = pytest.mark.integration

PRESENCE_TOLERANCE_S = 0.5


@dataclass
class Analysed:
    """A video's frames as the landmarker saw them."""

    fps: float
    size: tuple[int, int]
    times: list[float]
    faces: list[list[FaceObservation]]


@pytest.fixture(scope="module")
def analysed(sample, model_path):
    """Analyse each video once (a fresh VIDEO-mode landmarker per video: its own clock)."""
    cache: dict[str, Analysed] = {}

    def get(name: str) -> Analysed:
        if name not in cache:
            source = VideoFileSource(sample(name), realtime=False)
            analyzer = MediaPipeFaceLandmarker(model_path)
            times, faces, size = [], [], (0, 0)
            try:
                for frame in source.frames():
                    size = (frame.image.shape[1], frame.image.shape[0])
                    times.append(frame.t_ms / 1000.0)
                    faces.append(analyzer.analyze(frame.image, frame.t_ms))
            finally:
                analyzer.close()
                source.close()
            cache[name] = Analysed(source.fps, size, times, faces)
        return cache[name]

    return get


def track(video: Analysed) -> tuple[list[AttentionSample], list[AttentionEvent], AttentionTracker]:
    tracker = AttentionTracker()
    samples, events = [], []
    for t, faces in zip(video.times, video.faces, strict=True):
        samples.append(tracker.update(t, faces, video.size))
        events += tracker.drain_events()
    return samples, events, tracker


def presence_events(events: list[AttentionEvent]) -> list[AttentionEvent]:
    return [e for e in events if e.kind in ("enter", "leave")]


def test_face_then_no_face_leaves_once_at_the_cut(analysed):
    video = analysed("face_noface.mov")
    true_leave_s = 72 / video.fps  # first frame without the man (black), see the docstring
    # The landmarker finds one spurious face near frame 162: it must not re-enter.
    assert sum(1 for faces in video.faces[100:] if faces) >= 1
    samples, events, tracker = track(video)
    kinds = [e.kind for e in presence_events(events)]
    assert kinds == ["enter", "leave"], events
    enter, leave = presence_events(events)
    assert enter.t_s == pytest.approx(0.0, abs=PRESENCE_TOLERANCE_S)
    assert leave.t_s == pytest.approx(true_leave_s, abs=PRESENCE_TOLERANCE_S)
    assert not samples[-1].present
    summary = tracker.summary()
    assert summary.time_present_s == pytest.approx(true_leave_s, abs=PRESENCE_TOLERANCE_S)
    assert summary.max_viewers == 1
    assert 30 <= summary.mean_distance_cm <= 80  # a phone held at arm's length


def test_no_face_then_face_enters_once_at_the_cut(analysed):
    video = analysed("noface_face.mov")
    true_enter_s = 96 / video.fps  # first frame with the man, see the docstring
    assert any(video.faces[85:95])  # the landmarker's spurious detection before the cut
    samples, events, tracker = track(video)
    assert [e.kind for e in presence_events(events)] == ["enter"], events
    assert events[0].t_s == pytest.approx(true_enter_s, abs=PRESENCE_TOLERANCE_S)
    assert not video.faces[-1] and samples[-1].present  # the last frame's miss is no leave
    first_present = next(s.t_s for s in samples if s.present)
    assert first_present > true_enter_s - PRESENCE_TOLERANCE_S
    assert tracker.summary().time_present_s == pytest.approx(
        video.times[-1] - true_enter_s, abs=PRESENCE_TOLERANCE_S
    )


def test_no_face_video_yields_no_events_and_no_presence(analysed):
    video = analysed("no_face.mp4")
    samples, events, tracker = track(video)
    assert events == []
    assert not any(s.present for s in samples)
    summary = tracker.summary()
    assert summary.time_present_s == 0.0 and summary.max_viewers == 0
    assert summary.mean_distance_cm is None


def test_head_pose_follows_the_labelled_head_turns(analysed):
    """Head pose on WolfgangLanger_Pexels.mp4 against frame ranges labelled by eye.

    Labelled by writing every 12th frame, then the range borders (144, 204, 222, 228, 390,
    400, 436, 450, 456, 462), as PNGs cropped to the face and looking at them:
    - 144-204: head turned towards the image's left (nose left of the face's centre line,
      the far cheek visible on the right), hand at the mouth: yaw clearly negative;
    - 228-390: face frontal to the camera, laughing, looking up: |yaw| small;
    - 400-436: head tilted, top of the head towards the image's left: roll positive;
    - 456-471: head tilted the other way and bowed, eyes down: roll negative.
    Angle signs are those of `edge.signals.head_pose`.
    """
    video = analysed("WolfgangLanger_Pexels.mp4")
    samples, events, _ = track(video)
    assert [e.kind for e in presence_events(events)] == ["enter"]
    assert all(s.yaw is not None for s in samples[15:])

    def values(first: int, last: int, attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in samples[first : last + 1]])

    turned, frontal = values(144, 204, "yaw"), values(228, 390, "yaw")
    assert np.all(turned < -8.0), turned.min()
    assert np.all(np.abs(frontal) < 8.0)
    assert np.median(frontal) - np.median(turned) > 10.0
    tilted, other_way = values(400, 436, "roll"), values(456, 471, "roll")
    assert np.all(tilted > 12.0) and np.all(other_way < -8.0)
    assert np.all(np.abs(values(228, 390, "roll")) < 8.0)
