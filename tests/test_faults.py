"""Faults on the wire, each with a real Mosquitto started here: the broker restarts mid-visit,
the network is cut for 10 s, an agent is killed, the dashboard restarts; and the agent's
bounded outbox (order, time-to-live, overflow, purge) while the broker is away.

The face model and the camera are the seams faked for the in-process agents: a scripted
analyzer sees a face on every frame, so a visit runs as long as the test wants.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from broker import wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import agent_json, get_json, require, start_agent, stop, wait_until
from edge.agent import Agent, AgentConfig
from edge.face import FaceAnalyzer, FaceObservation
from edge.publisher import MqttAuth, SignalPublisher
from edge.sources import Frame, FrameSource

pytestmark = pytest.mark.integration

FACE = FaceObservation(
    landmarks=np.random.default_rng(0).uniform(0.3, 0.7, (478, 3)).astype(np.float32),
    blendshapes={"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9},
    transform=np.eye(4),
)
VISIT = "feedc0de12345678"
ATTENTION = dict(
    present=True, faces=1, looking=True, yaw=0.0, pitch=0.0, roll=0.0, distance_cm=60,
    blinks=0, look_aways=0,
)  # fmt: skip


class EndlessSource(FrameSource):
    """Blank frames at about 50 per second until the agent stops."""

    kind = "video"

    def frames(self) -> Iterator[Frame]:
        image = np.zeros((8, 8, 3), np.uint8)
        index = 0
        while True:
            time.sleep(0.02)
            yield Frame(image, index * 20, index, time.monotonic())
            index += 1


class AlwaysAFace(FaceAnalyzer):
    name, version = "scripted", "1"

    def analyze(self, image, t_ms, still=False):
        return [FACE]


@pytest.fixture
def mosquitto_binary() -> None:
    require(find_mosquitto() is not None, "mosquitto is not installed")


def run_agent(url: str, agent_id: str, **config) -> tuple[Agent, threading.Thread]:
    config = {"heartbeat_s": 0.5, "consent": "recorded-source", **config}
    agent = Agent(
        AgentConfig(broker_url=url, agent_id=agent_id, **config), EndlessSource(), AlwaysAFace()
    )
    thread = threading.Thread(target=agent.run, name=f"agent-{agent_id}", daemon=True)
    thread.start()
    assert agent.publisher._connected.wait(10), "agent did not connect"
    return agent, thread


def halt(agent: Agent, thread: threading.Thread) -> None:
    agent.stop()
    thread.join(15)


def visit_of(dashboard, agent_id: str) -> dict | None:
    visits = get_json(dashboard.url + "/api/visits")["visits"]
    return next((v for v in visits if v["agent"] == agent_id and v["active"]), None)


def signal_seqs(tap, agent_id: str) -> list[int]:
    """Seqs of the agent's QoS 1 messages (everything but heartbeats), in arrival order."""
    return [m["seq"] for m in tap.decoded() if m["agent"] == agent_id and m["type"] != "heartbeat"]


# --- the broker goes away -----------------------------------------------------------------


def test_broker_restart_mid_visit_the_visit_goes_on(mosquitto_binary, dashboard_on):
    broker = EmbeddedBroker(prefer="mosquitto").start()
    port = broker.port
    dashboard = dashboard_on(broker.url)
    agent, thread = run_agent(broker.url, "restart-1")
    try:
        before = wait_until(lambda: visit_of(dashboard, "restart-1"), 10)
        assert before, get_json(dashboard.url + "/api/visits")
        broker.stop()
        assert wait_until(lambda: not agent.publisher.connected, 5)
        broker = EmbeddedBroker(port=port, prefer="mosquitto").start()
        # Both reconnect by themselves (back-off from 1 s); the same visit carries on.
        after = wait_until(
            lambda: (v := visit_of(dashboard, "restart-1")) and v["messages"] > before["messages"]
            and (a := agent_json(dashboard, "restart-1")) and a["online"] and v,
            20,
        )  # fmt: skip
        assert after and after["visit"] == before["visit"], get_json(dashboard.url + "/api/visits")
        assert len([v for v in get_json(dashboard.url + "/api/visits")["visits"]]) == 1
        health = get_json(dashboard.url + "/healthz")
        assert health["rejected"] == {}, health
        assert agent.publisher.stats()["dropped_overflow"] == 0
    finally:
        halt(agent, thread)
        broker.stop()


