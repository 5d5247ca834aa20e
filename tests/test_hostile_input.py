"""Hostile and broken input, end to end: a real agent, a real Mosquitto and a real dashboard,
with a hostile MQTT client beside them. Every case ends in a clear error or a counted drop,
never a crash and never a wrong value on screen.

Single messages refused by the dashboard's validation are tested one by one in
tests/test_dashboard.py; a corrupt video and a missing model in tests/test_end_to_end.py.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from test_faults import halt, run_agent, visit_of

from broker import credentials, wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import agent_json, get_json, require, wait_until
from edge import sources
from edge.agent import AgentConfig
from edge.publisher import MqttAuth, SignalPublisher

pytestmark = pytest.mark.integration

TOPICS = wire.Topics()
TIMEOUT_S = 5.0


@pytest.fixture
def broker():
    require(find_mosquitto() is not None, "mosquitto is not installed")
    with EmbeddedBroker(prefer="mosquitto") as running:
        yield running


class Hostile:
    """A paho client that publishes whatever it is given."""

    def __init__(self, port: int, user: tuple[str, str] | None = None):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user:
            self.client.username_pw_set(*user)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(TIMEOUT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def live(broker, dashboard_on):
    """A dashboard showing a real agent's running visit, and a hostile client beside them."""
    dashboard = dashboard_on(broker.url)
    agent, thread = run_agent(broker.url, "kiosk-1")
    hostile = Hostile(broker.port)
    visit = wait_until(lambda: (v := visit_of(dashboard, "kiosk-1")) and v["attention"] and v, 10)
    assert visit, get_json(dashboard.url + "/api/visits")
    yield dashboard, agent, hostile, visit["visit"]
    hostile.close()
    halt(agent, thread)


def attention(visit: str, seq: int = 10**6, agent: str = "kiosk-1", **fields) -> dict:
    values = dict(present=True, faces=7, looking=False, yaw=99.0, pitch=0.0, roll=0.0,
                  distance_cm=5, blinks=500, look_aways=500)  # fmt: skip
    values.update(fields)
    return wire.message("attention", agent=agent, seq=seq, ts=time.time(), visit=visit, **values)


def raw(message: dict, **changes) -> bytes:
    return json.dumps({**message, **changes}).encode()


# Each payload would put 7 faces on screen if it got through.
SPOOFS = {
    "malformed_json": lambda v: raw(attention(v))[:-9],
    "too_large": lambda v: raw(attention(v), pad="x" * 3000),
    "unknown_version": lambda v: raw(attention(v), v=2),
    "extra_field": lambda v: raw(attention(v), landmarks=[[0.5, 0.5, 0.0]] * 9),
    "wrong_type": lambda v: raw(attention(v), faces="7"),
    "out_of_range": lambda v: raw(attention(v), faces=7e9),
    "not_object": lambda v: b"[7]",
    "topic_mismatch": lambda v: raw(attention(v, agent="kiosk-2")),
}


@pytest.mark.parametrize("reason", sorted(SPOOFS))
def test_off_contract_message_on_a_live_visit_changes_nothing_on_screen(live, reason):
    dashboard, agent, hostile, visit = live
    hostile.send(TOPICS.visit("kiosk-1", visit, "attention"), SPOOFS[reason](visit))
    health = wait_until(
        lambda: (h := get_json(dashboard.url + "/healthz"))["rejected"].get(reason) and h, 5
    )
    assert health and health["rejected"] == {reason: 1}, get_json(dashboard.url + "/healthz")
    before = visit_of(dashboard, "kiosk-1")["messages"]
    shown = wait_until(lambda: (v := visit_of(dashboard, "kiosk-1"))["messages"] > before and v, 5)
    assert shown["visit"] == visit and shown["attention"]["faces"] == 1
    assert [a["agent"] for a in get_json(dashboard.url + "/api/agents")["agents"]] == ["kiosk-1"]
    assert len(get_json(dashboard.url + "/api/visits")["visits"]) == 1


def test_duplicated_messages_are_counted_not_applied_twice(live, wiretap_factory, broker):
    dashboard, agent, hostile, visit = live
    tap = wiretap_factory(broker.url)
    assert tap.wait_for(lambda: len(tap.of_type("attention")) >= 3, 5)
    topic, payload, _ = next(m for m in tap.snapshot() if m[0].endswith("/attention"))
    for _ in range(5):
        hostile.send(topic, payload)
    metrics = wait_until(
        lambda: (h := get_json(dashboard.url + "/healthz")).get("duplicates", 0) >= 5 and h, 5
    )
    assert metrics, get_json(dashboard.url + "/healthz")
    assert metrics["rejected"] == {}
    assert agent_json(dashboard, "kiosk-1")["duplicates"] >= 5


