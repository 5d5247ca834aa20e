"""Attention tracker on synthetic landmark sequences built from one real face.

The builder starts from the real landmarks of `single_face.jpg` (Face Landmarker, IMAGE
mode), where the man looks into the camera, and then moves the lids (blinks, closed eyes),
the iris points (gaze), the head pose matrix or the whole face (distance). Frames come at
30 fps, so every expected count is exact.
"""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edge.attention import (
    AttentionConfig,
    AttentionEvent,
    AttentionTracker,
    RegionShares,
    ScreenCalibration,
)
from edge.face import FaceObservation, MediaPipeFaceLandmarker

FPS = 30.0
DT = 1.0 / FPS
LIDS = ((159, 145), (386, 374))
IRISES = (range(468, 473), range(473, 478))
CORNERS = ((33, 133), (362, 263))


@pytest.fixture(scope="module")
def real_face(sample, model_path) -> tuple[FaceObservation, tuple[int, int]]:
    """The real observation of single_face.jpg and its image size (width, height)."""
    bgr = cv2.imread(str(sample("single_face.jpg")))
    landmarker = MediaPipeFaceLandmarker(model_path)
    try:
        faces = landmarker.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 0, still=True)
    finally:
        landmarker.close()
    assert len(faces) == 1
    return faces[0], (bgr.shape[1], bgr.shape[0])


