"""The dashboard against a real broker: a real paho publisher sends wire messages, the
Flask app subscribes, and its JSON API, health check and event stream show what arrived."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask import Flask

from broker import wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import accepts, require
from dashboard import create_app
from dashboard.server import DashboardServer
from dashboard.state import DashboardState

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0
VISIT = "a1b2c3d4e5f6"
_prefixes = itertools.count(1)


# --- helpers (fixture-level utilities for these tests) ----------------------------------------


class FakeClock:
    """The dashboard's clock seam: starts at real time, moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Publisher:
    """A real paho client that publishes wire-valid (or deliberately broken) messages."""

    def __init__(self, broker: EmbeddedBroker, prefix: str, will: str | None = None):
        self.topics = wire.Topics(prefix)
        self.seq = itertools.count()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if will is not None:
            self.client.will_set(self.topics.available(will), wire.OFFLINE, qos=1, retain=True)
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def send(self, message: dict[str, Any]) -> None:
        self.raw(self.topics.for_message(message), wire.encode(message))

    def raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT_S)
        assert info.is_published(), f"publish to {topic} did not complete"

    def heartbeat(self, agent: str, **fields: Any) -> dict[str, Any]:
        message = heartbeat(agent, next(self.seq), **fields)
        self.send(message)
        return message

    def visit(self, agent: str, visit: str, event: str = "start", consent: str = "viewer") -> None:
        self.send(
            wire.message(
                "visit", agent=agent, seq=next(self.seq), ts=time.time(), visit=visit,
                event=event, consent=consent, scopes=list(wire.SCOPES),
            )
        )  # fmt: skip

    def attention(self, agent: str, visit: str, **fields: Any) -> dict[str, Any]:
        message = attention(agent, visit, next(self.seq), **fields)
        self.send(message)
        return message

    def expression(self, agent: str, visit: str, **fields: Any) -> dict[str, Any]:
        message = expression(agent, visit, next(self.seq), **fields)
        self.send(message)
        return message

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def heartbeat(agent: str, seq: int = 0, **fields: Any) -> dict[str, Any]:
    values = {
        "fps": 29.5, "latency_ms": 14.2, "model": "face_landmarker", "model_version": "1",
        "source": "camera", "uptime_s": 12, "watching": True,
    }  # fmt: skip
    values.update(fields)
    return wire.message("heartbeat", agent=agent, seq=seq, ts=time.time(), **values)


def attention(agent: str, visit: str, seq: int = 0, **fields: Any) -> dict[str, Any]:
    values = {
        "present": True, "faces": 1, "looking": True, "yaw": 12.5, "pitch": -3.0, "roll": 1.5,
        "distance_cm": 60, "blinks": 0, "look_aways": 0,
    }  # fmt: skip
    values.update(fields)
    return wire.message("attention", agent=agent, seq=seq, ts=time.time(), visit=visit, **values)


def expression(agent: str, visit: str, seq: int = 0, **fields: Any) -> dict[str, Any]:
    values = {
        "label": "joy", "score": 0.87, "valence": 0.8, "arousal": 0.5,
        "reason_units": ["AU12 lip corner puller"], "reason_shapes": ["mouthSmile"],
        "reason_values": [0.9], "relative_to_rest": False,
    }  # fmt: skip
    values.update(fields)
    return wire.message("expression", agent=agent, seq=seq, ts=time.time(), visit=visit, **values)


def eventually(check: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout} s (last value {value!r})"
            return value
        time.sleep(0.02)


def agent_json(client, agent: str) -> dict[str, Any] | None:
    """One agent from GET /api/agents, or None."""
    agents = client.get("/api/agents").get_json()["agents"]
    return next((a for a in agents if a["agent"] == agent), None)


def make_app(broker_url: str, prefix: str, **config: Any) -> Flask:
    return create_app({"TESTING": True, "BROKER_URL": broker_url, "TOPIC_PREFIX": prefix, **config})