def test_a_late_message_does_not_replace_a_newer_value(broker, dashboard_on):
    """QoS 1 may re-send out of order: the screen shows the newest value, not the last one."""
    dashboard = dashboard_on(broker.url)
    hostile = Hostile(broker.port)
    visit = "1a7e1a7e1a7e1a7e"
    try:
        start = wire.message("visit", agent="kiosk-3", seq=0, ts=time.time(), visit=visit,
                             event="start", consent="viewer", scopes=["attention"])  # fmt: skip
        hostile.send(TOPICS.for_message(start), wire.encode(start))
        for seq, yaw in ((1, 10.0), (3, 30.0), (2, 20.0)):  # seq 2 arrives late
            message = attention(visit, seq=seq, agent="kiosk-3", yaw=yaw, faces=1)
            hostile.send(TOPICS.for_message(message), wire.encode(message))
        shown = wait_until(lambda: (v := visit_of(dashboard, "kiosk-3")) and v["messages"] == 4
                           and v, 5)  # fmt: skip
        assert shown, get_json(dashboard.url + "/api/visits")
        assert shown["attention"]["yaw"] == 30.0
        assert agent_json(dashboard, "kiosk-3")["gaps"] == 0
    finally:
        hostile.close()


def test_a_retained_message_planted_on_a_signal_topic_is_not_shown(broker, dashboard_on):
    planted = attention("9a9a9a9a9a9a9a9a", seq=1, agent="kiosk-4", faces=3)
    hostile = Hostile(broker.port)
    try:
        hostile.send(TOPICS.for_message(planted), wire.encode(planted), retain=True)
        dashboard = dashboard_on(broker.url)  # subscribes after the plant: gets it retained
        time.sleep(1.0)
        assert get_json(dashboard.url + "/api/visits")["visits"] == []
        health = get_json(dashboard.url + "/healthz")
        assert health["received"] == 1 and sum(health["rejected"].values()) == 1, health
    finally:
        hostile.send(TOPICS.for_message(planted), b"", retain=True)
        hostile.close()


def test_a_purge_clears_a_retained_message_planted_under_the_visit(broker, wiretap_factory):
    publisher = SignalPublisher(broker.url, "kiosk-5", auth=MqttAuth())
    publisher.start(wait_s=TIMEOUT_S)
    hostile = Hostile(broker.port)
    visit = "5a5a5a5a5a5a5a5a"
    try:
        publisher.publish("visit", visit=visit, event="start", consent="viewer",
                          scopes=["attention"])  # fmt: skip
        planted = attention(visit, seq=1, agent="kiosk-5")
        hostile.send(TOPICS.for_message(planted), wire.encode(planted), retain=True)
        publisher.purge(visit, "forget")
        assert wait_until(lambda: publisher.stats()["queued"] == 0, 5)
    finally:
        publisher.stop()
        hostile.close()
    late = wiretap_factory(broker.url)
    time.sleep(0.5)
    assert [t for t, p, retained in late.snapshot() if retained and p and visit in t] == []


def test_a_flood_is_counted_and_the_dashboard_stays_live(live):
    dashboard, agent, hostile, visit = live
    topic = TOPICS.visit("kiosk-1", visit, "attention")
    junk = SPOOFS["malformed_json"](visit)
    started = time.monotonic()
    for _ in range(5000):
        hostile.client.publish(topic, junk, qos=0)
    took = time.monotonic() - started
    began = time.monotonic()
    get_json(dashboard.url + "/api/visits")
    assert time.monotonic() - began < 1.0, "the API stalled under the flood"
    counted = wait_until(
        lambda: get_json(dashboard.url + "/healthz")["rejected"].get("malformed_json", 0) >= 4500,
        15,
    )  # fmt: skip
    assert counted, (took, get_json(dashboard.url + "/healthz"))
    before = visit_of(dashboard, "kiosk-1")["messages"]
    after = wait_until(lambda: (v := visit_of(dashboard, "kiosk-1"))["messages"] > before and v, 5)
    assert after and after["attention"]["faces"] == 1


# --- ids and topics that try to escape their level ---------------------------------------


BAD_IDS = ["kiosk/1", "kiosk+", "kiosk#", "kiosk-1\x00", "#", "+", "", "KIOSK", "k" * 33, "-k"]


@pytest.mark.parametrize("agent_id", BAD_IDS)
def test_an_agent_id_with_wildcards_slashes_or_nul_is_refused_where_it_enters(agent_id, tmp_path):
    with pytest.raises(ValueError):
        AgentConfig(agent_id=agent_id)
    with pytest.raises(ValueError):
        SignalPublisher("mqtt://127.0.0.1:1", agent_id, auth=MqttAuth())
    with pytest.raises(ValueError):
        TOPICS.heartbeat(agent_id)
    with pytest.raises(ValueError):
        credentials.generate(tmp_path, [agent_id])
    with pytest.raises(wire.WireError):
        wire.encode({**attention("abcdefab12345678", faces=1), "agent": agent_id})


