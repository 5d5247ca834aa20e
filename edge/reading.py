"""Reading pace from page turns and from the horizontal gaze signal, and their fusion.

Two estimators of what an e-reader learns about its reader (see ../shared/DESIGN.md):

- `PageTurnPace`, the page-turn timer of Amazon US 9,069,332 B1 / US 10,044,579 B2: time on
  each page, words per minute, skims and dwells left out of a personal pace that starts at a
  population prior, and the time left.
- `GazeReadingEstimator`, the eye-tracking reader of Amazon US 9,544,204 / US 9,256,784 B1: a
  reading state from reading-like eye movements and the lines read, counted from return sweeps.

`fuse` joins them: gaze lowers the weight of a page that was barely read and gives the
progress within the current page. Everything here is pure Python (numpy only for medians);
no camera, no MQTT. docs/reading.md gives the constants' provenance and the evaluation.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# --- page-turn pace -------------------------------------------------------------------------

PRIOR_WPM = 238.0
"""Population prior: adults read non-fiction silently at 238 wpm (Brysbaert 2019)."""
SKIM_MIN_SECONDS = 5.0
"""A page left sooner than this (after away time) is a skim."""
SKIM_MAX_WPM = 900.0
"""A page read faster than this is a skim (e-readers drop such pages from the pace)."""
DWELL_FACTOR = 2.5
"""A page is a dwell when its time per word exceeds this many times the personal median."""


@dataclass(frozen=True)
class PageReading:
    """One visit to one page: how long it was read and what the timer made of it."""

    item: str
    words: int
    seconds: float
    """Time on the page with away time subtracted, in seconds."""
    away_s: float
    wpm: float
    skim: bool
    dwell: bool
    revisit: bool
    """The page had been shown before."""
    back_turn: bool
    """The reader turned back to a page that came before the one they left."""
    weight: float = 1.0
    """How much this page counts towards the pace (lowered by `fuse` when barely read)."""

    @property
    def counts_towards_pace(self) -> bool:
        """Whether this visit feeds the personal pace (no skim, dwell or re-visit)."""
        return not (self.skim or self.dwell or self.revisit) and self.weight > 0.0


class PaceAdapter(ABC):
    """A personal reading pace that starts at a prior and learns from accepted pages."""

    name: str = "pace"

    @abstractmethod
    def observe(self, wpm: float, weight: float = 1.0) -> bool:
        """Learn from one page's pace; returns False when the adapter rejected it."""

    @property
    @abstractmethod
    def wpm(self) -> float:
        """The current personal pace in words per minute."""


class LogEwmaPace(PaceAdapter):
    """Exponentially weighted mean of log-wpm with a fading prior and outlier rejection.

    The prior counts as `prior_pages` pages; each page multiplies the weight already
    accumulated by `forgetting`, so old pages fade (memory of about 1 / (1 - forgetting)
    pages). A page more than `reject_ratio` times faster or slower than the current pace is
    rejected, unless `accept_after` pages in a row were rejected on the same side: then the
    reader's pace has really changed and the page is taken.
    """

    name = "log-EWMA"

    def __init__(
        self,
        prior_wpm: float = PRIOR_WPM,
        prior_pages: float = 1.0,
        forgetting: float = 0.9,
        reject_ratio: float = 3.0,
        accept_after: int = 3,
    ) -> None:
        self._mean = math.log(prior_wpm)
        self._weight = prior_pages
        self._forgetting = forgetting
        self._reject = math.log(reject_ratio)
        self._accept_after = accept_after
        self._rejected_run = 0
        self._rejected_side = 0

    def observe(self, wpm: float, weight: float = 1.0) -> bool:
        """Fold one page's wpm into the mean of log-wpm, unless it is an outlier."""
        if wpm <= 0.0 or weight <= 0.0 or not math.isfinite(wpm):
            return False
        x = math.log(wpm)
        side = 1 if x > self._mean else -1
        if abs(x - self._mean) > self._reject:
            self._rejected_run = self._rejected_run + 1 if side == self._rejected_side else 1
            self._rejected_side = side
            if self._rejected_run < self._accept_after:
                return False
        self._rejected_run = 0
        self._rejected_side = 0
        self._weight = self._forgetting * self._weight + weight
        self._mean += (weight / self._weight) * (x - self._mean)
        return True

    @property
    def wpm(self) -> float:
        """Geometric-mean pace in words per minute."""
        return math.exp(self._mean)


