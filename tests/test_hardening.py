"""Issue 14: what a hostile web page, kiosk or local process could do, each case closed.

DNS rebinding and forged POSTs against the viewer page and the dashboard, consent that waits
for the wrong face, forged `seq` and `ts`, floods of agent ids and visits, deeply nested JSON,
non-finite layout numbers, planted symlinks, event-stream floods, client-id takeover and the
embedded broker's credentials. The seams faked here are the camera and the face model.
"""

from __future__ import annotations

import gc
import http.client
import json
import logging
import re
import stat
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from broker import credentials, wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import get_json, require
from dashboard import create_app
from dashboard.api import open_stream_count
from dashboard.server import DashboardServer
from dashboard.state import MAX_AGENTS, DashboardState
from edge.agent import Agent, AgentConfig
from edge.face import FaceAnalyzer, FaceObservation
from edge.publisher import MqttAuth, SignalPublisher
from edge.sources import Frame, FrameSource
from edge.viewer import TOKEN_HEADER, create_viewer_app

FACE = FaceObservation(
    landmarks=np.random.default_rng(0).uniform(0.3, 0.7, (478, 3)).astype(np.float32),
    blendshapes={"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9},
    transform=np.eye(4),
)


class Frames(FrameSource):
    """Blank frames 20 ms apart, paced in wall time like a camera, held while `gate` is shut."""

    kind = "camera"

    def __init__(self, n: int, gate: threading.Event | None = None):
        self.n, self.gate, self.width, self.height, self.fps = n, gate, 8, 8, 50.0
        self.index = 0

    def frames(self) -> Iterator[Frame]:
        image = np.zeros((8, 8, 3), np.uint8)
        for i in range(self.n):
            if self.gate is not None:
                self.gate.wait()
            time.sleep(0.02)
            self.index = i
            yield Frame(image, i * 20, i, time.monotonic())


class Faces(FaceAnalyzer):
    """A face while `present()` says so."""

    name, version = "scripted", "1"

    def __init__(self, present):
        self.present = present

    def analyze(self, image, t_ms, still=False):
        return [FACE] if self.present() else []


def make_agent(url: str, source: FrameSource, analyzer: FaceAnalyzer, **config) -> Agent:
    config = {"expression_model": "blendshapes", "heartbeat_s": 0.2, "consent": "viewer",
              **config}  # fmt: skip
    return Agent(AgentConfig(broker_url=url, **config), source, analyzer)


# --- 1. trusted hosts and the page token -------------------------------------------------------


@pytest.fixture
def viewer_app():
    agent = make_agent("mqtt://127.0.0.1:1", Frames(0), Faces(lambda: False))
    app = create_viewer_app(agent)
    return agent, app, app.test_client()


def page_token(client, host: str = "127.0.0.1:8001") -> str:
    page = client.get("/", headers={"Host": host}).get_data(as_text=True)
    return re.search(r'<meta name="onlooker-token" content="([^"]+)">', page).group(1)


def test_the_viewer_refuses_a_rebound_host_name(viewer_app) -> None:
    """The issue's curl: Host evil.example on the viewer's port pressed "I agree"."""
    agent, _, client = viewer_app
    token = page_token(client)
    evil = {"Host": "evil.example:8001", TOKEN_HEADER: token}
    assert client.post("/api/consent", json={"consent": True}, headers=evil).status_code == 400
    assert not agent.consented
    for path in ("/", "/api/status", "/api/content"):
        assert client.get(path, headers={"Host": "evil.example:8001"}).status_code == 400, path
    for host in ("127.0.0.1:8001", "localhost:8001", "[::1]:8001", "127.0.0.1"):
        assert client.get("/api/status", headers={"Host": host}).status_code == 200, host
    for host in ("localhost.evil.example", "127.0.0.1.nip.io:8001", "127.0.0.1:80:80", ""):
        assert client.get("/api/status", headers={"Host": host}).status_code == 400, host


def test_every_viewer_post_needs_the_pages_token(viewer_app) -> None:
    agent, _, client = viewer_app
    host = {"Host": "127.0.0.1:8001"}
    token = page_token(client)
    bodies = {
        "/api/consent": {"consent": True},
        "/api/item": {"item": None},
        "/api/calibration": {"kind": "gaze", "phase": "start"},
        "/api/forget": {},
    }
    for path, body in bodies.items():
        for headers in (host, {**host, TOKEN_HEADER: "x" + token}):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 403, (path, response.status_code)
    assert not agent.consented
    ok = client.post("/api/consent", json={"consent": True}, headers={**host, TOKEN_HEADER: token})
    assert ok.status_code == 200 and agent.consented
    # The page's scripts send it: every POST in them carries the header.
    for script in ("viewer.js", "reader.js"):
        text = client.get(f"/static/{script}", headers=host).get_data(as_text=True)
        posts = text.count('method: "POST"')
        assert posts and text.count('"X-Onlooker-Token"') == posts, script


def test_non_finite_layout_numbers_are_a_400_not_a_500(viewer_app) -> None:
    _, _, client = viewer_app
    headers = {"Host": "127.0.0.1:8001", TOKEN_HEADER: page_token(client),
               "Content-Type": "application/json"}  # fmt: skip
    for value in ("Infinity", "-Infinity", "NaN", "1e308"):
        body = f'{{"item": "page-1", "topic": "travel", "words": 10, "lines": {value}}}'
        response = client.post("/api/item", data=body, headers=headers)
        assert response.status_code == 400, (value, response.status_code)
    deep = "[" * 1000 + "]" * 1000
    response = client.post("/api/item", data=deep, headers=headers)
    assert response.status_code == 400


@pytest.fixture
def dashboard_app():
    return create_app({"MQTT_AUTOSTART": False, "TESTING": True})


def test_the_dashboard_refuses_a_rebound_host_name(dashboard_app) -> None:
    client = dashboard_app.test_client()
    evil = {"Host": "evil.example:8000"}
    for path in ("/", "/api/visits", "/api/agents", "/healthz"):
        assert client.get(path, headers=evil).status_code == 400, path
    # The reset: Origin and Host both the attacker's; the Origin once matched host_url.
    reset = client.post(
        "/api/admin/reset", json={}, headers={**evil, "Origin": "http://evil.example:8000"}
    )
    assert reset.status_code == 400
    assert client.get("/api/visits", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_the_dashboards_origin_check_uses_its_own_host_and_port(dashboard_app) -> None:
    client = dashboard_app.test_client()
    base = {"base_url": "http://127.0.0.1:8000"}

    def reset(origin: str, host: str = "127.0.0.1:8000") -> int:
        headers = {"Origin": origin, "Host": host}
        return client.post("/api/admin/reset", json={}, headers=headers, **base).status_code

    assert reset("http://evil.example:8000") == 403
    assert reset("http://evil.example:8000", host="127.0.0.1:8000") == 403
    assert reset("http://127.0.0.1:9999") == 403  # another local page, another port
    assert reset("null") == 403
    assert reset("http://127.0.0.1:8000") == 200
    assert reset("http://localhost:8000", host="localhost:8000") == 200


def test_a_configured_host_name_is_trusted_and_no_other() -> None:
    app = create_app(
        {"MQTT_AUTOSTART": False, "ALLOWED_HOSTS": "kiosk-board.local", "BIND_HOST": "0.0.0.0"}
    )
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "kiosk-board.local:8000"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "0.0.0.0:8000"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "evil.example:8000"}).status_code == 400


