"""Attention and presence: who is in front of the screen, whether they look, how they blink.

What a watching screen learns about its viewer (issue #4; see ../shared/DESIGN.md): the
set-top box of Verizon US 2012/0304206 A1 (who is there, how many, whether they pay
attention, how far away) and the eye events of Amazon US 9,256,784 B1 (look-aways and
interruptions). `AttentionTracker` turns one frame's `FaceObservation`s into an
`AttentionSample` and a few `AttentionEvent`s, and keeps an `AttentionSummary` per visit and
per content item. `ScreenCalibration` and `RegionShares` map gaze to a coarse 3x3 grid of
screen regions. Pure computation: no camera, no MQTT, O(1) work per frame.
docs/attention.md gives each signal's definition, unit, rate and the provenance of every
constant.

Angles follow `edge.signals.head_pose`: yaw > 0 when the face (or gaze) turns towards the
image's right (the viewer's own left), pitch > 0 downwards, roll > 0 when the top of the head
tilts towards the image's left.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields

import numpy as np

from .face import FaceObservation
from .signals import head_pose, main_face

logger = logging.getLogger(__name__)

# Landmarks of the 478-point Face Landmarker mesh, per eye in image order: the corner on the
# image's left, the corner on the image's right, upper lid, lower lid, iris centre, and the
# iris ring as two opposite pairs (horizontal, vertical).
_EYES = (
    (33, 133, 159, 145, 468, 469, 471, 470, 472),  # the viewer's right eye (image left)
    (362, 263, 386, 374, 473, 474, 476, 475, 477),  # the viewer's left eye (image right)
)
_EYE_POINTS = np.array([i for eye in _EYES for i in eye], dtype=np.intp)
_PER_EYE = len(_EYES[0])
_OPEN_GAP_RISE_S = 0.1
"""The open-eye reference follows a wider lid gap within about this time..."""
_OPEN_GAP_FALL_S = 10.0
"""...and a narrower one (a squint, a look down) only this slowly, so blinks never lower it."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class AttentionConfig:
    """Thresholds and camera geometry of the attention tracker; every field has a default."""

    horizontal_fov_deg: float = field(
        default=60.0, metadata=_help("camera's horizontal field of view (laptop webcams 50-70)")
    )
    iris_diameter_mm: float = field(
        default=11.7, metadata=_help("visible iris diameter, near-constant across adults")
    )
    eye_radius_mm: float = field(
        default=12.0, metadata=_help("radius on which the iris centre turns with the eye")
    )
    iris_rest_raise_mm: float = field(
        default=2.0,
        metadata=_help("iris centre above the line of the eye corners when looking ahead"),
    )
    enter_s: float = field(
        default=0.5, metadata=_help("a face must be seen this long before the viewer enters")
    )
    leave_s: float = field(
        default=2.0, metadata=_help("the face must be gone this long before the viewer leaves")
    )
    look_enter_s: float = field(
        default=0.3, metadata=_help("gaze on the screen this long counts as looking again")
    )
    look_leave_s: float = field(
        default=0.5, metadata=_help("gaze off the screen this long counts as a look-away")
    )
    look_yaw_deg: float = field(
        default=25.0, metadata=_help("largest |gaze yaw| that still lands on the screen")
    )
    look_up_deg: float = field(
        default=15.0, metadata=_help("largest upward gaze pitch that still lands on the screen")
    )
    look_down_deg: float = field(
        default=35.0,
        metadata=_help("largest downward gaze pitch still on a screen below the camera"),
    )
    look_margin_deg: float = field(
        default=5.0, metadata=_help("angular hysteresis: leave beyond the limit + this margin")
    )
    blink_close_ratio: float = field(
        default=0.55, metadata=_help("eyes closed below this share of the viewer's open-eye gap")
    )
    blink_open_ratio: float = field(
        default=0.75, metadata=_help("eyes open again above this share of the open-eye gap")
    )
    blink_max_s: float = field(
        default=0.5, metadata=_help("a closure longer than this is an eyes-closed period")
    )
    interruption_s: float = field(
        default=2.0, metadata=_help("time away from the screen that counts as an interruption")
    )
    max_step_s: float = field(
        default=1.0, metadata=_help("longer gaps between frames (a pause) are not counted")
    )

    def __post_init__(self) -> None:
        if not 10.0 <= self.horizontal_fov_deg <= 170.0:
            raise ValueError("horizontal_fov_deg must be in [10, 170]")
        if self.iris_diameter_mm <= 0 or self.eye_radius_mm <= 0:
            raise ValueError("iris_diameter_mm and eye_radius_mm must be > 0")
        for f in fields(self):
            if f.name.endswith("_s") and getattr(self, f.name) < 0:
                raise ValueError(f"{f.name} must be ≥ 0")
        if not 0 < self.blink_close_ratio < self.blink_open_ratio < 1:
            raise ValueError("need 0 < blink_close_ratio < blink_open_ratio < 1")


