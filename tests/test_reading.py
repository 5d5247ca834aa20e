"""Reading pace: the page-turn timer on constructed page turns, the gaze estimator on
constructed gaze traces, and their fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.reading import (
    PRIOR_WPM,
    GazeReadingEstimator,
    GazeSummary,
    LogEwmaPace,
    PageReading,
    PageTurnPace,
    RunningMedianPace,
    fuse,
    make_pace_adapter,
    skims_against_own_reading,
    weighted_median,
)

# --- page turns ---------------------------------------------------------------------------------


def median_pace() -> PageTurnPace:
    return PageTurnPace(adapter=RunningMedianPace())


def test_one_page_gives_words_per_minute():
    pace = median_pace()
    pace.page_shown("p1", 250, t=100.0)
    page = pace.page_left(160.0)
    assert page == PageReading("p1", 250, 60.0, 0.0, 250.0, False, False, False, False)
    # The prior (238) and one page (250): the median of two is their mean.
    assert pace.personal_wpm == 244.0


def test_pace_starts_at_the_population_prior():
    assert median_pace().personal_wpm == PRIOR_WPM == 238.0
    assert PageTurnPace().personal_wpm == pytest.approx(238.0)
    assert PageTurnPace().time_left(238) == pytest.approx(60.0)


def test_time_left_is_exact_for_a_known_pace():
    pace = median_pace()
    for i, t in enumerate((0.0, 60.0)):
        pace.page_shown(f"p{i}", 250, t)
        pace.page_left(t + 60.0)
    assert pace.personal_wpm == 250.0  # median of 238, 250, 250
    assert pace.time_left(500) == 120.0
    assert pace.time_left(0) == 0.0


def test_a_two_second_page_is_a_skim_and_left_out_of_the_pace():
    pace = median_pace()
    pace.page_shown("p1", 250, 0.0)
    pace.page_shown("p2", 250, 60.0)  # showing the next page closes p1
    skim = pace.page_left(62.0)
    assert skim.seconds == 2.0 and skim.wpm == 7500.0
    assert skim.skim and not skim.dwell and not skim.counts_towards_pace
    assert pace.personal_wpm == 244.0  # unchanged by the skim
    assert pace.skims == 1


def test_a_fast_but_long_page_is_a_skim_above_900_wpm():
    pace = median_pace()
    pace.page_shown("p1", 1000, 0.0)
    page = pace.page_left(60.0)
    assert page.seconds == 60.0 and page.wpm == 1000.0 and page.skim
    assert pace.personal_wpm == 238.0


def test_a_long_dwell_is_flagged_and_left_out():
    pace = median_pace()
    pace.page_shown("p1", 250, 0.0)
    pace.page_left(60.0)
    # Dwell reference: median of the prior and first visits = 244 wpm; 244 / 2.5 = 97.6.
    assert pace.dwell_reference_wpm == 244.0
    pace.page_shown("p2", 100, 60.0)
    dwell = pace.page_left(180.0)
    assert dwell.wpm == 50.0 and dwell.dwell and not dwell.skim
    assert pace.personal_wpm == 244.0
    assert pace.dwells == 1


def test_a_slow_reader_is_not_flagged_as_dwelling_on_every_page():
    pace = median_pace()
    for i in range(4):
        pace.page_shown(f"p{i}", 100, 60.0 * i)
        page = pace.page_left(60.0 * (i + 1))
        assert page.wpm == 100.0
        assert not page.dwell  # 100 > median(238, 100, ...) / 2.5
    assert pace.personal_wpm == 100.0


def test_away_time_is_subtracted():
    pace = median_pace()
    pace.page_shown("p1", 300, 0.0)
    pace.away(30.0)
    page = pace.page_left(90.0)
    assert (page.seconds, page.away_s, page.wpm) == (60.0, 30.0, 300.0)


def test_away_started_and_ended_are_subtracted_and_an_open_away_ends_with_the_page():
    pace = median_pace()
    pace.page_shown("p1", 300, 0.0)
    pace.away_started(10.0)
    pace.away_ended(25.0)
    pace.away_started(75.0)
    page = pace.page_left(105.0)  # away from 75 s until the page went
    assert (page.seconds, page.away_s, page.wpm) == (60.0, 45.0, 300.0)


def test_back_turns_and_revisits_are_counted_and_revisits_leave_the_pace_alone():
    pace = median_pace()
    for item, t in (("a", 0.0), ("b", 60.0), ("a", 120.0), ("b", 180.0)):
        pace.page_shown(item, 250, t)
    pace.page_left(240.0)
    a1, b1, a2, b2 = pace.pages
    assert not a1.revisit and not b1.revisit
    assert a2.revisit and a2.back_turn
    assert b2.revisit and not b2.back_turn
    assert (pace.back_turns, pace.revisits) == (1, 2)
    assert pace.personal_wpm == 250.0  # median of 238, 250, 250: re-visits not counted


def test_a_page_of_weight_zero_is_recorded_but_does_not_move_the_pace():
    pace = median_pace()
    pace.page_shown("p1", 500, 0.0)
    page = pace.page_left(60.0, weight=0.0)
    assert page.wpm == 500.0 and not page.counts_towards_pace
    assert pace.personal_wpm == 238.0


def test_page_left_without_a_page_is_an_error():
    with pytest.raises(ValueError):
        median_pace().page_left(1.0)


def test_log_ewma_pace_is_exact():
    ewma = LogEwmaPace(prior_wpm=238.0, prior_pages=1.0, forgetting=0.9)
    assert ewma.observe(250.0)
    weight = 0.9 * 1.0 + 1.0
    expected = math.exp(math.log(238.0) + (math.log(250.0) - math.log(238.0)) / weight)
    assert ewma.wpm == pytest.approx(expected, rel=1e-12)


def test_log_ewma_rejects_outliers_until_the_pace_really_changed():
    ewma = LogEwmaPace(prior_wpm=200.0, reject_ratio=3.0, accept_after=3)
    assert not ewma.observe(700.0)  # 3.5 times the pace
    assert not ewma.observe(700.0)
    assert ewma.wpm == pytest.approx(200.0)
    assert ewma.observe(700.0)  # the third in a row on the same side is taken
    assert ewma.wpm > 300.0
    assert not ewma.observe(0.0) and not ewma.observe(math.inf)


def test_running_median_window_and_weights():
    median = RunningMedianPace(prior_wpm=238.0, window=3)
    for wpm in (100.0, 200.0, 300.0):
        median.observe(wpm)
    assert median.wpm == 200.0  # the prior has left the window
    assert weighted_median([100.0, 200.0, 300.0], [1.0, 1.0, 5.0]) == 300.0
    assert weighted_median([100.0, 200.0], [1.0, 1.0]) == 150.0


def test_pace_adapters_by_key():
    assert isinstance(make_pace_adapter("ewma"), LogEwmaPace)
    assert isinstance(make_pace_adapter("median"), RunningMedianPace)
    with pytest.raises(ValueError, match="ewma"):
        make_pace_adapter("mean")


# --- gaze ---------------------------------------------------------------------------------------


def reading_trace(
    lines: int, line_s: float = 3.0, hz: float = 30.0, noise: float = 0.0, seed: int = 0
):
    """Samples of a reader: 12 fixations rightwards along each line, then a return sweep."""
    rng = np.random.default_rng(seed)
    t, out = 0.0, []
    for _ in range(lines):
        start = t
        while t < start + line_s:
            fixation = min(11, int((t - start) / line_s * 12))
            x = 0.05 + 0.9 * fixation / 11
            out.append((t, x + (rng.normal(0.0, noise) if noise else 0.0)))
            t += 1.0 / hz
    return out


@pytest.mark.parametrize("lines", [2, 5, 10])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_n_lines_read_are_counted(lines, noise):
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
    for t, x in reading_trace(lines, noise=noise):
        gaze.update(t, x)
    assert gaze.reading
    assert gaze.lines_read == lines
    assert gaze.return_sweeps == lines - 1
    assert gaze.progress == lines / 10
    # 12 words per 3-s line = 240 wpm; the reading time misses a fraction of the last frame.
    assert gaze.wpm == pytest.approx(240.0, rel=0.1)
    assert not gaze.skimming


def test_one_line_without_a_return_sweep_is_not_yet_reading():
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
    for t, x in reading_trace(1):
        gaze.update(t, x)
    assert not gaze.reading and gaze.lines_read == 0  # reading needs a line-ending sweep
    assert gaze.score > 0.5  # but the forward progress along the line is evidence


@pytest.mark.parametrize("noise", [0.002, 0.01, 0.03, 0.1])
def test_a_still_gaze_with_symmetric_noise_never_reads(noise):
    rng = np.random.default_rng(1)
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
    reading = 0
    for i in range(30 * 120):  # two minutes
        reading += gaze.update(i / 30, 0.5 + rng.normal(0.0, noise))
    assert reading == 0 and gaze.lines_read == 0
    assert gaze.score < 0.25


def test_smooth_pursuit_and_blinks_earn_nothing():
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
    reading = 0
    for i in range(30 * 120):
        t = i / 30
        blink = (t % 4.0) < 0.2
        x = 0.5 + 0.4 * math.sin(2 * math.pi * t / 3.0)
        reading += gaze.update(t, None if blink else x)
    assert reading == 0 and gaze.return_sweeps == 0


def test_missing_frames_neither_earn_nor_erase_evidence():
    full = GazeReadingEstimator(words_per_line=12)
    sparse = GazeReadingEstimator(words_per_line=12)
    for i, (t, x) in enumerate(reading_trace(6, noise=0.02)):
        full.update(t, x)
        sparse.update(t, x if i % 4 == 0 else None)  # gaze in one frame of four
    assert sparse.reading and full.reading
    assert sparse.lines_read == full.lines_read == 6
    # A long gap keeps the evidence: the reader is still reading when the gaze returns.
    before = sparse.evidence
    for k in range(60):
        sparse.update(18.0 + k / 30, None)
    assert sparse.evidence == before and sparse.reading
    # Eyes unseen for longer than the sweep memory: no longer reading, the evidence still kept.
    for k in range(12 * 30):
        sparse.update(20.0 + k / 30, None)
    assert not sparse.reading and sparse.evidence == before


def test_re_reading_is_not_counted_as_new_lines():
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=4)
    for t, x in reading_trace(7):  # four lines, then three of them again
        gaze.update(t, x)
    assert gaze.return_sweeps == 6
    assert gaze.lines_read == 4 and gaze.progress == 1.0


def test_random_fixations_around_the_page_are_not_reading():
    for seed in range(4):
        rng = np.random.default_rng(seed)
        gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
        t = 0.0
        for _ in range(240):  # 64 s of 267-ms fixations anywhere on the line
            x = rng.uniform(0.0, 1.0)
            for _ in range(8):
                gaze.update(t, x + rng.normal(0.0, 0.02))
                t += 1.0 / 30
        summary = gaze.summary()
        assert not gaze.reading
        assert summary.reading_fraction < 0.25
        assert summary.skimming
        assert summary.lines_read <= 7  # 64 s of reading would be about 21 lines


def test_no_samples_or_only_dropouts_are_not_reading():
    gaze = GazeReadingEstimator(words_per_line=12, page_lines=10)
    empty = gaze.summary()
    assert (empty.lines_read, empty.reading_s, empty.wpm, empty.skimming) == (0, 0.0, None, False)
    for i in range(300):
        assert not gaze.update(i / 30, None)
    summary = gaze.summary()
    assert summary.lines_read == 0 and summary.observed_s == 0.0 and summary.wpm is None
    assert summary.elapsed_s == pytest.approx(299 / 30)


def test_dropouts_during_reading_keep_the_line_count():
    gaze = GazeReadingEstimator(words_per_line=12)
    for i, (t, x) in enumerate(reading_trace(6, noise=0.02)):
        gaze.update(t, None if i % 10 in (3, 4) else x)  # 20 % of samples lost
    assert gaze.lines_read == 6


def test_memory_per_page_stays_bounded():
    gaze = GazeReadingEstimator(words_per_line=12)
    for t, x in reading_trace(200, noise=0.02):  # ten minutes at 30 Hz
        gaze.update(t, x)
    assert gaze.lines_read == 200
    windows = (gaze._smooth, gaze._lagged, gaze._window_max)
    assert max(len(w) for w in windows) < 30


def test_reset_page_starts_over():
    gaze = GazeReadingEstimator(words_per_line=12)
    for t, x in reading_trace(3):
        gaze.update(t, x)
    gaze.reset_page(words_per_line=10, page_lines=20)
    assert (gaze.lines_read, gaze.reading, gaze.words_per_line) == (0, False, 10)


# --- skims compared with the reader's own reading ------------------------------------------------


def scanned(jump_s: float, observed_s: float = 20.0, forward_s: float = 8.0) -> GazeSummary:
    """A page's gaze summary whose skim score is (jump_s - forward_s) / observed_s."""
    return GazeSummary(lines_read=4, return_sweeps=3, reading_s=10.0, observed_s=observed_s,
                       elapsed_s=observed_s, wpm=200.0, skimming=False, forward_s=forward_s,
                       jump_s=jump_s)  # fmt: skip