# --- 2. consent waits a few seconds for its face, and only for that face ----------------------


def test_consent_given_with_nobody_there_lapses_when_no_face_comes(mosquitto, wiretap_factory):
    """The issue: "I agree" with nobody at the camera; a face 30 s later was watched."""
    tap = wiretap_factory(mosquitto.url)
    face = threading.Event()
    agent = make_agent(mosquitto.url, Frames(100), Faces(face.is_set), consent_wait_s=0.6)
    thread = threading.Thread(target=agent.run)
    thread.start()
    try:
        time.sleep(0.3)
        agent.give_consent()
        assert agent.status()["consented"]
        time.sleep(1.0)  # nobody came within consent_wait_s
        assert not agent.status()["consented"]
        face.set()  # now someone arrives
        time.sleep(0.6)
        assert agent.visits_started == 0 and agent.consents_lapsed == 1
    finally:
        agent.stop()
        thread.join(30)
    kinds = {tap.topics.parse(t).kind for t, _, _ in tap.snapshot()}
    assert kinds <= {"available", "heartbeat"}, tap.dump()


def test_consent_given_with_nobody_there_starts_a_visit_for_a_face_in_time(mosquitto):
    face = threading.Event()
    agent = make_agent(mosquitto.url, Frames(60), Faces(face.is_set), consent_wait_s=3.0)
    thread = threading.Thread(target=agent.run)
    thread.start()
    try:
        time.sleep(0.3)
        agent.give_consent()
        time.sleep(0.3)
        face.set()
        deadline = time.monotonic() + 5
        while agent.visits_started == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.visits_started == 1 and agent.consents_lapsed == 0
    finally:
        agent.stop()
        thread.join(30)