class FaceBuilder:
    """Variations of one real face: closed lids, moved irises, turned head, other sizes."""

    def __init__(self, face: FaceObservation, size: tuple[int, int]):
        self.face = face
        self.size = size
        w, h = size
        self._px = np.array([w, h], dtype=np.float64)

    def _iris_px(self) -> float:
        pts = self.face.landmarks[:, :2] * self._px
        return float(np.mean([np.linalg.norm(pts[i[1]] - pts[i[3]]) for i in IRISES]))

    def closed(self, fraction: float = 0.9) -> FaceObservation:
        """The same face with each lid gap shrunk by `fraction` (1.0: fully shut)."""
        lm = self.face.landmarks.copy()
        for upper, lower in LIDS:
            mid = (lm[upper] + lm[lower]) / 2.0
            lm[upper] = mid + (lm[upper] - mid) * (1.0 - fraction)
            lm[lower] = mid + (lm[lower] - mid) * (1.0 - fraction)
        return replace(self.face, landmarks=lm)

    def gaze(self, across: float = 0.0, down: float = 0.0) -> FaceObservation:
        """Irises moved by `across` / `down` iris diameters (towards image right / down)."""
        lm = self.face.landmarks.copy()
        shift_px = np.array([across, down]) * self._iris_px()
        for iris in IRISES:
            lm[list(iris), :2] += shift_px / self._px
        return replace(self.face, landmarks=lm)

    def head_yaw(self, degrees: float) -> FaceObservation:
        """The same landmarks with the head pose turned by `degrees` of yaw."""
        a = math.radians(degrees)
        turn = np.eye(4)
        turn[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
        return replace(self.face, transform=turn @ self.face.transform)

    def scaled(self, factor: float) -> FaceObservation:
        """The face `factor` times as large in the image, about its own centre."""
        lm = self.face.landmarks.copy()
        centre = lm[:, :2].mean(axis=0)
        lm[:, :2] = centre + (lm[:, :2] - centre) * factor
        return replace(self.face, landmarks=lm)


@pytest.fixture(scope="module")
def build(real_face) -> FaceBuilder:
    return FaceBuilder(*real_face)


def run(
    tracker: AttentionTracker, frames: list[list[FaceObservation]], size, t0: float = 0.0
) -> list[AttentionEvent]:
    """Feed frames at 30 fps from `t0` and return every event."""
    events = []
    for i, faces in enumerate(frames):
        tracker.update(t0 + i * DT, faces, size)
        events += tracker.drain_events()
    return events


def kinds(events: list[AttentionEvent], kind: str) -> list[AttentionEvent]:
    return [e for e in events if e.kind == kind]


def seconds(n: float) -> int:
    """Frames in `n` seconds at 30 fps."""
    return round(n * FPS)


def test_the_real_face_looks_at_the_screen_with_open_eyes(build):
    tracker = AttentionTracker()
    sample = None
    for i in range(seconds(1)):
        sample = tracker.update(i * DT, [build.face], build.size)
    assert sample.present and sample.looking is True and sample.eyes_closed is False
    assert abs(sample.gaze_yaw) < 10 and abs(sample.gaze_pitch) < 15
    assert 20 < sample.distance_cm < 80
    assert sample.yaw is not None and sample.faces == 1 and sample.viewers == 1


def test_eyes_closing_for_150_ms_is_exactly_one_blink(build):
    tracker = AttentionTracker()
    frames = (
        [[build.face]] * seconds(2)
        + [[build.closed()]] * 5  # 5 frames at 30 fps: shut for 150 ms (167 ms to reopening)
        + [[build.face]] * seconds(2)
    )
    events = run(tracker, frames, build.size)
    blinks = kinds(events, "blink")
    assert len(blinks) == 1, events
    assert blinks[0].t_s == pytest.approx(seconds(2) * DT, abs=1e-6)
    assert blinks[0].duration_s == pytest.approx(5 * DT, abs=1e-3)
    assert not kinds(events, "look_away") and not kinds(events, "eyes_closed")
    summary = tracker.summary()
    assert summary.blinks == 1 and summary.look_aways == 0


def test_two_blinks_count_two_and_a_half_closed_lid_is_no_blink(build):
    tracker = AttentionTracker()
    open_ = [[build.face]] * seconds(1)
    frames = open_ + [[build.closed()]] * 4 + open_ + [[build.closed(0.3)]] * 4 + open_
    frames += [[build.closed()]] * 3 + open_
    events = run(tracker, frames, build.size)
    assert len(kinds(events, "blink")) == 2
    assert tracker.summary().blinks == 2


def test_eyes_closed_for_a_second_is_an_eyes_closed_period_not_a_blink(build):
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(2) + [[build.closed()]] * seconds(1)
    frames += [[build.face]] * seconds(2)
    events = run(tracker, frames, build.size)
    assert not kinds(events, "blink")
    (closed,) = kinds(events, "eyes_closed")
    assert closed.duration_s == pytest.approx(1.0, abs=0.05)
    assert tracker.summary().eyes_closed_s == pytest.approx(1.0, abs=0.1)
    # Shut eyes for longer than a blink are not looking at the screen.
    assert len(kinds(events, "look_away")) == 1


def test_gaze_off_the_screen_for_two_seconds_is_exactly_one_look_away(build):
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)  # ~9 mm: the eyes turn ~50° to the side
    frames = [[build.face]] * seconds(3) + [[off]] * seconds(2) + [[build.face]] * seconds(3)
    events = run(tracker, frames, build.size)
    away, back = kinds(events, "look_away"), kinds(events, "look_back")
    assert len(away) == 1 and len(back) == 1, events
    assert away[0].t_s == pytest.approx(3.0, abs=DT)
    assert back[0].t_s == pytest.approx(5.0, abs=DT)
    summary = tracker.summary()
    assert summary.look_aways == 1
    assert summary.look_away_s == pytest.approx(2.0, abs=0.1)
    assert summary.time_present_s == pytest.approx(8.0, abs=0.1)
    assert summary.time_looking_s == pytest.approx(6.0, abs=0.1)
    assert summary.longest_look_s == pytest.approx(3.0, abs=0.1)
    assert summary.looking_share == pytest.approx(0.75, abs=0.02)
    assert summary.blinks == 0


def test_gaze_sign_and_head_pose_correction(build):
    tracker = AttentionTracker()
    base = tracker.update(0.0, [build.face], build.size)
    right = tracker.update(DT, [build.gaze(across=0.3)], build.size)
    down = tracker.update(2 * DT, [build.gaze(down=0.3)], build.size)
    turned = tracker.update(3 * DT, [build.head_yaw(15.0)], build.size)
    assert right.gaze_yaw - base.gaze_yaw == pytest.approx(17.0, abs=3.0)  # asin(3.5/12)
    assert down.gaze_pitch - base.gaze_pitch == pytest.approx(17.0, abs=3.0)
    assert turned.yaw - base.yaw == pytest.approx(15.0, abs=0.5)
    assert turned.gaze_yaw - base.gaze_yaw == pytest.approx(15.0, abs=0.5)


def test_brief_glances_and_noise_are_no_look_away(build):
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    frames = [[build.face]] * seconds(2)
    for _ in range(5):  # 0.2 s glances, shorter than look_leave_s
        frames += [[off]] * 6 + [[build.face]] * seconds(1)
    events = run(tracker, frames, build.size)
    assert not kinds(events, "look_away")
    assert tracker.summary().looking_share == 1.0


