"""The dashboard's side of the wire: duplicates, gaps, restarts, clock skew, counters, metrics,
credentials and TLS, bounded memory and admin actions — real brokers, real paho publishers."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask import Flask

from benchmarks.dashboard_load import SimulatedAgent, reaction_for
from broker import wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import accepts, free_port, require
from dashboard import create_app, state

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0
_prefixes = itertools.count(1)


class OffsetClock:
    """The dashboard's clock seam: real time plus an offset the test sets."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def __call__(self) -> float:
        return time.time() + self.offset_s


def eventually(check: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout} s (last value {value!r})"
            return value
        time.sleep(0.02)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def prefix() -> str:
    return f"dashwire{next(_prefixes)}/v1"


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def app(broker: EmbeddedBroker, prefix: str, clock: OffsetClock) -> Iterator[Flask]:
    app = create_app(
        {"TESTING": True, "BROKER_URL": broker.url, "TOPIC_PREFIX": prefix, "CLOCK": clock}
    )
    assert app.extensions["onlooker_mqtt"].wait_connected(TIMEOUT_S)
    yield app
    app.extensions["onlooker_mqtt"].stop()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def agents(broker: EmbeddedBroker, prefix: str) -> Iterator[Callable[[str], SimulatedAgent]]:
    made: list[SimulatedAgent] = []

    def make(name: str) -> SimulatedAgent:
        agent = SimulatedAgent(broker.url, name, prefix=prefix)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close(clean=False)


def agent_json(client, name: str) -> dict[str, Any] | None:
    return next((a for a in client.get("/api/agents").get_json()["agents"] if a["agent"] == name),
                None)  # fmt: skip


def visit_json(client, visit: str) -> dict[str, Any]:
    """One visit from GET /api/visits/<id>, or {} while it is not there."""
    return client.get(f"/api/visits/{visit}").get_json().get("visit") or {}


def health(client) -> dict[str, Any]:
    return client.get("/healthz").get_json()


# --- duplicates, gaps, restarts -------------------------------------------------------------


def test_a_qos1_redelivery_is_applied_once_and_counted(client, agents) -> None:
    agent = agents("kiosk-dup")
    visit = agent.start_visit()
    message = agent.expression("joy")
    agent.publish(message)  # the same bytes again: what QoS 1 does after a lost PUBACK
    agent.publish(message)
    agent.expression("surprise")

    found = eventually(
        lambda: (
            (v := visit_json(client, visit)).get("expression")
            and v["expression"]["label"] == "surprise"
            and v
        )
    )
    assert found["counts"] == {"visit": 1, "expression": 2}
    assert health(client)["duplicates"] == 2
    assert agent_json(client, "kiosk-dup")["duplicates"] == 2
    assert agent_json(client, "kiosk-dup")["gaps"] == 0


def test_missing_seqs_are_marked_per_agent_and_a_late_one_fills_its_gap(client, agents) -> None:
    agent = agents("kiosk-gap")
    agent.heartbeat()  # seq 0
    late = dict(agent.heartbeat())  # seq 1
    agent.seq = itertools.count(4)  # seqs 2 and 3 do not arrive (yet)
    agent.heartbeat()
    eventually(lambda: (agent_json(client, "kiosk-gap") or {}).get("seq") == 4)
    assert agent_json(client, "kiosk-gap")["gaps"] == 2
    assert health(client)["dropped"] == 2

    late["seq"] = 2
    agent.publish(late)  # re-sent after a reconnect, out of order: not lost after all
    eventually(lambda: agent_json(client, "kiosk-gap")["gaps"] == 1)
    assert health(client)["duplicates"] == 0