def test_a_page_is_skimmed_against_the_median_of_the_visits_pages():
    # Skim scores -0.4, -0.3, -0.2, 0.0: median -0.25; a page 0.1 above it is not enough.
    pages = [scanned(0.0), scanned(2.0), scanned(4.0), scanned(8.0)]
    own = skims_against_own_reading(pages)
    assert own.relative == pytest.approx((-0.15, -0.05, 0.05, 0.25))
    assert own.skimmed == (False, False, False, True)
    assert (own.judged, own.count) == (4, 1)


def test_pages_with_too_little_gaze_are_not_judged_and_no_verdict_before_three_pages():
    short = scanned(4.0, observed_s=4.9)  # under 5 s of gaze
    own = skims_against_own_reading([scanned(0.0), short, scanned(8.0), None])
    assert own.relative == pytest.approx((-0.2, None, 0.2, None))
    assert own.skimmed == (None, None, None, None) and own.count is None and own.judged == 2
    assert skims_against_own_reading([]).count is None
    third = skims_against_own_reading([scanned(0.0), short, scanned(8.0), scanned(2.0)])
    assert third.skimmed == (False, None, True, False) and third.count == 1


def test_the_verdict_is_retrospective_a_later_page_can_clear_an_earlier_one():
    first = [scanned(0.0), scanned(0.0), scanned(6.0)]  # the third stands out: skimmed
    assert skims_against_own_reading(first).skimmed == (False, False, True)
    later = first + [scanned(6.0), scanned(6.0)]  # the reader scans like that all along
    assert skims_against_own_reading(later).skimmed == (False, False, False, False, False)


