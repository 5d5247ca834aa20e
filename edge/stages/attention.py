"""The presence and attention stage: faces to `attention` and `attention_summary`.

It also runs for a visit that consented to reading only: the reading stage reads its sample
(gaze and distance), and its messages are then not published.
"""

from __future__ import annotations

from typing import Any

from ..attention import AttentionSample, AttentionSummary, AttentionTracker, ScreenCalibration
from ..reader import ItemLayout
from ..signals import RateLimit
from .base import FrameContext, Message, Stage, StageSettings


class AttentionStage(Stage):
    """Presence, looking, blinks and distance; a summary per item and per visit."""

    name = "attention"
    scope = "attention"
    kinds = ("attention", "attention_summary")
    serves = frozenset({"attention", "reading"})

    def __init__(self, settings: StageSettings):
        self.tracker = AttentionTracker()
        self.rate = RateLimit(settings.max_rate_hz)
        self._calibration: ScreenCalibration | None = None  # look-at-the-dots, being collected
        self._target: int | None = None  # the dot the viewer is asked to look at

    def reset(self) -> None:
        self.tracker.reset()
        self.tracker.set_calibration(None)  # calibrations belong to the visit
        self._calibration = self._target = None
        self.rate.reset()

    def on_frame(self, ctx: FrameContext) -> list[Message]:
        height, width = ctx.frame.image.shape[:2]
        sample = self.tracker.update(ctx.t_s, ctx.faces, (width, height))
        self.tracker.drain_events()  # counted in the summary; events stay here
        ctx.sample = sample
        if self._target is not None and sample.gaze_yaw is not None:
            assert self._calibration is not None
            self._calibration.add(self._target, sample.gaze_yaw, sample.gaze_pitch or 0.0)
        if not self.rate.ready(ctx.now):
            return []
        return [Message("attention", self._attention_fields(sample))]

    def _attention_fields(self, sample: AttentionSample) -> dict[str, Any]:
        summary = self.tracker.summary()
        distance = sample.distance_cm
        return dict(
            present=sample.present,
            faces=sample.faces,
            looking=sample.looking,
            yaw=sample.yaw,
            pitch=sample.pitch,
            roll=sample.roll,
            # Rounded to 5 cm; beyond 10 m the iris is too small to measure anything.
            distance_cm=None if distance is None or distance > 1000 else 5 * round(distance / 5),
            blinks=summary.blinks,
            look_aways=summary.look_aways,
        )

    def on_item(self, item: str | None, layout: ItemLayout | None, t_s: float) -> list[Message]:
        previous = self.tracker.item_id
        summary = self.tracker.start_item(item, t_s)  # type: ignore[arg-type]
        if summary is None or previous is None:
            return []
        return [self._summary(summary, previous)]

    def end_visit(self, t_s: float) -> list[Message]:
        return [self._summary(self.tracker.summary(), None)]

    @staticmethod
    def _summary(summary: AttentionSummary, item: str | None) -> Message:
        return Message(
            "attention_summary",
            dict(
                item=item,
                time_present_s=summary.time_present_s,
                looking_share=summary.looking_share,
                longest_look_s=summary.longest_look_s,
                look_aways=summary.look_aways,
                look_away_s=summary.look_away_s,
                interruptions=summary.interruptions,
                interruption_s=summary.interruption_s,
                blinks=summary.blinks,
                blink_rate_per_min=summary.blink_rate_per_min,
                mean_distance_cm=summary.mean_distance_cm,
                calibrated=summary.calibrated,
                regions=summary.region_shares,
            ),
        )

    def calibrate_gaze(
        self, phase: str, region: int | None = None
    ) -> tuple[dict[str, Any], ScreenCalibration | None]:
        """Look-at-the-dots: start, point at `region` 0..8 (None: between dots), or end; with
        the fitted calibration (now in use here) when it ends well."""
        if phase == "start":
            self._calibration, self._target = ScreenCalibration(), None
            return {"calibrating": "gaze"}, None
        if self._calibration is None:
            raise ValueError("start the gaze calibration first")
        if phase == "point":
            if region is not None and region not in range(9):
                raise ValueError("region must be 0..8 or null")
            self._target = region
            return {"region": region}, None
        if phase == "end":
            calibration, self._calibration = self._calibration, None
            self._target = None
            fitted = calibration.fit()
            if fitted:
                self.tracker.set_calibration(calibration)
            return {"calibrated": fitted}, calibration if fitted else None
        raise ValueError("phase must be start, point or end")