def stop_app(app: Flask) -> None:
    app.extensions["onlooker_mqtt"].stop()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own, so retained messages never leak between tests."""
    return f"dashtest{next(_prefixes)}/v1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(broker: EmbeddedBroker, prefix: str, clock: FakeClock) -> Iterator[Flask]:
    app = make_app(broker.url, prefix, CLOCK=clock)
    assert app.extensions["onlooker_mqtt"].wait_connected(TIMEOUT_S), "dashboard did not connect"
    yield app
    stop_app(app)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def publisher(broker: EmbeddedBroker, prefix: str) -> Iterator[Publisher]:
    pub = Publisher(broker, prefix)
    yield pub
    pub.close()


# --- agents -----------------------------------------------------------------------------------


def test_heartbeat_shows_agent_online_with_its_fps(client, publisher: Publisher) -> None:
    publisher.heartbeat("kiosk-1", fps=24.25, model="face_landmarker", source="video")

    agent = eventually(lambda: agent_json(client, "kiosk-1"))
    assert agent["online"] is True
    assert agent["fps"] == 24.2  # the wire rounds fps to one decimal (banker's rounding)
    assert agent["model"] == "face_landmarker"
    assert agent["source"] == "video"
    assert agent["watching"] is True
    assert agent["last_heartbeat"] is not None


def test_retained_offline_turns_agent_offline_at_once_and_for_late_subscribers(
    broker: EmbeddedBroker, prefix: str, client, publisher: Publisher
) -> None:
    publisher.heartbeat("kiosk-2")
    eventually(lambda: (agent_json(client, "kiosk-2") or {}).get("online"))

    publisher.raw(publisher.topics.available("kiosk-2"), b"offline", retain=True)
    agent = eventually(lambda: (a := agent_json(client, "kiosk-2")) and not a["online"] and a)
    assert agent["availability"] == "offline"
    assert agent["fps"] == 29.5  # the last heartbeat's numbers stay visible

    late = make_app(broker.url, prefix)
    try:
        late_client = late.test_client()
        agent = eventually(lambda: agent_json(late_client, "kiosk-2"))
        assert agent["online"] is False and agent["availability"] == "offline"
    finally:
        stop_app(late)


def test_last_will_turns_agent_offline(prefix: str) -> None:
    # A broker of its own: amqtt 0.12 hands a retained will to later subscribers of any
    # topic, which would leak into the other tests' counters.
    with EmbeddedBroker() as broker:
        app = make_app(broker.url, prefix)
        client = app.test_client()
        edge = Publisher(broker, prefix, will="kiosk-3")
        try:
            assert app.extensions["onlooker_mqtt"].wait_connected(TIMEOUT_S)
            edge.raw(edge.topics.available("kiosk-3"), b"online", retain=True)
            edge.heartbeat("kiosk-3")
            eventually(lambda: (agent_json(client, "kiosk-3") or {}).get("online"))

            # Vanish without DISCONNECT, as a crashed or unplugged kiosk does: the will fires.
            edge.client.loop_stop()
            edge.client.socket().shutdown(socket.SHUT_RDWR)
            edge.client.socket().close()

            agent = eventually(
                lambda: (a := agent_json(client, "kiosk-3")) and not a["online"] and a
            )
            assert agent["availability"] == "offline"
        finally:
            stop_app(app)


def test_heartbeat_timeout_turns_agent_offline_and_is_announced(
    app: Flask, client, clock: FakeClock, publisher: Publisher
) -> None:
    publisher.heartbeat("kiosk-4")
    publisher.visit("kiosk-4", VISIT)
    eventually(lambda: client.get(f"/api/visits/{VISIT}").status_code == 200)
    assert agent_json(client, "kiosk-4")["online"] is True
    state = app.extensions["onlooker_state"]
    version = state.version

    clock.advance(9.9)
    assert agent_json(client, "kiosk-4")["online"] is True
    clock.advance(0.2)  # 10.1 s without a heartbeat, more than HEARTBEAT_TIMEOUT_S
    assert agent_json(client, "kiosk-4")["online"] is False
    visit = client.get(f"/api/visits/{VISIT}").get_json()["visit"]
    assert visit["active"] is False and visit["ended"] is None  # the screen vanished mid-visit

    # No message announces a timeout; followers of the state (the stream) still hear of it.
    changes = state.wait_for_changes(version, timeout=1.0)
    assert [(kind, data.get("online", data.get("active"))) for kind, data in changes.events] == [
        ("agent", False),
        ("visit", False),
    ]

    publisher.heartbeat("kiosk-4")
    eventually(lambda: agent_json(client, "kiosk-4")["online"])
    assert client.get(f"/api/visits/{VISIT}").get_json()["visit"]["active"] is True


# --- visits -----------------------------------------------------------------------------------


def test_visit_and_signal_messages_are_reflected_per_visit(client, publisher: Publisher) -> None:
    publisher.visit("kiosk-5", VISIT, consent="recorded-source")
    publisher.attention("kiosk-5", VISIT, yaw=-20.25)
    publisher.expression("kiosk-5", VISIT, label="surprise", score=0.61)

    def seen() -> dict[str, Any] | None:
        response = client.get(f"/api/visits/{VISIT}")
        visit = response.get_json().get("visit") if response.status_code == 200 else None
        return visit if visit and visit["attention"] and visit["expression"] else None

    visit = eventually(seen)
    assert visit["agent"] == "kiosk-5"
    assert visit["consent"] == "recorded-source"
    assert visit["scopes"] == list(wire.SCOPES)
    assert visit["active"] is True and visit["ended"] is None
    assert visit["started"] is not None
    assert visit["attention"]["present"] is True
    assert visit["attention"]["faces"] == 1
    assert visit["attention"]["yaw"] == -20.2
    assert visit["expression"]["label"] == "surprise"
    assert visit["expression"]["score"] == 0.61
    assert visit["messages"] == 3

    publisher.attention("kiosk-5", VISIT, present=False, faces=0, yaw=None, pitch=None, roll=None)
    publisher.visit("kiosk-5", VISIT, event="end", consent="recorded-source")
    visit = eventually(lambda: (v := client.get(f"/api/visits/{VISIT}").get_json()["visit"])
                       and not v["active"] and v)  # fmt: skip
    assert visit["ended"] >= visit["started"]
    assert visit["attention"]["present"] is False and visit["attention"]["yaw"] is None
    assert visit["messages"] == 5

    second = "ffff0000eeee"
    publisher.visit("kiosk-5", second)
    eventually(lambda: len(client.get("/api/visits").get_json()["visits"]) == 2)
    assert [v["visit"] for v in client.get("/api/visits").get_json()["visits"]] == [second, VISIT]


def test_unknown_visit_and_unknown_api_paths_are_json_errors(client) -> None:
    response = client.get("/api/visits/0000000000000")
    assert response.status_code == 404
    assert response.is_json and "error" in response.get_json()

    response = client.get("/api/no-such-thing")
    assert response.status_code == 404 and response.is_json

    response = client.post("/api/agents")
    assert response.status_code == 405 and response.is_json
    assert "GET" in response.headers["Allow"]


def test_visit_claimed_by_another_agent_is_rejected(client, publisher: Publisher) -> None:
    publisher.visit("kiosk-6", VISIT)
    eventually(lambda: client.get(f"/api/visits/{VISIT}").status_code == 200)
    publisher.expression("kiosk-7", VISIT, label="anger")
    eventually(lambda: client.get("/healthz").get_json()["rejected"].get("visit_agent_mismatch"))
    visit = client.get(f"/api/visits/{VISIT}").get_json()["visit"]
    assert visit["agent"] == "kiosk-6" and visit["expression"] is None


# --- rejects ----------------------------------------------------------------------------------


def _with(message: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**message, **changes}).encode()


BAD_MESSAGES = {
    "malformed_json": lambda t: (t.heartbeat("kiosk-8"), b'{"v": 1, "type": "heartbeat",'),
    "extra_field": lambda t: (t.heartbeat("kiosk-8"), _with(heartbeat("kiosk-8"), face_crop="x")),
    "wrong_type": lambda t: (t.heartbeat("kiosk-8"), _with(heartbeat("kiosk-8"), fps="fast")),
    "too_large": lambda t: (t.heartbeat("kiosk-8"), b" " * (wire.MAX_PAYLOAD_BYTES + 1)),
    "unknown_version": lambda t: (t.heartbeat("kiosk-8"), _with(heartbeat("kiosk-8"), v=2)),
    "bad_agent_id": lambda t: (
        f"{t.prefix}/agents/Bad_Agent/heartbeat",
        _with(heartbeat("kiosk-8"), agent="Bad_Agent"),
    ),
    "topic_mismatch": lambda t: (t.heartbeat("kiosk-9"), wire.encode(heartbeat("kiosk-8"))),
    "bad_availability": lambda t: (t.available("kiosk-8"), b"maybe"),
    "unknown_topic": lambda t: (f"{t.prefix}/agents/kiosk-8/secrets", b"{}"),
}


@pytest.mark.parametrize("reason", sorted(BAD_MESSAGES))
def test_off_contract_message_is_counted_and_subscriber_keeps_working(
    reason: str, client, publisher: Publisher
) -> None:
    topic, payload = BAD_MESSAGES[reason](publisher.topics)
    publisher.raw(topic, payload)
    publisher.heartbeat("kiosk-ok")

    eventually(lambda: agent_json(client, "kiosk-ok"))
    health = eventually(lambda: (h := client.get("/healthz").get_json())["received"] == 2 and h)
    assert health["rejected"] == {reason: 1}
    assert health["accepted"] == {"heartbeat": 1}
    assert health["status"] == "ok" and health["mqtt_connected"] is True
    assert [a["agent"] for a in client.get("/api/agents").get_json()["agents"]] == ["kiosk-ok"]


# --- connection -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_is_degraded_while_no_broker_answers(prefix: str) -> None:
    app = make_app(f"mqtt://127.0.0.1:{_free_port()}", prefix)
    try:
        time.sleep(0.3)
        health = app.test_client().get("/healthz").get_json()
        assert health == {
            "status": "degraded", "mqtt_connected": False, "received": 0,
            "accepted": {}, "rejected": {}, "duplicates": 0, "dropped": 0, "restarts": 0,
            "dropped_backlog": 0, "backlog": 0, "backlog_max": 0, "lag_ms": 0, "lag_ms_max": 0,
            "behind": False,
            "agents": 0, "agents_online": 0, "visits": 0, "visits_active": 0,
        }  # fmt: skip
    finally:
        stop_app(app)


def test_broker_that_refuses_the_connection_is_not_connected(tmp_path: Path, prefix: str) -> None:
    binary = find_mosquitto()
    require(
        binary is not None,
        "mosquitto is not installed; cannot run a broker that refuses anonymous clients",
    )
    port = _free_port()
    conf = tmp_path / "refusing.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: accepts(port))
        refused = threading.Event()
        app = make_app(f"mqtt://127.0.0.1:{port}", prefix)
        subscriber = app.extensions["onlooker_mqtt"]
        original = subscriber._on_connect

        def spy(client, userdata, flags, reason_code, properties) -> None:
            original(client, userdata, flags, reason_code, properties)
            if reason_code.is_failure:
                refused.set()

        subscriber._client.on_connect = spy
        try:
            assert refused.wait(TIMEOUT_S), "the broker never answered the CONNECT"
            assert subscriber.connected is False
            health = app.test_client().get("/healthz").get_json()
            assert health["status"] == "degraded" and health["mqtt_connected"] is False
        finally:
            stop_app(app)
    finally:
        process.terminate()
        process.wait(TIMEOUT_S)


def test_subscriber_resubscribes_after_the_broker_restarts(prefix: str) -> None:
    first = EmbeddedBroker().start()
    port = first.port
    app = make_app(first.url, prefix)
    subscriber = app.extensions["onlooker_mqtt"]
    client = app.test_client()
    try:
        assert subscriber.wait_connected(TIMEOUT_S)
        first.stop()
        eventually(lambda: not subscriber.connected)
        assert client.get("/healthz").get_json()["status"] == "degraded"

        with EmbeddedBroker(port=port) as second:
            # A fresh broker has no session for us: only a new SUBSCRIBE brings messages.
            assert subscriber.wait_connected(10.0), "dashboard did not reconnect"
            publisher = Publisher(second, prefix)
            try:
                publisher.heartbeat("kiosk-10")
                eventually(lambda: agent_json(client, "kiosk-10"))
            finally:
                publisher.close()
    finally:
        stop_app(app)
        first.stop()


# --- page and stream --------------------------------------------------------------------------


def test_page_is_served_with_a_strict_content_security_policy(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    assert "<title>Onlooker — what the screen learned</title>" in html
    assert "<script>" not in html and " on" + "click=" not in html  # no inline code at all
    script = client.get("/static/dashboard.js")
    assert script.status_code == 200 and b"EventSource" in script.data
    assert b"innerHTML" not in script.data


class EventStream:
    """Reads Server-Sent Events from a real HTTP connection, with a socket timeout."""

    def __init__(self, url: str, timeout: float = TIMEOUT_S):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.connection.request("GET", "/api/stream")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")

    def next_event(self) -> tuple[str, dict[str, Any]]:
        kind, data = "message", []
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("stream ended")
            line = line.rstrip("\n")
            if line == "" and data:
                return kind, json.loads("\n".join(data))
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])

    def close(self) -> None:
        self.connection.close()


def test_stream_sends_a_snapshot_then_a_visit_event(app: Flask, publisher: Publisher) -> None:
    publisher.heartbeat("kiosk-11")
    eventually(lambda: app.extensions["onlooker_state"].agent("kiosk-11"))
    with DashboardServer(app, port=0) as server:
        stream = EventStream(server.url)
        try:
            kind, snapshot = stream.next_event()
            assert kind == "snapshot"
            assert [a["agent"] for a in snapshot["agents"]] == ["kiosk-11"]
            assert snapshot["visits"] == []

            publisher.expression("kiosk-11", VISIT, label="sadness")
            kind, visit = stream.next_event()
            assert kind == "visit"
            assert visit["visit"] == VISIT
            assert visit["expression"]["label"] == "sadness" and visit["attention"] is None
        finally:
            stream.close()


def test_stopping_the_server_ends_open_streams(app: Flask) -> None:
    server = DashboardServer(app, port=0).start()
    stream = EventStream(server.url)
    try:
        assert stream.next_event()[0] == "snapshot"
        began = time.monotonic()
        server.stop()
        assert time.monotonic() - began < 3.0
        assert app.extensions["onlooker_mqtt"].connected is False  # stop() disconnects MQTT too
        with pytest.raises(EOFError):
            stream.next_event()  # the stream's generator returns within one poll interval
    finally:
        stream.close()


def test_stream_sends_keep_alive_comments_while_nothing_changes(app: Flask) -> None:
    app.config["SSE_KEEPALIVE_S"] = 0.2
    with DashboardServer(app, port=0) as server:
        stream = EventStream(server.url)
        try:
            assert stream.next_event()[0] == "snapshot"
            lines = [stream.response.readline() for _ in range(2)]
            assert lines == [b": keep-alive\n", b"\n"]
        finally:
            stream.close()


# --- state on its own --------------------------------------------------------------------------


def test_a_follower_too_far_behind_is_told_to_resync() -> None:
    state = DashboardState(clock=FakeClock())
    info = wire.TopicInfo("heartbeat", "kiosk-12", None)
    for seq in range(1100):  # more changes than the state remembers
        state.apply(info, heartbeat("kiosk-12", seq))
    changes = state.wait_for_changes(0, timeout=0.1)
    assert changes.resync is True and changes.version == 1100
    recent = state.wait_for_changes(1098, timeout=0.1)
    assert recent.resync is False and [kind for kind, _ in recent.events] == ["agent"]


def test_oldest_visits_are_forgotten_beyond_the_limit_ended_ones_first() -> None:
    state = DashboardState(clock=FakeClock(), max_visits=2)
    visits = [("aaaaaaaa", "start"), ("bbbbbbbb", "end"), ("cccccccc", "start")]
    for seq, (visit, event) in enumerate(visits):
        message = wire.message("visit", agent="kiosk-13", seq=seq, ts=time.time(), visit=visit,
                               event=event, consent="viewer", scopes=["expression"])  # fmt: skip
        state.apply(wire.TopicInfo("visit", "kiosk-13", visit), message)
    assert [v["visit"] for v in state.visits()] == ["cccccccc", "aaaaaaaa"]


def test_a_signal_outside_the_visits_consent_is_rejected(client, publisher: Publisher) -> None:
    publisher.send(
        wire.message(
            "visit", agent="kiosk-12", seq=900, ts=time.time(), visit=VISIT, event="start",
            consent="viewer", scopes=["expression"],
        )
    )  # fmt: skip
    publisher.attention("kiosk-12", VISIT)
    publisher.expression("kiosk-12", VISIT, label="joy")
    eventually(lambda: client.get("/healthz").get_json()["rejected"].get("not_consented") == 1)
    visit = eventually(lambda: client.get(f"/api/visits/{VISIT}").get_json()["visit"]["expression"]
                       and client.get(f"/api/visits/{VISIT}").get_json()["visit"])  # fmt: skip
    assert visit["attention"] is None and visit["expression"]["label"] == "joy"


def test_retention_deletes_ended_and_abandoned_visits_and_keeps_a_live_one() -> None:
    """Retention on the dashboard: a visit is deleted `retention_s` after its last message
    once it has ended, or once its agent is gone (will, "offline", heartbeats stopped), even
    while other visits of an online agent go on; a live visit of an online agent stays."""
    clock = FakeClock()
    state = DashboardState(clock=clock, retention_s=60, heartbeat_timeout_s=10)
    seqs = {"kiosk-21": itertools.count(), "kiosk-22": itertools.count()}

    def send(agent: str, kind: str, visit: str | None = None, **fields: Any) -> None:
        if kind == "heartbeat":
            message = heartbeat(agent, next(seqs[agent]))
        else:
            message = wire.message(kind, agent=agent, seq=next(seqs[agent]), ts=clock.now,
                                   visit=visit, **fields)  # fmt: skip
        state.apply(wire.TopicInfo(kind, agent, visit), message)

    def visit(agent: str, visit_id: str, event: str) -> None:
        send(agent, "visit", visit_id, event=event, consent="viewer", scopes=["expression"])

    ended, live, abandoned = "e0e0e0e0e0e0", "11ee11ee11ee", "abab0000abab"
    for agent in seqs:
        send(agent, "heartbeat")
    visit("kiosk-21", ended, "start")
    visit("kiosk-21", ended, "end")
    visit("kiosk-21", live, "start")
    visit("kiosk-22", abandoned, "start")  # kiosk-22 is not heard of again
    for _ in range(6):  # 66 s: kiosk-21 stays online, kiosk-22's heartbeats stop
        clock.advance(11)
        send("kiosk-21", "heartbeat")
    assert {v["visit"] for v in state.visits()} == {live}
    with pytest.raises(wire.WireError, match="purged"):  # and a late message cannot revive one
        send("kiosk-22", "expression", abandoned, **{
            k: v for k, v in expression("kiosk-22", abandoned).items()
            if k not in (*wire.COMMON, "visit")
        })  # fmt: skip


def test_retention_waits_for_the_last_message_of_an_ended_visit() -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0  # whole seconds: the boundary below is exact
    state = DashboardState(clock=clock, retention_s=60)
    for seq, event in enumerate(("start", "end")):
        message = wire.message("visit", agent="kiosk-23", seq=seq, ts=clock.now, visit=VISIT,
                               event=event, consent="viewer", scopes=["expression"])  # fmt: skip
        state.apply(wire.TopicInfo("visit", "kiosk-23", VISIT), message)
    clock.advance(59)
    assert [v["visit"] for v in state.visits()] == [VISIT]
    clock.advance(1)  # due at exactly retention_s
    assert state.visits() == []


def test_an_agent_cannot_purge_another_agents_visit_and_any_purge_is_remembered() -> None:
    state = DashboardState(clock=FakeClock())

    def send(agent: str, kind: str, seq: int, visit: str, **fields: Any) -> None:
        message = wire.message(kind, agent=agent, seq=seq, ts=time.time(), visit=visit, **fields)
        state.apply(wire.TopicInfo(kind, agent, visit), message)

    send("kiosk-31", "visit", 0, VISIT, event="start", consent="viewer", scopes=["expression"])
    with pytest.raises(wire.WireError, match="visit_agent_mismatch"):
        send("kiosk-32", "purge", 0, VISIT, reason="forget")  # not its visit
    assert [v["visit"] for v in state.visits()] == [VISIT]
    # A purge for a visit this dashboard never saw (it started later) is remembered all the
    # same: the visit's messages, arriving late, do not create it.
    send("kiosk-32", "purge", 1, "0dd0dd0dd0dd", reason="withdrawn")
    with pytest.raises(wire.WireError, match="purged_visit"):
        send("kiosk-32", "visit", 2, "0dd0dd0dd0dd", event="start", consent="viewer",
             scopes=["expression"])  # fmt: skip
    send("kiosk-31", "purge", 1, VISIT, reason="forget")  # its own: gone
    assert state.visits() == []


def test_the_memory_of_purged_visits_is_bounded_and_forgets_the_oldest_first() -> None:
    from dashboard import state as state_module

    state = DashboardState(clock=FakeClock())
    memory = state_module._PURGED_MEMORY
    ids = [f"{n:012x}" for n in range(memory + 1)]
    for visit_id in ids:  # one more purge than it remembers
        assert state.purge(visit_id) is False

    def start(seq: int, visit: str) -> None:
        message = wire.message("visit", agent="kiosk-33", seq=seq, ts=time.time(), visit=visit,
                               event="start", consent="viewer", scopes=["expression"])  # fmt: skip
        state.apply(wire.TopicInfo("visit", "kiosk-33", visit), message)

    for seq, visit_id in enumerate((ids[-1], ids[1])):  # the newest and the oldest still kept
        with pytest.raises(wire.WireError, match="purged_visit"):
            start(seq, visit_id)
    start(5, ids[0])  # the very oldest is forgotten: memory is bounded
    assert [v["visit"] for v in state.visits()] == [ids[0]]


def _holders(obj: object, needle: str, path: str = "state", seen: set | None = None) -> list[str]:
    """Every place under `obj` (attributes, containers, keys) whose text contains `needle`."""
    seen = set() if seen is None else seen
    if isinstance(obj, (str, bytes)):
        text = obj if isinstance(obj, str) else obj.decode("utf-8", "replace")
        return [path] if needle in text else []
    if id(obj) in seen or callable(obj) or isinstance(obj, (int, float, type(None))):
        return []
    seen.add(id(obj))
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _holders(key, needle, f"{path}[key]", seen)
            found += _holders(value, needle, f"{path}[{key!r}]", seen)
    elif isinstance(obj, (list, tuple, set, frozenset, deque)):
        for index, value in enumerate(obj):
            found += _holders(value, needle, f"{path}[{index}]", seen)
    elif hasattr(obj, "__dict__"):
        for name, value in vars(obj).items():
            found += _holders(value, needle, f"{path}.{name}", seen)
    return found


def test_after_a_purge_nothing_the_visit_said_is_left_anywhere_in_the_state() -> None:
    """Forget-me everywhere: not in a table, a cache for the page's stream, or a pending flush."""
    state = DashboardState(clock=FakeClock())
    visit = "c0ffeec0ffeec0ff"

    def send(kind: str, seq: int, **fields: object) -> None:
        message = wire.message(kind, agent="kiosk-40", seq=seq, ts=time.time(), visit=visit,
                               **fields)  # fmt: skip
        info = wire.TopicInfo(kind, "kiosk-40", visit)
        state.apply_batch([(info, message, wire.encode(message))])

    send("visit", 0, event="start", consent="viewer", scopes=["expression"])
    send("expression", 1, label="surprise", score=0.81, valence=0.3, arousal=0.9,
         reason_units=[], reason_shapes=[], reason_values=[], relative_to_rest=False)  # fmt: skip
    state.wait_for_changes(0, timeout=0.01)  # a stream built the visit's JSON
    send("expression", 2, label="surprise", score=0.82, valence=0.3, arousal=0.9,
         reason_units=[], reason_shapes=[], reason_values=[], relative_to_rest=False)  # fmt: skip
    assert _holders(state, "surprise") and _holders(state, visit)
    state.purge(visit)
    assert _holders(state, "surprise") == []  # nothing it inferred
    # The pseudonym only where forgetting needs it: the purged-id memory (so a late message
    # cannot revive it), the change log (the page is told to drop it) and the agent's pointer
    # to the visit it sent about last (which now points at nothing).
    assert {re.sub(r"\[\d+\]", "[n]", place) for place in _holders(state, visit)} <= {
        "state._purged[key]",
        "state._changes[n][n]",
        "state._agents['kiosk-40'].current_visit",
    }