def test_a_one_frame_face_miss_does_not_end_the_presence(build):
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(2) + [[]] + [[build.face]] * seconds(2)
    frames += [[]] * 3 + [[build.face]] * seconds(2)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events] == ["enter"]
    assert events[0].t_s == 0.0
    assert tracker.summary().time_present_s == pytest.approx(len(frames) * DT - DT, abs=0.05)


def test_three_seconds_away_is_one_leave_and_one_enter(build):
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(3) + [[]] * seconds(3) + [[build.face]] * seconds(3)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events if e.kind in ("enter", "leave")] == ["enter", "leave", "enter"]
    leave, enter = kinds(events, "leave")[0], kinds(events, "enter")[1]
    assert leave.t_s == pytest.approx(3.0, abs=1e-6)  # the first frame without the face
    assert enter.t_s == pytest.approx(6.0, abs=1e-6)  # the first frame with it again
    assert not kinds(events, "look_away")  # leaving is not also a look-away
    (interruption,) = kinds(events, "interruption")
    assert interruption.t_s == pytest.approx(3.0, abs=1e-6)
    assert interruption.duration_s == pytest.approx(3.0, abs=0.01)
    summary = tracker.summary()
    assert summary.time_present_s == pytest.approx(6.0 - DT, abs=0.05)
    assert summary.interruptions == 1 and summary.look_aways == 0


def test_a_single_spurious_face_does_not_enter(build):
    tracker = AttentionTracker()
    frames = [[]] * seconds(2) + [[build.face]] + [[]] * seconds(2)
    frames += [[build.face]] * 3 + [[]] * seconds(2)
    assert run(tracker, frames, build.size) == []
    assert tracker.summary().time_present_s == 0.0


def test_a_head_turn_that_loses_the_face_for_a_second_is_a_look_away(build):
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(2) + [[]] * seconds(1) + [[build.face]] * seconds(2)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events] == ["enter", "look_away", "look_back"]
    assert kinds(events, "look_away")[0].t_s == pytest.approx(2.0, abs=1e-6)
    summary = tracker.summary()
    assert summary.look_aways == 1 and summary.time_looking_s == pytest.approx(4.0, abs=0.1)


def test_a_long_look_away_is_an_interruption_and_a_short_one_is_not(build):
    tracker = AttentionTracker()
    off = build.gaze(across=-0.8)
    frames = [[build.face]] * seconds(2) + [[off]] * seconds(1) + [[build.face]] * seconds(2)
    frames += [[off]] * seconds(4) + [[build.face]] * seconds(2)
    events = run(tracker, frames, build.size)
    assert len(kinds(events, "look_away")) == 2
    (interruption,) = kinds(events, "interruption")
    assert interruption.t_s == pytest.approx(5.0, abs=DT)
    assert interruption.duration_s == pytest.approx(4.0, abs=0.05)
    summary = tracker.summary()
    assert summary.interruptions == 1
    assert summary.interruption_s == pytest.approx(4.0, abs=0.1)
    assert summary.look_away_s == pytest.approx(5.0, abs=0.1)


def test_content_items_are_summarised_separately(build):
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    assert tracker.start_item("page-1", 0.0) is None
    run(tracker, [[build.face]] * seconds(4), build.size)
    first = tracker.start_item("page-2", 4.0)
    frames = [[off]] * seconds(1) + [[build.face]] * seconds(2) + [[build.closed()]] * 4
    frames += [[build.face]] * seconds(1)
    run(tracker, frames, build.size, t0=4.0)
    second = tracker.start_item("page-3", 4.0 + len(frames) * DT)
    assert first.time_present_s == pytest.approx(4.0, abs=0.1)
    assert first.look_aways == 0 and first.blinks == 0 and first.longest_look_s >= 3.9
    assert second.look_aways == 1 and second.blinks == 1
    assert second.time_present_s == pytest.approx(len(frames) * DT, abs=0.1)
    visit = tracker.summary()
    assert visit.look_aways == 1 and visit.blinks == 1
    assert visit.longest_look_s == pytest.approx(4.0, abs=0.1)  # page-1 plus nothing more


def test_distance_follows_the_iris_size(build):
    near, far = AttentionTracker(), AttentionTracker()
    d1 = near.update(0.0, [build.face], build.size).distance_cm
    d2 = far.update(0.0, [build.scaled(0.5)], build.size).distance_cm
    assert d2 == pytest.approx(2 * d1, rel=0.02)
    wide = AttentionTracker(AttentionConfig(horizontal_fov_deg=90.0))
    d3 = wide.update(0.0, [build.face], build.size).distance_cm
    assert d3 == pytest.approx(d1 * math.tan(math.radians(30)) / math.tan(math.radians(45)), 0.01)


