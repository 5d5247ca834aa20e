"""The dashboard page in headless Chromium (Debian's, driven by Playwright), fed over a real
broker by a real sample-video agent or by real paho publishers, in each of its modes.

ONLOOKER_SCREENSHOT_DIR=docs/img refreshes the README's screenshots (docs/img/dashboard-*.png)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from benchmarks.dashboard_load import SimulatedAgent, reaction_for, tell_a_story
from broker import wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import start_agent, stop, wait_until
from dashboard import create_app
from dashboard.server import DashboardServer

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WITHIN_1S = 1000  # ms: a value must change on the page within a second of its message
EVIL = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
_prefixes = itertools.count(1)


def _require_browser() -> Any:
    """Return playwright's sync API; skip without it (fail when CI is set)."""
    why = None
    try:
        from playwright import sync_api
    except ImportError:
        why = "playwright is not installed (pip install playwright)"
    if why is None and not CHROMIUM.exists():
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}")
        pytest.skip(why)
    return sync_api


@pytest.fixture(scope="module")
def sync_api() -> Any:
    return _require_browser()


@pytest.fixture(scope="module")
def browser(sync_api: Any) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """Mosquitto when installed (its will reports a killed agent at once), else amqtt."""
    with EmbeddedBroker(prefer="mosquitto" if find_mosquitto() else "amqtt") as running:
        yield running


@pytest.fixture
def prefix() -> str:
    return f"dashpage{next(_prefixes)}/v1"


@pytest.fixture
def dashboard(broker: EmbeddedBroker, prefix: str) -> Iterator[Callable[..., DashboardServer]]:
    servers: list[DashboardServer] = []

    def start(**config: Any) -> DashboardServer:
        app = create_app({"BROKER_URL": broker.url, "TOPIC_PREFIX": prefix, **config})
        assert app.extensions["onlooker_mqtt"].wait_connected(5.0), "dashboard did not connect"
        server = DashboardServer(app, port=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def agents(broker: EmbeddedBroker, prefix: str) -> Iterator[Callable[[str], SimulatedAgent]]:
    made: list[SimulatedAgent] = []

    def make(name: str) -> SimulatedAgent:
        agent = SimulatedAgent(broker.url, name, prefix=prefix)
        agent.heartbeat()
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close(clean=False)


class Problems:
    """Console errors, uncaught exceptions and any alert() the page was tricked into."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def page(browser: Any, problems: Problems) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="en-GB")
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.errors.append(m.text))
    page.on("pageerror", lambda error: problems.errors.append(str(error)))

    def dialog(d: Any) -> None:
        problems.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    yield page
    context.close()


README_IMAGE_BYTES = 300_000


def snap(page: Any, tmp_path: Path, name: str) -> Path:
    """Screenshot the viewport; with $ONLOOKER_SCREENSHOT_DIR set, also there for the README
    (scaled down until it is at most 300 KB)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    target = os.environ.get("ONLOOKER_SCREENSHOT_DIR")
    if target:
        import cv2

        image = cv2.imread(str(path))
        width = 1600
        while True:
            scaled = cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])),
                                interpolation=cv2.INTER_AREA)  # fmt: skip
            ok, data = cv2.imencode(".png", scaled, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            if ok and (len(data) <= README_IMAGE_BYTES or width <= 800):
                break
            width -= 160
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / f"dashboard-{name}.png").write_bytes(data.tobytes())
    return path


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    # Like the viewer page's own scripts: the agent refuses a POST without the page's token.
    with urlopen(url.split("/api/", 1)[0] + "/", timeout=5) as page:
        token = re.search(r'name="onlooker-token" content="([^"]+)"', page.read().decode())[1]
    headers = {"Content-Type": "application/json", "X-Onlooker-Token": token}
    request = Request(url, json.dumps(body).encode(), headers)
    with urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def tid(page: Any, name: str) -> Any:
    return page.get_by_test_id(name)


# --- a real agent on the sample video ---------------------------------------------------------