@pytest.mark.parametrize("purged_by", ["mqtt", "admin"])
def test_a_late_or_replayed_message_for_a_purged_visit_does_not_bring_it_back(
    client, agents, purged_by: str
) -> None:
    """Forget-me holds against what arrives after the purge: a late message, a delayed one
    that fills a seq gap, and the visit's earlier messages replayed once the agent restarted
    (the seq check has forgotten them then: only the memory of purged visits stops them)."""
    agent = agents("kiosk-forget")
    visit = agent.visit = "f0e1d2c3b4a59687"
    agent.scopes = list(wire.SCOPES)
    start = agent.send(  # seq 0
        "visit", visit=visit, event="start", consent="recorded-source", scopes=agent.scopes
    )
    first = agent.expression("joy")  # seq 1
    delayed = {**first, "seq": 2, "label": "sadness"}
    agent.seq = itertools.count(3)  # seq 2 is held back by the network: it comes after the purge
    agent.attention()  # seq 3
    eventually(lambda: visit_json(client, visit).get("counts") == {"visit": 1, "expression": 1,
                                                                    "attention": 1})  # fmt: skip

    if purged_by == "mqtt":
        agent.purge()  # seq 4
    else:
        assert client.post(f"/api/admin/purge/{visit}", json={}).status_code == 200
    eventually(lambda: client.get(f"/api/visits/{visit}").status_code == 404)
    rejected_before = health(client)["rejected"].get("purged_visit", 0)

    agent.visit = visit
    agent.seq = itertools.count(10)
    agent.expression("anger")  # late: sent before the purge took effect on the device
    agent.publish(delayed)  # the held-back seq 2, re-sent out of order: fills its gap
    restarted = agents("kiosk-forget")  # a new process: "online", and seq from 0 again …
    restarted.clock_offset_s = 1.0  # (a restart takes longer than ts's 0.1 s resolution)
    restarted.heartbeat()
    eventually(lambda: agent_json(client, "kiosk-forget")["restarts"] == 1)
    restarted.publish(first)  # … so the visit's earlier messages, replayed now, are no
    restarted.publish(start)  # duplicates to the seq check

    eventually(lambda: health(client)["rejected"].get("purged_visit", 0) - rejected_before == 4)
    assert client.get(f"/api/visits/{visit}").status_code == 404
    assert client.get(f"/api/visits/{visit}/raw").status_code == 404
    assert client.get("/api/visits").get_json()["visits"] == []
    assert client.get("/api/crowd").get_json()["visits"] == 0


def test_an_agent_restart_counts_from_zero_again_without_false_duplicates(
    client, agents, broker: EmbeddedBroker, prefix: str
) -> None:
    first = agents("kiosk-re")
    for _ in range(6):
        first.heartbeat()
    first.close(clean=False)
    eventually(lambda: (agent_json(client, "kiosk-re") or {}).get("seq") == 5)

    time.sleep(0.2)  # a new process: a new ts for the same seqs
    second = agents("kiosk-re")  # announces "online" (retained) on connect, like the agent
    visit = second.start_visit()  # seq 0 again
    second.heartbeat()
    eventually(lambda: client.get(f"/api/visits/{visit}").status_code == 200)
    after = eventually(lambda: (a := agent_json(client, "kiosk-re"))["seq"] == 1 and a)
    assert after["restarts"] == 1 and after["duplicates"] == 0 and after["gaps"] == 0
    assert health(client)["restarts"] == 1


def test_a_seq_far_below_the_last_is_a_restart_even_without_online() -> None:
    dashboard = state.DashboardState()
    info = wire.TopicInfo("heartbeat", "kiosk-far", None)

    def beat(seq: int) -> bool:
        message = wire.message(
            "heartbeat", agent="kiosk-far", seq=seq, ts=time.time(), fps=1, latency_ms=1,
            model="m", model_version="1", source="video", uptime_s=1, watching=False,
        )  # fmt: skip
        return dashboard.apply(info, message)

    assert beat(10_000)
    assert beat(3)  # far below, outside the window of remembered seqs: a new process
    agent = dashboard.agent("kiosk-far")
    assert agent["restarts"] == 1 and agent["seq"] == 3 and agent["gaps"] == 3


# --- clock skew -----------------------------------------------------------------------------