def test_consent_belongs_to_the_face_present_when_it_was_given(mosquitto, wiretap_factory):
    """A face is there when "I agree" is pressed, leaves before its visit starts; the next
    face, well within consent_wait_s, is somebody else's and is not watched."""
    tap = wiretap_factory(mosquitto.url)
    gate = threading.Event()
    gate.set()
    face = threading.Event()
    face.set()
    source = Frames(200, gate=gate)
    agent = make_agent(mosquitto.url, source, Faces(face.is_set), consent_wait_s=10.0)
    thread = threading.Thread(target=agent.run)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not agent.face_present and time.monotonic() < deadline:
            time.sleep(0.02)
        gate.clear()  # the camera stalls with the face on its last frame …
        time.sleep(0.1)
        agent.give_consent()  # … as the person presses "I agree"
        face.clear()  # and walks away
        gate.set()
        time.sleep(1.5)  # frames without a face
        assert not agent.status()["consented"]
        face.set()  # someone else, 1.5 s later
        time.sleep(0.5)
        assert agent.visits_started == 0 and agent.consents_lapsed == 1
    finally:
        agent.stop()
        thread.join(30)
    kinds = {tap.topics.parse(t).kind for t, _, _ in tap.snapshot()}
    assert kinds <= {"available", "heartbeat"}, tap.dump()


# --- 5. forged seq and ts ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def beat(agent: str, seq: int, ts: float | None = None) -> tuple[wire.TopicInfo, dict]:
    message = wire.message(
        "heartbeat", agent=agent, seq=seq, ts=time.time() if ts is None else ts, fps=1,
        latency_ms=1, model="m", model_version="1", source="video", uptime_s=1, watching=False,
    )  # fmt: skip
    return wire.TopicInfo("heartbeat", agent, None), message


def signal(kind: str, agent: str, visit: str, seq: int, **fields) -> tuple[wire.TopicInfo, dict]:
    values = {
        "visit": dict(event="start", consent="viewer", scopes=["expression"]),
        "expression": dict(label="joy", score=0.8, valence=0.6, arousal=0.5,
                           reason_units=[], reason_shapes=[], reason_values=[],
                           relative_to_rest=False),
        "attention": dict(present=True, faces=1, looking=True, yaw=0.0, pitch=0.0, roll=0.0,
                          distance_cm=60, blinks=0, look_aways=0),
    }[kind]  # fmt: skip
    values.update(fields)
    message = wire.message(kind, agent=agent, seq=seq, ts=time.time(), visit=visit, **values)
    return wire.TopicInfo(kind, agent, visit), message


def refused(state: DashboardState, info: wire.TopicInfo, message: dict) -> str | None:
    try:
        state.apply(info, message)
    except wire.WireError as exc:
        return exc.reason
    return None


def test_a_seq_jump_of_2_to_the_53_is_refused_and_counted_for_its_agent() -> None:
    """The issue: one agent's seq jump of 2^53 made the global `dropped` counter 9e15."""
    state = DashboardState(clock=Clock())
    for seq in range(3):
        state.apply(*beat("kiosk-1", seq))
    assert refused(state, *beat("kiosk-1", 2**53)) == "seq_jump"
    assert state.counters()["dropped"] == 0
    assert state.agent("kiosk-1")["rejected"] == {"seq_jump": 1}
    assert state.agent("kiosk-1")["seq"] == 2
    assert state.apply(*beat("kiosk-1", 3))  # the real agent goes on undisturbed
    assert state.counters()["dropped"] == 0


def test_a_long_silence_allows_a_proportionate_seq_jump() -> None:
    """A dashboard away for an hour misses ~100,000 of a busy agent's messages: that gap is
    counted, not refused; the bound grows with the time since the agent's last message."""
    clock = Clock()
    state = DashboardState(clock=clock)
    state.apply(*beat("kiosk-1", 0))
    clock.now += 3600
    assert state.apply(*beat("kiosk-1", 100_000))
    assert state.counters()["dropped"] == 99_999