def test_the_agent_command_refuses_an_injected_agent_id(broker, sample):
    result = subprocess.run(
        [sys.executable, "-m", "onlooker", "agent", "--broker", broker.url,
         "--source", str(sample("single_face.mp4")), "--agent-id", "kiosk-1/#"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "must match" in result.stderr and "Traceback" not in result.stderr


def _raw_publish(port: int, topic: bytes, payload: bytes) -> bytes:
    """CONNECT and PUBLISH (QoS 0) by hand: paho itself refuses such topics."""

    def packet(kind: int, body: bytes) -> bytes:
        length, encoded = len(body), b""
        while True:
            byte, length = length % 128, length // 128
            encoded += bytes([byte | (0x80 if length else 0)])
            if not length:
                return bytes([kind]) + encoded + body

    def string(data: bytes) -> bytes:
        return struct.pack("!H", len(data)) + data

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(packet(0x10, string(b"MQTT") + b"\x04\x02\x00\x3c" + string(b"hostile")))
        assert sock.recv(4)[:1] == b"\x20"  # CONNACK
        sock.sendall(packet(0x30, string(topic) + payload))
        try:
            return sock.recv(16)  # b"": the broker closed the connection
        except ConnectionResetError:
            return b""


@pytest.mark.parametrize(
    "topic",
    [
        b"onlooker/v1/agents/kiosk-1/heartbeat\x00evil",
        b"onlooker/v1/agents/+/heartbeat",
        b"onlooker/v1/agents/#",
        b"onlooker/v1/agents/kiosk-1/visits/\xff\xfe/attention",
    ],
)
def test_the_broker_cuts_off_a_client_publishing_to_an_illegal_topic(broker, dashboard_on, topic):
    dashboard = dashboard_on(broker.url)
    assert dashboard.app.extensions["onlooker_mqtt"].wait_connected(TIMEOUT_S)
    assert _raw_publish(broker.port, topic, wire.encode(attention("abcdefab12345678"))) == b""
    time.sleep(0.3)
    assert get_json(dashboard.url + "/healthz")["received"] == 0


def test_an_agent_cannot_speak_for_another_on_production_mosquitto(production_mosquitto,
                                                                   dashboard_on):  # fmt: skip
    broker = production_mosquitto(["kiosk-1", "kiosk-2"])
    user, password = broker.credentials("dashboard")
    dashboard = dashboard_on(broker.url, BROKER_USERNAME=user, BROKER_PASSWORD=password)
    assert dashboard.app.extensions["onlooker_mqtt"].wait_connected(TIMEOUT_S)
    # kiosk-2's credentials, kiosk-1's name: every topic and the will are kiosk-1's.
    impostor = SignalPublisher(broker.url, "kiosk-1", auth=MqttAuth(*broker.credentials("kiosk-2")))
    impostor.start(wait_s=TIMEOUT_S)
    try:
        assert impostor.connected  # the broker knows kiosk-2; the ACL decides per topic
        impostor.publish("visit", visit="abcdefab12345678", event="start", consent="viewer",
                         scopes=["attention"])  # fmt: skip
        impostor.publish("attention", visit="abcdefab12345678", **{
            k: v for k, v in attention("abcdefab12345678").items()
            if k not in ("v", "type", "agent", "seq", "ts", "visit")
        })  # fmt: skip
        assert wait_until(lambda: impostor.stats()["queued"] == 0, 5)
        time.sleep(0.5)
    finally:
        impostor.stop()
    assert get_json(dashboard.url + "/api/agents")["agents"] == []
    assert get_json(dashboard.url + "/api/visits")["visits"] == []


# --- a camera that stops delivering frames --------------------------------------------------


class StallingCapture:
    """A cv2.VideoCapture seam: opens, delivers `frames` frames, then nothing."""

    def __init__(self, index, frames: int = 5):
        self.left = frames

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def set(self, prop, value) -> bool:
        return True

    def get(self, prop) -> float:
        return 0.0

    def grab(self) -> bool:
        return self.read()[0]

    def retrieve(self):
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self) -> None:
        pass


def test_a_camera_that_stops_delivering_frames_is_a_clear_error(monkeypatch, broker,
                                                                 wiretap_factory):  # fmt: skip
    monkeypatch.setattr(sources.cv2, "VideoCapture", StallingCapture)
    camera = sources.CameraSource(0, stall_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(sources.SourceError, match="delivered no frame for"):
        for _ in camera.frames():
            pass
    assert 0.3 <= time.monotonic() - started < 2.0
    # In an agent: the run ends with that error, the visit is closed and the agent offline.
    from test_faults import AlwaysAFace

    from edge.agent import Agent

    tap = wiretap_factory(broker.url)
    agent = Agent(
        AgentConfig(broker_url=broker.url, agent_id="stall-1", consent="recorded-source",
                    heartbeat_s=0.2),
        sources.CameraSource(0, stall_timeout_s=0.3), AlwaysAFace(),
    )  # fmt: skip
    with pytest.raises(sources.SourceError, match="delivered no frame"):
        agent.run()
    assert tap.wait_for(lambda: (TOPICS.available("stall-1"), b"offline") in
                        [(t, p) for t, p, _ in tap.snapshot()], 5), tap.dump()  # fmt: skip
    events = [m["event"] for m in tap.of_type("visit")]
    assert events == ["start", "end"], tap.dump()
