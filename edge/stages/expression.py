"""The expression stage: a backend's estimates, smoothed, to `expression` and `reaction`."""

from __future__ import annotations

import threading
from typing import Any

from ..expression import EmotionEstimate, ExpressionTracker
from ..reader import ItemLayout
from ..signals import RateLimit, main_face
from .base import FrameContext, Message, Stage, StageSettings


class ExpressionStage(Stage):
    """Runs the expression backend on the main face; publishes at most `max_rate_hz`."""

    name = "expression"
    scope = "expression"
    kinds = ("expression", "reaction")

    def __init__(self, settings: StageSettings):
        self.model = settings.expression_model
        self.tracker = ExpressionTracker(publish_hz=settings.max_rate_hz)
        self.rate = RateLimit(settings.max_rate_hz)
        # The model is the frame thread's: a "forget" asked for while it runs (a withdrawal
        # from the viewer page) is done as soon as it returns, never waited for.
        self._model_lock = threading.Lock()
        self._forget_asked = False

    def reset(self) -> None:
        self.tracker.reset()
        self.rate.reset()
        self._forget_asked = True
        if self._model_lock.acquire(blocking=False):
            try:
                self._forget_if_asked()
            finally:
                self._model_lock.release()

    def _forget_if_asked(self) -> None:
        """Nothing of the last visitor's face carries over in the backend (hold the model)."""
        if self._forget_asked:
            self._forget_asked = False
            forget = getattr(self.model, "forget", None)  # optional for plug-ins
            if forget is not None:
                forget()

    def prepare(self, ctx: FrameContext) -> EmotionEstimate | None:
        face = main_face(ctx.faces)
        with self._model_lock:
            self._forget_if_asked()
            raw = self.model.estimate(ctx.frame.image, face) if face is not None else None
            self._forget_if_asked()  # the visit ended while the model ran
        return raw

    def on_frame(self, ctx: FrameContext) -> list[Message]:
        estimate = self.tracker.update(ctx.t_s, ctx.prepared.get(self.name))
        if estimate is None or not self.rate.ready(ctx.now):
            return []
        return [Message("expression", estimate.message_fields())]

    def on_item(self, item: str | None, layout: ItemLayout | None, t_s: float) -> list[Message]:
        if item is None:
            reaction = self.tracker.end_item(t_s)
        else:
            reaction = self.tracker.start_item(item, t_s)
        if reaction is None or not reaction.frames:
            return []
        return [Message("reaction", reaction.message_fields())]

    def calibrate(self, emotion: str, phase: str) -> dict[str, Any]:
        """ "Show a happy face": start or end collecting how this viewer shows `emotion`."""
        if phase == "start":
            self.tracker.start_calibration(emotion)
            return {"calibrating": emotion}
        if phase == "end":
            done = self.tracker.end_calibration()
            return {"calibrated": done is not None, "emotion": emotion}
        raise ValueError("phase must be start or end")