def test_viewers_count_steady_faces_and_the_largest_is_the_main_viewer(build):
    tracker = AttentionTracker()
    other = FaceBuilder(build.scaled(0.5), build.size).gaze(across=0.8)  # far, looking away
    frames = [[other, build.face]] * seconds(2) + [[build.face, other]] + [[build.face]] * 30
    samples = []
    for i, faces in enumerate(frames):
        samples.append(tracker.update(i * DT, faces, build.size))
    assert samples[0].viewers == 0 and samples[seconds(1)].viewers == 2
    assert all(s.looking in (None, True) for s in samples)  # the near face looks; it leads
    assert samples[-1].faces == 1 and samples[-1].viewers == 2  # one dropped face: not yet
    assert tracker.summary().max_viewers == 2


def test_reset_forgets_the_visit(build):
    tracker = AttentionTracker()
    run(tracker, [[build.face]] * seconds(2), build.size)
    tracker.reset()
    assert tracker.summary().time_present_s == 0.0 and tracker.drain_events() == []
    assert not tracker.update(10.0, [build.face], build.size).present


def test_calibration_maps_gaze_to_the_nine_regions():
    calibration = ScreenCalibration()
    assert not calibration.fit() and calibration.region(0.0, 10.0) is None
    for region in range(9):
        row, col = divmod(region, 3)
        for jitter in (-0.5, 0.0, 0.5):
            # Viewer's right (screen right) is image left, so yaw falls towards the right.
            calibration.add(region, 10.0 - 10.0 * col + jitter, 5.0 + 8.0 * row - jitter)
    assert calibration.fit() and calibration.calibrated
    assert calibration.region(10.0, 5.0) == 0
    assert calibration.region(-10.0, 21.0) == 8
    assert calibration.region(0.0, 13.0) == 4
    assert calibration.region(-60.0, 13.0) is None  # far beyond the right edge
    with pytest.raises(ValueError):
        calibration.add(9, 0.0, 0.0)


def test_calibration_refuses_dots_that_do_not_spread_the_gaze():
    calibration = ScreenCalibration()
    for region in range(9):
        calibration.add(region, 1.0, 1.0)
    assert not calibration.fit()


def test_region_shares_sum_to_one_and_skip_unknown_regions():
    shares = RegionShares()
    assert shares.shares() == [0.0] * 9
    for region in range(9):
        shares.add(region, 1.0)
    shares.add(None, 5.0)
    values = shares.shares()
    assert len(values) == 9 and sum(round(v * 100) for v in values) == 100
    assert all(v in (0.11, 0.12) for v in values)


def test_tracker_publishes_regions_only_with_a_calibration(build):
    tracker = AttentionTracker()
    run(tracker, [[build.face]] * seconds(2), build.size)
    summary = tracker.summary()
    assert not summary.calibrated and summary.region_shares is None
    calibration = ScreenCalibration()
    for region in range(9):
        row, col = divmod(region, 3)
        calibration.add(region, 20.0 - 20.0 * col, -10.0 + 12.0 * row)
    assert calibration.fit()
    tracker.set_calibration(calibration)
    samples = [tracker.update(2.0 + i * DT, [build.face], build.size) for i in range(seconds(2))]
    region = samples[-1].region
    assert region is not None
    shares = tracker.summary().region_shares
    assert shares[region] == 1.0 and sum(shares) == pytest.approx(1.0)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        AttentionConfig(horizontal_fov_deg=0.0)
    with pytest.raises(ValueError):
        AttentionConfig(leave_s=-1.0)
    with pytest.raises(ValueError):
        AttentionConfig(blink_close_ratio=0.9, blink_open_ratio=0.8)


# --- the holds, each tested by what it exists for (defaults: enter 0.5 s, leave 2 s, look-away
# 0.5 s, looking again 0.3 s); each case sits on both sides of its hold, well clear of a frame.


def test_the_holds_are_the_documented_defaults():
    config = AttentionConfig()
    assert (config.enter_s, config.leave_s) == (0.5, 2.0)
    assert (config.look_leave_s, config.look_enter_s) == (0.5, 0.3)


