"""The reading stage: page turns, away time and the eyes to `reading` and `page`."""

from __future__ import annotations

from typing import Any

from ..reader import ItemLayout, LineCalibration, ReadingSession, ScreenMap
from ..signals import RateLimit
from .base import FrameContext, Message, Stage, StageSettings

READING_HZ = 1.0
"""A `reading` state a second at most, while a laid-out item is on screen: a pace changes slowly."""

MAX_LINE_SAMPLES = 1800
"""A "read this line" calibration keeps at most a minute of gaze at 30 Hz."""


class ReadingStage(Stage):
    """One visit's `ReadingSession`, fed the attention stage's sample of each frame."""

    name = "reading"
    scope = "reading"
    kinds = ("reading", "page")

    def __init__(self, settings: StageSettings):
        self.screen_width_cm = settings.screen_width_cm
        self.session = ReadingSession(self.screen_width_cm)
        self.rate = RateLimit(READING_HZ)
        self._line_samples: list[tuple[float, float]] | None = None  # "read this line"

    def reset(self) -> None:
        self.session = ReadingSession(self.screen_width_cm)
        self._line_samples = None
        self.rate.reset()

    def on_frame(self, ctx: FrameContext) -> list[Message]:
        sample = ctx.sample
        assert sample is not None, "the attention stage runs before the reading stage"
        if (
            self._line_samples is not None
            and sample.gaze_yaw is not None
            and len(self._line_samples) < MAX_LINE_SAMPLES
        ):
            self._line_samples.append((ctx.t_s, sample.gaze_yaw))
        self.session.update(
            ctx.t_s, sample.present, sample.looking, sample.gaze_yaw, sample.distance_cm
        )
        if self.session.layout is None or not self.rate.ready(ctx.now):
            return []
        return [Message("reading", self.session.state())]

    def on_item(self, item: str | None, layout: ItemLayout | None, t_s: float) -> list[Message]:
        page = self.session.show(layout if item is not None else None, t_s)
        return [] if page is None else [Message("page", page)]

    def set_screen_calibration(self, calibration: ScreenMap | None) -> None:
        """The look-at-the-dots calibration places the gaze on the text."""
        self.session.set_screen_calibration(calibration)

    def calibrate_line(
        self, phase: str, left: float | None = None, right: float | None = None
    ) -> dict[str, Any]:
        """ "Read this line": start collecting the gaze, or end with the line's left and right
        edges (shares of the screen's width) and fit the gaze-to-text mapping from it."""
        if phase == "start":
            self._line_samples = []
            return {"calibrating": "line"}
        if phase != "end":
            raise ValueError("phase must be start or end")
        if self._line_samples is None:
            raise ValueError("start the line calibration first")
        if left is None or right is None:
            raise ValueError("end needs the line's left and right (shares of the width)")
        samples, self._line_samples = self._line_samples, None
        fitted = LineCalibration.fit(samples, float(left), float(right))
        if fitted is not None:
            self.session.set_line_calibration(fitted)
        return {"calibrated": fitted is not None}