def test_overview_follows_a_real_agent_within_a_second_and_shows_it_killed(
    sync_api: Any, broker: EmbeddedBroker, dashboard, page: Any, problems: Problems,
    sample, tmp_path: Path,
) -> None:  # fmt: skip
    expect = sync_api.expect
    server = dashboard(HEARTBEAT_TIMEOUT_S=4.0, TOPIC_PREFIX=wire.DEFAULT_PREFIX)
    page.goto(server.url + "/")
    expect(tid(page, "stream-status")).to_have_text("live", timeout=3000)
    expect(tid(page, "profile-empty")).to_be_visible()

    agent = start_agent(
        broker.url, sample("WolfgangLanger_Pexels.mp4"), tmp_path / "agent.log",
        "--agent-id", "kiosk-real",
    )  # fmt: skip
    viewer = f"http://127.0.0.1:{agent.args[agent.args.index('--viewer-port') + 1]}"
    try:
        row = tid(page, "agent-kiosk-real")
        expect(row.locator('[data-field="status"]')).to_have_text("online", timeout=30_000)
        label = tid(page, "expression-label")
        # Wait for an emotion itself: "not waiting" also holds for the empty label the panel
        # shows for a moment before its first render, and the read below then raced it.
        one_of = re.compile("^(" + "|".join(wire.EXPRESSIONS) + ")$")
        expect(label).to_have_text(one_of, timeout=20_000)
        expect(tid(page, "profile-agent")).to_have_text("kiosk-real")

        # The agent publishes attention and expression several times a second: the count of
        # inferred data points must move within a second, again and again.
        points = tid(page, "data-points")
        for _ in range(3):
            before = points.text_content()
            expect(points).not_to_have_text(before, timeout=WITHIN_1S)
        delays = page.evaluate("() => window.onlookerMetrics.delays.slice(-50)")
        assert sorted(delays)[len(delays) // 2] < 1.0, delays

        # A page shown on the viewer's screen, then the next: the first one's reaction arrives.
        post_json(viewer + "/api/item", {"item": "page-1"})
        time.sleep(1.5)
        post_json(viewer + "/api/item", {"item": "page-2"})
        expect(tid(page, "reactions").locator('[data-item="page-1"]')).to_be_visible(timeout=5000)
        expect(tid(page, "att-faces")).to_have_text("1")
        snap(page, tmp_path, "overview-live")

        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        # Mosquitto delivers the will at once; otherwise the heartbeat timeout (4 s) does it.
        expect(row.locator('[data-field="status"]')).to_have_text("offline", timeout=6000)
        expect(tid(page, "profile-phase")).to_have_text("screen went away", timeout=2000)
    finally:
        stop(agent)
    assert problems.errors == [] and problems.dialogs == []


# --- exhibition -------------------------------------------------------------------------------


def test_exhibition_attracts_when_idle_follows_the_newest_visit_and_resets_itself(
    sync_api: Any, dashboard, agents, page: Any, problems: Problems, tmp_path: Path
) -> None:
    expect = sync_api.expect
    server = dashboard(EXHIBITION_HOLD_S=1.0)
    page.goto(server.url + "/?mode=exhibition")
    expect(tid(page, "stream-status")).to_have_text("live", timeout=3000)
    expect(tid(page, "attract")).to_be_visible()
    expect(tid(page, "overview")).to_be_hidden()
    snap(page, tmp_path, "attract")

    first = agents("kiosk-a")
    visit_a = first.start_visit()
    expect(tid(page, "profile-visit")).to_have_text(visit_a, timeout=WITHIN_1S)
    expect(tid(page, "attract")).to_be_hidden()
    first.expression("surprise")
    expect(tid(page, "expression-label")).to_have_text("surprise", timeout=WITHIN_1S)

    second = agents("kiosk-b")
    tell_a_story(second, backdate=True)  # a newer visit takes over the screen
    visit_b = second.visit
    expect(tid(page, "profile-visit")).to_have_text(visit_b, timeout=WITHIN_1S)
    second.attention(look_aways=4, blinks=17)
    expect(tid(page, "att-blinks")).to_have_text("17", timeout=WITHIN_1S)
    second.expression("joy", score=0.87)
    expect(tid(page, "expression-label")).to_have_text("joy", timeout=WITHIN_1S)
    expect(tid(page, "conclusions").locator("li").first).to_be_visible()
    snap(page, tmp_path, "exhibition")

    second.end_visit()
    first.end_visit()
    expect(tid(page, "profile-phase")).to_have_text("ended", timeout=WITHIN_1S)
    expect(tid(page, "attract")).to_be_visible(timeout=3000)  # after the 1 s hold

    third = agents("kiosk-c")
    third.start_visit()
    expect(tid(page, "attract")).to_be_hidden(timeout=WITHIN_1S)
    third.purge()  # "Forget me": gone from the screen at once
    expect(tid(page, "attract")).to_be_visible(timeout=WITHIN_1S)
    assert problems.errors == [] and problems.dialogs == []


# --- teacher ----------------------------------------------------------------------------------


def test_teacher_pauses_steps_through_a_finished_visit_and_resets(
    sync_api: Any, dashboard, agents, page: Any, problems: Problems, tmp_path: Path
) -> None:
    expect = sync_api.expect
    server = dashboard()
    agent = agents("kiosk-class")
    tell_a_story(agent, backdate=True)
    agent.attention(look_aways=3, blinks=12)
    agent.expression("joy", score=0.9)
    visit = agent.visit
    agent.end_visit()

    page.goto(server.url + "/?mode=teacher")
    expect(tid(page, "teacher-bar")).to_be_visible()
    expect(tid(page, "profile-visit")).to_have_text(visit, timeout=3000)
    expect(tid(page, "profile-phase")).to_have_text("ended")

    tid(page, "step-next").click()
    expect(tid(page, "step-label")).to_contain_text("Page 1 of 6: travel")
    tid(page, "step-next").click()
    expect(tid(page, "step-label")).to_contain_text("Page 2 of 6: money")
    expect(tid(page, "step-label")).to_contain_text("skimmed")
    expect(tid(page, "pace-chart").locator("rect.current")).to_have_count(1)
    expect(tid(page, "reactions").locator("li.current")).to_have_attribute("data-item", "page-2")

    tid(page, "score-toggle").check()
    expect(tid(page, "panel-score")).to_be_visible()
    snap(page, tmp_path, "teacher")
    tid(page, "panel-score").scroll_into_view_if_needed()
    snap(page, tmp_path, "score")
    page.evaluate("() => window.scrollTo(0, 0)")

    tid(page, "newest").click()
    tid(page, "pause").click()
    expect(tid(page, "stream-status")).to_have_text("paused")
    newer = agent.start_visit()
    agent.expression("anger")
    time.sleep(1.2)
    expect(tid(page, "profile-visit")).to_have_text(visit)  # frozen while paused
    tid(page, "pause").click()
    expect(tid(page, "profile-visit")).to_have_text(newer, timeout=WITHIN_1S)
    expect(tid(page, "expression-label")).to_have_text("anger")

    tid(page, "reset").click()
    expect(tid(page, "profile-empty")).to_be_visible(timeout=2000)
    expect(tid(page, "visits").locator("li")).to_have_count(0)
    assert problems.errors == [] and problems.dialogs == []


# --- escaping, raw messages -------------------------------------------------------------------


def test_every_free_text_field_is_shown_as_text_and_raw_messages_are_exact(
    sync_api: Any, dashboard, agents, page: Any, problems: Problems
) -> None:
    expect = sync_api.expect
    server = dashboard()
    page.goto(server.url + "/")
    expect(tid(page, "stream-status")).to_have_text("live", timeout=3000)

    agent = agents("kiosk-evil")
    agent.heartbeat(model=EVIL[0], model_version=EVIL[1][:32])
    agent.start_visit()
    sent = agent.expression("joy", reason_units=EVIL, reason_shapes=[EVIL[1][:32], EVIL[0]])

    model = tid(page, "agent-kiosk-evil").locator('[data-field="model"]')
    expect(model).to_have_text(f"{EVIL[0]} {EVIL[1][:32]}", timeout=WITHIN_1S)
    reasons = tid(page, "expression-reasons")
    expect(reasons).to_contain_text(EVIL[0], timeout=WITHIN_1S)
    expect(reasons).to_contain_text(EVIL[1])
    assert page.locator("img").count() == 0
    # Our own entry module (it imports the rest), nothing injected.
    assert page.locator("script").count() == 1
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0

    tid(page, "panel-now").get_by_test_id("raw-expression").click()
    payload = tid(page, "raw-payload")
    expect(payload).to_have_text(wire.encode(sent).decode())  # the exact bytes that left
    expect(tid(page, "raw-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(tid(page, "raw-dialog")).to_be_hidden()
    assert problems.errors == [] and problems.dialogs == []


# --- language, score, crowd, receipt --------------------------------------------------------


def test_danish_score_crowd_and_a_printable_receipt_that_purge_empties(
    sync_api: Any, dashboard, agents, page: Any, problems: Problems, tmp_path: Path
) -> None:
    expect = sync_api.expect
    server = dashboard()
    crowd = agents("kiosk-crowd")
    for n in range(5):  # five earlier visitors, so crowd figures may be shown
        crowd.start_visit()
        crowd.page("page-2", "money", 150, 3.0)
        crowd.page("page-1", "travel", 142, 40.0 + 8 * n)
        crowd.reaction("page-1", reaction_for("joy", 0.5))
        crowd.end_visit()
    agent = agents("kiosk-1")
    tell_a_story(agent, backdate=True)
    agent.expression("joy", score=0.87)
    visit = agent.visit

    page.goto(server.url + "/")
    expect(tid(page, "profile-visit")).to_have_text(visit, timeout=3000)
    expect(tid(page, "panel-score")).to_be_hidden()  # off by default
    expect(tid(page, "crowd")).to_contain_text("Reads faster than", timeout=5000)
    expect(tid(page, "conclusions")).to_contain_text("Skimmed the page on money")
    expect(tid(page, "conclusions")).to_contain_text("Reads faster than")

    tid(page, "score-toggle").check()
    score = tid(page, "panel-score")
    expect(score).to_contain_text("A warning, not a feature")
    expect(tid(page, "score-formula")).to_contain_text("starting points")
    expect(tid(page, "score-formula")).to_contain_text("× mean valence")
    assert tid(page, "score-rating").text_content() in ("AAA", "AA", "A", "B", "C", "D")

    tid(page, "lang-switch").click()
    expect(tid(page, "panel-now").locator("h3")).to_have_text("Ansigtsudtryk lige nu")
    expect(tid(page, "expression-label")).to_have_text("glæde")
    expect(tid(page, "conclusions")).to_contain_text("Skimmede siden om penge")
    snap(page, tmp_path, "overview-da")
    tid(page, "lang-switch").click()
    expect(tid(page, "expression-label")).to_have_text("joy")

    agent.end_visit()
    page.goto(f"{server.url}/receipt/{visit}")
    expect(tid(page, "receipt-visit")).to_have_text(visit, timeout=3000)
    expect(tid(page, "receipt-conclusions")).to_contain_text("Skimmed the page on money")
    expect(tid(page, "receipt-deleted")).to_contain_text("Deleted from this dashboard")
    expect(tid(page, "receipt-gone")).to_be_hidden()
    snap(page, tmp_path, "receipt")

    agent.visit = visit
    agent.purge()  # "Forget me" after the visit: the receipt empties too
    expect(tid(page, "receipt-gone")).to_be_visible(timeout=WITHIN_1S)
    expect(tid(page, "receipt-visit")).to_have_text("")
    expect(tid(page, "receipt-conclusions").locator("li")).to_have_count(0)
    assert problems.errors == [] and problems.dialogs == []


# --- native ES modules and the served contract ------------------------------------------------


def test_the_page_loads_as_modules_every_panel_renders_and_shows_the_served_facts(
    sync_api: Any, dashboard, agents, page: Any, problems: Problems
) -> None:
    """One entry module imports the panels; with a retention other than the default, every
    fact the page states comes from GET /api/contract, none from a copy of its own."""
    from dashboard import profile

    expect = sync_api.expect
    server = dashboard(RETENTION_S=180.0)
    agent = agents("kiosk-modules")
    tell_a_story(agent, backdate=True)
    agent.expression("joy", score=0.8)
    visit = agent.visit

    page.goto(server.url + "/?lang=en")
    expect(tid(page, "stream-status")).to_have_text("live", timeout=3000)
    expect(tid(page, "profile-visit")).to_have_text(visit, timeout=3000)
    scripts = page.evaluate("() => Array.from(document.scripts, s => [s.type, s.src])")
    assert scripts == [["module", server.url + "/static/dashboard.js"]]

    # Every panel of the profile, and the overview's, has drawn from the visit.
    expect(tid(page, "expression-label")).to_have_text("joy")
    expect(tid(page, "expression-score")).to_have_text("0.80")
    expect(tid(page, "timeline-chart").locator("svg circle").first).to_be_attached()
    expect(tid(page, "att-blinks")).not_to_have_text("—")
    expect(tid(page, "read-pace")).to_have_text(re.compile(r"^\d+ wpm$"))
    expect(tid(page, "pace-chart").locator("rect")).to_have_count(6)
    expect(tid(page, "reactions").locator("li[data-item]")).to_have_count(6)
    expect(tid(page, "interests").locator(".bar-name").first).to_be_visible()
    expect(tid(page, "conclusions").locator("li[data-key]").first).to_be_visible()
    expect(tid(page, "data-points")).not_to_have_text("0")
    expect(tid(page, "yardstick").locator(".yard-row")).to_have_count(3)
    expect(tid(page, "crowd")).to_contain_text("at least 5 visits", timeout=5000)
    expect(tid(page, "agent-kiosk-modules").locator('[data-field="status"]')).to_have_text("online")
    expect(tid(page, f"visit-{visit}")).to_be_visible()
    expect(tid(page, "feedback-screens")).to_have_text("No visitor has answered yet.")
    tid(page, "score-toggle").check()
    expect(tid(page, "score-rating")).to_have_text(re.compile("^(AAA|AA|A|B|C|D)$"))

    # The served facts, as the Python constants and this app's configuration have them.
    legend = tid(page, "pace-chart").locator(".key.average")
    expect(legend).to_have_text(f"adult average {profile.ADULT_WPM} wpm")
    scale = " · ".join(f"{n} ≥ {f}" if f > float("-inf") else n for f, n in profile.RATINGS)
    expect(tid(page, "score-formula").locator("tr.total")).to_contain_text(scale)
    explain = page.locator('[data-i18n="score.explain"]')
    expect(explain).to_contain_text(f"{profile.SCORE_START} starting points")
    foot = page.locator('[data-i18n="attract.foot"]')
    expect(foot).to_contain_text("forgotten after 3 minutes")  # RETENTION_S=180
    patent = tid(page, "panel-now").locator(".source").first
    expect(patent).to_contain_text(profile.SOURCES["facebook"])

    agent.end_visit()  # acked by the broker; the dashboard applies it a moment later
    url = f"{server.url}/api/visits/{visit}"
    ended = wait_until(lambda: get_json_url(url)["visit"]["ended"], 5)
    assert ended, "the dashboard never marked the visit ended"
    page.goto(f"{server.url}/receipt/{visit}?lang=en")
    expect(tid(page, "receipt-visit")).to_have_text(visit, timeout=3000)
    deleted_at = page.evaluate("(t) => new Date(t * 1000).toLocaleTimeString('en-GB')", ended + 180)
    expect(tid(page, "receipt-deleted")).to_contain_text(deleted_at)
    assert problems.errors == [] and problems.dialogs == []


def get_json_url(url: str) -> dict[str, Any]:
    with urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# --- load -------------------------------------------------------------------------------------


def test_the_page_keeps_up_with_20_agents_at_full_rate(browser: Any) -> None:
    """A short run of benchmarks/dashboard_load.py: 20 simulated agents at full rate."""
    from benchmarks.dashboard_load import run

    figures = run(agents=20, seconds=4.0, broker_url=None, browser=browser)
    assert figures["console_errors"] == 0
    assert figures["messages_per_s"] > 150, figures
    assert figures["update_delay_ms_p95"] < 1000, figures
    assert figures["main_thread_round_trip_ms"] < 500, figures


def test_the_page_says_when_the_dashboard_falls_behind_and_what_never_arrived(
    sync_api: Any, dashboard, page: Any, problems: Problems
) -> None:
    """Issue 15: falling behind is said on the page, and a loss is counted, never silent."""
    expect = sync_api.expect
    server = dashboard()
    state = server.app.extensions["onlooker_state"]
    page.goto(server.url + "/")
    expect(tid(page, "stream-status")).to_have_text("live", timeout=3000)
    health = tid(page, "dashboard-health")
    expect(health).to_be_hidden()

    def beat(seq: int) -> tuple[wire.TopicInfo, dict[str, Any], None]:
        message = wire.message("heartbeat", agent="kiosk-slow", seq=seq, ts=time.time(), fps=20.0,
                               latency_ms=10.0, model="m", model_version="1", source="camera",
                               watching=False, uptime_s=1.0)  # fmt: skip
        return wire.TopicInfo("heartbeat", "kiosk-slow", None), message, None

    # A batch whose oldest message waited 2.5 s in the inbox, 1,234 more behind it.
    state.apply_batch([beat(0)], received=1, lag_s=2.5, backlog=1234)
    expect(health).to_be_visible(timeout=3000)
    expect(health).to_contain_text("messages wait 2.5 s")
    expect(health).to_contain_text("1,234 waiting")
    # Seqs 1-4 never arrive: counted and said, not silent.
    state.apply_batch([beat(5)], received=1, lag_s=0.0, backlog=0)
    expect(health).to_contain_text("4 messages from the screens never arrived")
    # Caught up: once no message has waited for a while, only the loss is left.
    with state._cond:
        state.metrics.behind_at = time.monotonic() - 60
    expect(health).not_to_contain_text("behind", timeout=4000)
    expect(health).to_have_text("4 messages from the screens never arrived.")
    assert problems.errors == [] and problems.dialogs == []
