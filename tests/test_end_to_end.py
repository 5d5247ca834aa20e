"""The whole path on real inputs: sample video → Face Landmarker → real broker → dashboard API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from broker import wire
from conftest import (
    agent_json,
    faced_visit,
    free_port,
    get_json,
    start_agent,
    stop,
    wait_until,
)

pytestmark = pytest.mark.integration


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
            lambda: (
                (a := agent_json(dashboard, "e2e-1")) and a["online"] and (a["fps"] or 0) > 0 and a
            ),
            30,
        )
        assert online, (tmp_path / "agent.log").read_text()[-3000:]
        assert online["model"] == "mediapipe-face-landmarker+fusion"
        assert online["source"] == "video"
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


def test_demo_runs_broker_dashboard_and_agent_and_stops_by_itself(tmp_path):
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
        # The demo's broker takes only this run's credentials: a local process without them
        # sees nothing; the read-only ones it prints let a person watch the wire.
        observer = re.search(r"read-only credentials in (\S+)", log.read_text())
        assert observer and "this run's credentials only" in log.read_text(), log.read_text()
        assert not wire_tap_connects(broker.group(1), None)
        env = dict(line.split("=", 1) for line in Path(observer[1]).read_text().splitlines())
        assert oct(Path(observer[1]).stat().st_mode & 0o777) == "0o600"
        tap = AuthTap(broker.group(1), env["ONLOOKER_MQTT_USERNAME"], env["ONLOOKER_MQTT_PASSWORD"])
        base = f"http://127.0.0.1:{dashboard_port}"
        online = wait_until(
            lambda: any(a["online"] and (a["fps"] or 0) > 0 for a in get_json(base + "/api/agents")[
                "agents"]),
            30 - (time.monotonic() - started),
        )  # fmt: skip
        assert online, log.read_text()[-3000:]
        dashboard = type("D", (), {"url": base})
        assert wait_until(lambda: faced_visit(dashboard), 10), get_json(base + "/api/visits")
        assert demo.wait(40) == 0, log.read_text()[-3000:]
    finally:
        stop(demo)
    tap.close()
    assert "demo stopped" in log.read_text()
    assert {m["type"] for m in tap.decoded()} >= {"heartbeat", "visit", "attention", "expression"}


class AuthTap:
    """Records every message under the prefix, like `mosquitto_sub -u … -P …`."""

    def __init__(self, url: str, username: str, password: str):
        host, port = wire.parse_broker_url(url)
        self.topics, self.messages = wire.Topics(), []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topics.subscription, 1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "the observer could not subscribe"

    def decoded(self) -> list[dict]:
        out = []
        for topic, payload in list(self.messages):
            info = self.topics.parse(topic)
            if payload and info.kind != "available":
                out.append(wire.decode(info, payload))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wire_tap_connects(url: str, credentials: tuple[str, str] | None) -> bool:
    host, port = wire.parse_broker_url(url)
    codes: list = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if credentials is not None:
        client.username_pw_set(*credentials)
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    client.connect(host, port)
    client.loop_start()
    try:
        wait_until(lambda: codes, 5)
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(codes) and not codes[0].is_failure
