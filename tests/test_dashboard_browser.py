"""The dashboard page in headless Chromium, fed over real MQTT, updating without a reload."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from broker import wire
from broker.embedded import EmbeddedBroker
from dashboard import create_app
from dashboard.server import DashboardServer

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PREFIX = "dashbrowser/v1"
AGENT = "kiosk-browser"
VISIT = "b7e4c1d09a3f"
SHOWN_WITHIN_MS = 2000


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


class Publisher:
    """A real paho client publishing wire-valid messages, as an edge agent would."""

    def __init__(self, broker: EmbeddedBroker):
        self.topics = wire.Topics(PREFIX)
        self.seq = itertools.count()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, kind: str, **fields: Any) -> None:
        message = wire.message(kind, agent=AGENT, seq=next(self.seq), ts=time.time(), **fields)
        info = self.client.publish(self.topics.for_message(message), wire.encode(message), qos=1)
        info.wait_for_publish(5.0)

    def heartbeat(self, **fields: Any) -> None:
        values = {
            "fps": 27.5, "latency_ms": 15.0, "model": "face_landmarker", "model_version": "1",
            "source": "video", "uptime_s": 3, "watching": True,
        }  # fmt: skip
        self.send("heartbeat", **{**values, **fields})

    def face(self, label: str, score: float, **fields: Any) -> None:
        """An attention and an expression message, as the agent sends them together."""
        values = {
            "present": True, "faces": 1, "looking": True, "yaw": 12.5, "pitch": -4.0,
            "roll": 2.0, "distance_cm": 60, "blinks": 0, "look_aways": 0,
        }  # fmt: skip
        self.send("attention", visit=VISIT, **{**values, **fields})
        self.send(
            "expression", visit=VISIT, label=label, score=score, valence=0.5, arousal=0.5,
            reason_units=[], reason_shapes=[], reason_values=[], relative_to_rest=False,
        )  # fmt: skip

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def sync_api() -> Any:
    return _require_browser()


@pytest.fixture(scope="module")
def dashboard() -> Iterator[tuple[EmbeddedBroker, DashboardServer]]:
    with EmbeddedBroker() as broker:
        app = create_app({"TESTING": True, "BROKER_URL": broker.url, "TOPIC_PREFIX": PREFIX})
        subscriber = app.extensions["onlooker_mqtt"]
        try:
            assert subscriber.wait_connected(5.0), "dashboard did not connect to the broker"
            with DashboardServer(app, port=0) as server:
                yield broker, server
        finally:
            subscriber.stop()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(sync_api: Any, console_errors: list[str]) -> Iterator[Any]:
    """A fresh Chromium page whose console errors and uncaught exceptions are collected."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            yield page
        finally:
            browser.close()


def test_page_follows_mqtt_live_and_renders_untrusted_text_as_text(
    sync_api: Any, dashboard, page: Any, console_errors: list[str]
) -> None:
    expect = sync_api.expect
    broker, server = dashboard
    page.goto(server.url + "/")
    expect(page).to_have_title("Onlooker — what the screen learned")
    expect(page.get_by_test_id("stream-status")).to_have_text("live", timeout=SHOWN_WITHIN_MS)

    publisher = Publisher(broker)
    try:
        publisher.heartbeat(model="<b>x</b>")
        publisher.send(
            "visit",
            visit=VISIT,
            event="start",
            consent="viewer",
            scopes=["attention", "expression"],
        )
        publisher.face("joy", 0.9, yaw=12.5)

        agent = page.get_by_test_id(f"agent-{AGENT}")
        expect(agent.locator('[data-field="status"]')).to_have_text(
            "online", timeout=SHOWN_WITHIN_MS
        )
        expect(agent.locator('[data-field="fps"]')).to_have_text("27.5")
        # A model name is free text from the wire: it must show as typed, never become markup.
        model = agent.locator('[data-field="model"]')
        expect(model).to_have_text("<b>x</b> 1")
        assert model.locator("b").count() == 0

        visit = page.get_by_test_id(f"visit-{VISIT}")
        expect(visit.locator('[data-field="expression"]')).to_have_text(
            "joy", timeout=SHOWN_WITHIN_MS
        )
        expect(visit.locator('[data-field="expression_score"]')).to_have_text("0.90")
        expect(visit.locator('[data-field="yaw"]')).to_have_text("12.5°")
        expect(visit.locator('[data-field="present"]')).to_have_text("yes")
        expect(visit.locator('[data-field="consent"]')).to_have_text(
            "viewer (attention, expression)"
        )
        expect(visit.locator('[data-field="active"]')).to_have_text("active")

        publisher.face("surprise", 0.55, yaw=-30.0)
        expect(visit.locator('[data-field="expression"]')).to_have_text(
            "surprise", timeout=SHOWN_WITHIN_MS
        )
        expect(visit.locator('[data-field="yaw"]')).to_have_text("-30.0°")
        if os.environ.get("ONLOOKER_DASHBOARD_SCREENSHOT"):
            page.screenshot(path=os.environ["ONLOOKER_DASHBOARD_SCREENSHOT"], full_page=True)

        publisher.send(
            "visit", visit=VISIT, event="end", consent="viewer", scopes=["attention", "expression"]
        )
        expect(visit.locator('[data-field="active"]')).to_have_text(
            "ended", timeout=SHOWN_WITHIN_MS
        )
        assert page.get_by_test_id("visits").locator("li").count() == 1  # updated, not re-added

        info = publisher.client.publish(publisher.topics.available(AGENT), b"offline", retain=True)
        info.wait_for_publish(5.0)
        expect(agent.locator('[data-field="status"]')).to_have_text(
            "offline", timeout=SHOWN_WITHIN_MS
        )
    finally:
        publisher.close()
    assert console_errors == []