class RunningMedianPace(PaceAdapter):
    """Weighted median of the last `window` accepted pages, with the prior as one page."""

    name = "running median"

    def __init__(self, prior_wpm: float = PRIOR_WPM, window: int = 7) -> None:
        self._pages: deque[tuple[float, float]] = deque([(prior_wpm, 1.0)], maxlen=window)

    def observe(self, wpm: float, weight: float = 1.0) -> bool:
        """Add one page's wpm to the window (the median itself is the outlier guard)."""
        if wpm <= 0.0 or weight <= 0.0 or not math.isfinite(wpm):
            return False
        self._pages.append((wpm, weight))
        return True

    @property
    def wpm(self) -> float:
        """Weighted median of the window (lower median on a tie)."""
        return weighted_median([p[0] for p in self._pages], [p[1] for p in self._pages])


def weighted_median(values: list[float], weights: list[float]) -> float:
    """The smallest value at which the cumulative weight reaches half; mean of two on a tie."""
    order = sorted(zip(values, weights, strict=True))
    half = sum(w for _, w in order) / 2.0
    cumulative = 0.0
    for i, (value, w) in enumerate(order):
        cumulative += w
        if math.isclose(cumulative, half) and i + 1 < len(order):
            return (value + order[i + 1][0]) / 2.0
        if cumulative > half:
            return value
    return order[-1][0]


PACE_ADAPTERS: dict[str, type[PaceAdapter]] = {
    "ewma": LogEwmaPace,
    "median": RunningMedianPace,
}


def make_pace_adapter(kind: str, prior_wpm: float = PRIOR_WPM) -> PaceAdapter:
    """A pace adapter by key (`ewma` or `median`)."""
    if kind not in PACE_ADAPTERS:
        raise ValueError(f"unknown pace adapter {kind!r}; known: {sorted(PACE_ADAPTERS)}")
    return PACE_ADAPTERS[kind](prior_wpm=prior_wpm)


@dataclass
class _OpenPage:
    item: str
    words: int
    shown_at: float
    back_turn: bool
    revisit: bool
    away_s: float = 0.0
    away_since: float | None = None


