"""Evaluate the reading-pace estimators of edge/reading.py on real eye-movement data.

    python -m benchmarks.reading_eval [--data ../shared/data/reading] [--quick]

Data (never copied into the repository; see ../shared/data/reading/README.md):
- drift/: lab fixations with hand-checked line labels (Carr et al. 2022), turned into
  webcam-like 15-30 Hz gaze with noise, drift, gain error and dropouts;
- webqamgaze/: real WebGazer recordings while reading paragraphs (Ribeiro et al. 2024).

Constants were tuned on the "tune" half of the participants (even drift participant ids,
every other webqamgaze participant in sorted order); figures are reported on both halves, and
the targets are judged on the held-out half.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.reading import (
    PRIOR_WPM,
    SKIM_MAX_WPM,
    SKIM_MIN_SECONDS,
    GazeReadingEstimator,
    GazeSummary,
    LogEwmaPace,
    PaceAdapter,
    PageTurnPace,
    RunningMedianPace,
)

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reading"
SEED = 20240611

# drift/ layout (README and passages.json): monospaced 16 px per character, 74-character
# lines starting at x = 360, line height 64 px starting at y = 161.
DRIFT_X0 = 360.0
DRIFT_CHAR_PX = 16.0
DRIFT_Y0 = 161.0
DRIFT_LINE_PX = 64.0
PX_PER_DEGREE = 35.0
DRIFT_STD_DEG = 1.0
"""Standard deviation of the slow webcam drift (an Ornstein-Uhlenbeck process)."""
NOISE_LEVELS_DEG = (1.0, 2.0, 4.0)

WELL_CALIBRATED_PX = 60.0
"""webqamgaze validation error (avg_offset_r) up to which a recording counts as well
calibrated: about the best quarter of the selected recordings (quartiles 59 / 79 / 112 px)."""
CALIBRATION_GROUPS = ((0.0, 60.0), (60.0, 100.0), (100.0, 151.0))


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder with drift/ and webqamgaze/ (default: <repo>/../shared/data/reading)."""
    return Path(path) if path is not None else DEFAULT_DATA


def missing_data(path: Path) -> str | None:
    """Why the data cannot be used, or None when both datasets are there."""
    for part in ("drift/sample.json", "drift/gold.json", "drift/passages.json",
                 "webqamgaze/webqamgaze_EN_trials.csv", "webqamgaze/webqamgaze_EN_texts.csv",
                 "webqamgaze/webqamgaze_EN_raw_gaze.csv.gz"):  # fmt: skip
        if not (path / part).is_file():
            return f"reading data not found: {path / part} (see ../shared/data/reading/README.md)"
    return None


# --- small statistics ------------------------------------------------------------------------


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    pos = np.asarray(positive, dtype=float)[:, None]
    neg = np.asarray(negative, dtype=float)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def median(values: Iterable[float]) -> float:
    """Median, NaN for no values."""
    a = np.asarray(list(values), dtype=float)
    return float(np.median(a)) if a.size else math.nan


def iqr(values: Iterable[float]) -> tuple[float, float]:
    """25th and 75th percentiles."""
    a = np.asarray(list(values), dtype=float)
    if not a.size:
        return (math.nan, math.nan)
    q1, q3 = np.percentile(a, [25, 75])
    return float(q1), float(q3)


def run_gaze(
    t_s: np.ndarray,
    x_norm: np.ndarray,
    words_per_line: float,
    page_lines: int,
) -> GazeSummary:
    """Feed one page's samples (NaN = no gaze) through a fresh estimator."""
    estimator = GazeReadingEstimator(words_per_line=words_per_line, page_lines=page_lines)
    for t, x in zip(t_s.tolist(), x_norm.tolist(), strict=True):
        estimator.update(t, None if x != x else x)
    return estimator.summary()


# --- drift: lab fixations made webcam-like ----------------------------------------------------


