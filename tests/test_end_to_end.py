"""The whole path on real inputs: sample video → Face Landmarker → real broker → dashboard API."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker import wire
from conftest import get_json, require
from dashboard import create_app
from dashboard.server import DashboardServer

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; return that (or the last falsy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def start_agent(broker_url: str, source: Path, log: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "onlooker", "agent", "--broker", broker_url,
        "--source", str(source), "--viewer-port", str(free_port()), *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(15)


@pytest.fixture
def dashboard_on():
    servers = []

    def start(broker_url: str, heartbeat_timeout_s: float = 10.0) -> DashboardServer:
        app = create_app({"BROKER_URL": broker_url, "HEARTBEAT_TIMEOUT_S": heartbeat_timeout_s})
        server = DashboardServer(app, port=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def agent_json(dashboard: DashboardServer, agent: str) -> dict | None:
    agents = {a["agent"]: a for a in get_json(dashboard.url + "/api/agents")["agents"]}
    return agents.get(agent)


def faced_visit(dashboard: DashboardServer) -> dict | None:
    """A visit whose latest signals show a face, an expression and a head pose."""
    for visit in get_json(dashboard.url + "/api/visits")["visits"]:
        attention, expression = visit.get("attention") or {}, visit.get("expression") or {}
        if attention.get("present") and attention.get("yaw") is not None and expression:
            return visit
    return None


def test_sample_video_reaches_the_dashboard_and_a_killed_agent_goes_offline(
    any_broker, dashboard_on, wiretap_factory, sample, tmp_path
):
    # The will makes Mosquitto report a killed agent at once; for amqtt the dashboard's
    # heartbeat timeout is the safety net, so it is short here.
    timeout_s = 10.0 if any_broker.kind == "mosquitto" else 4.0
    dashboard = dashboard_on(any_broker.url, heartbeat_timeout_s=timeout_s)
    tap = wiretap_factory(any_broker.url)
    agent = start_agent(
        any_broker.url, sample("WolfgangLanger_Pexels.mp4"), tmp_path / "agent.log",
        "--agent-id", "e2e-1",
    )  # fmt: skip
    try:
        online = wait_until(
            lambda: (a := agent_json(dashboard, "e2e-1")) and a["online"] and a["fps"] > 0 and a,
            30,
        )
        assert online, (tmp_path / "agent.log").read_text()[-3000:]
        assert online["model"] == "mediapipe-face-landmarker" and online["source"] == "video"
        visit = wait_until(lambda: faced_visit(dashboard), 20)
        assert visit, get_json(dashboard.url + "/api/visits")
        assert visit["agent"] == "e2e-1" and visit["consent"] == "recorded-source"
        assert visit["active"] and visit["attention"]["faces"] == 1
        assert visit["expression"]["label"] in wire.EXPRESSIONS
        assert visit["scopes"] == list(wire.SCOPES)
        detail = get_json(f"{dashboard.url}/api/visits/{visit['visit']}")["visit"]
        assert detail["visit"] == visit["visit"]

        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        killed_at = time.monotonic()
        offline = wait_until(lambda: not agent_json(dashboard, "e2e-1")["online"], timeout_s + 5)
        assert offline, agent_json(dashboard, "e2e-1")
        if any_broker.kind == "mosquitto":
            assert time.monotonic() - killed_at < 3.0, "the last will should arrive at once"
    finally:
        stop(agent)
    # Everything that crossed the wire follows the documented schema (raises otherwise).
    decoded = tap.decoded()
    assert {m["type"] for m in decoded} == {"heartbeat", "visit", "attention", "expression"}
    assert (tap.topics.available("e2e-1"), b"online", False) in tap.snapshot()


def test_a_video_without_faces_makes_no_visit(mosquitto, dashboard_on, wiretap_factory, sample,
                                              tmp_path):  # fmt: skip
    dashboard = dashboard_on(mosquitto.url)
    tap = wiretap_factory(mosquitto.url)
    agent = start_agent(
        mosquitto.url, sample("no_face.mp4"), tmp_path / "agent.log",
        "--agent-id", "empty-room", "--fast", "--no-loop",
    )  # fmt: skip
    assert agent.wait(60) == 0, (tmp_path / "agent.log").read_text()[-3000:]
    log = (tmp_path / "agent.log").read_text()
    assert re.search(r"stopped after 9\d frames, 0 visits", log), log[-2000:]
    assert wait_until(lambda: agent_json(dashboard, "empty-room"), 5)
    assert get_json(dashboard.url + "/api/visits")["visits"] == []
    kinds = {tap.topics.parse(t).kind for t, _, _ in tap.snapshot()}
    assert kinds <= {"available", "heartbeat"}, tap.dump()


def test_a_broken_video_stops_the_agent_with_a_clear_message(mosquitto, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    result = subprocess.run(
        [sys.executable, "-m", "onlooker", "agent", "--broker", mosquitto.url,
         "--source", str(broken)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a readable video" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_model_stops_the_agent_with_a_clear_message(mosquitto, sample, tmp_path):
    env = {**os.environ, "ONLOOKER_CACHE": str(tmp_path / "empty-cache")}
    result = subprocess.run(
        [sys.executable, "-m", "onlooker", "agent", "--broker", mosquitto.url,
         "--source", str(sample("single_face.mp4"))],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "onlooker models fetch" in result.stderr and "Traceback" not in result.stderr


def test_viewer_consent_in_a_real_browser_starts_and_stops_the_visit(
    mosquitto, dashboard_on, sample, tmp_path
):
    playwright = pytest.importorskip("playwright.sync_api")
    require(
        Path("/usr/bin/chromium").exists(), "Chromium is not installed (apt-get install chromium)"
    )
    dashboard = dashboard_on(mosquitto.url)
    viewer_port = free_port()
    log = tmp_path / "agent.log"
    agent = subprocess.Popen(
        [sys.executable, "-m", "onlooker", "agent", "--broker", mosquitto.url,
         "--source", str(sample("single_face.mp4")), "--consent", "viewer",
         "--agent-id", "kiosk-consent", "--viewer-port", str(viewer_port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait_until(lambda: agent_json(dashboard, "kiosk-consent"), 30), log.read_text()
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            page = browser.new_page()
            errors = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(f"http://127.0.0.1:{viewer_port}/")
            page.get_by_text("Not watching").wait_for(timeout=5000)
            time.sleep(1.0)  # a face is in view all along, yet without consent: no visit
            assert get_json(dashboard.url + "/api/visits")["visits"] == []

            page.get_by_role("button", name="I agree").click()
            page.get_by_text("Watching you now").wait_for(timeout=5000)
            visit = wait_until(lambda: faced_visit(dashboard), 10)
            assert visit and visit["consent"] == "viewer"

            page.get_by_role("button", name="Stop watching").click()
            page.get_by_text("Not watching").wait_for(timeout=5000)
            ended = wait_until(
                lambda: (
                    not get_json(f"{dashboard.url}/api/visits/{visit['visit']}")["visit"]["active"]
                ),
                2,
            )
            assert ended, "withdrawal must end the visit on the dashboard at once"
            assert errors == []
            browser.close()
    finally:
        stop(agent)


def test_demo_runs_broker_dashboard_and_agent_and_stops_by_itself(wiretap_factory, tmp_path):
    dashboard_port, viewer_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "-m", "onlooker", "demo", "--duration", "25", "--no-browser",
         "--dashboard-port", str(dashboard_port), "--viewer-port", str(viewer_port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        broker = wait_until(lambda: re.search(r"broker\s+(mqtt://\S+)", log.read_text()), 20)
        assert broker, log.read_text()
        tap = wiretap_factory(broker.group(1))
        base = f"http://127.0.0.1:{dashboard_port}"
        online = wait_until(
            lambda: any(a["online"] and a["fps"] > 0 for a in get_json(base + "/api/agents")[
                "agents"]),
            30 - (time.monotonic() - started),
        )  # fmt: skip
        assert online, log.read_text()[-3000:]
        dashboard = type("D", (), {"url": base})
        assert wait_until(lambda: faced_visit(dashboard), 10), get_json(base + "/api/visits")
        assert demo.wait(40) == 0, log.read_text()[-3000:]
    finally:
        stop(demo)
    assert "demo stopped" in log.read_text()
    assert {m["type"] for m in tap.decoded()} >= {"heartbeat", "visit", "attention", "expression"}