def test_clock_skew_is_flagged_on_the_agent(client, agents, clock: OffsetClock) -> None:
    steady = agents("kiosk-clock-ok")
    ahead = agents("kiosk-clock-ahead")
    ahead.clock_offset_s = 4.0  # the agent's clock runs 4 s ahead of the dashboard's
    for _ in range(3):
        steady.heartbeat()
        ahead.heartbeat()
    eventually(lambda: (agent_json(client, "kiosk-clock-ahead") or {}).get("clock_skewed"))
    ahead_json = agent_json(client, "kiosk-clock-ahead")
    assert 3.5 <= ahead_json["clock_skew_s"] <= 4.5
    steady_json = agent_json(client, "kiosk-clock-ok")
    assert steady_json["clock_skewed"] is False and abs(steady_json["clock_skew_s"]) < 1

    clock.offset_s = -3.0  # now the dashboard's own clock is behind
    for _ in range(9):
        steady.heartbeat()
    eventually(lambda: agent_json(client, "kiosk-clock-ok")["clock_skewed"])
    metrics = client.get("/metrics").get_data(as_text=True).splitlines()
    line = next(
        m
        for m in metrics
        if m.startswith('onlooker_agent_clock_skew_seconds{agent="kiosk-clock-ahead"}')
    )
    assert 3.5 <= float(line.split()[-1]) <= 4.5


# --- counters ---------------------------------------------------------------------------------


def test_healthz_and_metrics_count_received_rejected_duplicate_and_dropped(
    client, agents, prefix: str
) -> None:
    agent = agents("kiosk-count")
    message = agent.heartbeat()
    agent.publish(message)  # duplicate
    agent.client.publish(f"{prefix}/agents/kiosk-count/heartbeat", b"{not json", qos=1)
    agent.seq = itertools.count(10)
    agent.heartbeat()  # 1 to 9 lost
    eventually(lambda: health(client)["received"] == 5)  # with the retained "online"
    figures = health(client)
    assert figures["rejected"] == {"malformed_json": 1}
    assert figures["duplicates"] == 1 and figures["dropped"] == 9
    assert figures["accepted"] == {"available": 1, "heartbeat": 2}

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    for line in (
        "onlooker_messages_received_total 5",
        'onlooker_messages_rejected_total{reason="malformed_json"} 1',
        'onlooker_messages_accepted_total{kind="heartbeat"} 2',
        "onlooker_messages_duplicate_total 1",
        "onlooker_messages_dropped_total 9",
        "onlooker_mqtt_connected 1",
        "onlooker_inbox_dropped_total 0",
        "onlooker_behind 0",
        'onlooker_agent_online{agent="kiosk-count"} 1',
        "# TYPE onlooker_messages_received_total counter",
    ):
        assert line in text.splitlines(), line


@pytest.mark.parametrize(
    "agent_id", ["<script>alert(1)</script>", "<b>x", "Kiosk-1", "kiosk 1", "a" * 40]
)
def test_a_topic_with_a_bad_agent_id_is_rejected_and_counted(
    client, agents, prefix: str, agent_id: str
) -> None:
    """Agent ids are validated by the wire: markup never becomes an agent, it is counted."""
    good = agents("kiosk-fine")
    payload = wire.encode(wire.message(
        "heartbeat", agent="kiosk-fine", seq=0, ts=time.time(), fps=1, latency_ms=1,
        model="m", model_version="1", source="video", uptime_s=1, watching=False,
    )).replace(b'"kiosk-fine"', b'"' + agent_id.encode() + b'"')  # fmt: skip
    info = good.client.publish(f"{prefix}/agents/{agent_id}/heartbeat", payload, qos=1)
    info.wait_for_publish(TIMEOUT_S)
    good.heartbeat()
    eventually(lambda: health(client)["received"] == 3)  # with the retained "online"
    rejected = health(client)["rejected"]
    # "/" in "</script>" splits the topic into more levels: not an agent topic at all.
    assert rejected == ({"unknown_topic": 1} if "/" in agent_id else {"bad_agent_id": 1})
    assert [a["agent"] for a in client.get("/api/agents").get_json()["agents"]] == ["kiosk-fine"]


# --- broker credentials and TLS -----------------------------------------------------------------