@dataclass(frozen=True)
class DriftTrial:
    """One lab page reading with its gold labels."""

    trial_id: str
    participant: str
    age_group: str
    passage: str
    fixations: np.ndarray
    """Rows of start_ms, end_ms, x_px, y_px (all recorded fixations)."""
    words: int
    lines: int
    line_width_px: float
    gold_lines_read: int
    gold_wpm: float

    @property
    def tune(self) -> bool:
        """Part of the tuning half (even participant ids)."""
        return int(self.participant) % 2 == 0


def load_drift(path: Path) -> list[DriftTrial]:
    """The 48 drift page readings with gold lines read and wpm."""
    sample = json.loads((path / "drift" / "sample.json").read_text())
    gold = json.loads((path / "drift" / "gold.json").read_text())
    passages = json.loads((path / "drift" / "passages.json").read_text())
    trials = []
    for trial_id, raw in sample.items():
        block = passages[raw["passage_id"]]["__TextBlock__"]
        text = block["text"]
        fixations = np.array(
            [
                [f["start"], f["end"], f["x"], f["y"]]
                for f in raw["fixations"]["__FixationSequence__"]
            ],
            dtype=float,
        )
        kept = [
            f for f in gold[trial_id]["fixations"]["__FixationSequence__"] if not f.get("discarded")
        ]
        lines = [round((f["y"] - DRIFT_Y0) / DRIFT_LINE_PX) for f in kept]
        forward = sum(1 for a, b in zip(lines, lines[1:], strict=False) if b == a + 1)
        words = sum(len(line.split()) for line in text)
        seconds = (kept[-1]["end"] - kept[0]["start"]) / 1000.0
        trials.append(
            DriftTrial(
                trial_id=trial_id,
                participant=str(raw["participant_id"]),
                age_group=raw["age_group"],
                passage=raw["passage_id"],
                fixations=fixations,
                words=words,
                lines=len(text),
                line_width_px=max(len(line) for line in text) * DRIFT_CHAR_PX,
                gold_lines_read=1 + forward,
                gold_wpm=words / (seconds / 60.0),
            )
        )
    return trials


@dataclass(frozen=True)
class WebcamNoise:
    """How the lab gaze is degraded into webcam-like gaze."""

    noise_deg: float
    drift_std_deg: float = DRIFT_STD_DEG
    drift_tau_s: tuple[float, float] = (5.0, 10.0)
    gain: tuple[float, float] = (0.7, 1.3)
    dropout_fraction: tuple[float, float] = (0.05, 0.10)
    dropout_burst_s: tuple[float, float] = (0.1, 0.3)
    frame_interval_s: tuple[float, float] = (1 / 30, 1 / 15)