def test_a_reader_who_reads_every_page_alike_skimmed_none():
    assert skims_against_own_reading([scanned(2.0)] * 6).count == 0


# --- fusion -------------------------------------------------------------------------------------


def gaze_summary(lines_read: int, page_lines: int = 8, observed_s: float = 30.0) -> GazeSummary:
    return GazeSummary(
        lines_read=lines_read,
        return_sweeps=max(0, lines_read - 1),
        reading_s=observed_s,
        observed_s=observed_s,
        elapsed_s=observed_s,
        wpm=240.0,
        skimming=False,
        page_lines=page_lines,
    )


def test_fuse_lowers_the_weight_of_a_barely_read_page_and_gives_progress():
    page = PageReading("p1", 200, 60.0, 0.0, 200.0, False, False, False, False)
    fused = fuse(page, gaze_summary(2))
    assert (fused.weight, fused.progress, fused.words_left) == (0.25, 0.25, 150.0)
    full = fuse(page, gaze_summary(11))
    assert (full.weight, full.progress, full.words_left) == (1.0, 1.0, 0.0)


def test_fuse_without_gaze_keeps_full_weight():
    page = PageReading("p1", 200, 60.0, 0.0, 200.0, False, False, False, False)
    assert fuse(page, None).weight == 1.0
    assert fuse(page, gaze_summary(1, observed_s=2.0)).weight == 1.0  # too little gaze
    on_screen = fuse(None, gaze_summary(4), words=160)
    assert (on_screen.progress, on_screen.words_left) == (0.5, 80.0)