class PageTurnPace:
    """The page-turn timer: per-page wpm, skims, dwells, re-visits and a personal pace.

    Times are seconds on any monotonic clock. Call `page_shown` when a page appears and
    `page_left` when it goes; report time without a reader (no face, or looking away) with
    `away` or `away_started` / `away_ended`. Showing a page closes the previous one.
    """

    def __init__(
        self,
        adapter: PaceAdapter | None = None,
        prior_wpm: float = PRIOR_WPM,
        skim_min_seconds: float = SKIM_MIN_SECONDS,
        skim_max_wpm: float = SKIM_MAX_WPM,
        dwell_factor: float = DWELL_FACTOR,
    ) -> None:
        self.adapter = adapter if adapter is not None else LogEwmaPace(prior_wpm=prior_wpm)
        self.prior_wpm = prior_wpm
        self.skim_min_seconds = skim_min_seconds
        self.skim_max_wpm = skim_max_wpm
        self.dwell_factor = dwell_factor
        self.pages: list[PageReading] = []
        self._order: dict[str, int] = {}
        self._last_item: str | None = None
        self._open: _OpenPage | None = None
        self._first_visit_wpm: list[float] = []

    def page_shown(self, item: str, words: int, t: float) -> PageReading | None:
        """A page appeared at `t`; returns the record of the page it replaced, if any."""
        closed = self.page_left(t) if self._open is not None else None
        item = str(item)
        revisit = item in self._order
        back_turn = (
            revisit
            and self._last_item is not None
            and self._order[item] < self._order[self._last_item]
        )
        self._order.setdefault(item, len(self._order))
        self._open = _OpenPage(item, int(words), t, back_turn=back_turn, revisit=revisit)
        return closed

    def away_started(self, t: float) -> None:
        """The reader went away (no face, or not looking) at `t`."""
        if self._open is not None and self._open.away_since is None:
            self._open.away_since = t

    def away_ended(self, t: float) -> None:
        """The reader came back at `t`."""
        if self._open is not None and self._open.away_since is not None:
            self._open.away_s += max(0.0, t - self._open.away_since)
            self._open.away_since = None

    def away(self, seconds: float) -> None:
        """Subtract `seconds` of away time from the page on screen."""
        if self._open is not None:
            self._open.away_s += max(0.0, seconds)

    def page_left(self, t: float, weight: float = 1.0) -> PageReading:
        """The page on screen went away at `t`; record it and update the pace.

        `weight` in [0, 1] says how much of the page was actually read (from `fuse`); a page
        with weight 0 is recorded but does not move the pace.
        """
        if self._open is None:
            raise ValueError("page_left() without a page on screen")
        if self._open.away_since is not None:
            self.away_ended(t)
        page, self._open = self._open, None
        shown = max(0.0, t - page.shown_at)
        away_s = min(page.away_s, shown)
        seconds = shown - away_s
        wpm = page.words / (seconds / 60.0) if seconds > 0 else math.inf
        skim = seconds < self.skim_min_seconds or wpm > self.skim_max_wpm
        reference = self.dwell_reference_wpm
        dwell = not skim and wpm < reference / self.dwell_factor
        record = PageReading(
            item=page.item,
            words=page.words,
            seconds=seconds,
            away_s=away_s,
            wpm=wpm,
            skim=skim,
            dwell=dwell,
            revisit=page.revisit,
            back_turn=page.back_turn,
            weight=min(1.0, max(0.0, weight)),
        )
        if not skim and not page.revisit:
            self._first_visit_wpm.append(wpm)
        if record.counts_towards_pace:
            accepted = self.adapter.observe(wpm, record.weight)
            logger.debug("page %s: %.0f wpm, accepted=%s", page.item, wpm, accepted)
        self.pages.append(record)
        self._last_item = page.item
        return record

    @property
    def dwell_reference_wpm(self) -> float:
        """Median wpm of the prior and every first, non-skim visit so far (dwells included).

        Dwells are judged against this rather than against the pace itself, so that a reader
        much slower than the prior is not flagged on every page and locked out of the pace.
        """
        values = [self.prior_wpm, *self._first_visit_wpm]
        return weighted_median(values, [1.0] * len(values))

    @property
    def personal_wpm(self) -> float:
        """The personal pace in words per minute (skims, dwells and re-visits left out)."""
        return self.adapter.wpm

    def time_left(self, words_remaining: float) -> float:
        """Seconds needed to read `words_remaining` words at the personal pace."""
        return max(0.0, words_remaining) / self.personal_wpm * 60.0

    @property
    def skims(self) -> int:
        """Pages flagged as skims."""
        return sum(p.skim for p in self.pages)

    @property
    def dwells(self) -> int:
        """Pages flagged as dwells."""
        return sum(p.dwell for p in self.pages)

    @property
    def back_turns(self) -> int:
        """Turns back to an earlier page."""
        return sum(p.back_turn for p in self.pages)

    @property
    def revisits(self) -> int:
        """Visits to a page shown before."""
        return sum(p.revisit for p in self.pages)


# --- pace from the eyes ---------------------------------------------------------------------