def test_a_network_cut_of_ten_seconds_is_replayed_in_order(mosquitto_binary, wiretap_factory):
    first = EmbeddedBroker(prefer="mosquitto").start()
    port = first.port
    before_tap = wiretap_factory(first.url)
    # Heartbeats are QoS 0 (not kept while away); make them rare so every seq is a signal.
    agent, thread = run_agent(first.url, "cut-1", heartbeat_s=600.0)
    second = None
    try:
        assert before_tap.wait_for(lambda: len(signal_seqs(before_tap, "cut-1")) >= 5, 10)
        first.stop()
        cut_at = time.monotonic()
        assert wait_until(lambda: not agent.publisher.connected, 5)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - cut_at)))
        second = EmbeddedBroker(port=port, prefer="mosquitto").start()
        after_tap = wiretap_factory(second.url)  # subscribed before the agent's next retry
        assert wait_until(lambda: agent.publisher.connected, 20), "agent did not come back"
        assert after_tap.wait_for(lambda: agent.publisher.stats()["queued"] == 0, 10)
        stats = agent.publisher.stats()
        # About 10 s of a visit: attention and expression at 5 Hz each.
        assert stats["buffered"] >= 50, stats
        assert stats["replayed"] == stats["buffered"], stats
        assert stats["expired"] == stats["dropped_overflow"] == 0, stats
        live = len(signal_seqs(after_tap, "cut-1"))
        assert after_tap.wait_for(lambda: len(signal_seqs(after_tap, "cut-1")) > live + 5, 10)
    finally:
        halt(agent, thread)
        first.stop()
        if second is not None:
            second.stop()
    seen_before, seen_after = signal_seqs(before_tap, "cut-1"), signal_seqs(after_tap, "cut-1")
    # Replayed in order, and the two sides of the cut join without a hole: nothing lost.
    assert seen_after == sorted(seen_after), seen_after[:40]
    joined = sorted(set(seen_before) | set(seen_after))
    heartbeats = {m["seq"] for m in before_tap.of_type("heartbeat")}
    expected = [s for s in range(joined[0], joined[-1] + 1) if s not in heartbeats]
    assert joined == expected, sorted(set(expected) - set(joined))[:20]
    # Every replayed message carries the time it was made, not the time it was sent.
    replayed = [m for m in after_tap.decoded() if m["type"] != "heartbeat"][: stats["replayed"]]
    assert replayed and replayed[0]["ts"] <= cut_at - time.monotonic() + time.time() + 1


def test_an_agent_killed_with_sigkill_goes_offline_through_its_will_on_production_mosquitto(
    production_mosquitto, dashboard_on, sample, tmp_path, monkeypatch
):
    broker = production_mosquitto(["kill-1"])
    user, password = broker.credentials("dashboard")
    dashboard = dashboard_on(
        broker.url, BROKER_USERNAME=user, BROKER_PASSWORD=password, HEARTBEAT_TIMEOUT_S=30.0
    )
    for name, value in broker.env["kill-1"].items():
        monkeypatch.setenv(name, value)  # the agent takes its credentials from the environment
    agent = start_agent(
        broker.url, sample("WolfgangLanger_Pexels.mp4"), tmp_path / "agent.log",
        "--agent-id", "kill-1",
    )  # fmt: skip
    try:
        visit = wait_until(lambda: visit_of(dashboard, "kill-1"), 40)
        assert visit, (tmp_path / "agent.log").read_text()[-3000:]
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        killed_at = time.monotonic()
        # The ACL lets an agent's will through on its own `available` topic only: at once.
        assert wait_until(lambda: not agent_json(dashboard, "kill-1")["online"], 5)
        assert time.monotonic() - killed_at < 3.0
        assert get_json(f"{dashboard.url}/api/visits/{visit['visit']}")["visit"]["active"] is False
        assert get_json(dashboard.url + "/healthz")["rejected"] == {}
    finally:
        stop(agent)


def test_dashboard_restarted_while_agents_run_catches_up(mosquitto_binary, dashboard_on):
    with EmbeddedBroker(prefer="mosquitto") as broker:
        first = dashboard_on(broker.url)
        agents = [run_agent(broker.url, f"kiosk-{i}") for i in (1, 2)]
        try:
            assert wait_until(lambda: all(visit_of(first, f"kiosk-{i}") for i in (1, 2)), 10)
            first.stop()
            time.sleep(1.0)  # the agents go on publishing to nobody
            second = dashboard_on(broker.url)
            # Retained `online` and the next heartbeat bring the agents back, the next signal
            # the visits: nothing wrong shown meanwhile, nothing rejected.
            assert wait_until(
                lambda: all((a := agent_json(second, f"kiosk-{i}")) and a["online"]
                            and visit_of(second, f"kiosk-{i}") for i in (1, 2)),
                10,
            )  # fmt: skip
            visits = get_json(second.url + "/api/visits")["visits"]
            ids = {v["agent"]: v["visit"] for v in visits}
            assert ids == {
                f"kiosk-{i}": a.visit.id for i, (a, _) in zip((1, 2), agents, strict=True)
            }
            assert all(v["attention"]["faces"] == 1 for v in visits)
            assert get_json(second.url + "/healthz")["rejected"] == {}
        finally:
            for agent, thread in agents:
                halt(agent, thread)


# --- the outbox while the broker is away --------------------------------------------------


@pytest.fixture
def down_port(mosquitto_binary) -> Iterator[int]:
    """A port where a broker will start later (nothing listens yet)."""
    from conftest import free_port

    yield free_port()


