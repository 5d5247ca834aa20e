"""The e-reader on the viewer's screen, in a real browser, timed by a real agent on real video."""

from __future__ import annotations

import re
import time

import pytest

from conftest import free_port, get_json, require_browser, start_agent, stop, wait_until
from edge.viewer.content import load_books, load_feed

pytestmark = pytest.mark.integration

BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def viewer(mosquitto, sample, tmp_path):
    """An agent on a looping face video, waiting for consent, and its viewer page URL."""
    port = free_port()
    agent = start_agent(
        mosquitto.url, sample("single_face.mp4"), tmp_path / "agent.log", "--consent", "viewer",
        "--viewer-port", str(port),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: _up(base), 30), (tmp_path / "agent.log").read_text()[-2000:]
    yield base
    stop(agent)


def _up(base: str) -> bool:
    try:
        return bool(get_json(base + "/api/status"))
    except OSError:
        return False


@pytest.fixture
def browser():
    sync_api = require_browser()  # skips on a developer machine without it, fails in CI
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield browser, sync_api.expect
        browser.close()


def consent(page, expect, base: str, scopes: int = 3) -> None:
    page.goto(base + "/")
    for i in range(scopes):
        page.get_by_role("checkbox").nth(i).check()
    page.get_by_role("button", name="I agree").click()
    expect(page.get_by_test_id("indicator")).to_be_visible(timeout=10_000)


def test_turning_three_pages_sends_three_page_events_with_the_right_words(
    viewer, browser, wiretap_factory, mosquitto, tmp_path
):
    browser, expect = browser
    tap = wiretap_factory(mosquitto.url)
    book = load_books()[0]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    consent(page, expect, viewer)
    expect(page.get_by_test_id("page-number")).to_have_text(f"1 / {len(book.pages)}")
    expect(page.get_by_test_id("page-text")).to_contain_text(book.pages[0].text["en"][:40])
    page.screenshot(path=str(tmp_path / "reader.png"))
    # Three turns, three ways: the Next button, the arrow key, the space bar.
    time.sleep(1.0)
    page.get_by_role("button", name="Next").click()
    time.sleep(1.0)
    page.keyboard.press("ArrowRight")
    time.sleep(1.0)
    page.keyboard.press("Space")
    expect(page.get_by_test_id("page-number")).to_have_text(f"4 / {len(book.pages)}")
    assert tap.wait_for(lambda: len(tap.of_type("page")) == 3, 10), tap.dump()
    events = tap.of_type("page")
    assert [e["item"] for e in events] == [p.id for p in book.pages[:3]]
    assert [e["words"] for e in events] == [p.words("en") for p in book.pages[:3]]
    assert [e["topic"] for e in events] == [p.topic for p in book.pages[:3]]
    assert all(e["skim"] and 0.5 < e["seconds"] < 5 for e in events)  # a second each: skims
    # The reading state names the page on screen and a time left for the rest of the book.
    on_page = lambda: [m for m in tap.of_type("reading") if m["item"] == book.pages[3].id]  # noqa: E731
    assert tap.wait_for(on_page, 5), tap.dump()
    state = on_page()[-1]
    rest = sum(p.words("en") for p in book.pages[3:])
    assert state["personal_wpm"] == 238  # three skims teach the pace nothing
    assert state["time_left_s"] == pytest.approx(rest / 238 * 60, abs=1)
    chapter = next(c for c in book.chapters if book.pages[3] in c.pages)
    in_chapter = sum(p.words("en") for p in chapter.pages[chapter.pages.index(book.pages[3]) :])
    assert state["chapter_time_left_s"] == pytest.approx(in_chapter / 238 * 60, abs=1)
    # Back one page: a back-turn to a page seen before. Each turn is waited for on the page
    # before the next key (pressed back to back, the second could beat the first's render).
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_test_id("page-number")).to_have_text(f"3 / {len(book.pages)}")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("page-number")).to_have_text(f"4 / {len(book.pages)}")
    assert tap.wait_for(lambda: len(tap.of_type("page")) == 5, 10), tap.dump()
    back = tap.of_type("page")[4]
    assert back["item"] == book.pages[2].id and back["revisit"] and back["back_turn"]
    assert errors == []


def test_the_feed_reports_the_post_in_view_and_danish_shows_danish(
    viewer, browser, wiretap_factory, mosquitto
):
    browser, expect = browser
    tap = wiretap_factory(mosquitto.url)
    posts = load_feed()
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    consent(page, expect, viewer, scopes=1)  # expression only: no page events may leave
    page.get_by_role("button", name="Dansk").click()
    page.get_by_role("tab").last.click()
    expect(page.get_by_test_id("feed")).to_be_visible()
    expect(page.locator(".post p").first).to_have_text(posts[0].text["da"])
    page.mouse.wheel(0, 300)
    time.sleep(1.5)
    # The agent knows which post is in view (for the reactions), but with expression-only
    # consent no reading message crosses the wire.
    status = get_json(viewer + "/api/status")
    assert status["watching"]
    assert tap.of_type("page") == [] and tap.of_type("reading") == []