def test_a_forged_high_seq_does_not_freeze_a_value_on_screen() -> None:
    state = DashboardState(clock=Clock())
    visit = "a1b2c3d4e5f60718"
    state.apply(*signal("visit", "kiosk-1", visit, 0))
    state.apply(*signal("expression", "kiosk-1", visit, 1, label="joy"))
    assert refused(state, *signal("expression", "kiosk-1", visit, 2**52, label="anger"))
    state.apply(*signal("expression", "kiosk-1", visit, 2, label="sadness"))
    assert state.visit(visit)["expression"]["label"] == "sadness"


def test_a_timestamp_far_in_the_future_is_refused() -> None:
    """The issue: `ts` up to the year 5138 was accepted."""
    state = DashboardState(clock=Clock())
    state.apply(*beat("kiosk-1", 0))
    assert refused(state, *beat("kiosk-1", 1, ts=99_999_999_999.0)) == "ts_future"
    assert refused(state, *beat("kiosk-1", 2, ts=time.time() + 3600)) == "ts_future"
    assert state.apply(*beat("kiosk-1", 3, ts=time.time() + 5))  # a skewed clock is shown
    assert state.agent("kiosk-1")["rejected"] == {"ts_future": 2}
    assert refused(state, *beat("kiosk-new", 0, ts=99_999_999_999.0)) == "ts_future"
    assert state.agent("kiosk-new") is None  # a refused message makes no agent


def test_seq_and_ts_rejects_reach_healthz_and_metrics(dashboard_app) -> None:
    subscriber = dashboard_app.extensions["onlooker_mqtt"]
    topics = wire.Topics()

    def deliver(message: dict) -> None:
        msg = mqtt.MQTTMessage(topic=topics.for_message(message).encode())
        msg.payload = wire.encode(message)
        subscriber._on_message(None, None, msg)  # paho's callback, as the network thread calls it
        assert subscriber.drain() == 1  # what the worker thread does

    deliver(beat("kiosk-1", 0)[1])
    deliver(beat("kiosk-1", 2**53)[1])
    deliver(beat("kiosk-1", 1, ts=9e10)[1])
    client = dashboard_app.test_client()
    health = client.get("/healthz").get_json()
    assert health["rejected"] == {"seq_jump": 1, "ts_future": 1} and health["dropped"] == 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'onlooker_agent_rejected_messages{agent="kiosk-1"} 2' in metrics


def test_json_nested_1000_deep_is_a_counted_reject_not_a_recursion_error(dashboard_app) -> None:
    subscriber = dashboard_app.extensions["onlooker_mqtt"]
    msg = mqtt.MQTTMessage(topic=wire.Topics().heartbeat("kiosk-1").encode())
    msg.payload = b"[" * 1000 + b"]" * 1000
    subscriber._on_message(None, None, msg)
    assert subscriber.drain() == 1
    health = dashboard_app.test_client().get("/healthz").get_json()
    assert health["rejected"] == {"too_deep": 1}
    info = wire.TopicInfo("heartbeat", "kiosk-1", None)
    with pytest.raises(wire.WireError, match="too_deep"):
        wire.decode(info, b'{"a":' * 9 + b"1" + b"}" * 9)
    # Brackets inside strings are text, not nesting.
    nested_text = wire.encode(beat("kiosk-1", 0)[1]).replace(b'"m"', b'"[[[[[[[[[[[["')
    assert wire.decode(info, nested_text)["model"] == "[" * 12


# --- 4. the agent table and the visits are bounded; nobody evicts another agent's live visit ---


def test_a_flood_of_made_up_agent_ids_is_bounded_and_forgotten() -> None:
    """The issue: 1,500 made-up agent ids x 2 messages raised the dashboard's memory from 63
    to 410 MB, never freed. Each id here also opens the widest seq gap allowed."""
    clock = Clock()
    state = DashboardState(clock=clock, heartbeat_timeout_s=10)
    state.apply(*beat("kiosk-real", 0))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    refusals: dict[str, int] = {}
    for i in range(1500):
        agent = f"fake-{i}"
        for seq in (0, 2040):
            reason = refused(state, *beat(agent, seq))
            if reason:
                refusals[reason] = refusals.get(reason, 0) + 1
        if i % 100 == 99:
            clock.now += 4  # a heartbeat timeout every 250 ids: the silent ones may go
            state.apply(*beat("kiosk-real", i))
    held = state.counters()["agents"]
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"\n1500 made-up agent ids x 2 messages: {held} agents held (cap {MAX_AGENTS}), "
          f"{used / 1e6:.1f} MB for the table, refused {refusals}")  # fmt: skip
    assert held <= MAX_AGENTS and state.agent("kiosk-real")["online"]
    assert used < 20e6  # 59 MB with a 2048-seq window of missed messages; 8 MB here
    clock.now += 3600  # silent for an hour: forgotten
    state.apply(*beat("kiosk-real", 2000))
    state.visits()
    assert [a["agent"] for a in state.agents()] == ["kiosk-real"]