@dataclass(frozen=True)
class GazeReadingConfig:
    """Constants of the gaze reading detector; x is in text-box widths (0 left, 1 right).

    Evidence is earned per second of gaze, never per frame: a frame without gaze neither
    earns nor erases anything. Credit is symmetric, so noise that moves the gaze left as often
    as right earns nothing on average, and a still gaze only leaks; the reading state also
    needs a return sweep that ends a forward run along a line, which no still gaze, smooth
    pursuit or random glance makes. docs/reading.md gives the tuning and the evaluation.
    """

    smooth_s: float = 0.2
    """Moving-average window on x against webcam jitter."""
    step_lag_s: float = 0.4
    """Horizontal progress is measured over this lag."""
    forward_min_speed: float = 0.1
    """Slowest rightward progress (line widths per second) that counts as reading."""
    forward_max_speed: float = 0.8
    """Fastest rightward progress that still counts as reading."""
    jump_speed: float = 1.2
    """Rightward progress above which the eyes jumped rather than read."""
    gain_forward: float = 1.0
    """Evidence per second of reading-like rightward progress."""
    penalty_backward: float = 1.0
    """Evidence lost per second of leftward progress at the same speeds (symmetric)."""
    penalty_jump: float = 2.0
    """Evidence lost per second of rightward jumping."""
    leak: float = 0.3
    """Evidence lost per second otherwise (standing still, off the text, fast leftwards)."""
    box_margin: float = 0.25
    """Gaze further than this outside the text box (in box widths) is not on the text."""
    sweep_drop: float = 0.4
    """A return sweep moves left by at least this much of the line ..."""
    sweep_window_s: float = 0.6
    """... within this many seconds (WebGazer smooths a sweep over 0.3-0.5 s)."""
    min_line_s: float = 1.0
    """No two return sweeps closer than this (a line of 11 words at 660 wpm)."""
    min_run_rise: float = 0.3
    """A sweep ends a line only after the gaze rose this far along it ..."""
    min_run_forward_s: float = 0.6
    """... with at least this much time at reading speed (not in one jump)."""
    sweep_speed_ratio: float = 2.0
    """... and the sweep left at least this many times faster than the run went right (a
    smooth pursuit goes back as slowly as it came)."""
    sweep_bonus: float = 1.0
    """Evidence gained from a return sweep that ends a line."""
    sweep_min_evidence: float = 0.3
    """A sweep counts as a line only with this much evidence before it."""
    sweep_memory_s: float = 10.0
    """Reading needs a line-ending return sweep within this many seconds."""
    evidence_on: float = 3.0
    """Reading starts when the evidence reaches this (chosen on the tuning half)."""
    evidence_off: float = 1.5
    """Reading stops when the evidence falls below this."""
    evidence_max: float = 4.0
    max_gap_s: float = 0.5
    """A gap in gaze longer than this restarts the windows (and earns nothing)."""
    skim_wpm: float = 600.0
    """Gaze pace above this is skimming (skimming runs at 500-750 wpm)."""
    skim_score: float = -0.3
    """A page whose skim score (`GazeSummary.skim_score`) exceeds this is skimmed (chosen on
    the tuning half of webqamgaze: information seeking against normal reading)."""
    skim_min_observed_s: float = 5.0
    """The skimming flag waits for this much gaze on the page."""


@dataclass(frozen=True)
class GazeSummary:
    """What the eyes said about one page."""

    lines_read: int
    return_sweeps: int
    reading_s: float
    observed_s: float
    """Time with gaze (gaps longer than `max_gap_s` excluded)."""
    elapsed_s: float
    wpm: float | None
    skimming: bool
    page_lines: int | None = None
    forward_s: float = 0.0
    """Time moving along a line at reading speed."""
    jump_s: float = 0.0
    """Time jumping rightwards."""
    scan_sweeps: int = 0
    """Leftward jumps that did not end a line (searching, re-reading, glancing back)."""

    @property
    def skim_score(self) -> float:
        """How much the eyes scan rather than read: (time jumping rightwards + one second per
        leftward jump that ended no line - time moving along a line) / observed time."""
        if self.observed_s <= 0:
            return 0.0
        return (self.jump_s + self.scan_sweeps - self.forward_s) / self.observed_s

    @property
    def reading_fraction(self) -> float:
        """Share of the observed time spent reading."""
        return self.reading_s / self.observed_s if self.observed_s > 0 else 0.0

    @property
    def progress(self) -> float | None:
        """Share of the page's lines read (capped at 1), when the page's lines are known."""
        if not self.page_lines:
            return None
        return min(1.0, self.lines_read / self.page_lines)