def test_fused_weight_feeds_the_pace():
    pace = PageTurnPace(adapter=RunningMedianPace())
    pace.page_shown("p1", 250, 0.0)
    pace.page_left(60.0, weight=fuse(None, gaze_summary(6, page_lines=8)).weight)
    # Weighted median of the prior (weight 1) and 250 wpm (weight 0.75): the prior wins.
    assert pace.personal_wpm == 238.0
    assert pace.pages[0].weight == 0.75


# --- the text column in gaze units (edge/reader.py) ----------------------------------------------


def test_a_read_line_calibration_maps_the_gaze_onto_the_text_box():
    from edge.reader import GazeToText, LineCalibration

    # A line from 20 % to 80 % of the screen read in 3 s; the camera mirrors: yaw falls.
    samples = [(k / 30, 6.0 - 12.0 * k / 89) for k in range(90)]
    line = LineCalibration.fit(samples, 0.2, 0.8)
    assert line is not None and line.yaw_start > line.yaw_end
    assert line.screen_x(0.0) == pytest.approx(0.5, abs=0.02)  # the middle of the line
    to_text = GazeToText()
    to_text.line = line
    assert to_text.source == "line"

    # A text box from 30 % to 70 % of the screen: its edges at x = 0 and x = 1.
    def yaw_at(sx: float) -> float:
        share = (sx - line.left) / (line.right - line.left)
        return line.yaw_start + share * (line.yaw_end - line.yaw_start)

    assert to_text.x(0.0, yaw_at(0.3), None, 0.4, 0.3) == pytest.approx(0.0, abs=1e-9)
    assert to_text.x(0.0, yaw_at(0.7), None, 0.4, 0.3) == pytest.approx(1.0, abs=1e-9)