def test_a_full_table_of_online_agents_refuses_a_new_id() -> None:
    state = DashboardState(clock=Clock(), max_agents=3)
    for agent in ("kiosk-1", "kiosk-2", "kiosk-3"):
        state.apply(*beat(agent, 0))
    assert refused(state, *beat("kiosk-4", 0)) == "agent_cap"
    assert sorted(a["agent"] for a in state.agents()) == ["kiosk-1", "kiosk-2", "kiosk-3"]


def test_one_agents_visit_flood_never_evicts_another_agents_live_visit() -> None:
    """The issue: once 500 visits were held, one kiosk's new visits pushed out other kiosks'
    live ones, and the rebuilt visit had no scopes (no consent re-check)."""
    state = DashboardState(clock=Clock())
    live = "0000aaaa0000aaaa"
    state.apply(*signal("visit", "kiosk-good", live, 0))
    seq = 0
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(2000):
        visit = f"{i:016x}"
        for kind in ("visit", "expression", "attention"):
            seq += 1
            fields = {"scopes": ["expression", "attention"]} if kind == "visit" else {}
            state.apply(*signal(kind, "kiosk-flood", visit, seq, **fields))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    held = state.counters()["visits"]
    print(f"\n2000 visits from one agent: {held} visits held, {used / 1e6:.1f} MB")
    assert state.visit(live) is not None and state.visit(live)["active"]
    assert held == 1 + state.max_visits_per_agent
    assert state.apply(*signal("expression", "kiosk-good", live, 1))
    assert refused(state, *signal("attention", "kiosk-good", live, 2)) == "not_consented"


def test_the_global_cap_takes_idle_visits_then_the_agents_own_never_anothers_live_one() -> None:
    state = DashboardState(clock=Clock(), max_visits=3, max_visits_per_agent=3)
    state.apply(*signal("visit", "kiosk-a", "aaaaaaaa00000001", 0))
    state.apply(*signal("visit", "kiosk-b", "bbbbbbbb00000001", 0))
    state.apply(*signal("visit", "kiosk-b", "bbbbbbbb00000002", 1, event="end"))
    state.apply(*signal("visit", "kiosk-c", "cccccccc00000001", 0))  # the ended one goes
    assert state.visit("bbbbbbbb00000002") is None
    state.apply(*signal("visit", "kiosk-c", "cccccccc00000002", 1))  # its own oldest goes
    held = sorted(v["visit"] for v in state.visits())
    assert held == ["aaaaaaaa00000001", "bbbbbbbb00000001", "cccccccc00000002"]
    # Every visit held is another agent's live one: a new agent's visit is refused.
    assert refused(state, *signal("visit", "kiosk-d", "dddddddd00000001", 0)) == "visit_cap"
    assert state.agent("kiosk-d")["rejected"] == {"visit_cap": 1}


def test_a_visit_rebuilt_after_eviction_keeps_its_consent_scopes() -> None:
    state = DashboardState(clock=Clock(), max_visits_per_agent=2)
    first = "1111111111111111"
    state.apply(*signal("visit", "kiosk-1", first, 0, scopes=["expression"]))
    state.apply(*signal("visit", "kiosk-1", "2222222222222222", 1))
    state.apply(*signal("visit", "kiosk-1", "3333333333333333", 2))  # `first` is evicted
    assert state.visit(first) is None
    assert refused(state, *signal("attention", "kiosk-1", first, 3)) == "not_consented"
    assert state.visit(first) is None
    state.apply(*signal("expression", "kiosk-1", first, 4))  # rebuilt, with its scopes
    assert state.visit(first)["scopes"] == ["expression"]
    assert refused(state, *signal("attention", "kiosk-1", first, 5)) == "not_consented"