@pytest.mark.parametrize("flash_s", [0.1, 0.3, 0.4])
def test_a_face_flash_shorter_than_the_enter_hold_is_no_viewer(build, flash_s):
    """The enter hold is why a face seen for a moment (a passer-by, a false detection) is not
    a viewer: no enter, no time present, never `present` in a sample."""
    tracker = AttentionTracker()
    frames = [[]] * seconds(1) + [[build.face]] * seconds(flash_s) + [[]] * seconds(3)
    samples = [tracker.update(i * DT, faces, build.size) for i, faces in enumerate(frames)]
    assert not any(s.present for s in samples)
    assert tracker.drain_events() == []
    assert tracker.summary().time_present_s == 0.0


@pytest.mark.parametrize("stay_s", [0.6, 2.0])
def test_a_face_that_stays_past_the_enter_hold_enters_from_its_first_frame(build, stay_s):
    tracker = AttentionTracker()
    frames = [[]] * seconds(1) + [[build.face]] * seconds(stay_s)
    present = [tracker.update(i * DT, faces, build.size).present for i, faces in enumerate(frames)]
    confirmed = present.index(True) * DT
    assert confirmed - 1.0 == pytest.approx(0.5, abs=1.01 * DT)  # confirmed after the hold …
    (enter,) = tracker.drain_events()
    assert enter.kind == "enter" and enter.t_s == pytest.approx(1.0)  # … dated to its start
    assert tracker.summary().time_present_s == pytest.approx(stay_s, abs=1.01 * DT)


def test_a_face_gone_for_less_than_the_leave_hold_is_a_look_away_not_a_leave(build):
    """The leave hold is why a viewer who turns away or ducks for under 2 s stays the viewer."""
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(2) + [[]] * seconds(1.7) + [[build.face]] * seconds(2)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events] == ["enter", "look_away", "look_back"], events
    assert tracker.summary().time_present_s == pytest.approx(len(frames) * DT - DT, abs=0.05)


def test_a_face_gone_past_the_leave_hold_leaves_from_its_first_missing_frame(build):
    tracker = AttentionTracker()
    frames = [[build.face]] * seconds(2) + [[]] * seconds(2.4) + [[build.face]] * seconds(1)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events if e.kind in ("enter", "leave")] == ["enter", "leave", "enter"]
    assert kinds(events, "leave")[0].t_s == pytest.approx(2.0)
    assert not kinds(events, "look_away")


@pytest.mark.parametrize("glance_s", [0.2, 0.4])
def test_a_glance_off_shorter_than_the_look_away_hold_is_no_look_away(build, glance_s):
    """The look-away hold is why a glance at the keyboard or a saccade's noise is no look-away."""
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    frames = [[build.face]] * seconds(2) + [[off]] * seconds(glance_s) + [[build.face]] * 30
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events] == ["enter"], events
    assert tracker.summary().look_aways == 0 and tracker.summary().looking_share == 1.0


def test_gaze_off_past_the_look_away_hold_is_one_look_away_from_its_start(build):
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    frames = [[build.face]] * seconds(2) + [[off]] * seconds(0.7) + [[build.face]] * 30
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events] == ["enter", "look_away", "look_back"], events
    assert kinds(events, "look_away")[0].t_s == pytest.approx(2.0)
    assert kinds(events, "look_back")[0].t_s == pytest.approx(2.7)


def test_a_glance_back_shorter_than_the_looking_hold_does_not_end_a_look_away(build):
    """The looking hold is why eyes that flick back to the screen for a moment during a
    look-away do not split it into two look-aways."""
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    frames = [[build.face]] * seconds(2) + [[off]] * seconds(1) + [[build.face]] * seconds(0.2)
    frames += [[off]] * seconds(1) + [[build.face]] * seconds(1)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events if e.kind != "interruption"] == [
        "enter", "look_away", "look_back",
    ], events  # fmt: skip
    assert kinds(events, "look_back")[0].t_s == pytest.approx(4.2)
    assert tracker.summary().look_aways == 1


def test_a_look_back_past_the_looking_hold_ends_the_look_away_from_its_start(build):
    tracker = AttentionTracker()
    off = build.gaze(across=0.8)
    frames = [[build.face]] * seconds(2) + [[off]] * seconds(1) + [[build.face]] * seconds(0.4)
    frames += [[off]] * seconds(1) + [[build.face]] * seconds(1)
    events = run(tracker, frames, build.size)
    assert [e.kind for e in events if e.kind != "interruption"] == [
        "enter", "look_away", "look_back", "look_away", "look_back",
    ], events  # fmt: skip
    assert [e.t_s for e in kinds(events, "look_back")] == pytest.approx([3.0, 4.4])
