"""The agent's reading stage: page turns and the eyes, as an e-reader that reads you back.

The viewer page reports which page or post is on screen and how it is laid out; the attention
tracker gives presence, looking and a gaze direction per frame. `ReadingSession` turns these
into `page` messages (one per page left) and a `reading` state (published once a second),
using the estimators of `edge.reading`.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from broker import wire

from .reading import (
    GazeReadingEstimator,
    GazeSummary,
    PageTurnPace,
    fuse,
    skims_against_own_reading,
)

logger = logging.getLogger(__name__)

DEFAULT_SCREEN_WIDTH_CM = 34.0
"""Width of the viewer's screen when nobody says otherwise (`--screen-width-cm`): a 15.6-inch
laptop. Only used until a calibration gives the mapping directly."""
DEFAULT_DISTANCE_CM = 60.0
"""Viewing distance to assume until the iris gives one."""
CENTRE_TIME_CONSTANT_S = 8.0
"""The straight-ahead gaze is learned as a moving average over about this long."""
MAX_GAZED_PAGES = 1000
"""Skims are judged against the visit's last this many pages (memory stays bounded)."""


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
    box_left: float | None = None
    """Left edge of the text box as a share of the screen's width (None: centred)."""

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
        if self.box_left is not None and not 0 <= self.box_left < 1:
            raise ValueError("box_left must be in [0, 1)")


MIN_LINE_SAMPLES = 15
"""A "read this line" calibration needs at least this many gaze samples (half a second)."""
MIN_LINE_SPAN_DEG = 1.0
"""... and the gaze must travel at least this far along the line."""
LINE_EDGE_SHARE = 0.2
"""The first and last fifth of the samples give the gaze at the line's ends; their medians
sit about a tenth of the line in from each end."""


@dataclass(frozen=True)
class LineCalibration:
    """The gaze yaw at the start and the end of a line the visitor read on the viewer page
    ("read this line"), and where that line sat (shares of the screen's width)."""

    yaw_start: float
    yaw_end: float
    left: float
    right: float

    @classmethod
    def fit(
        cls, samples: list[tuple[float, float]], left: float, right: float
    ) -> LineCalibration | None:
        """From (t, gaze yaw) samples taken while the line was read once, left to right;
        None when there were too few or the gaze did not travel along the line."""
        if not 0 <= left < right <= 1:
            raise ValueError("need 0 <= left < right <= 1")
        yaws = [yaw for _, yaw in sorted(samples) if yaw is not None and math.isfinite(yaw)]
        if len(yaws) < MIN_LINE_SAMPLES:
            return None
        k = max(3, int(len(yaws) * LINE_EDGE_SHARE))
        start = statistics.median(yaws[:k])
        end = statistics.median(yaws[-k:])
        if abs(end - start) < MIN_LINE_SPAN_DEG:
            return None
        # The medians of the first and last fifth sit a tenth of the line in from its ends.
        width = right - left
        return cls(start, end, left + 0.1 * width, right - 0.1 * width)

    def screen_x(self, gaze_yaw: float) -> float:
        """Horizontal position on the screen (0 left edge, 1 right edge) of a gaze yaw."""
        return self.left + (gaze_yaw - self.yaw_start) / (self.yaw_end - self.yaw_start) * (
            self.right - self.left
        )


class ScreenMap(Protocol):
    """A nine-dot screen calibration (`edge.attention.ScreenCalibration`)."""

    def screen_x(self, gaze_yaw: float) -> float | None: ...


class GazeToText:
    """Maps a gaze angle to a position across the text box (0 = left edge, 1 = right edge).

    From the best of what the agent knows, in this order:

    1. a "read this line" calibration on the viewer page (yaw at the line's two ends);
    2. the nine-dot screen calibration (yaw to screen x), with the box's reported place;
    3. geometry: the box's share of the screen, the screen's physical width (a setting, 34 cm
       by default) and the viewing distance from the iris (60 cm until measured); straight
       ahead is learned as a slow average of the yaw and taken as the box's centre. The camera
       sees the viewer mirrored: a look to the viewer's right is a negative gaze yaw.
    """

    def __init__(self, screen_width_cm: float = DEFAULT_SCREEN_WIDTH_CM):
        if not 5.0 <= screen_width_cm <= 500.0:
            raise ValueError("screen_width_cm must be between 5 and 500")
        self.screen_width_cm = screen_width_cm
        self.line: LineCalibration | None = None
        self.screen: ScreenMap | None = None
        self.centre: float | None = None
        self._t: float | None = None

    @property
    def source(self) -> str:
        """Which of the three mappings is in use: line, screen or geometry."""
        return "line" if self.line else "screen" if self.screen else "geometry"

    def x(
        self,
        t: float,
        gaze_yaw: float | None,
        distance_cm: float | None,
        box_fraction: float,
        box_left: float | None = None,
    ) -> float | None:
        if gaze_yaw is None:
            return None
        left = box_left if box_left is not None else (1.0 - box_fraction) / 2.0
        if self.line is not None:
            return (self.line.screen_x(gaze_yaw) - left) / box_fraction
        if self.screen is not None:
            screen_x = self.screen.screen_x(gaze_yaw)
            if screen_x is not None:
                return (screen_x - left) / box_fraction
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
        self.gazed_pages: deque[GazeSummary] = deque(maxlen=MAX_GAZED_PAGES)
        """What the eyes said about each page left in this visit (kept on the device, forgotten
        with the visit), to judge skims against the reader's own reading."""

    def set_screen_calibration(self, calibration: ScreenMap | None) -> None:
        """Use the nine-dot calibration (when the visitor did it) to place the gaze on the text."""
        self.to_text.screen = calibration

    def set_line_calibration(self, calibration: LineCalibration | None) -> None:
        """Use a "read this line" calibration to place the gaze on the text."""
        self.to_text.line = calibration

    def show(self, layout: ItemLayout | None, t: float) -> dict | None:
        """A new item is on screen (None: nothing); return the `page` fields of the one left."""
        left = None
        if self.layout is not None:
            if self.away:
                self.pace.away_ended(t)
            summary = self.gaze.summary()
            self.gazed_pages.append(summary)
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
            x = self.to_text.x(
                t, gaze_yaw, distance_cm, self.layout.box_fraction, self.layout.box_left
            )
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
        # Every page so far, the one on screen included, against the visit's median: the last
        # state of a visit carries the retrospective verdict on all its pages.
        own = skims_against_own_reading([*self.gazed_pages, summary])
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
            "gaze_pages": own.judged,
            "gaze_skims": own.count,
        }  # fmt: skip