# --- 7. event streams are capped --------------------------------------------------------------


def open_stream(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", "/api/stream")
    return connection, connection.getresponse()


def test_event_streams_are_capped_and_a_closed_one_frees_its_slot() -> None:
    """The issue: 60 idle event streams held 64 server threads."""
    app = create_app({"MQTT_AUTOSTART": False, "MAX_STREAMS": 4, "SSE_KEEPALIVE_S": 0.2,
                      "SSE_POLL_S": 0.1})  # fmt: skip
    threads_before = threading.active_count()
    with DashboardServer(app, port=0) as server:
        opened, statuses = [], []
        for _ in range(60):
            connection, response = open_stream(server.url)
            statuses.append(response.status)
            if response.status == 200:
                opened.append((connection, response))  # the response holds the socket
            else:
                assert json.loads(response.read())["error"].startswith("too many")
                connection.close()
        threads = threading.active_count() - threads_before
        print(f"\n60 stream requests: {statuses.count(200)} open, {statuses.count(503)} refused, "
              f"{threads} server threads")  # fmt: skip
        assert statuses.count(200) == 4 and statuses.count(503) == 56
        assert threads <= 4 + 3
        for closing in opened.pop():
            closing.close()  # the server notices at its next keep-alive
        assert wait_for(lambda: open_stream_count(app) == 3, 5)
        connection, response = open_stream(server.url)
        assert response.status == 200
        connection.close()
        for connection, response in opened:
            response.close()
            connection.close()


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- 8. the smaller items ---------------------------------------------------------------------


def test_the_credentials_writer_refuses_a_planted_symlink(tmp_path: Path) -> None:
    out = tmp_path / "onlooker"
    out.mkdir()
    elsewhere = tmp_path / "attacker-readable"
    for planted in ("passwd", "kiosk-1.env", ".passwd.tmp"):
        target = out / planted
        target.symlink_to(elsewhere)
        if planted.startswith("."):  # the old fixed temporary name: now never used
            credentials.generate(out, ["kiosk-1"], use_mosquitto_passwd=False)
        else:
            with pytest.raises(credentials.CredentialsError, match="symbolic link"):
                credentials.generate(out, ["kiosk-1"], use_mosquitto_passwd=False)
        assert not elsewhere.exists(), planted
        target.unlink()
    written = credentials.generate(out, ["kiosk-1"], use_mosquitto_passwd=False)
    assert stat.S_IMODE(written.passwd.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["acl", "dashboard.env", "kiosk-1.env",
                                                       "passwd"]  # fmt: skip


def test_the_dashboard_warns_before_sending_its_password_in_clear_text(caplog) -> None:
    settings = {"MQTT_AUTOSTART": False, "BROKER_USERNAME": "onlooker_dashboard",
                "BROKER_PASSWORD": "secret"}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="dashboard.mqtt"):
        for url in ("mqtt://10.9.8.7:1", "mqtt://127.0.0.1:1"):
            subscriber = create_app({**settings, "BROKER_URL": url}).extensions["onlooker_mqtt"]
            subscriber.start()
            subscriber.stop()
    warnings = [r.getMessage() for r in caplog.records if "clear text" in r.getMessage()]
    assert len(warnings) == 1 and "10.9.8.7" in warnings[0]
    assert "secret" not in caplog.text


# --- 3. a client id cannot be taken over on production Mosquitto ------------------------------


def test_a_credential_holder_cannot_take_over_another_kiosks_client_id(production_mosquitto):
    """The issue: agents' client ids are predictable (onlooker-agent-<id>); kiosk-2 connecting
    under kiosk-1's id kept kiosk-1 flapping offline (20 of 40 samples online in 20 s)."""
    broker = production_mosquitto(["kiosk-1", "kiosk-2"])
    events: list[str] = []

    def client(user: str) -> mqtt.Client:
        made = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="onlooker-agent-kiosk-1")
        made.username_pw_set(*broker.credentials(user))
        made.on_connect = lambda c, u, f, rc, p: events.append(f"{user} connect {rc}")
        made.on_disconnect = lambda c, u, f, rc, p: events.append(f"{user} disconnect {rc}")
        made.connect("127.0.0.1", broker.port)
        made.loop_start()
        return made

    victim = client("kiosk-1")
    assert wait_for(lambda: "kiosk-1 connect Success" in events, 5), events
    intruder = client("kiosk-2")
    assert wait_for(lambda: "kiosk-2 connect Success" in events, 5), events
    time.sleep(1.0)
    try:
        assert not any(e.startswith("kiosk-1 disconnect") for e in events), events
        assert victim.is_connected() and intruder.is_connected()
        # A listener setting placed before its `listener` line would open Mosquitto's
        # default listener on port 1883, on every interface: only the test's port is open.
        assert "port 1883" not in broker.log.read_text()
    finally:
        for made in (victim, intruder):
            made.disconnect()
            made.loop_stop()


