"""'Was the screen right?' end to end: a real agent on a sample video, a real Mosquitto, the
viewer page and the dashboard in headless Chromium, and every message on `onlooker/#`."""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import (
    CHROMIUM,
    get_json,
    require_browser,
    start_viewer_agent,
    stop,
    wait_until,
)

pytestmark = pytest.mark.integration

BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

GRADED = ("expression", "attention", "pace", "skims", "interests", "time_left")
BUTTON = {"right": "Right", "wrong": "Wrong", "cant_say": "Can’t say"}
# Per visit: the answer to every graded conclusion, and what the visitor actually felt.
EXPRESSION_ANSWERS = ["right", "wrong", "right", "cant_say", "right"]
FELT = ["joy", "sadness", "neutral", "joy", "anger"]


def viewer_agent(broker, sample, tmp_path, *extra):
    return start_viewer_agent(broker.url, sample("single_face.mp4"), tmp_path, *extra)


def feedback_on_wire(tap, visit: str) -> list[tuple[str, dict]]:
    """Every feedback payload about `visit` as it crossed the broker: (topic, JSON)."""
    found = []
    for topic, payload, retained in tap.snapshot():
        if topic.endswith("/feedback") and payload and f"/visits/{visit}/" in topic:
            assert not retained
            found.append((topic, json.loads(payload)))
    return found


def screen_figure(dashboard, kind: str) -> dict | None:
    screen = get_json(dashboard.url + "/api/feedback")["screens"].get("kiosk-1")
    return screen["kinds"].get(kind) if screen else None