def _tls_broker_files(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and a password file."""
    run = lambda *args: subprocess.run(args, check=True, capture_output=True, cwd=tmp)  # noqa: E731
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("openssl", "req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=Onlooker test CA")  # fmt: skip
    run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "san.ext")  # fmt: skip
    run("mosquitto_passwd", "-b", "-c", "passwd", "dashboard", "s3cret-pass")
    run("mosquitto_passwd", "-b", "passwd", "kiosk", "kiosk-pass")
    return {name: tmp / name for name in ("ca.crt", "server.crt", "server.key", "passwd")}


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    binary = find_mosquitto()
    require(binary is not None, "mosquitto is not installed")
    require(
        subprocess.run(["which", "openssl"], capture_output=True).returncode == 0
        and subprocess.run(["which", "mosquitto_passwd"], capture_output=True).returncode == 0,
        "openssl and mosquitto_passwd are needed for the TLS broker",
    )
    files = _tls_broker_files(tmp_path)
    port = free_port()
    conf = tmp_path / "tls.conf"
    # As root, mosquitto drops to its own user before it reads the password file, which
    # then cannot enter pytest's private tmp folder; stay root there (a test broker only).
    conf.write_text(
        ("user root\n" if os.geteuid() == 0 else "")
        + f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
        f"password_file {files['passwd']}\ncafile {files['ca.crt']}\n"
        f"certfile {files['server.crt']}\nkeyfile {files['server.key']}\n"
    )
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        eventually(lambda: accepts(port) or process.poll() is not None)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield port, files["ca.crt"]
    finally:
        process.terminate()
        process.wait(TIMEOUT_S)


def test_subscriber_takes_credentials_and_tls_from_the_environment(
    tls_broker: tuple[int, Path], monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    port, ca = tls_broker
    monkeypatch.setenv("ONLOOKER_MQTT_USERNAME", "dashboard")
    monkeypatch.setenv("ONLOOKER_MQTT_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("ONLOOKER_MQTT_CA", str(ca))
    app = create_app({"BROKER_URL": f"mqtts://127.0.0.1:{port}", "TOPIC_PREFIX": prefix})
    subscriber = app.extensions["onlooker_mqtt"]
    try:
        assert app.config["BROKER_USERNAME"] == "dashboard"
        assert subscriber.wait_connected(TIMEOUT_S), "no TLS connection with credentials"
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        publisher.username_pw_set("kiosk", "kiosk-pass")
        publisher.tls_set(ca_certs=str(ca))
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        try:
            message = wire.message(
                "heartbeat", agent="kiosk-tls", seq=0, ts=time.time(), fps=9, latency_ms=1,
                model="m", model_version="1", source="camera", uptime_s=1, watching=False,
            )  # fmt: skip
            info = publisher.publish(wire.Topics(prefix).heartbeat("kiosk-tls"),
                                     wire.encode(message), qos=1)  # fmt: skip
            info.wait_for_publish(TIMEOUT_S)
            client = app.test_client()
            eventually(lambda: agent_json(client, "kiosk-tls"))
        finally:
            publisher.disconnect()
            publisher.loop_stop()
    finally:
        subscriber.stop()


@pytest.mark.parametrize("ca_set", [True, False])
def test_wrong_password_or_unknown_ca_never_connects(
    tls_broker: tuple[int, Path], prefix: str, ca_set: bool
) -> None:
    port, ca = tls_broker
    config = {"BROKER_URL": f"mqtts://127.0.0.1:{port}", "TOPIC_PREFIX": prefix,
              "BROKER_USERNAME": "dashboard", "BROKER_PASSWORD": "s3cret-pass"}  # fmt: skip
    if ca_set:
        config["BROKER_PASSWORD"] = "wrong"
        config["BROKER_TLS_CA"] = str(ca)
    # Without the CA the system's trust store cannot verify the test CA: refused by TLS.
    app = create_app(config)
    try:
        assert not app.extensions["onlooker_mqtt"].wait_connected(1.5)
        assert app.test_client().get("/healthz").get_json()["status"] == "degraded"
    finally:
        app.extensions["onlooker_mqtt"].stop()


def test_broker_url_schemes() -> None:
    from dashboard.mqtt import parse_url

    assert parse_url("mqtt://10.0.0.5") == ("10.0.0.5", 1883, False)
    assert parse_url("mqtts://broker.example") == ("broker.example", 8883, True)
    assert parse_url("mqtts://broker.example:9883") == ("broker.example", 9883, True)
    with pytest.raises(ValueError):
        parse_url("http://broker.example")
    with pytest.raises(ValueError):
        create_app({"BROKER_PASSWORD": "x", "MQTT_AUTOSTART": False})


# --- bounded memory ---------------------------------------------------------------------------


def test_per_visit_series_stay_bounded_and_keep_the_whole_visit() -> None:
    dashboard = state.DashboardState()
    visit = "feedfacecafe"
    agent = "kiosk-long"
    seq = itertools.count()
    start = time.time() - 3600

    def apply(kind: str, ts: float, **fields: Any) -> None:
        message = wire.message(kind, agent=agent, seq=next(seq), ts=ts, visit=visit, **fields)
        dashboard.apply(wire.TopicInfo(kind, agent, visit), message, raw=wire.encode(message))

    apply("visit", start, event="start", consent="viewer", scopes=list(wire.SCOPES))
    for i in range(18_000):  # an hour at 5 expressions a second
        apply("expression", start + i * 0.2, label=wire.EXPRESSIONS[(i // 50) % 8], score=0.5,
              valence=0.1, arousal=0.2, reason_units=[], reason_shapes=[], reason_values=[],
              relative_to_rest=True)  # fmt: skip
    for i in range(state.MAX_ITEMS + 50):
        apply("page", start + i, item=f"post-{i}", topic="food", words=10, seconds=2.0,
              away_s=0.0, wpm=300, skim=True, dwell=False, revisit=False, back_turn=False,
              lines_read=None, weight=1.0)  # fmt: skip
    found = dashboard.visit(visit)
    assert len(found["timeline"]) <= state.MAX_TIMELINE + 1
    assert found["timeline"][0][0] == 0.0 and found["timeline"][-1][0] >= 3590  # whole hour
    assert len(found["pages"]) == state.MAX_ITEMS
    assert found["pages"][-1]["item"] == f"post-{state.MAX_ITEMS + 49}"  # the newest stay
    assert len(found["items"]) == state.MAX_ITEMS
    assert len(dashboard.raw(visit)) <= state.MAX_RAW
    assert found["counts"]["expression"] == 18_000


# --- pages, reading, crowd --------------------------------------------------------------------


def test_page_and_reading_messages_become_pages_interests_pace_and_conclusions(
    client, agents
) -> None:
    agent = agents("kiosk-read")
    visit = agent.start_visit()
    agent.reading("page-1", personal_wpm=300, time_left_s=600)
    agent.page("page-1", "travel", 200, 40.0)  # 300 wpm
    skim = agent.page("page-2", "money", 150, 3.0)
    agent.reaction("page-1", reaction_for("joy", 0.6))
    found = eventually(
        lambda: (
            (v := visit_json(client, visit)) and "reaction" in v["items"].get("page-1", {}) and v
        )
    )
    assert [p["item"] for p in found["pages"]] == ["page-1", "page-2"]
    assert found["pages"][0]["wpm"] == 300 and found["pages"][1]["skim"] is True
    assert found["interests"] == {"travel": 0.93, "money": 0.07}
    assert found["reading"]["personal_wpm"] == 300
    keys = [c["key"] for c in found["profile"]["conclusions"]]
    assert {"pace", "skimmed", "smiled_at", "interest", "time_left"} <= set(keys)
    skimmed = next(c for c in found["profile"]["conclusions"] if c["key"] == "skimmed")
    assert skimmed["params"]["topic"] == "money" and skimmed["source"] == "amazon_timer"
    assert found["data_points"] > 0

    raw = client.get(f"/api/visits/{visit}/raw").get_json()["raw"]
    assert raw["page:page-2"].encode() == wire.encode(skim)  # exactly what left the device


@pytest.mark.parametrize(("visits", "shown"), [(4, False), (5, True)])
def test_crowd_comparison_needs_k_visits(client, agents, visits: int, shown: bool) -> None:
    agent = agents("kiosk-crowd")
    ids = []
    for n in range(visits):
        ids.append(agent.start_visit())
        agent.page("page-1", "money", 150, 3.0)  # everybody skims the money page
        agent.page("page-2", "travel", 200, 30.0 + 10 * n)  # paces 400, 300, 240, 200, 171
        agent.reaction("page-2", reaction_for("joy", 0.3 + 0.1 * n))
        agent.reaction("page-1", reaction_for("surprise", 0.2))
        agent.end_visit()

    def all_arrived() -> bool:
        """Every visit has both pages, both reactions and its end: the state the figures read."""
        listed = client.get("/api/visits").get_json()["visits"]
        if len(listed) != visits:
            return False
        for visit in ids:
            found = visit_json(client, visit)
            items = found.get("items", {})
            if (
                found.get("ended") is None
                or [p["item"] for p in found.get("pages", [])] != ["page-1", "page-2"]
                or not all("reaction" in items.get(item, {}) for item in ("page-1", "page-2"))
            ):
                return False
        return True

    eventually(all_arrived, timeout=4 * TIMEOUT_S)
    crowd = client.get(f"/api/crowd?visit={ids[0]}").get_json()
    if not shown:
        assert crowd["pace_wpm"]["withheld"] == "not enough visits"
        assert crowd["compare"]["pace_percentile"] is None and crowd["conclusions"] == []
        return
    assert crowd["compare"]["pace_percentile"] == 100  # the fastest reader of five
    assert crowd["most_skimmed_item"]["value"]["item"] == "page-1"
    assert crowd["most_emotional_item"]["value"]["item"] == "page-2"
    assert crowd["compare"]["skimmed_it_too"] is True
    assert {c["key"] for c in crowd["conclusions"]} == {
        "pace_percentile", "same_most_emotional", "skimmed_with_crowd",
    }  # fmt: skip


# --- admin actions ----------------------------------------------------------------------------


def test_admin_actions_need_json_from_the_page_and_a_token_off_loopback(
    app: Flask, client, agents
) -> None:
    agent = agents("kiosk-admin")
    visit = agent.start_visit()
    eventually(lambda: client.get(f"/api/visits/{visit}").status_code == 200)

    assert client.post("/api/admin/reset", data="x").status_code == 415  # a cross-site form
    cross = client.post("/api/admin/reset", json={}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403

    app.config["BIND_HOST"] = "0.0.0.0"  # reachable from the network: a token is a must
    assert client.post("/api/admin/reset", json={}).status_code == 403  # no token configured
    app.config["ADMIN_TOKEN"] = "t0ken"
    assert client.post("/api/admin/reset", json={}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/api/admin/reset", json={}, headers=wrong).status_code == 401
    good = {"Authorization": "Bearer t0ken", "Origin": "http://localhost"}
    purged = client.post(f"/api/admin/purge/{visit}", json={}, headers=good)
    assert purged.status_code == 200 and purged.get_json() == {"visit": visit, "purged": True}
    assert client.get(f"/api/visits/{visit}").status_code == 404
    assert client.get(f"/api/visits/{visit}/raw").status_code == 404

    agent.expression("joy")  # a late message cannot bring the purged visit back
    eventually(lambda: health(client)["rejected"].get("purged_visit"))
    second = agent.start_visit()
    eventually(lambda: client.get(f"/api/visits/{second}").status_code == 200)
    app.config["BIND_HOST"] = "127.0.0.1"
    app.config["ADMIN_TOKEN"] = None
    assert client.post("/api/admin/reset", json={}).get_json() == {"deleted": 1}
    assert client.get("/api/visits").get_json()["visits"] == []


def test_every_response_carries_a_strict_content_security_policy(client) -> None:
    for path in ("/", "/?mode=exhibition", "/receipt/abcdef12", "/api/agents", "/metrics"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "object-src 'none'" in policy
    assert client.get("/receipt/NOT-A-VISIT").status_code == 404
    for name in ("dashboard.js", "charts.js", "i18n.js"):
        script = client.get(f"/static/{name}").get_data(as_text=True)
        assert "innerHTML" not in script and "eval(" not in script, name
        assert "insertAdjacentHTML" not in script and "document.write" not in script, name
