"""The agent's reading stage on constructed sessions: page turns, away time and the eyes."""

from __future__ import annotations

import math

import pytest

from edge.reader import GazeToText, ItemLayout, ReadingSession

SPAN_DEG = math.degrees(2 * math.atan(34.0 * 0.5 / 2 / 60.0))  # text box half the screen, 60 cm


def page(item: str, words: int = 200, lines: int = 10, after: int = 1000, chapter=None):
    return ItemLayout(item, "travel", words, lines, words / lines, 0.5, after, chapter)


def read_lines(session: ReadingSession, t: float, lines: int, line_s: float = 4.0) -> float:
    """Feed a reader's gaze at 30 Hz: fixations stepping rightwards, then a return sweep."""
    fixations = 8
    for _ in range(lines):
        for k in range(fixations):
            x = 0.05 + 0.9 * k / (fixations - 1)
            yaw = -(x - 0.5) * SPAN_DEG  # the camera sees the viewer mirrored
            for _ in range(int(line_s / fixations * 30)):
                session.update(t, True, True, yaw, 60.0)
                t += 1 / 30
    return t


def test_page_turns_give_page_fields_with_exact_timing():
    session = ReadingSession()
    assert session.show(page("p-1", words=250), 0.0) is None
    for i in range(60 * 30):  # one minute present and looking, eyes not seen
        session.update(i / 30, True, True, None, None)
    left = session.show(page("p-2"), 60.0)
    assert left["item"] == "p-1" and left["topic"] == "travel" and left["words"] == 250
    assert left["seconds"] == pytest.approx(60.0)
    assert left["away_s"] == 0.0
    assert left["wpm"] == pytest.approx(250.0, rel=0.01)
    assert not (left["skim"] or left["dwell"] or left["revisit"] or left["back_turn"])
    assert left["lines_read"] is None and left["weight"] == 1.0


def test_away_time_is_subtracted_and_a_quick_page_is_a_skim():
    session = ReadingSession()
    session.show(page("p-1", words=200), 0.0)
    t = 0.0
    for present, seconds in [(True, 20), (False, 30), (True, 20)]:
        for _ in range(int(seconds * 30)):
            session.update(t, present, True if present else None, None, None)
            t += 1 / 30
    left = session.show(page("p-2"), t)
    assert left["away_s"] == pytest.approx(30.0, abs=0.1)
    assert left["seconds"] == pytest.approx(70.0, abs=0.1)
    assert left["wpm"] == pytest.approx(200 / (40 / 60), rel=0.01)
    skimmed = session.show(page("p-1"), t + 3.0)
    assert skimmed["skim"] and skimmed["item"] == "p-2"
    back = session.show(None, t + 30.0)
    assert back["revisit"] and back["back_turn"]


def test_the_eyes_count_lines_and_say_reading():
    session = ReadingSession()
    session.show(page("p-1", lines=10), 0.0)
    t = read_lines(session, 0.0, 8)
    state = session.state()
    assert state["state"] == "reading"
    assert abs(state["lines_read"] - 8) <= 1
    assert state["progress"] == pytest.approx(state["lines_read"] / 10)
    # 20 words a line, 4 s a line: 300 wpm.
    assert state["gaze_wpm"] == pytest.approx(300, rel=0.3)
    left = session.show(page("p-2"), t)
    assert abs(left["lines_read"] - 8) <= 1
    assert left["weight"] == pytest.approx(left["lines_read"] / 10)


def test_nobody_there_is_away_and_time_left_covers_the_rest_of_the_book():
    session = ReadingSession()
    session.show(page("p-1", words=238, after=2380, chapter=476), 0.0)
    session.update(0.0, False, None, None, None)
    state = session.state()
    assert state["state"] == "away" and state["lines_read"] is None
    # At the prior pace of 238 wpm: this page and ten more of 238 words take 11 minutes.
    assert state["personal_wpm"] == pytest.approx(238)
    assert state["time_left_s"] == pytest.approx(11 * 60)
    assert state["chapter_time_left_s"] == pytest.approx(3 * 60)  # this page and two more


def test_gaze_maps_mirrored_onto_the_text_box():
    to_text = GazeToText(screen_width_cm=34.0)
    assert to_text.x(0.0, 0.0, 60.0, 0.5) == pytest.approx(0.5)  # learns straight ahead
    right_edge = to_text.x(0.01, -SPAN_DEG / 2, 60.0, 0.5)
    assert right_edge == pytest.approx(1.0, abs=0.01)
    assert to_text.x(0.02, None, 60.0, 0.5) is None


@pytest.mark.parametrize(
    "fields",
    [dict(item="Page 1"), dict(topic="sports"), dict(words=-1), dict(lines=0),
     dict(box_fraction=1.5), dict(words_after=10, chapter_words_after=20)],
)  # fmt: skip
def test_bad_layouts_are_refused(fields):
    base = dict(item="p-1", topic="travel", words=100)
    with pytest.raises(ValueError):
        ItemLayout(**{**base, **fields})


def test_the_reading_state_counts_the_visits_pages_skimmed_against_its_own_reading():
    session = ReadingSession()
    session.show(page("p-1"), 0.0)
    state = session.state()
    assert (state["gaze_pages"], state["gaze_skims"]) == (0, None)  # no gaze yet
    t = read_lines(session, 0.0, 3)
    for k in range(2, 5):
        session.show(page(f"p-{k}"), t)
        t = read_lines(session, t, 3)
    state = session.state()
    assert state["gaze_pages"] == 4  # three pages left and the one on screen
    assert state["gaze_skims"] == 0  # read alike: none skimmed against the reader's own pages


def test_the_visitors_summary_adds_the_skims_against_their_own_reading():
    from edge.feedback import conclusions
    from edge.publisher import Ledger

    ledger = Ledger("v1", scopes=frozenset({"reading"}))
    for skim in (False, False, True, False):
        ledger.record({"type": "page", "skim": skim, "seconds": 30.0, "away_s": 0.0,
                       "topic": "travel"})  # fmt: skip
    ledger.record({"type": "reading", "personal_wpm": 200, "time_left_s": None,
                   "gaze_pages": 4, "gaze_skims": None})  # fmt: skip
    skims = next(c["params"] for c in conclusions(ledger) if c["kind"] == "skims")
    assert skims == {"skimmed": 1, "pages": 4}  # before 3 pages with gaze: the timer only
    ledger.record({"type": "reading", "personal_wpm": 200, "time_left_s": None,
                   "gaze_pages": 4, "gaze_skims": 2})  # fmt: skip
    skims = next(c["params"] for c in conclusions(ledger) if c["kind"] == "skims")
    assert skims == {"skimmed": 1, "pages": 4, "by_eye": 2, "by_eye_pages": 4}