class GazeReadingEstimator:
    """Reading state, return sweeps and a live pace from the horizontal gaze at camera rate.

    Feed `update(t, x)` with x normalised to the text box (0 = left edge, 1 = right edge) and
    None when there is no gaze. Each sample costs O(1) amortised time and memory bounded by
    the short windows (a few dozen samples).

    The evidence (`score`, 0 to `evidence_max`) rises by `gain_forward` per second of
    rightward progress at reading speed, falls by the same rate for leftward progress at those
    speeds, and leaks otherwise; a return sweep that ends a forward run along the line (a
    rise of `min_run_rise` with `min_run_forward_s` at reading speed) adds `sweep_bonus` and
    counts a line. Reading is on while the evidence is at least `evidence_on` (until it falls
    below `evidence_off`) and a line ended within `sweep_memory_s`.
    """

    def __init__(
        self,
        words_per_line: float | None = None,
        page_lines: int | None = None,
        config: GazeReadingConfig | None = None,
    ) -> None:
        self.config = config or GazeReadingConfig()
        self.reset_page(words_per_line, page_lines)

    def reset_page(
        self, words_per_line: float | None = None, page_lines: int | None = None
    ) -> None:
        """Start a new page (the reading state starts over too)."""
        self.words_per_line = words_per_line
        self.page_lines = page_lines
        self.evidence = 0.0
        self.reading = False
        self.return_sweeps = 0
        self.sweeps_seen = 0
        self.reading_s = 0.0
        self.observed_s = 0.0
        self.motion_s = {"forward": 0.0, "backward": 0.0, "jump": 0.0, "still": 0.0, "off": 0.0}
        """Seconds of gaze by how it moved: along a line at reading speed, back at those
        speeds, jumping right, standing still (or fast left), off the text."""
        self._ever_read = False
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._t_last_x: float | None = None
        self._t_evidence_from: float | None = None
        self._last_sweep_t = -math.inf
        self._last_line_t = -math.inf
        self._run_min = math.inf
        self._run_min_t = 0.0
        self._run_rise = 0.0
        self._run_rise_s = 0.0
        self._run_forward_s = 0.0
        self._smooth: deque[tuple[float, float]] = deque()
        self._smooth_sum = 0.0
        self._lagged: deque[tuple[float, float]] = deque()
        self._window_max: deque[tuple[float, float]] = deque()

    def _restart_windows(self) -> None:
        self._smooth.clear()
        self._smooth_sum = 0.0
        self._lagged.clear()
        self._window_max.clear()
        self._new_run(math.inf, 0.0)

    def _new_run(self, x: float, t: float) -> None:
        self._run_min, self._run_min_t = x, t
        self._run_rise = self._run_rise_s = self._run_forward_s = 0.0

    @property
    def score(self) -> float:
        """The continuous reading score: the evidence as a share of its maximum, 0 to 1."""
        return self.evidence / self.config.evidence_max

    def update(self, t: float, x: float | None) -> bool:
        """Take one gaze sample at time `t` (seconds); returns whether the reader is reading."""
        c = self.config
        if self._t_first is None:
            self._t_first = t
        self._t_last = t
        if x is None or not math.isfinite(x):
            # No gaze: nothing is earned and nothing is erased (time, not frames, counts); but
            # the state says reading only while a line ended within `sweep_memory_s`.
            if self.reading and t - self._last_line_t > c.sweep_memory_s:
                self.reading = False
            return self.reading
        if self._t_last_x is None or t - self._t_last_x > c.max_gap_s:
            self._restart_windows()
            dt = 0.0
        else:
            dt = max(0.0, t - self._t_last_x)
        self._t_last_x = t
        self.observed_s += dt

        self._smooth.append((t, x))
        self._smooth_sum += x
        while self._smooth[0][0] < t - c.smooth_s:
            self._smooth_sum -= self._smooth.popleft()[1]
        xs = self._smooth_sum / len(self._smooth)

        self._lagged.append((t, xs))
        while len(self._lagged) > 1 and self._lagged[1][0] <= t - c.step_lag_s:
            self._lagged.popleft()
        lag_t, lag_x = self._lagged[0]
        on_text = -c.box_margin <= xs <= 1.0 + c.box_margin
        change = 0.0
        if t - lag_t >= c.step_lag_s * 0.5:
            speed = (xs - lag_x) / (t - lag_t)
            if not on_text:
                change, motion = -c.leak * dt, "off"
            elif speed > c.jump_speed:
                change, motion = -c.penalty_jump * dt, "jump"
                self._new_run(xs, t)
            elif c.forward_min_speed <= speed <= c.forward_max_speed:
                change, motion = c.gain_forward * dt, "forward"
                self._run_forward_s += dt
            elif -c.forward_max_speed <= speed <= -c.forward_min_speed:
                change, motion = -c.penalty_backward * dt, "backward"
            else:
                change, motion = -c.leak * dt, "still"
            self.motion_s[motion] += dt
        if xs < self._run_min:
            self._run_min, self._run_min_t = xs, t
        if xs - self._run_min > self._run_rise:
            self._run_rise, self._run_rise_s = xs - self._run_min, t - self._run_min_t

        # Sliding maximum of the smoothed x over the sweep window (monotonic deque).
        while self._window_max and self._window_max[-1][1] <= xs:
            self._window_max.pop()
        self._window_max.append((t, xs))
        while self._window_max[0][0] < t - c.sweep_window_s:
            self._window_max.popleft()
        drop = self._window_max[0][1] - xs
        if drop >= c.sweep_drop and t - self._last_sweep_t >= c.min_line_s:
            self.sweeps_seen += 1
            self._last_sweep_t = t
            peak_t = self._window_max[0][0]
            sweep_speed = drop / max(t - peak_t, 1e-3)
            run_speed = self._run_rise / max(self._run_rise_s, 1e-3)
            ends_line = (
                self._run_rise >= c.min_run_rise
                and self._run_forward_s >= c.min_run_forward_s
                and sweep_speed >= c.sweep_speed_ratio * run_speed
                and (self.evidence + change >= c.sweep_min_evidence or self.reading)
            )
            if ends_line:
                self.return_sweeps += 1
                self._last_line_t = t
                change += c.sweep_bonus
                self._ever_read = True
            # A new sweep needs a new run along a line from here, whether or not this counted.
            self._window_max.clear()
            self._window_max.append((t, xs))
            self._new_run(xs, t)
        self._add_evidence(change, t)
        if self.reading:
            self.reading_s += dt
        return self.reading

    def _add_evidence(self, change: float, t: float) -> None:
        c = self.config
        before = self.evidence
        self.evidence = min(c.evidence_max, max(0.0, before + change))
        if self.evidence > 0.0 and before == 0.0:
            self._t_evidence_from = t
        elif self.evidence == 0.0:
            self._t_evidence_from = None
        recent_line = t - self._last_line_t <= c.sweep_memory_s
        if not self.reading and self.evidence >= c.evidence_on and recent_line:
            self.reading = True
            self._ever_read = True
            # The evidence took a while to build: that time was reading too.
            if self._t_evidence_from is not None:
                self.reading_s += min(c.sweep_memory_s, max(0.0, t - self._t_evidence_from))
        elif self.reading and (self.evidence < c.evidence_off or not recent_line):
            self.reading = False

    @property
    def lines_read(self) -> int:
        """Distinct lines read on this page: the line being read plus one per line-ending
        return sweep, never more than the page has (reading more is re-reading)."""
        if not self._ever_read:
            return 0
        lines = self.return_sweeps + 1
        return min(lines, self.page_lines) if self.page_lines else lines

    @property
    def wpm(self) -> float | None:
        """Live pace: lines read times words per line over the reading time."""
        if not self.words_per_line or self.reading_s <= 0.0 or not self._ever_read:
            return None
        return (self.return_sweeps + 1) * self.words_per_line / (self.reading_s / 60.0)

    @property
    def skimming(self) -> bool:
        """The eyes scan rather than read, or lines go by faster than reading allows."""
        c = self.config
        if self.observed_s < c.skim_min_observed_s:
            return False
        m = self.motion_s
        scan = self.sweeps_seen - self.return_sweeps
        if (m["jump"] + scan - m["forward"]) / self.observed_s > c.skim_score:
            return True
        wpm = self.wpm
        return wpm is not None and self.return_sweeps >= 2 and wpm > c.skim_wpm

    @property
    def progress(self) -> float | None:
        """Share of the page's lines read so far (capped at 1), if the page's lines are known."""
        if not self.page_lines:
            return None
        return min(1.0, self.lines_read / self.page_lines)

    def summary(self) -> GazeSummary:
        """What the eyes said about the page so far."""
        elapsed = 0.0
        if self._t_first is not None and self._t_last is not None:
            elapsed = self._t_last - self._t_first
        return GazeSummary(
            lines_read=self.lines_read,
            return_sweeps=self.return_sweeps,
            reading_s=self.reading_s,
            observed_s=self.observed_s,
            elapsed_s=elapsed,
            wpm=self.wpm,
            skimming=self.skimming,
            page_lines=self.page_lines,
            forward_s=self.motion_s["forward"],
            jump_s=self.motion_s["jump"],
            scan_sweeps=self.sweeps_seen - self.return_sweeps,
        )