def webcam_samples(
    trial: DriftTrial, noise: WebcamNoise, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and normalised x (NaN = dropout) of a webcam-like recording of `trial`.

    Frames come every 33-67 ms (15-30 Hz); the eye sits on the fixation covering a frame and
    moves linearly between fixations; x is normalised to the text box, scaled by a gain error
    about the box centre, shifted by a slow Ornstein-Uhlenbeck drift and Gaussian noise, and
    lost in 100-300 ms bursts.
    """
    fx = trial.fixations
    start, end = fx[0, 0] / 1000.0, fx[-1, 1] / 1000.0
    n = int((end - start) / noise.frame_interval_s[0]) + 2
    t = start + np.cumsum(rng.uniform(*noise.frame_interval_s, size=n))
    t = t[t <= end]
    knots_t = np.column_stack([fx[:, 0], fx[:, 1]]).ravel() / 1000.0
    knots_x = np.repeat(fx[:, 2], 2)
    x_px = np.interp(t, knots_t, knots_x)
    x = (x_px - DRIFT_X0) / trial.line_width_px
    width_deg = trial.line_width_px / PX_PER_DEGREE
    x = 0.5 + rng.uniform(*noise.gain) * (x - 0.5)
    tau = rng.uniform(*noise.drift_tau_s)
    drift = np.empty_like(t)
    level = rng.normal(0.0, noise.drift_std_deg)
    previous = t[0]
    for i, ti in enumerate(t):
        a = math.exp(-(ti - previous) / tau)
        level = a * level + math.sqrt(1 - a * a) * noise.drift_std_deg * rng.normal()
        drift[i] = level
        previous = ti
    x = x + (drift + rng.normal(0.0, noise.noise_deg, size=t.size)) / width_deg
    target = rng.uniform(*noise.dropout_fraction) * (t[-1] - t[0])
    lost = 0.0
    while lost < target:
        burst = rng.uniform(*noise.dropout_burst_s)
        at = rng.uniform(t[0], t[-1])
        x[(t >= at) & (t < at + burst)] = np.nan
        lost += burst
    return t, x


@dataclass(frozen=True)
class DriftResult:
    """The gaze estimator on one simulated webcam recording of a lab reading."""

    trial: DriftTrial
    noise_deg: float
    summary: GazeSummary

    @property
    def line_error(self) -> int:
        """Estimated minus gold lines read."""
        return self.summary.lines_read - self.trial.gold_lines_read

    @property
    def wpm_error(self) -> float:
        """Relative wpm error (estimate / gold - 1); NaN when no pace was estimated."""
        wpm = self.summary.wpm
        return math.nan if wpm is None else wpm / self.trial.gold_wpm - 1.0


def eval_drift(
    trials: Sequence[DriftTrial], noise_levels: Sequence[float] = NOISE_LEVELS_DEG
) -> list[DriftResult]:
    """Run the gaze estimator on every trial at every noise level (fixed seeds)."""
    results = []
    for level in noise_levels:
        for trial in trials:
            rng = np.random.default_rng([SEED, int(trial.trial_id.split("_")[-1]), int(level * 10)])
            t, x = webcam_samples(trial, WebcamNoise(noise_deg=level), rng)
            summary = run_gaze(t, x, trial.words / trial.lines, trial.lines)
            results.append(DriftResult(trial, level, summary))
    return results


# --- webqamgaze: real webcam recordings --------------------------------------------------------


@dataclass(frozen=True)
class WebcamTrial:
    """One paragraph read by one person, recorded with WebGazer."""

    participant: str
    trial: str
    condition: str
    """`nr` normal reading or `is` information seeking (question first: skimming)."""
    seconds: float
    words: int
    lines: int
    words_per_line: float
    calibration_px: float
    t_s: np.ndarray
    x_norm: np.ndarray
    tune: bool

    @property
    def gt_wpm(self) -> float:
        """Self-paced pace: words over time on the page."""
        return self.words / (self.seconds / 60.0)


def load_webqamgaze(path: Path, selected_only: bool = True) -> list[WebcamTrial]:
    """The selected English webqamgaze pages with their gaze, x normalised to the text box."""
    folder = path / "webqamgaze"
    with open(folder / "webqamgaze_EN_trials.csv", newline="") as f:
        trials = [r for r in csv.DictReader(f) if r["selected"] == "True" or not selected_only]
    with open(folder / "webqamgaze_EN_texts.csv", newline="") as f:
        texts = {r["trial"]: r for r in csv.DictReader(f)}
    wanted = {(r["participant"], r["trial"]) for r in trials}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with gzip.open(folder / "webqamgaze_EN_raw_gaze.csv.gz", "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        ip, itr, it, ix = (header.index(c) for c in ("participant", "trial", "t_ms", "x_img"))
        for row in reader:
            key = (row[ip], row[itr])
            if key in wanted:
                x = row[ix]
                samples.setdefault(key, []).append((float(row[it]), float(x) if x else math.nan))
    people = sorted({r["participant"] for r in trials})
    tune_people = set(people[::2])
    out = []
    for r in trials:
        key = (r["participant"], r["trial"])
        if key not in samples:
            continue
        text = texts[r["trial"]]
        x0, x1 = float(text["text_x_min"]), float(text["text_x_max"])
        a = np.array(sorted(samples[key]))
        out.append(
            WebcamTrial(
                participant=r["participant"],
                trial=r["trial"],
                condition=r["condition"],
                seconds=float(r["trial_time_ms"]) / 1000.0,
                words=int(r["n_words"]),
                lines=int(r["n_lines"]),
                words_per_line=float(r["words_per_line"]),
                calibration_px=float(r["avg_offset_r"]),
                t_s=a[:, 0] / 1000.0,
                x_norm=(a[:, 1] - x0) / (x1 - x0),
                tune=r["participant"] in tune_people,
            )
        )
    return out


@dataclass(frozen=True)
class WebcamResult:
    """The gaze estimator on one real webcam page."""

    trial: WebcamTrial
    summary: GazeSummary

    @property
    def line_error(self) -> int:
        """Estimated lines read minus the page's lines."""
        return self.summary.lines_read - self.trial.lines

    @property
    def relative_line_error(self) -> float:
        """|line error| as a share of the page's lines."""
        return abs(self.line_error) / self.trial.lines

    @property
    def wpm_error(self) -> float:
        """Relative wpm error against the self-paced pace; NaN without an estimate."""
        wpm = self.summary.wpm
        return math.nan if wpm is None else wpm / self.trial.gt_wpm - 1.0


def eval_webqamgaze(trials: Sequence[WebcamTrial]) -> list[WebcamResult]:
    """Run the gaze estimator on every webcam page."""
    return [
        WebcamResult(tr, run_gaze(tr.t_s, tr.x_norm, tr.words_per_line, tr.lines)) for tr in trials
    ]


SKIM_SCORES: dict[str, Callable[[WebcamResult], float]] = {
    "gaze wpm": lambda r: r.summary.wpm or 0.0,
    "lines not read (1 - lines read / page lines)": lambda r: 1.0 - (r.summary.progress or 0.0),
    "not reading (1 - reading time / observed time)": lambda r: 1.0 - r.summary.reading_fraction,
    "page-turn wpm (words / time on page)": lambda r: r.trial.gt_wpm,
}


def skim_aucs(results: Sequence[WebcamResult]) -> dict[str, float]:
    """AUC of each skim score for information seeking (positive) against normal reading."""
    out = {}
    for name, score in SKIM_SCORES.items():
        pos = [score(r) for r in results if r.trial.condition == "is"]
        neg = [score(r) for r in results if r.trial.condition == "nr"]
        out[name] = auc(pos, neg) if pos and neg else math.nan
    return out


# --- page-turn replay ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaceReplay:
    """Errors of one pace estimator over replayed page-turn sequences.

    Each error is ln(predicted / actual) of a time, so that twice too long and half too long
    weigh the same (|predicted / actual - 1| would favour estimators that guess too fast).
    """

    name: str
    next_page: list[float]
    """Log error of the time on the next page, predicted before it is shown."""
    next_read_page: list[float]
    """The same, only for next pages that were read (not skims: >= 5 s and <= 900 wpm)."""
    time_left: list[float]
    """Log error of the time for all remaining pages."""


class _FixedPace(PaceAdapter):
    name = "prior only (238 wpm)"

    def observe(self, wpm: float, weight: float = 1.0) -> bool:
        return False

    @property
    def wpm(self) -> float:
        return PRIOR_WPM


class _PlainMeanPace(PaceAdapter):
    """Arithmetic mean of every page's wpm after the prior, no outlier handling."""

    name = "plain mean (no exclusions)"

    def __init__(self) -> None:
        self._values = [PRIOR_WPM]

    def observe(self, wpm: float, weight: float = 1.0) -> bool:
        if math.isfinite(wpm):
            self._values.append(wpm)
        return True

    @property
    def wpm(self) -> float:
        return float(np.mean(self._values))


def load_page_sequences(path: Path) -> dict[str, list[tuple[str, int, float]]]:
    """Per participant, the pages in file order: (trial, words, seconds on page)."""
    with open(path / "webqamgaze" / "webqamgaze_EN_trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sequences: dict[str, list[tuple[str, int, float]]] = {}
    for r in rows:
        seconds = float(r["trial_time_ms"]) / 1000.0
        if seconds > 0:
            sequences.setdefault(r["participant"], []).append(
                (r["trial"], int(r["n_words"]), seconds)
            )
    return sequences


def replay_pace(
    sequences: dict[str, list[tuple[str, int, float]]],
    make: Callable[[], PaceAdapter],
    exclusions: bool = True,
) -> PaceReplay:
    """Replay page turns through `PageTurnPace`; score next-page time and time left."""
    next_page: list[float] = []
    next_read: list[float] = []
    left: list[float] = []
    name = make().name
    for pages in sequences.values():
        if exclusions:
            pace = PageTurnPace(adapter=make())
        else:
            pace = PageTurnPace(adapter=make(), skim_min_seconds=0.0, skim_max_wpm=math.inf,
                                dwell_factor=math.inf)  # fmt: skip
        t = 0.0
        for k, (trial, words, seconds) in enumerate(pages):
            error = math.log(pace.time_left(words) / seconds)
            next_page.append(error)
            if seconds >= SKIM_MIN_SECONDS and words / (seconds / 60.0) <= SKIM_MAX_WPM:
                next_read.append(error)
            if k > 0:
                remaining_words = sum(p[1] for p in pages[k:])
                remaining_s = sum(p[2] for p in pages[k:])
                left.append(math.log(pace.time_left(remaining_words) / remaining_s))
            pace.page_shown(f"{k}:{trial}", words, t)
            t += seconds
            pace.page_left(t)
    return PaceReplay(name, next_page, next_read, left)


def eval_pace(path: Path, tune: bool | None = None) -> list[PaceReplay]:
    """All pace estimators on the webqamgaze page-turn sequences (one half, or all)."""
    sequences = load_page_sequences(path)
    people = sorted(sequences)
    tune_people = set(people[::2])
    if tune is not None:
        sequences = {p: v for p, v in sequences.items() if (p in tune_people) == tune}
    return [
        replay_pace(sequences, _FixedPace),
        replay_pace(sequences, _PlainMeanPace, exclusions=False),
        replay_pace(sequences, LogEwmaPace),
        replay_pace(sequences, RunningMedianPace),
    ]


def median_abs_pct(log_errors: Sequence[float]) -> float:
    """Median |log error| as a percentage factor: 0.25 means 25 % too long or too short."""
    return math.exp(median(abs(e) for e in log_errors)) - 1.0


# --- report ---------------------------------------------------------------------------------------


def machine() -> str:
    """One line about where the figures were measured."""
    return (
        f"{platform.node()}: {platform.machine()} {platform.processor() or ''} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%" if math.isfinite(x) else "n/a"


def report_drift(results: Sequence[DriftResult], out: Callable[[str], None] = print) -> None:
    """Print line and wpm errors on the simulated webcam lab data."""
    out("## drift (Carr et al. 2022): lab fixations made webcam-like")
    out(
        "How: each of the 48 fixation sequences is sampled at 15-30 Hz (frame intervals uniform "
        "in 33-67 ms), x normalised to the 74-character text box (1184 px), gain error uniform "
        "0.7-1.3 about the box centre, Ornstein-Uhlenbeck drift (sd 1 deg, time constant "
        "5-10 s), Gaussian noise of the given sd (35 px per degree), 5-10% dropouts in "
        "100-300 ms bursts; fixed seed. Line error = estimated lines read - gold lines read "
        "(1 + moves from line i to i+1 in gold.json); wpm error = estimate / (words / reading "
        "time) - 1, estimate = lines read x words per line / reading time."
    )
    out(
        "| noise | split | pages | median abs line error | mean line error | median abs wpm error |"
    )
    out("| --- | --- | --- | --- | --- | --- |")
    for level in sorted({r.noise_deg for r in results}):
        for split, keep in (("held-out", False), ("tune", True), ("all", None)):
            rs = [
                r
                for r in results
                if r.noise_deg == level and (keep is None or r.trial.tune == keep)
            ]
            if not rs:
                continue
            line = median(abs(r.line_error) for r in rs)
            bias = float(np.mean([r.line_error for r in rs]))
            wpm = median(abs(r.wpm_error) for r in rs if math.isfinite(r.wpm_error))
            out(
                f"| {level:g} deg | {split} | {len(rs)} | {line:.1f} | {bias:+.1f} "
                f"| {_pct(wpm)[1:]} |"
            )


def report_webqamgaze(results: Sequence[WebcamResult], out: Callable[[str], None] = print) -> None:
    """Print line and wpm errors by calibration quality, and skim AUCs."""
    out("## webqamgaze (Ribeiro et al. 2024): real WebGazer recordings, selected pages")
    out(
        "How: raw samples of each selected page, x normalised to the paragraph's text box; "
        "line error = |lines read - the page's lines| / the page's lines (re-reading counts "
        "as extra lines; the true number read is unknown); wpm error = gaze wpm / (words / "
        "time on page) - 1. Groups by the final validation error avg_offset_r."
    )
    out(
        "| condition | calibration | split | pages | median rel. line error "
        "| median lines est/page | median abs wpm error | median wpm error |"
    )
    out("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for condition in ("nr", "is"):
        for lo, hi in CALIBRATION_GROUPS:
            for split, keep in (("held-out", False), ("tune", True), ("all", None)):
                rs = [
                    r
                    for r in results
                    if r.trial.condition == condition
                    and lo <= r.trial.calibration_px < hi
                    and (keep is None or r.trial.tune == keep)
                ]
                if not rs:
                    continue
                rel = median(r.relative_line_error for r in rs)
                est = median(r.summary.lines_read for r in rs)
                page = median(r.trial.lines for r in rs)
                wpm = [r.wpm_error for r in rs if math.isfinite(r.wpm_error)]
                out(
                    f"| {condition} | {lo:.0f}-{hi:.0f} px | {split} | {len(rs)} | {_pct(rel)[1:]} "
                    f"| {est:.0f}/{page:.0f} | {_pct(median(abs(w) for w in wpm))[1:]} "
                    f"| {_pct(median(wpm))} |"
                )
    out("")
    out("Skim detection: AUC of each score for information seeking (`is`, question shown first) "
        "against normal reading (`nr`); 0.5 = chance.")  # fmt: skip
    out("| score | held-out | tune | all |")
    out("| --- | --- | --- | --- |")
    held = skim_aucs([r for r in results if not r.trial.tune])
    tune = skim_aucs([r for r in results if r.trial.tune])
    every = skim_aucs(results)
    for name in SKIM_SCORES:
        out(f"| {name} | {held[name]:.2f} | {tune[name]:.2f} | {every[name]:.2f} |")


def report_pace(
    replays_by_split: dict[str, Sequence[PaceReplay]], out: Callable[[str], None] = print
) -> None:
    """Print next-page and time-left errors of the pace estimators."""
    out("## page-turn pace, replayed on webqamgaze page sequences")
    out(
        "How: every participant's pages (all people with page times, both conditions, in file "
        "order), time on page = trial_time_ms. Before each page the estimator predicts its "
        "time (words / pace) and the time for all remaining pages. Error = median over all "
        "predictions of |ln(predicted / actual)|, shown as a factor (25% = 1.25 times too long "
        "or too short); bias = median ln(predicted / actual) as a factor. Skims (< 5 s or "
        "> 900 wpm), dwells (< 1/2.5 of the median pace) and re-visits are left out of the "
        "pace, except in the plain mean; 'read pages' scores only next pages that were not skims."
    )
    out(
        "| estimator | split | next page | next read page | bias on read pages | time left "
        "| bias on time left |"
    )
    out("| --- | --- | --- | --- | --- | --- | --- |")
    for split, replays in replays_by_split.items():
        for r in replays:
            out(
                f"| {r.name} | {split} | {_pct(median_abs_pct(r.next_page))[1:]} "
                f"| {_pct(median_abs_pct(r.next_read_page))[1:]} "
                f"| {_pct(math.exp(median(r.next_read_page)) - 1)} "
                f"| {_pct(median_abs_pct(r.time_left))[1:]} "
                f"| {_pct(math.exp(median(r.time_left)) - 1)} |"
            )


@dataclass(frozen=True)
class Headline:
    """The figures the targets are judged on (held-out half unless named otherwise)."""

    drift_line_error_2deg: float
    """Median |lines read - gold| per passage at 2 deg noise, held-out participants."""
    webcam_line_error_well_calibrated: float
    """Median relative line error, normal reading, validation error < 60 px, held-out."""
    webcam_line_error_well_calibrated_all: float
    """The same over both halves."""
    skim_auc: float
    """AUC of `not reading` for information seeking against normal reading, held-out."""


def headline(drift: Sequence[DriftResult], webcam: Sequence[WebcamResult]) -> Headline:
    """The figures the issue's targets are about."""
    well = [
        r
        for r in webcam
        if r.trial.condition == "nr" and r.trial.calibration_px < WELL_CALIBRATED_PX
    ]
    held = [r for r in webcam if not r.trial.tune]
    return Headline(
        drift_line_error_2deg=median(
            abs(r.line_error) for r in drift if r.noise_deg == 2.0 and not r.trial.tune
        ),
        webcam_line_error_well_calibrated=median(
            r.relative_line_error for r in well if not r.trial.tune
        ),
        webcam_line_error_well_calibrated_all=median(r.relative_line_error for r in well),
        skim_auc=skim_aucs(held)["not reading (1 - reading time / observed time)"],
    )


def report_targets(h: Headline, out: Callable[[str], None] = print) -> None:
    """Print each target with the measured figure and whether it is met."""
    out("## targets")
    rows = (
        ("median line error per passage at 2 deg (drift, held-out)", h.drift_line_error_2deg,
         "<= 1 line", h.drift_line_error_2deg <= 1.0, f"{h.drift_line_error_2deg:.1f} lines"),
        ("median line error, well-calibrated webcam, normal reading (held-out)",
         h.webcam_line_error_well_calibrated, "<= 20% of the page's lines",
         h.webcam_line_error_well_calibrated <= 0.2,
         f"{100 * h.webcam_line_error_well_calibrated:.0f}%"),
        ("the same, both halves", h.webcam_line_error_well_calibrated_all,
         "<= 20% of the page's lines", h.webcam_line_error_well_calibrated_all <= 0.2,
         f"{100 * h.webcam_line_error_well_calibrated_all:.0f}%"),
        ("skim AUC, not-reading share (held-out)", h.skim_auc, ">= 0.7", h.skim_auc >= 0.7,
         f"{h.skim_auc:.2f}"),
    )  # fmt: skip
    out("| figure | target | measured | met |")
    out("| --- | --- | --- | --- |")
    for name, _value, target, met, shown in rows:
        out(f"| {name} | {target} | {shown} | {'yes' if met else 'no'} |")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole evaluation and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with drift/ and webqamgaze/")
    parser.add_argument("--quick", action="store_true", help="2 deg noise only on drift")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    path = data_dir(args.data)
    why = missing_data(path)
    if why:
        print(why, file=sys.stderr)
        return 2
    print(f"# Reading-pace evaluation\n\nMachine: {machine()}\nData: {path}\n")
    started = time.perf_counter()
    levels = (2.0,) if args.quick else NOISE_LEVELS_DEG
    drift = eval_drift(load_drift(path), levels)
    report_drift(drift)
    print()
    webcam_trials = load_webqamgaze(path)
    gaze_started = time.perf_counter()
    webcam = eval_webqamgaze(webcam_trials)
    gaze_s = time.perf_counter() - gaze_started
    report_webqamgaze(webcam)
    print()
    report_pace({"held-out": eval_pace(path, tune=False), "tune": eval_pace(path, tune=True)})
    print()
    report_targets(headline(drift, webcam))
    samples = sum(r.trial.t_s.size for r in webcam)
    print(
        f"\nGaze estimator cost: {samples} webcam samples in {gaze_s:.2f} s = "
        f"{1e6 * gaze_s / samples:.1f} us per sample on this machine (30 Hz needs < 33,000 us)."
        f"\nWhole evaluation: {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