def test_visitors_grade_the_screen_and_the_dashboard_shows_it_from_five(
    mosquitto, dashboard_on, sample, tmp_path, wiretap_factory
):
    sync_api = require_browser()
    expect = sync_api.expect
    tap = wiretap_factory(mosquitto.url)
    dashboard = dashboard_on(mosquitto.url, EXHIBITION_HOLD_S=0)
    agent, base = viewer_agent(mosquitto, sample, tmp_path, "--max-visit", "6")
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            viewer = browser.new_page(viewport={"width": 1280, "height": 900})
            board = browser.new_page(viewport={"width": 1920, "height": 1080})
            for page in (viewer, board):
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            board.goto(dashboard.url + "/?mode=exhibition&lang=en")
            viewer.goto(base + "/")
            visits = []
            for n in range(5):
                if n:
                    viewer.goto(base + "/")  # the book opens at its first page again
                    viewer.get_by_role("button", name="Start again").click()
                for box in range(3):
                    viewer.get_by_role("checkbox").nth(box).check()
                viewer.get_by_role("button", name="I agree").click()
                expect(viewer.get_by_test_id("indicator")).to_be_visible(timeout=10_000)
                # Two quick page turns: pages shown, both skimmed, the pace and time left.
                time.sleep(1.5)
                viewer.get_by_role("button", name="Next").click()
                time.sleep(1.5)
                viewer.get_by_role("button", name="Next").click()
                # The visit ends by itself (6 s at most); the summary offers every conclusion.
                expect(viewer.get_by_test_id("summary")).to_be_visible(timeout=15_000)
                grades = viewer.get_by_test_id("grades")
                expect(grades).to_be_visible(timeout=5000)
                for kind in (*GRADED, "feeling"):
                    expect(viewer.get_by_test_id(f"grade-{kind}")).to_be_visible()
                # Nothing is chosen for the visitor.
                expect(grades.locator('button[aria-pressed="true"]')).to_have_count(0)
                visit = get_json(base + "/api/status")["learned"]["visit"]
                visits.append(visit)
                if n == 0:
                    # English and Danish; then a change of mind: the later tap counts.
                    viewer.get_by_role("button", name="Dansk").click()
                    expect(grades.locator("h2")).to_have_text("Havde skærmen ret?")
                    row = viewer.get_by_test_id("grade-expression")
                    expect(row.get_by_role("button", name="Forkert")).to_be_visible()
                    feeling = viewer.get_by_test_id("grade-feeling")
                    expect(feeling).to_contain_text("Hvad følte du egentlig?")
                    expect(feeling.get_by_role("button", name="tristhed")).to_be_visible()
                    viewer.get_by_role("button", name="English").click()
                    row = viewer.get_by_test_id("grade-expression")
                    row.get_by_role("button", name="Wrong", exact=True).click()
                    expect(row.get_by_role("button", name="Wrong", exact=True)).to_have_attribute(
                        "aria-pressed", "true"
                    )
                answers = {kind: EXPRESSION_ANSWERS[n] for kind in GRADED}
                answers["feeling"] = FELT[n]
                for kind in GRADED:
                    row = viewer.get_by_test_id(f"grade-{kind}")
                    row.get_by_role("button", name=BUTTON[answers[kind]], exact=True).click()
                    expect(
                        row.get_by_role("button", name=BUTTON[answers[kind]], exact=True)
                    ).to_have_attribute("aria-pressed", "true", timeout=3000)
                feeling = viewer.get_by_test_id("grade-feeling")
                feeling.get_by_role("button", name=FELT[n], exact=True).click()
                expect(feeling.get_by_role("button", name=FELT[n], exact=True)).to_have_attribute(
                    "aria-pressed", "true", timeout=3000
                )
                expect(grades.locator('button[aria-pressed="true"]')).to_have_count(7)

                # On the wire: exactly one small message per tap, and nothing else in it.
                taps = 8 if n == 0 else 7
                assert tap.wait_for(
                    lambda v=visit, k=taps: len(feedback_on_wire(tap, v)) == k, 5
                ), tap.dump()
                sent = feedback_on_wire(tap, visit)
                topic = f"onlooker/v1/agents/kiosk-1/visits/{visit}/feedback"
                assert {t for t, _ in sent} == {topic}
                for _, message in sent:
                    assert set(message) == {
                        "v", "type", "agent", "seq", "ts", "visit", "conclusion", "answer",
                    }  # fmt: skip
                    assert (message["v"], message["type"], message["agent"], message["visit"]) == (
                        1, "feedback", "kiosk-1", visit,
                    )  # fmt: skip
                expected = [(kind, answers[kind]) for kind in GRADED] + [("feeling", FELT[n])]
                if n == 0:
                    expected.insert(0, ("expression", "wrong"))
                assert [(m["conclusion"], m["answer"]) for _, m in sent] == expected
                raw = next(p for t, p, _ in tap.snapshot() if t == topic and p)
                first = sent[0][1]
                assert (
                    raw
                    == (
                        f'{{"v":1,"type":"feedback","agent":"kiosk-1","seq":{first["seq"]},'
                        f'"ts":{first["ts"]},"visit":"{visit}","conclusion":"{first["conclusion"]}",'
                        f'"answer":"{first["answer"]}"}}'
                    ).encode()
                )

                # The dashboard: withheld below five answering visits, shown from the fifth.
                def counted(n=n):
                    figure = screen_figure(dashboard, "expression")
                    return figure is not None and figure["visits"] == n + 1 and figure

                figure = wait_until(counted, 5)
                assert figure, get_json(dashboard.url + "/api/feedback")
                expect(board.get_by_test_id("attract")).to_be_visible(timeout=5000)
                screens = board.get_by_test_id("feedback-screens")
                if n < 4:
                    assert figure["value"] is None and figure["withheld"] == "not enough visits"
                    expect(screens).to_contain_text(
                        f"shown once at least 5 visitors have answered (now {n + 1})"
                    )
                    expect(screens).not_to_contain_text("Visitors said")
                    expect(board.get_by_test_id("confusion")).to_have_count(0)

            # The fifth answering visit: right 3 times of the 4 that said right or wrong.
            assert figure["value"] == {"right": 3, "wrong": 1, "cant_say": 1, "graded": 4}
            expect(screens).to_contain_text(
                "Visitors said this screen was right about their expression 3 times in 4"
            )
            expect(screens).to_contain_text("(5 visitors answered, 1 could not say)")
            expect(screens).to_contain_text(
                "Visitors said this screen was right about their reading pace 3 times in 4"
            )
            table = board.get_by_test_id("confusion")
            expect(table).to_be_visible()
            expect(table).to_contain_text("5 visitors")
            felt_cells = table.locator("thead th")
            expect(felt_cells).to_have_text(["saw ╲ felt", "anger", "joy", "neutral", "sadness"])
            confusion = get_json(dashboard.url + "/api/feedback")["screens"]["kiosk-1"]["confusion"]
            assert confusion["visits"] == 5
            assert sum(sum(row.values()) for row in confusion["value"].values()) == 5
            assert sorted(w for row in confusion["value"].values() for w in row for _ in
                          range(row[w])) == sorted(FELT)  # fmt: skip
            # Part of the attract screen, which still fits the kiosk's screen without scrolling.
            assert board.evaluate("document.documentElement.scrollHeight") <= 1080
            board.screenshot(path=str(tmp_path / "feedback-attract.png"))
            # Teacher mode: the same totals as a panel to discuss, in Danish too.
            teacher = browser.new_page(viewport={"width": 1600, "height": 1000})
            teacher.on("console", lambda m: m.type == "error" and errors.append(m.text))
            teacher.goto(dashboard.url + "/?mode=teacher&lang=da")
            expect(teacher.get_by_test_id("feedback")).to_be_visible()
            expect(teacher.get_by_test_id("feedback")).to_contain_text(
                "Besøgende sagde, at skærmen havde ret om deres ansigtsudtryk 3 gange ud af 4"
            )
            # Never per visitor: no visit, raw payload or receipt names an answer.
            for visit in visits:
                listed = json.dumps(get_json(dashboard.url + f"/api/visits/{visit}"))
                listed += json.dumps(get_json(dashboard.url + f"/api/visits/{visit}/raw"))
                assert "feedback" not in listed and "cant_say" not in listed, listed

            # "Forget me" on the fifth visit: four answering visits are left, too few.
            viewer.get_by_role("button", name="Forget me").click()
            expect(viewer.get_by_test_id("forgotten")).to_be_visible(timeout=2000)
            expect(viewer.get_by_test_id("grades")).to_be_hidden()
            assert tap.wait_for(lambda: any(m["type"] == "purge" for m in tap.decoded()), 5)
            assert wait_until(lambda: screen_figure(dashboard, "expression")["visits"] == 4, 3)
            figure = screen_figure(dashboard, "expression")
            assert figure == {"visits": 4, "value": None, "withheld": "not enough visits"}
            expect(screens).to_contain_text(
                "shown once at least 5 visitors have answered (now 4)", timeout=3000
            )
            expect(screens).not_to_contain_text("Visitors said")
            expect(board.get_by_test_id("confusion")).to_have_count(0)
            expect(teacher.get_by_test_id("feedback")).not_to_contain_text("Besøgende sagde")
            # The purge also cleared the feedback topic; nothing more about it leaves.
            cleared = [t for t, p, r in tap.snapshot() if t.endswith("/feedback") and not p]
            assert cleared == [f"onlooker/v1/agents/kiosk-1/visits/{visits[-1]}/feedback"]
            status, _ = _post(base, {"conclusion": "expression", "answer": "right"})
            assert status == 409
            browser.close()
    finally:
        stop(agent)
    assert errors == []
    assert len(feedback_on_wire(tap, visits[-1])) == 7  # none after the purge
    assert tap.decoded()  # every message on the wire passed the contract


def _post(base: str, body: dict) -> tuple[int, dict]:
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    with urlopen(base + "/", timeout=5) as page:
        token = re.search(r'name="onlooker-token" content="([^"]+)"', page.read().decode())[1]
    request = Request(
        base + "/api/feedback",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Onlooker-Token": token},
    )
    try:
        with urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())
