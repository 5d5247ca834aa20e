"""The agent's reading stage: page turns and the eyes, as an e-reader that reads you back.

The viewer page reports which page or post is on screen and how it is laid out; the attention
tracker gives presence, looking and a gaze direction per frame. `ReadingSession` turns these
into `page` messages (one per page left) and a `reading` state (published once a second),
using the estimators of `edge.reading`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from broker import wire

from .reading import GazeReadingEstimator, PageTurnPace, fuse

logger = logging.getLogger(__name__)

DEFAULT_SCREEN_WIDTH_CM = 34.0
"""Width of the viewer's screen when nobody says otherwise: a 15.6-inch laptop."""
DEFAULT_DISTANCE_CM = 60.0
"""Viewing distance to assume until the iris gives one."""
CENTRE_TIME_CONSTANT_S = 8.0
"""The straight-ahead gaze is learned as a moving average over about this long."""


@dataclass(frozen=True)
class ItemLayout:
    """A page or post as the viewer page reports it: what it is and how it is laid out."""

    item: str
    topic: str
    words: int
    lines: int | None = None
    words_per_line: float | None = None
    box_fraction: float | None = None
    """Width of the text box as a share of the screen's width."""
    words_after: int = 0
    """Words on the pages after this one, to the end of the book (0 for a feed post)."""
    chapter_words_after: int | None = None
    """Words on the pages after this one to the end of its chapter (None: not in a book)."""

    def __post_init__(self) -> None:
        if not wire.ITEM_ID.match(self.item):
            raise ValueError(f"item id {self.item!r} must match {wire.ITEM_ID.pattern}")
        if self.topic not in wire.TOPICS:
            raise ValueError(f"topic {self.topic!r} is not one of {wire.TOPICS}")
        if not 0 <= self.words <= 100_000 or not 0 <= self.words_after <= 10_000_000:
            raise ValueError("words and words_after must be sensible counts")
        if self.chapter_words_after is not None and not (
            0 <= self.chapter_words_after <= self.words_after
        ):
            raise ValueError("chapter_words_after must be between 0 and words_after")
        if self.lines is not None and not 0 < self.lines <= 10_000:
            raise ValueError("lines must be a positive count")
        if self.words_per_line is not None and not 0 < self.words_per_line <= 1000:
            raise ValueError("words_per_line must be positive")
        if self.box_fraction is not None and not 0 < self.box_fraction <= 1:
            raise ValueError("box_fraction must be in (0, 1]")


class GazeToText:
    """Maps a gaze angle to a position across the text box (0 = left edge, 1 = right edge).

    Without a calibration the straight-ahead direction is learned as a slow average, and the
    text box's angular width follows from its size on the screen and the viewing distance.
    The camera sees the viewer mirrored: a look to the viewer's right is a look to the image's
    left, which is a negative gaze yaw.
    """

    def __init__(self, screen_width_cm: float = DEFAULT_SCREEN_WIDTH_CM):
        self.screen_width_cm = screen_width_cm
        self.centre: float | None = None
        self._t: float | None = None

    def x(
        self, t: float, gaze_yaw: float | None, distance_cm: float | None, box_fraction: float
    ) -> float | None:
        if gaze_yaw is None:
            return None
        if self.centre is None or self._t is None:
            self.centre = gaze_yaw
        else:
            alpha = min(1.0, max(0.0, t - self._t) / CENTRE_TIME_CONSTANT_S)
            self.centre += alpha * (gaze_yaw - self.centre)
        self._t = t
        distance = distance_cm or DEFAULT_DISTANCE_CM
        width_cm = self.screen_width_cm * box_fraction
        span_deg = math.degrees(2 * math.atan(width_cm / 2 / distance))
        return 0.5 - (gaze_yaw - self.centre) / span_deg


class ReadingSession:
    """One visit's reading: page turns, away time and the eyes, fused."""

    def __init__(self, screen_width_cm: float = DEFAULT_SCREEN_WIDTH_CM):
        self.pace = PageTurnPace()
        self.gaze = GazeReadingEstimator()
        self.to_text = GazeToText(screen_width_cm)
        self.layout: ItemLayout | None = None
        self.away = False
        self.present = False

    def show(self, layout: ItemLayout | None, t: float) -> dict | None:
        """A new item is on screen (None: nothing); return the `page` fields of the one left."""
        left = None
        if self.layout is not None:
            if self.away:
                self.pace.away_ended(t)
            summary = self.gaze.summary()
            fused = fuse(None, summary, self.layout.words)
            reading = self.pace.page_left(t, weight=fused.weight)
            left = {
                "item": self.layout.item,
                "topic": self.layout.topic,
                "words": self.layout.words,
                "seconds": reading.seconds + reading.away_s,
                "away_s": reading.away_s,
                "wpm": min(reading.wpm, 99_999) if reading.words and reading.seconds > 0 else None,
                "skim": reading.skim,
                "dwell": reading.dwell,
                "revisit": reading.revisit,
                "back_turn": reading.back_turn,
                "lines_read": summary.lines_read if summary.observed_s > 0 else None,
                "weight": reading.weight,
            }
        self.layout = layout
        if layout is not None:
            self.pace.page_shown(layout.item, layout.words, t)
            if self.away:
                self.pace.away_started(t)
            self.gaze.reset_page(layout.words_per_line, layout.lines)
        return left

    def update(
        self,
        t: float,
        present: bool,
        looking: bool | None,
        gaze_yaw: float | None,
        distance_cm: float | None,
    ) -> None:
        """One frame: away time for the page-turn pace, horizontal gaze for the eyes."""
        self.present = present
        away = not present or looking is False
        if self.layout is not None and away != self.away:
            if away:
                self.pace.away_started(t)
            else:
                self.pace.away_ended(t)
        self.away = away
        if self.layout is None:
            return
        x = None
        if not away and self.layout.box_fraction is not None:
            x = self.to_text.x(t, gaze_yaw, distance_cm, self.layout.box_fraction)
        self.gaze.update(t, x)

    def state(self) -> dict:
        """The `reading` fields now."""
        layout = self.layout
        summary = self.gaze.summary() if layout is not None else None
        seen = summary is not None and summary.observed_s > 0
        fused = fuse(None, summary, layout.words) if layout is not None else None
        time_left = chapter_left = None
        if layout is not None:
            words_left = fused.words_left if fused and fused.words_left is not None else None
            on_page = layout.words if words_left is None else words_left
            time_left = self.pace.time_left(on_page + layout.words_after)
            if layout.chapter_words_after is not None:
                chapter_left = self.pace.time_left(on_page + layout.chapter_words_after)
        return {
            "item": layout.item if layout else None,
            "state": "away" if not self.present else ("reading" if self.gaze.reading else
                                                      "not_reading"),
            "lines_read": summary.lines_read if seen else None,
            "gaze_wpm": summary.wpm if seen else None,
            "skimming": bool(summary and summary.skimming),
            "progress": fused.progress if fused else None,
            "personal_wpm": self.pace.personal_wpm,
            "time_left_s": time_left,
            "chapter_time_left_s": chapter_left,
        }  # fmt: skip