# --- skims compared with the reader's own reading ------------------------------------------

OWN_SKIM_MARGIN = 0.10
"""A page is skimmed compared with the reader's own reading when its skim score exceeds the
median of the visit's pages by more than this (the smallest margin with at most 10 % of normal
reading pages flagged on the tuning half of webqamgaze; docs/reading.md)."""
OWN_SKIM_MIN_PAGES = 3
"""No verdict against the reader's own reading from fewer pages with gaze than this."""
OWN_SKIM_MIN_OBSERVED_S = 5.0
"""A page is judged only with this much gaze on it (as the live skimming flag waits)."""


@dataclass(frozen=True)
class OwnReadingSkims:
    """Each page's skim score against the median of the visit's pages: retrospective, since
    every page read later moves the median, so a verdict is final only when the visit ends."""

    relative: tuple[float | None, ...]
    """Per page: skim score minus the visit's median (None: too little gaze to judge)."""
    skimmed: tuple[bool | None, ...]
    """Per page: skimmed compared with the reader's own reading (None: not judged, or fewer
    than `OWN_SKIM_MIN_PAGES` pages judged in the visit)."""

    @property
    def judged(self) -> int:
        """Pages with enough gaze to be judged."""
        return sum(r is not None for r in self.relative)

    @property
    def count(self) -> int | None:
        """Pages skimmed compared with the reader's own reading; None before enough pages."""
        flags = [f for f in self.skimmed if f is not None]
        return sum(flags) if flags else None