# --- the dashboard's reading conclusions, in the browser ----------------------------------------

ADULT_VERDICT = ("Reads faster than the average adult", "Reads slower than the average adult")


def conclusions_hold_the_evidence_rules(page) -> list[str]:
    """Every conclusion in the dashboard's list names the evidence it rests on; returns the
    sentences."""
    rows = page.get_by_test_id("conclusions").locator("li")
    sentences = []
    for i in range(rows.count()):
        row = rows.nth(i)
        sentences.append(row.locator(".sentence").inner_text())
        assert row.get_by_test_id("evidence").inner_text().startswith("from "), row.inner_text()
    return sentences


def test_quick_page_turns_give_skims_and_no_verdict_on_the_dashboard(
    viewer, browser, mosquitto, dashboard_on
):
    """A new visitor consents and turns three pages within seconds: the dashboard shows three
    skims, no pace and no "slower/faster than the average adult" (no page was read)."""
    browser, expect = browser
    board = dashboard_on(mosquitto.url)
    book = load_books()[0]
    reader = browser.new_page(viewport={"width": 1280, "height": 800})
    consent(reader, expect, viewer)
    for _ in range(3):
        time.sleep(1.0)
        reader.keyboard.press("ArrowRight")
    expect(reader.get_by_test_id("page-number")).to_have_text(f"4 / {len(book.pages)}")

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(board.url + "/")
    conclusions = page.get_by_test_id("conclusions")
    expect(conclusions).to_contain_text("Skimmed", timeout=10_000)
    expect(page.get_by_test_id("pace-chart").locator("rect.bar.skim")).to_have_count(3)
    chart = page.get_by_test_id("pace-chart").inner_text()
    assert "skimmed" in chart and not any(len(w) >= 4 and w.isdigit() for w in chart.split())
    sentences = conclusions_hold_the_evidence_rules(page)
    assert not any(v in s for s in sentences for v in ADULT_VERDICT), sentences
    assert not any("wpm" in s for s in sentences), sentences  # no page counted: no pace at all
    assert errors == []


def test_the_pace_verdict_waits_for_two_pages_beyond_the_uncertainty(mosquitto, dashboard_on):
    sync_api = require_browser()  # skips on a developer machine without it, fails in CI
    from benchmarks.dashboard_load import SimulatedAgent

    board = dashboard_on(mosquitto.url)
    agent = SimulatedAgent(mosquitto.url, "kiosk-pace")
    agent.heartbeat()
    agent.start_visit()
    agent.page("page-1", "travel", 100, 50.0)  # 120 wpm, read
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = chromium.new_page(viewport={"width": 1920, "height": 1080})
        expect = sync_api.expect
        page.goto(board.url + "/")
        conclusions = page.get_by_test_id("conclusions")
        # One page: a pace, but no verdict, and the evidence it rests on.
        expect(conclusions).to_contain_text("too little evidence yet", timeout=10_000)
        expect(conclusions).to_contain_text("from 1 page, 50 s")
        assert not any(v in s for s in conclusions_hold_the_evidence_rules(page)
                       for v in ADULT_VERDICT)  # fmt: skip
        # A second slow page: 120 and 115 wpm are beyond the uncertainty of two pages.
        agent.page("page-2", "money", 100, 52.0)
        expect(conclusions).to_contain_text("Reads slower than the average adult: 117 wpm",
                                            timeout=10_000)  # fmt: skip
        expect(conclusions).to_contain_text("from 2 pages, 102 s")
        # A skim is drawn as skimmed, never as its 2,000 wpm.
        agent.page("page-3", "love", 100, 3.0)
        chart = page.get_by_test_id("pace-chart")
        expect(chart.locator("rect.bar.skim")).to_have_count(1, timeout=10_000)
        expect(chart).to_contain_text("skimmed")
        assert "2000" not in chart.inner_text()
        conclusions_hold_the_evidence_rules(page)
        chromium.close()
    agent.close(clean=False)


def test_the_read_this_line_step_runs_and_says_what_it_learned(viewer, browser):
    browser, expect = browser
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    # Out of order, the step is refused with a reason.
    html = page.request.get(viewer + "/").text()
    token = re.search(r'name="onlooker-token" content="([^"]+)"', html)[1]
    refused = page.request.post(viewer + "/api/calibration", data={"kind": "line", "phase": "end"},
                                headers={"X-Onlooker-Token": token})  # fmt: skip
    assert refused.status == 409
    consent(page, expect, viewer)
    button = page.get_by_test_id("teach-line")
    expect(button).to_be_visible()
    button.click()
    line = page.get_by_test_id("calibration-line")
    expect(line).to_be_visible()
    expect(line).to_contain_text("first word")
    box = line.bounding_box()
    assert box["width"] > 300 and box["x"] > 0 and box["x"] + box["width"] < 1280
    expect(page.get_by_test_id("calibration")).to_be_hidden(timeout=15_000)
    # A looping video may or may not move its eyes along the line: either answer is honest.
    expect(page.get_by_test_id("teach-result")).to_contain_text(
        re.compile("line of text|could not learn")
    )
    assert errors == []