@dataclass(frozen=True)
class AttentionSample:
    """What one frame says about the main viewer. Stays on the device except as summaries."""

    t_s: float
    present: bool
    """Confirmed presence of the main viewer (with enter/leave hysteresis)."""
    faces: int
    """Faces seen in this frame."""
    viewers: int = 0
    """Faces seen steadily (a count held for `enter_s`)."""
    looking: bool | None = None
    """Looking at the screen (with hysteresis); None when nobody is present."""
    gaze_yaw: float | None = None
    """Gaze direction in degrees, head pose included; None without open eyes."""
    gaze_pitch: float | None = None
    eyes_closed: bool | None = None
    distance_cm: float | None = None
    yaw: float | None = None
    """Head pose in degrees (`edge.signals.head_pose`)."""
    pitch: float | None = None
    roll: float | None = None
    region: int | None = None
    """Screen region 0..8 (row-major) looked at; None without calibration or when off-screen."""


@dataclass(frozen=True)
class AttentionEvent:
    """Something that happened, stamped with when it happened (not when it was confirmed)."""

    t_s: float
    kind: str  # enter | leave | look_away | look_back | blink | eyes_closed | interruption
    duration_s: float | None = None
    """For blink, eyes_closed and interruption: how long it lasted."""


@dataclass(frozen=True)
class AttentionSummary:
    """Attention over a visit or a content item, rounded for display and the wire."""

    time_present_s: float
    time_looking_s: float
    looking_share: float
    longest_look_s: float
    look_aways: int
    look_away_s: float
    interruptions: int
    interruption_s: float
    blinks: int
    blink_rate_per_min: float | None
    """None until the viewer has been present for 10 s (a shorter rate means little)."""
    eyes_closed_s: float
    mean_distance_cm: int | None
    max_viewers: int
    calibrated: bool
    region_shares: list[float] | None = None
    """Share of looking time per screen region (3x3, row-major); None without calibration."""


class RegionShares:
    """Time spent on each of the 3x3 screen regions, published as shares only."""

    def __init__(self) -> None:
        self._time = [0.0] * 9

    def add(self, region: int | None, dt: float) -> None:
        """Count `dt` seconds on `region`; None (off-screen, unknown) is not counted."""
        if region is not None and dt > 0:
            self._time[region] += dt

    @property
    def total_s(self) -> float:
        """Seconds counted on any region."""
        return sum(self._time)

    def shares(self) -> list[float]:
        """Nine shares rounded to 0.01 that sum to exactly 1 (all zero before any time)."""
        total = sum(self._time)
        if total <= 0:
            return [0.0] * 9
        # Largest remainder, so that the rounded shares still add up to 100 hundredths.
        exact = [100.0 * t / total for t in self._time]
        floors = [math.floor(e) for e in exact]
        order = sorted(range(9), key=lambda i: exact[i] - floors[i], reverse=True)
        for i in order[: 100 - sum(floors)]:
            floors[i] += 1
        return [f / 100.0 for f in floors]