def skims_against_own_reading(
    pages: Sequence[GazeSummary | None],
    margin: float = OWN_SKIM_MARGIN,
    min_pages: int = OWN_SKIM_MIN_PAGES,
    min_observed_s: float = OWN_SKIM_MIN_OBSERVED_S,
) -> OwnReadingSkims:
    """Judge every page of a visit against the median skim score of its pages with gaze."""
    scores = [
        p.skim_score if p is not None and p.observed_s >= min_observed_s else None for p in pages
    ]
    judged = [s for s in scores if s is not None]
    if not judged:
        return OwnReadingSkims((None,) * len(scores), (None,) * len(scores))
    middle = float(np.median(judged))
    relative = tuple(None if s is None else s - middle for s in scores)
    enough = len(judged) >= min_pages
    skimmed = tuple(None if r is None or not enough else r > margin for r in relative)
    return OwnReadingSkims(relative, skimmed)


# --- fusion ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusedPage:
    """A page-turn record weighed by what the eyes saw."""

    page: PageReading | None
    weight: float
    """How much the page should count towards the pace, in [0, 1]."""
    progress: float | None
    """Share of the page's lines read, from gaze (None without gaze or page layout)."""
    words_left: float | None
    """Words of the page not yet read, from gaze progress."""
    gaze_wpm: float | None
    skimming: bool


MIN_OBSERVED_FOR_WEIGHT_S = 3.0
"""With less gaze than this on a page, gaze says nothing and the page keeps full weight."""


def fuse(page: PageReading | None, gaze: GazeSummary | None, words: int | None = None) -> FusedPage:
    """Weigh a page by the share of its lines the eyes read; progress within the page.

    `page` may be None for the page still on screen; `words` (or page.words) gives words_left.
    """
    words = words if words is not None else (page.words if page is not None else None)
    if gaze is None or gaze.observed_s < MIN_OBSERVED_FOR_WEIGHT_S:
        return FusedPage(page, 1.0, None, None, None, skimming=bool(page and page.skim))
    progress = gaze.progress
    weight = 1.0 if progress is None else progress
    words_left = None if progress is None or words is None else words * (1.0 - progress)
    skimming = gaze.skimming or bool(page and page.skim)
    return FusedPage(page, weight, progress, words_left, gaze.wpm, skimming)


__all__ = [
    "DWELL_FACTOR",
    "PRIOR_WPM",
    "SKIM_MAX_WPM",
    "SKIM_MIN_SECONDS",
    "FusedPage",
    "GazeReadingConfig",
    "GazeReadingEstimator",
    "GazeSummary",
    "LogEwmaPace",
    "OWN_SKIM_MARGIN",
    "OWN_SKIM_MIN_OBSERVED_S",
    "OWN_SKIM_MIN_PAGES",
    "OwnReadingSkims",
    "PaceAdapter",
    "PageReading",
    "PageTurnPace",
    "RunningMedianPace",
    "fuse",
    "make_pace_adapter",
    "skims_against_own_reading",
    "weighted_median",
]