def test_a_line_calibration_needs_samples_and_a_gaze_that_travels():
    from edge.reader import LineCalibration

    assert LineCalibration.fit([(k / 30, 1.0) for k in range(10)], 0.2, 0.8) is None
    assert LineCalibration.fit([(k / 30, 1.0 + 0.001 * k) for k in range(90)], 0.2, 0.8) is None
    with pytest.raises(ValueError):
        LineCalibration.fit([], 0.8, 0.2)


def test_the_nine_dot_calibration_places_the_gaze_when_there_is_no_line_calibration():
    from edge.attention import ScreenCalibration
    from edge.reader import GazeToText

    calibration = ScreenCalibration()
    for region in range(9):
        row, col = divmod(region, 3)
        calibration.add(region, 10.0 - 20.0 * (col + 0.5) / 3, 5.0 * row)  # 20 deg wide screen
    assert calibration.fit()
    to_text = GazeToText()
    to_text.screen = calibration
    assert to_text.source == "screen"
    # The screen's middle is the middle of a centred box half the screen wide.
    assert to_text.x(0.0, 0.0, 60.0, 0.5) == pytest.approx(0.5, abs=1e-6)
    assert to_text.x(0.0, 5.0, 60.0, 0.5) == pytest.approx(0.0, abs=1e-6)  # 1/4 of the screen