class ScreenCalibration:
    """Maps gaze angles to a 3x3 grid of screen regions from a few look-at-the-dot samples."""

    MIN_SPREAD_DEG = 2.0
    """Gaze must differ at least this much between dot columns (rows) to fit a map."""
    OFF_SCREEN_MARGIN = 0.25
    """Gaze this far beyond the screen's edge (in screen widths/heights) is still clamped on."""

    def __init__(self) -> None:
        self._samples: list[tuple[int, float, float]] = []
        self._map: tuple[float, float, float, float] | None = None

    @property
    def calibrated(self) -> bool:
        """Whether `fit` has produced a usable map."""
        return self._map is not None

    def add(self, target_region: int, gaze_yaw: float, gaze_pitch: float) -> None:
        """Record the gaze while the viewer looked at the dot in `target_region` (0..8)."""
        if not 0 <= target_region <= 8:
            raise ValueError(f"target_region must be 0..8, not {target_region}")
        if not (math.isfinite(gaze_yaw) and math.isfinite(gaze_pitch)):
            raise ValueError("gaze angles must be finite")
        self._samples.append((target_region, float(gaze_yaw), float(gaze_pitch)))

    def fit(self) -> bool:
        """Fit screen x from yaw and y from pitch (median per dot, then least squares)."""
        self._map = None
        by_region: dict[int, list[tuple[float, float]]] = {}
        for region, yaw, pitch in self._samples:
            by_region.setdefault(region, []).append((yaw, pitch))
        if len(by_region) < 3:
            return False
        xs, ys, yaws, pitches = [], [], [], []
        for region, gaze in by_region.items():
            row, col = divmod(region, 3)
            xs.append((col + 0.5) / 3.0)
            ys.append((row + 0.5) / 3.0)
            yaws.append(float(np.median([g[0] for g in gaze])))
            pitches.append(float(np.median([g[1] for g in gaze])))
        fitted = []
        for screen, angle in ((xs, yaws), (ys, pitches)):
            if len(set(screen)) < 2 or np.ptp(angle) < self.MIN_SPREAD_DEG:
                return False
            slope, offset = np.polyfit(angle, screen, 1)
            if not math.isfinite(slope) or slope == 0:
                return False
            fitted += [float(slope), float(offset)]
        self._map = (fitted[0], fitted[1], fitted[2], fitted[3])
        logger.info("screen calibration fitted from %d samples", len(self._samples))
        return True

    def screen_x(self, gaze_yaw: float) -> float | None:
        """Horizontal place on the screen (0 left edge, 1 right edge) of a gaze yaw; None
        before a fit."""
        if self._map is None:
            return None
        return self._map[0] * gaze_yaw + self._map[1]

    def region(self, gaze_yaw: float, gaze_pitch: float) -> int | None:
        """The region (0..8, row-major) the gaze falls on, or None when off-screen."""
        if self._map is None:
            return None
        a, b, c, d = self._map
        x, y = a * gaze_yaw + b, c * gaze_pitch + d
        m = self.OFF_SCREEN_MARGIN
        if not (-m <= x <= 1 + m and -m <= y <= 1 + m):
            return None
        col = min(2, max(0, int(x * 3.0)))
        row = min(2, max(0, int(y * 3.0)))
        return row * 3 + col


@dataclass
class _Tally:
    """Running totals for one visit or one content item."""

    start_s: float
    present_s: float = 0.0
    looking_s: float = 0.0
    longest_look_s: float = 0.0
    look_aways: int = 0
    look_away_s: float = 0.0
    interruptions: int = 0
    interruption_s: float = 0.0
    blinks: int = 0
    eyes_closed_s: float = 0.0
    distance_sum: float = 0.0
    distance_n: int = 0
    max_viewers: int = 0
    regions: RegionShares = field(default_factory=RegionShares)


@dataclass
class _Eyes:
    """What the landmarks say about the eyes in one frame."""

    openness: float  # lid gap / eye width, mean of both eyes
    eye_yaw: float  # degrees, within the head
    eye_pitch: float
    iris_px: float  # iris diameter in pixels (mean of both eyes)