# --- 6. the embedded broker: per-run credentials and the production ACL ------------------------


def test_the_embedded_mosquitto_takes_only_this_runs_credentials_and_holds_the_acl(
    dashboard_on,
) -> None:
    """The issue: any local process could subscribe to everything on the embedded broker and
    publish as the agent (a forged purge deleted a real visit)."""
    require(find_mosquitto() is not None, "mosquitto is not installed")
    with EmbeddedBroker(prefer="mosquitto", agents=["kiosk-1"]) as broker:
        assert broker.secured
        user, password = broker.credentials("dashboard")
        dashboard = dashboard_on(broker.url, BROKER_USERNAME=user, BROKER_PASSWORD=password)
        publisher = SignalPublisher(broker.url, "kiosk-1",
                                    auth=MqttAuth(*broker.credentials("kiosk-1")))  # fmt: skip
        publisher.start(wait_s=5)
        visit = "7e57000000000001"
        try:
            publisher.publish("visit", visit=visit, event="start", consent="viewer",
                              scopes=["expression"])  # fmt: skip
            assert wait_for(lambda: visit_ids(dashboard) == [visit], 5)

            # A local process without this run's password: no connection at all.
            for creds in (None, ("kiosk-1", "guess"), ("onlooker_dashboard", "")):
                assert connack(broker.port, creds).is_failure, creds
            # The agent's own credentials: its topics only, and nothing to read.
            intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="x")
            intruder.username_pw_set(*broker.credentials("kiosk-1"))
            seen: list[str] = []
            intruder.on_message = lambda c, u, m: seen.append(m.topic)
            intruder.connect("127.0.0.1", broker.port)
            intruder.loop_start()
            try:
                intruder.subscribe("onlooker/#", qos=1)
                forged = wire.message("purge", agent="kiosk-2", seq=1, ts=time.time(),
                                      visit=visit, reason="forget")  # fmt: skip
                topic = wire.Topics().for_message(forged)
                intruder.publish(topic, wire.encode(forged), qos=1).wait_for_publish(5)
                publisher.publish("expression", visit=visit, label="joy", score=0.8, valence=0.6,
                                  arousal=0.5, reason_units=[], reason_shapes=[],
                                  reason_values=[], relative_to_rest=False)  # fmt: skip
                assert wait_for(lambda: (visit_json(dashboard, visit) or {}).get("expression"), 5)
                time.sleep(0.5)
            finally:
                intruder.disconnect()
                intruder.loop_stop()
            assert seen == []  # nothing to read for an agent
            assert visit_ids(dashboard) == [visit]
            # kiosk-2's topic is not kiosk-1's to write: the broker dropped the forged purge
            # (had it arrived, the dashboard would have counted a visit_agent_mismatch).
            assert health(dashboard)["rejected"] == {}
        finally:
            publisher.stop()


def test_the_embedded_broker_stays_open_by_default_and_amqtt_says_it_cannot_enforce(
    caplog,
) -> None:
    with EmbeddedBroker(prefer="amqtt", agents=["kiosk-1"]) as broker:
        assert not broker.secured and broker.client_env("kiosk-1") == {}
        assert not connack(broker.port, None).is_failure
    assert "enforces no credentials and no ACL" in caplog.text


def connack(port: int, creds: tuple[str, str] | None):
    codes: list = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{time.time_ns()}")
    if creds is not None:
        client.username_pw_set(*creds)
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert wait_for(lambda: codes, 5)
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def visit_ids(dashboard) -> list[str]:
    return [v["visit"] for v in get_json(dashboard.url + "/api/visits")["visits"]]


def visit_json(dashboard, visit: str) -> dict | None:
    return next((v for v in get_json(dashboard.url + "/api/visits")["visits"]
                 if v["visit"] == visit), None)  # fmt: skip


def health(dashboard) -> dict:
    return get_json(dashboard.url + "/healthz")