def test_geometry_uses_the_screen_width_setting_and_the_distance():
    from edge.reader import GazeToText

    wide, narrow = GazeToText(screen_width_cm=60.0), GazeToText(screen_width_cm=30.0)
    for to_text in (wide, narrow):
        to_text.x(0.0, 0.0, 60.0, 0.5)  # straight ahead is learned first
    # The same 5 degrees is a smaller share of a wider box.
    assert abs(wide.x(0.1, -5.0, 60.0, 0.5) - 0.5) < abs(narrow.x(0.1, -5.0, 60.0, 0.5) - 0.5)
    assert GazeToText().source == "geometry"
    with pytest.raises(ValueError):
        GazeToText(screen_width_cm=0.0)


# --- the dashboard's reading conclusions (dashboard/profile.py) ----------------------------------


def _page(item: str, wpm: float, seconds: float = 60.0, **flags) -> dict:
    base = dict(item=item, topic="travel", words=round(wpm * seconds / 60), seconds=seconds,
                away_s=0.0, wpm=wpm, skim=False, dwell=False, revisit=False, back_turn=False,
                lines_read=None, weight=1.0)  # fmt: skip
    return {**base, **flags}


def test_no_pace_and_no_verdict_before_a_page_is_read():
    from dashboard import profile

    skims = [
        _page(f"p{i}", 99_999, 1.0, skim=True, topic=t)
        for i, t in enumerate(("love", "money", "food"))
    ]
    visit = {"pages": skims, "reading": {"personal_wpm": 238.0, "time_left_s": 600}}
    keys = [c["key"] for c in profile.conclusions(visit)]
    assert profile.pace(visit) is None and "pace" not in keys and "time_left" not in keys
    assert keys.count("skimmed") == 3


def test_a_verdict_needs_two_pages_and_a_difference_beyond_its_uncertainty():
    from dashboard import profile

    def verdict(*paces):
        visit = {"pages": [_page(f"p{i}", w) for i, w in enumerate(paces)]}
        found = next(c for c in profile.conclusions(visit) if c["key"] == "pace")
        return found["params"]["verdict"], found["evidence"]

    assert verdict(120.0) == ("unsure", {"pages": 1, "seconds": 60.0})  # one page: never
    assert verdict(120.0, 115.0)[0] == "slower"
    assert verdict(400.0, 420.0)[0] == "faster"
    assert verdict(250.0, 230.0)[0] == "unsure"  # within the uncertainty of the average
    assert verdict(120.0, 480.0)[0] == "unsure"  # two pages that disagree


def test_every_conclusion_carries_its_evidence():
    from dashboard import profile

    visit = {
        "pages": [_page("p1", 200.0), _page("p2", 2000.0, 3.0, skim=True)],
        "reading": {"personal_wpm": 220.0, "time_left_s": 300},
        "attention_summary": {"looking_share": 0.8, "time_present_s": 42.0, "look_aways": 2},
        "timeline": [[0.0, "joy", 0.5], [10.0, "neutral", 0.0]],
        "interests": {"travel": 1.0},
    }
    found = profile.conclusions(visit)
    assert {"pace", "skimmed", "looking", "time_left", "interest", "mostly"} <= {
        c["key"] for c in found
    }
    for c in found:
        assert set(c["evidence"]) >= {"pages", "seconds"}, c
        assert c["evidence"]["pages"] or c["evidence"]["seconds"], c


def test_the_skims_against_your_own_reading_are_a_conclusion_with_their_pages():
    from dashboard import profile

    visit = {"pages": [_page(f"p{i}", 200.0) for i in range(4)],
             "reading": {"personal_wpm": 200.0, "time_left_s": None, "gaze_pages": 4,
                         "gaze_skims": 1}}  # fmt: skip
    found = next(c for c in profile.conclusions(visit) if c["key"] == "skimmed_by_eye")
    assert found["params"] == {"skimmed": 1, "pages": 4}
    assert found["evidence"] == {"pages": 4, "seconds": None}
    visit["reading"]["gaze_skims"] = None  # fewer than three pages with gaze: no verdict
    assert "skimmed_by_eye" not in [c["key"] for c in profile.conclusions(visit)]