def offline_publisher(port: int, **options) -> SignalPublisher:
    publisher = SignalPublisher(f"mqtt://127.0.0.1:{port}", "outbox-1", auth=MqttAuth(), **options)
    publisher.start()
    return publisher


def test_outbox_replays_in_order_and_skips_heartbeats(down_port, wiretap_factory):
    publisher = offline_publisher(down_port)
    try:
        assert publisher.publish("visit", visit=VISIT, event="start", consent="viewer",
                                 scopes=["attention"])  # fmt: skip
        for i in range(200):
            publisher.publish("attention", visit=VISIT, **{**ATTENTION, "blinks": i})
        publisher.publish("heartbeat", qos=0, fps=1, latency_ms=1, model="m", model_version="1",
                          source="video", uptime_s=1, watching=True)  # fmt: skip
        assert publisher.stats()["buffered"] == 201 and publisher.stats()["skipped_offline"] == 1
        with EmbeddedBroker(port=down_port, prefer="mosquitto") as broker:
            tap = wiretap_factory(broker.url)
            assert wait_until(lambda: publisher.stats()["replayed"] == 201, 10), publisher.stats()
            assert tap.wait_for(lambda: len(tap.of_type("attention")) == 200, 5)
            publisher.stop()
    finally:
        publisher.stop()
    assert [m["blinks"] for m in tap.of_type("attention")] == list(range(200))
    assert [m["seq"] for m in tap.decoded()] == list(range(201))
    assert tap.of_type("heartbeat") == []


def test_outbox_drops_the_oldest_beyond_its_bound_and_expires_old_messages(
    down_port, wiretap_factory
):
    publisher = offline_publisher(down_port, max_buffer=50, ttl_s=1.0)
    try:
        publisher.publish("visit", visit=VISIT, event="start", consent="viewer",
                          scopes=["attention"])  # fmt: skip
        for i in range(100):
            publisher.publish("attention", visit=VISIT, **{**ATTENTION, "blinks": i})
        stats = publisher.stats()
        assert stats["dropped_overflow"] == 51 and stats["queued"] == 50, stats
        time.sleep(1.2)  # everything queued is now older than its time-to-live
        with EmbeddedBroker(port=down_port, prefer="mosquitto") as broker:
            tap = wiretap_factory(broker.url)
            assert wait_until(lambda: publisher.stats()["expired"] == 50, 10), publisher.stats()
            publisher.publish("attention", visit=VISIT, **{**ATTENTION, "blinks": 999})
            assert tap.wait_for(lambda: len(tap.of_type("attention")) == 1, 10), tap.dump()
            publisher.stop()
    finally:
        publisher.stop()
    stats = publisher.stats()
    assert stats["expired"] == 50 and stats["replayed"] == 0, stats
    assert [m["blinks"] for m in tap.of_type("attention")] == [999]


def test_a_purge_while_away_is_kept_and_discards_the_visits_unsent_signals(
    down_port, wiretap_factory
):
    publisher = offline_publisher(down_port, max_buffer=20)
    other = "0ther0ther0ther0"
    try:
        for visit in (VISIT, other):
            publisher.publish("visit", visit=visit, event="start", consent="viewer",
                              scopes=["attention"])  # fmt: skip
        for _ in range(10):
            publisher.publish("attention", visit=VISIT, **ATTENTION)
            publisher.publish("attention", visit=other, **ATTENTION)
        assert publisher.purge(VISIT, "forget")
        # A full outbox drops signals, never the purge or the retained-clears before it.
        for _ in range(40):
            publisher.publish("attention", visit=other, **ATTENTION)
        assert publisher.stats()["discarded_purged"] == 10
        with EmbeddedBroker(port=down_port, prefer="mosquitto") as broker:
            tap = wiretap_factory(broker.url)
            assert tap.wait_for(lambda: len(tap.of_type("purge")) == 1, 10), tap.dump()
            assert tap.wait_for(lambda: publisher.stats()["queued"] == 0, 5)
            publisher.stop()
    finally:
        publisher.stop()
    about_purged = [m for m in tap.decoded() if m.get("visit") == VISIT]
    assert [m["type"] for m in about_purged] == ["purge"], about_purged
    cleared = [tap.topics.parse(t).kind for t, p, _ in tap.snapshot() if not p]
    assert sorted(cleared) == sorted(set(wire.VISIT_TYPES) - {"purge"})
    assert publisher.stats()["dropped_overflow"] > 0


# --- load (the benchmark itself is benchmarks/load.py, outside `make test`) ----------------


def test_load_benchmark_smoke(mosquitto_binary, tmp_path):
    from benchmarks import load

    result = load.run(agents=3, duration_s=3.0, workdir=tmp_path)
    assert result.published_qos1 > 50 and result.lost == 0, result
    assert result.delay_p99_ms is not None and result.dashboard_rss_mb_end > 0
    with pytest.raises(ValueError):
        load.run(agents=load.MAX_AGENTS + 1, duration_s=1.0, workdir=tmp_path)