class AttentionTracker:
    """Presence, gaze, blinks and distance of the main viewer, frame by frame, with summaries."""

    def __init__(self, config: AttentionConfig | None = None):
        self.config = config or AttentionConfig()
        self.calibration: ScreenCalibration | None = None
        self.reset()

    def reset(self) -> None:
        """A new visit: forget everything (the calibration is kept for the same screen)."""
        self._events: list[AttentionEvent] = []
        self._last_t: float | None = None
        self._present = False
        self._present_change_since: float | None = None  # raw presence differs since then
        self._missing_since: float | None = None  # while present: face not seen since then
        self._viewers = 0
        self._viewers_cand = 0
        self._viewers_cand_since = 0.0
        self._looking = False
        self._looked = False  # looked at the screen at least once since entering
        self._look_change_since: float | None = None
        self._look_since: float | None = None  # start of the current continuous look
        self._look_away_since: float | None = None  # start of the current look-away
        self._away_since: float | None = None  # start of time away (look-away or absence)
        self._closed = False
        self._closed_since = 0.0
        self._open_gap: float | None = None  # the viewer's open-eye lid gap (adaptive)
        self._visit: _Tally | None = None
        self._item: _Tally | None = None
        self._item_id: str | None = None
        self._focal_cache: tuple[int, float] = (0, 0.0)

    def set_calibration(self, calibration: ScreenCalibration | None) -> None:
        """Use a fitted calibration for screen regions (None: looking / not looking only)."""
        self.calibration = calibration if calibration and calibration.calibrated else None

    # --- per frame ---------------------------------------------------------------------------

    def update(
        self, t_s: float, faces: list[FaceObservation], image_size: tuple[int, int]
    ) -> AttentionSample:
        """Take one frame's faces (image_size = width, height) and return the frame's sample."""
        cfg = self.config
        if self._visit is None:
            self._visit = _Tally(t_s)
        if self._item is None:
            self._item = _Tally(t_s)
        last = self._last_t
        if last is not None and t_s < last:
            logger.warning("attention clock went back (%.3f after %.3f): ignored", t_s, last)
            t_s = last
        dt = 0.0 if last is None else min(t_s - last, cfg.max_step_s)
        self._last_t = t_s
        tallies = (self._visit, self._item)

        # Credit the step since the previous frame to the state that held during it.
        if self._present and dt > 0:
            for tally in tallies:
                tally.present_s += dt
                if self._looking:
                    tally.looking_s += dt
                if self._closed:
                    tally.eyes_closed_s += dt

        face = main_face(faces)
        self._update_viewers(t_s, len(faces), tallies)
        self._update_presence(t_s, face is not None, tallies)

        width, height = image_size
        yaw = pitch = roll = None
        gaze_yaw = gaze_pitch = distance = None
        eyes_closed = None
        region = None
        looking_evidence: bool | None = None
        look_since = t_s
        if face is not None:
            if face.transform is not None:
                pose = head_pose(face.transform)
                yaw, pitch, roll = pose.yaw, pose.pitch, pose.roll
            eyes = self._eyes(face.landmarks, width, height)
            if eyes is not None:
                eyes_closed = self._update_blink(t_s, dt, eyes.openness, tallies)
                if eyes_closed and t_s - self._closed_since > cfg.blink_max_s:
                    looking_evidence = False  # eyes shut for longer than a blink: not looking
                    look_since = self._closed_since
                elif not eyes_closed:
                    distance = self._focal_px(width) * cfg.iris_diameter_mm / eyes.iris_px / 10.0
                    gaze_yaw = eyes.eye_yaw + (yaw or 0.0)
                    gaze_pitch = eyes.eye_pitch + (pitch or 0.0)
                    looking_evidence = self._on_screen(gaze_yaw, gaze_pitch)
                    if self.calibration is not None:
                        region = self.calibration.region(gaze_yaw, gaze_pitch)
        elif self._closed:
            self._closed = False  # the face is gone: an unfinished closure is not a blink

        if self._present:
            self._update_looking(t_s, looking_evidence, tallies, look_since)
            for tally in tallies:
                if distance is not None:
                    tally.distance_sum += distance
                    tally.distance_n += 1
                if self._looking and region is not None:
                    tally.regions.add(region, dt)

        return AttentionSample(
            t_s=t_s,
            present=self._present,
            faces=len(faces),
            viewers=self._viewers,
            looking=self._looking if self._present else None,
            gaze_yaw=_round(gaze_yaw, 1),
            gaze_pitch=_round(gaze_pitch, 1),
            eyes_closed=eyes_closed,
            distance_cm=_round(distance, 1),
            yaw=_round(yaw, 1),
            pitch=_round(pitch, 1),
            roll=_round(roll, 1),
            region=region if self._present and self._looking else None,
        )

    def drain_events(self) -> list[AttentionEvent]:
        """The events since the last call, oldest first."""
        events, self._events = self._events, []
        events.sort(key=lambda e: e.t_s)
        return events

    # --- summaries ---------------------------------------------------------------------------

    def summary(self) -> AttentionSummary:
        """Attention over the whole visit so far."""
        if self._visit is None:
            return self._summarize(_Tally(0.0))
        return self._summarize(self._visit)

    def start_item(self, item_id: str, t_s: float) -> AttentionSummary | None:
        """Close the current content item (returning its summary) and start `item_id`."""
        previous = None
        if self._item is not None and self._item_id is not None:
            previous = self._summarize(self._item, until=t_s)
        self._item = _Tally(t_s)
        self._item_id = item_id
        return previous

    @property
    def item_id(self) -> str | None:
        """The content item being shown, if any."""
        return self._item_id

    def _summarize(self, tally: _Tally, until: float | None = None) -> AttentionSummary:
        now = self._last_t if until is None else until
        if now is None:
            now = tally.start_s
        longest, look_away_s = tally.longest_look_s, tally.look_away_s
        interruptions, interruption_s = tally.interruptions, tally.interruption_s
        # Periods still open at `now` count up to `now`, clipped to the tally's start.
        if self._present and self._looking and self._look_since is not None:
            longest = max(longest, now - max(self._look_since, tally.start_s))
        if self._look_away_since is not None:
            look_away_s += max(0.0, now - max(self._look_away_since, tally.start_s))
        away = self._away_since
        if self._present and away is not None and now - away >= self.config.interruption_s:
            interruptions += 1
            interruption_s += max(0.0, now - max(away, tally.start_s))
        present = tally.present_s
        share = tally.looking_s / present if present > 0 else 0.0
        rate = tally.blinks / (present / 60.0) if present >= 10.0 else None
        calibrated = self.calibration is not None
        return AttentionSummary(
            time_present_s=round(present, 1),
            time_looking_s=round(tally.looking_s, 1),
            looking_share=round(min(1.0, share), 2),
            longest_look_s=round(longest, 1),
            look_aways=tally.look_aways,
            look_away_s=round(look_away_s, 1),
            interruptions=interruptions,
            interruption_s=round(interruption_s, 1),
            blinks=tally.blinks,
            blink_rate_per_min=_round(rate, 1),
            eyes_closed_s=round(tally.eyes_closed_s, 1),
            mean_distance_cm=(
                round(tally.distance_sum / tally.distance_n) if tally.distance_n else None
            ),
            max_viewers=tally.max_viewers,
            calibrated=calibrated,
            region_shares=tally.regions.shares() if calibrated else None,
        )

    # --- the state machines ------------------------------------------------------------------

    def _emit(self, t_s: float, kind: str, duration_s: float | None = None) -> None:
        self._events.append(AttentionEvent(round(t_s, 3), kind, _round(duration_s, 3)))

    def _update_viewers(self, t_s: float, count: int, tallies: tuple[_Tally, ...]) -> None:
        if count != self._viewers_cand:
            self._viewers_cand, self._viewers_cand_since = count, t_s
        if self._viewers_cand != self._viewers and t_s - self._viewers_cand_since >= (
            self.config.enter_s if self._viewers_cand > self._viewers else self.config.leave_s
        ):
            self._viewers = self._viewers_cand
        for tally in tallies:
            tally.max_viewers = max(tally.max_viewers, self._viewers)

    def _update_presence(self, t_s: float, seen: bool, tallies: tuple[_Tally, ...]) -> None:
        cfg = self.config
        if seen == self._present:
            self._present_change_since = None
            if seen and self._missing_since is not None:
                self._face_returned(t_s, tallies)
            return
        if self._present_change_since is None:
            self._present_change_since = t_s
            if not seen:
                self._missing_since = t_s
        since = self._present_change_since
        if seen and t_s - since >= cfg.enter_s:
            self._present = True
            self._present_change_since = None
            self._missing_since = None
            # Gaze on the screen from the first frame counts from the enter (back-dated too).
            self._looking, self._looked, self._look_change_since = False, False, since
            for tally in tallies:
                tally.present_s += t_s - since  # back-dated to the first frame with the face
            self._emit(since, "enter")
        elif not seen and t_s - since >= cfg.leave_s:
            self._present = False
            self._present_change_since = None
            self._missing_since = None
            for tally in tallies:
                tally.present_s -= t_s - since  # back-dated to the first frame without it
            self._end_look(since, tallies, credited_until=t_s)
            self._end_look_away(since, tallies)
            self._emit(since, "leave")

    def _face_returned(self, t_s: float, tallies: tuple[_Tally, ...]) -> None:
        """A gap shorter than `leave_s`: long enough, it was a look-away (the head turned)."""
        since, self._missing_since = self._missing_since, None
        if since is None or t_s - since < self.config.look_leave_s or not self._looking:
            return
        self._start_look_away(since, tallies, credited_until=t_s)
        self._look_change_since = None

    def _on_screen(self, gaze_yaw: float, gaze_pitch: float) -> bool:
        cfg = self.config
        # Angular hysteresis: once looking, the gaze must leave the wider box to stop.
        margin = cfg.look_margin_deg if self._looking else 0.0
        return (
            abs(gaze_yaw) <= cfg.look_yaw_deg + margin
            and -cfg.look_up_deg - margin <= gaze_pitch <= cfg.look_down_deg + margin
        )

    def _update_looking(
        self, t_s: float, evidence: bool | None, tallies: tuple[_Tally, ...], since: float
    ) -> None:
        if evidence is None:  # eyes closed or not measurable: no evidence either way
            return
        if evidence == self._looking:
            self._look_change_since = None
            return
        if self._look_change_since is None:
            self._look_change_since = since
        since = self._look_change_since
        if evidence and t_s - since >= self.config.look_enter_s:
            self._look_change_since = None
            self._looking = True
            self._look_since = since
            for tally in tallies:
                tally.looking_s += t_s - since
            self._end_look_away(since, tallies)
            if self._looked:
                self._emit(since, "look_back")
            self._looked = True
            self._end_away(since, tallies)
        elif not evidence and t_s - since >= self.config.look_leave_s:
            self._look_change_since = None
            self._start_look_away(since, tallies, credited_until=t_s)

    def _start_look_away(self, since: float, tallies: tuple[_Tally, ...], credited_until: float):
        self._end_look(since, tallies, credited_until)
        self._looking = False
        self._look_away_since = since
        if self._away_since is None:
            self._away_since = since
        for tally in tallies:
            tally.look_aways += 1
        self._emit(since, "look_away")

    def _end_look(self, end: float, tallies: tuple[_Tally, ...], credited_until: float) -> None:
        """Close the current look at `end`; time after it was credited as looking until now."""
        if not self._looking:
            return
        self._looking = False
        for tally in tallies:
            tally.looking_s -= max(0.0, credited_until - max(end, tally.start_s))
            if self._look_since is not None:
                tally.longest_look_s = max(
                    tally.longest_look_s, end - max(self._look_since, tally.start_s)
                )
        self._look_since = None
        if self._away_since is None:
            self._away_since = end  # leaving while looking: time away starts here

    def _end_look_away(self, end: float, tallies: tuple[_Tally, ...]) -> None:
        if self._look_away_since is None:
            return
        for tally in tallies:
            tally.look_away_s += max(0.0, end - max(self._look_away_since, tally.start_s))
        self._look_away_since = None

    def _end_away(self, end: float, tallies: tuple[_Tally, ...]) -> None:
        since, self._away_since = self._away_since, None
        if since is None or end - since < self.config.interruption_s:
            return
        for tally in tallies:
            tally.interruptions += 1
            tally.interruption_s += max(0.0, end - max(since, tally.start_s))
        self._emit(since, "interruption", end - since)

    def _update_blink(
        self, t_s: float, dt: float, openness: float, tallies: tuple[_Tally, ...]
    ) -> bool:
        cfg = self.config
        gap = self._open_gap
        if gap is None:
            self._open_gap = gap = openness
        if not self._closed:
            if openness < cfg.blink_close_ratio * gap:
                self._closed, self._closed_since = True, t_s
            else:
                # Track the open-eye gap: rise fast (eyes opened wider), fall slowly (squint,
                # looking down), so a blink never drags the reference down with it.
                tau = _OPEN_GAP_RISE_S if openness > gap else _OPEN_GAP_FALL_S
                self._open_gap = gap + (1.0 - math.exp(-dt / tau)) * (openness - gap)
        elif openness > cfg.blink_open_ratio * gap:
            self._closed = False
            duration = t_s - self._closed_since
            if not self._present:
                pass  # nobody confirmed in front of the screen: not their blink yet
            elif duration <= cfg.blink_max_s:
                for tally in tallies:
                    tally.blinks += 1
                self._emit(self._closed_since, "blink", duration)
            else:
                self._emit(self._closed_since, "eyes_closed", duration)
        return self._closed

    # --- geometry ----------------------------------------------------------------------------

    def _focal_px(self, width: int) -> float:
        if self._focal_cache[0] != width:
            half = math.radians(self.config.horizontal_fov_deg) / 2.0
            self._focal_cache = (width, (width / 2.0) / math.tan(half))
        return self._focal_cache[1]

    def _eyes(self, landmarks: np.ndarray, width: int, height: int) -> _Eyes | None:
        """Lid gap, iris position within the eye and iris size, from the eye landmarks."""
        if landmarks.shape[0] < 478:
            return None  # a mesh without iris points (another analyzer): no eye signals
        cfg = self.config
        pts = landmarks[_EYE_POINTS, :2].tolist()
        openness = offset_h = offset_v = iris = 0.0
        for e in range(2):
            (lx, ly), (rx, ry), (ux, uy), (dx, dy), (cx, cy), h1, h2, v1, v2 = pts[
                e * _PER_EYE : (e + 1) * _PER_EYE
            ]
            ax, ay = (rx - lx) * width, (ry - ly) * height
            eye_w = math.hypot(ax, ay)
            if eye_w <= 1e-6:
                return None
            ax, ay = ax / eye_w, ay / eye_w  # along the eye, towards the image's right
            px, py = -ay, ax  # across the eye, downwards in the image (roll-invariant)
            mx, my = (lx + rx) / 2.0 * width, (ly + ry) / 2.0 * height
            ix, iy = cx * width - mx, cy * height - my
            offset_h += ix * ax + iy * ay
            offset_v += ix * px + iy * py
            openness += math.hypot((ux - dx) * width, (uy - dy) * height) / eye_w
            # Yaw shortens the horizontal ring diameter, pitch the vertical: take the longer.
            iris += max(
                math.hypot((h1[0] - h2[0]) * width, (h1[1] - h2[1]) * height),
                math.hypot((v1[0] - v2[0]) * width, (v1[1] - v2[1]) * height),
            )
        iris /= 2.0
        if iris <= 1e-6:
            return None
        mm_per_px = cfg.iris_diameter_mm / iris
        radius = cfg.eye_radius_mm
        h_mm = offset_h / 2.0 * mm_per_px
        v_mm = offset_v / 2.0 * mm_per_px + cfg.iris_rest_raise_mm
        eye_yaw = math.degrees(math.asin(max(-1.0, min(1.0, h_mm / radius))))
        eye_pitch = math.degrees(math.asin(max(-1.0, min(1.0, v_mm / radius))))
        return _Eyes(openness / 2.0, eye_yaw, eye_pitch, iris)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
