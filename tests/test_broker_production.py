"""The production Mosquitto configuration (broker/production/) with generated credentials:
no anonymous access, passwords, the ACL, the packet limit, TLS; and the embedded brokers
against what Onlooker relies on (QoS 1 redelivery after a reconnect)."""

from __future__ import annotations

import queue
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from broker import credentials, wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from conftest import require, wait_until
from edge.publisher import MqttAuth, SignalPublisher

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0
QUIET_S = 0.5
TOPICS = wire.Topics()


class Client:
    """A paho client with a username; what it receives lands in a queue."""

    def __init__(
        self,
        port: int,
        user: tuple[str, str] | None = None,
        *,
        client_id=None,
        clean_session=True,
        will: str | None = None,
        tls_ca: Path | None = None,
    ):
        self.port = port
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connacks: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            clean_session=clean_session,
        )
        if user is not None:
            self.client.username_pw_set(*user)
        if will is not None:
            self.client.will_set(will, wire.OFFLINE, qos=1, retain=True)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_connect = lambda c, u, f, rc, p: self.connacks.put(rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put(m)

    def connect(self, host: str = "127.0.0.1"):
        """Connect and return the CONNACK reason code (the client keeps running)."""
        self.client.connect(host, self.port, keepalive=30)
        self.client.loop_start()
        return self.connacks.get(timeout=TIMEOUT_S)

    def subscribe(self, topic: str) -> Client:
        done: queue.Queue = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, p: done.put(codes)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=TIMEOUT_S)
        return self

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain=False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(TIMEOUT_S)

    def received(self, wait_s: float = QUIET_S) -> list[tuple[str, bytes]]:
        time.sleep(wait_s)
        out = []
        while not self.messages.empty():
            message = self.messages.get_nowait()
            out.append((message.topic, bytes(message.payload)))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients():
    made: list[Client] = []

    def make(*args, **kwargs) -> Client:
        made.append(client := Client(*args, **kwargs))
        return client

    yield make
    for client in made:
        client.close()


def heartbeat(agent: str, seq: int = 0) -> bytes:
    return wire.encode(
        wire.message(
            "heartbeat", agent=agent, seq=seq, ts=time.time(), fps=10, latency_ms=1,
            model="m", model_version="1", source="video", uptime_s=1, watching=False,
        )
    )  # fmt: skip


# --- credentials ------------------------------------------------------------------------


def test_credentials_files_are_private_and_hold_what_each_user_needs(tmp_path):
    out = tmp_path / "creds"
    written = credentials.generate(out, ["kiosk-1", "kiosk-2"], broker_url="mqtts://pi:8883")
    assert set(written.env_files) == {"kiosk-1", "kiosk-2", "dashboard"}
    for path in [written.passwd, written.acl, *written.env_files.values()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    env = dict(
        line.split("=", 1) for line in written.env_files["kiosk-1"].read_text().splitlines()[1:]
    )
    assert (
        env["ONLOOKER_MQTT_USERNAME"] == "kiosk-1" and env["ONLOOKER_BROKER"] == "mqtts://pi:8883"
    )
    assert len(env["ONLOOKER_MQTT_PASSWORD"]) >= 32
    users = [line.split(":")[0] for line in written.passwd.read_text().splitlines()]
    assert users == ["kiosk-1", "kiosk-2", credentials.DASHBOARD_USER]
    assert env["ONLOOKER_MQTT_PASSWORD"] not in written.passwd.read_text()
    acl = written.acl.read_text()
    assert "pattern write onlooker/v1/agents/%u/heartbeat" in acl and "{prefix}" not in acl


def test_credentials_keep_other_users_and_renew_the_named_ones(tmp_path):
    first = credentials.generate(tmp_path, ["kiosk-1", "kiosk-2"], use_mosquitto_passwd=False)
    before = dict(line.split(":", 1) for line in first.passwd.read_text().splitlines())
    credentials.generate(tmp_path, ["kiosk-3", "kiosk-2"], dashboard=False)
    after = dict(line.split(":", 1) for line in first.passwd.read_text().splitlines())
    assert set(after) == {"kiosk-1", "kiosk-2", "kiosk-3", credentials.DASHBOARD_USER}
    assert after["kiosk-1"] == before["kiosk-1"]
    assert after[credentials.DASHBOARD_USER] == before[credentials.DASHBOARD_USER]
    assert after["kiosk-2"] != before["kiosk-2"]


def test_python_hash_matches_mosquitto_passwd(tmp_path):
    tool = credentials.find_mosquitto_passwd()
    require(tool is not None, "mosquitto_passwd is not installed (Debian package mosquitto)")
    plain = tmp_path / "plain"
    plain.write_text("someone:correct horse\n")
    subprocess.run([tool, "-U", str(plain)], check=True, timeout=30)
    hashed = plain.read_text().strip().split(":", 1)[1]
    assert credentials.check_password("correct horse", hashed)
    assert not credentials.check_password("wrong horse", hashed)
    _, _, _, salt, _ = hashed.split("$")
    import base64

    assert credentials.hash_password("correct horse", base64.b64decode(salt)) == hashed


@pytest.mark.parametrize(
    "agents, options, message",
    [
        (["Kiosk 1"], {}, "must match"),
        (["kiosk-1/#"], {}, "must match"),
        (["kiosk+"], {}, "must match"),
        (["kiosk-1\x00"], {}, "must match"),
        (["a", "a"], {}, "twice"),
        (["a"], {"dashboard_user": "dashboard"}, "valid agent id"),
        (["a"], {"dashboard_user": "dash/board"}, "letters"),
        (["a"], {"prefix": "onlooker/#"}, "plain levels"),
        (["a"], {"broker_url": "http://x"}, "mqtt://"),
    ],
)
def test_credentials_refuse_bad_names(tmp_path, agents, options, message):
    with pytest.raises(ValueError, match=message):
        credentials.generate(tmp_path, agents, **options)
    assert not (tmp_path / "passwd").exists()


def test_credentials_command_runs_without_secrets_in_its_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "broker.credentials", "--out", str(tmp_path), "kiosk-7"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    password = (tmp_path / "kiosk-7.env").read_text().split("ONLOOKER_MQTT_PASSWORD=")[1]
    assert password.strip() not in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "broker.credentials", "--out", str(tmp_path), "Bad_Id"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "must match" in bad.stderr and "Traceback" not in bad.stderr


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("hasher", ["mosquitto_passwd", "python"])
def test_anonymous_and_bad_passwords_are_refused(production_mosquitto, clients, hasher):
    if hasher == "mosquitto_passwd":
        require(credentials.find_mosquitto_passwd() is not None, "mosquitto_passwd missing")
    broker = production_mosquitto(["kiosk-1"], use_mosquitto_passwd=hasher != "python")
    assert broker.written.hasher == hasher
    user, password = broker.credentials("kiosk-1")
    assert clients(broker.port).connect().is_failure  # anonymous
    assert clients(broker.port, (user, password + "x")).connect().is_failure
    assert clients(broker.port, ("kiosk-2", password)).connect().is_failure  # unknown user
    assert not clients(broker.port, (user, password)).connect().is_failure


def test_signal_publisher_takes_credentials_from_the_environment(
    production_mosquitto, clients, monkeypatch
):
    broker = production_mosquitto(["kiosk-1"])
    tap = clients(broker.port, broker.credentials("dashboard"))
    assert not tap.connect().is_failure
    tap.subscribe("onlooker/v1/#")
    for name, value in broker.env["kiosk-1"].items():
        monkeypatch.setenv(name, value)
    publisher = SignalPublisher(broker.url, "kiosk-1")
    publisher.start(wait_s=TIMEOUT_S)
    try:
        assert publisher.connected
        publisher.publish("heartbeat", qos=0, fps=1, latency_ms=1, model="m", model_version="1",
                          source="video", uptime_s=1, watching=False)  # fmt: skip
        got = wait_until(lambda: [t for t, _ in tap.received(0.1)], TIMEOUT_S)
        assert TOPICS.available("kiosk-1") in got or TOPICS.heartbeat("kiosk-1") in got
    finally:
        publisher.stop()

    monkeypatch.setenv("ONLOOKER_MQTT_PASSWORD", "not-the-password")
    refused = SignalPublisher(broker.url, "kiosk-1")
    refused.start(wait_s=1.5)
    try:
        assert not refused.connected
        assert wait_until(lambda: refused.refusal, TIMEOUT_S), "no CONNACK failure seen"
    finally:
        refused.stop()


def test_auth_settings_that_cannot_work_are_refused_at_once(tmp_path):
    with pytest.raises(ValueError, match="ONLOOKER_MQTT_USERNAME"):
        SignalPublisher("mqtt://127.0.0.1:1", "k", auth=MqttAuth(password="x"))
    with pytest.raises(ValueError, match="not mqtts"):
        SignalPublisher("mqtt://127.0.0.1:1", "k", auth=MqttAuth("k", "x", str(tmp_path)))
    with pytest.raises(ValueError, match="not a file"):
        SignalPublisher("mqtts://127.0.0.1", "k", auth=MqttAuth("k", "x", str(tmp_path / "no")))
    assert wire.broker_address("mqtts://pi.local").port == 8883
    assert wire.broker_address("mqtts://[::1]:9").host == "::1"
    assert wire.broker_address("mqtt://pi.local") == wire.broker_address("mqtt://pi.local:1883")
    for bad in ("http://x", "mqtts://", "mqtt://a b", "mqtts://x:99999"):
        with pytest.raises(ValueError):
            wire.broker_address(bad)


# --- the ACL ----------------------------------------------------------------------------


@pytest.fixture
def acl_broker(production_mosquitto, clients):
    """A production broker with two agents and a dashboard watching everything."""
    broker = production_mosquitto(["kiosk-1", "kiosk-2"])
    dashboard = clients(broker.port, broker.credentials("dashboard"))
    assert not dashboard.connect().is_failure
    dashboard.subscribe("#")
    return broker, dashboard


def test_an_agent_may_publish_only_under_its_own_topics(acl_broker, clients):
    broker, dashboard = acl_broker
    one = clients(broker.port, broker.credentials("kiosk-1"))
    assert not one.connect().is_failure
    one.publish(TOPICS.heartbeat("kiosk-1"), heartbeat("kiosk-1"))
    one.publish(TOPICS.heartbeat("kiosk-2"), heartbeat("kiosk-2"))  # impersonation
    one.publish(TOPICS.available("kiosk-2"), "offline", retain=True)
    one.publish(TOPICS.visit("kiosk-2", "abcdef0123456789", "purge"), b"{}")
    one.publish("onlooker/v1/agents/kiosk-2/commands/reset", b"{}")
    one.publish("onlooker/v1/elsewhere", b"{}")
    one.publish("$SYS/broker/uptime", b"0")
    assert [t for t, _ in dashboard.received()] == [TOPICS.heartbeat("kiosk-1")]


def test_an_agents_will_on_another_agents_topic_is_refused(acl_broker, clients):
    broker, dashboard = acl_broker
    spoof = clients(broker.port, broker.credentials("kiosk-1"), will=TOPICS.available("kiosk-2"))
    # Mosquitto 2.0 accepts the CONNECT and checks the will against the ACL when it fires.
    if not spoof.connect().is_failure:
        spoof.client.loop_stop()
        spoof.client.socket().close()  # abruptly: the will would be published now
    assert all(t != TOPICS.available("kiosk-2") for t, _ in dashboard.received(1.0))


def test_an_agent_reads_only_its_own_commands(acl_broker, clients):
    broker, dashboard = acl_broker
    one = clients(broker.port, broker.credentials("kiosk-1"))
    assert not one.connect().is_failure
    one.subscribe("#")
    two = clients(broker.port, broker.credentials("kiosk-2"))
    assert not two.connect().is_failure
    two.publish(TOPICS.heartbeat("kiosk-2"), heartbeat("kiosk-2"))
    dashboard.publish("onlooker/v1/agents/kiosk-1/commands/reset", b"{}")
    dashboard.publish("onlooker/v1/agents/kiosk-2/commands/reset", b"{}")
    assert [t for t, _ in one.received()] == ["onlooker/v1/agents/kiosk-1/commands/reset"]


def test_the_dashboard_may_write_only_commands(acl_broker, clients):
    broker, dashboard = acl_broker
    dashboard.publish(TOPICS.heartbeat("kiosk-1"), heartbeat("kiosk-1"))
    dashboard.publish(TOPICS.available("kiosk-1"), "online", retain=True)
    dashboard.publish("onlooker/v1/agents/kiosk-1/commands/reset", b"{}")
    assert [t for t, _ in dashboard.received()] == ["onlooker/v1/agents/kiosk-1/commands/reset"]


def test_an_oversized_packet_disconnects_its_sender(acl_broker, clients):
    broker, dashboard = acl_broker
    one = clients(broker.port, broker.credentials("kiosk-1"))
    assert not one.connect().is_failure
    one.client.publish(TOPICS.heartbeat("kiosk-1"), b"x" * 5000, qos=1)
    assert one.disconnects.get(timeout=TIMEOUT_S) is not None
    assert dashboard.received() == []
    # A wire-sized message still passes (the limit is far above 2048 bytes of JSON).
    again = clients(broker.port, broker.credentials("kiosk-1"))
    assert not again.connect().is_failure
    again.publish(TOPICS.heartbeat("kiosk-1"), b"y" * wire.MAX_PAYLOAD_BYTES)
    assert [len(p) for _, p in dashboard.received()] == [wire.MAX_PAYLOAD_BYTES]


# --- QoS 1 redelivery after a reconnect ----------------------------------------------------


def _redelivers_after_reconnect(port: int, user=None, sub_user=None) -> list[bytes]:
    """A persistent QoS 1 subscriber goes away, 5 messages are published, it comes back."""
    client_id = f"dash-{uuid.uuid4().hex[:8]}"
    topic = f"onlooker/v1/agents/kiosk-1/visits/{uuid.uuid4().hex[:16]}/attention"
    first = Client(port, sub_user, client_id=client_id, clean_session=False)
    assert not first.connect().is_failure
    first.subscribe("onlooker/v1/#")
    first.close()
    sender = Client(port, user)
    assert not sender.connect().is_failure
    for i in range(5):
        sender.publish(topic, f"m{i}".encode())
    sender.close()
    second = Client(port, sub_user, client_id=client_id, clean_session=False)
    try:
        assert not second.connect().is_failure
        return [p for _, p in second.received(1.0)]
    finally:
        second.close()


def test_qos1_is_redelivered_after_reconnect_on_production_mosquitto(production_mosquitto):
    broker = production_mosquitto(["kiosk-1"])
    got = _redelivers_after_reconnect(
        broker.port, broker.credentials("kiosk-1"), broker.credentials("dashboard")
    )
    assert got == [f"m{i}".encode() for i in range(5)]


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_embedded_broker_qos1_redelivery_after_reconnect(kind):
    """A persistent session gets what was published while it was away, in order, from either
    embedded broker (amqtt through broker/embedded.py's fixes; the dashboard relies on it)."""
    if kind == "mosquitto":
        require(find_mosquitto() is not None, "mosquitto is not installed")
    with EmbeddedBroker(prefer=kind) as broker:
        got = _redelivers_after_reconnect(broker.port)
    assert got == [f"m{i}".encode() for i in range(5)]


# --- TLS ----------------------------------------------------------------------------------


def make_certificates(folder: Path, host: str = "localhost") -> Path:
    """The commands of docs/operations.md: a private CA and a broker certificate for `host`."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=60)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=Onlooker CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        f"/CN={host}",
    )
    (folder / "broker.ext").write_text(f"subjectAltName=DNS:{host},IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "825", "-extfile", "broker.ext",
        "-out", "broker.crt")  # fmt: skip
    return folder / "ca.crt"


def test_tls_listener_with_a_private_ca(production_mosquitto, tmp_path, clients):
    require(find_mosquitto() is not None, "mosquitto is not installed")
    # The broker's folder is made by the fixture; certificates go where tls.conf expects them.
    ca = make_certificates(tmp_path / "broker0" / "onlooker" / "certs")
    broker = production_mosquitto(["kiosk-1"], tls=True)
    tap = clients(broker.tls_port, broker.credentials("dashboard"), tls_ca=ca)
    assert not tap.connect("localhost").is_failure
    tap.subscribe("onlooker/v1/#")
    user, password = broker.credentials("kiosk-1")
    url = f"mqtts://localhost:{broker.tls_port}"
    publisher = SignalPublisher(url, "kiosk-1", auth=MqttAuth(user, password, str(ca)))
    publisher.start(wait_s=TIMEOUT_S)
    try:
        assert publisher.connected
        got = wait_until(lambda: [t for t, _ in tap.received(0.1)], TIMEOUT_S)
        assert got == [TOPICS.available("kiosk-1")]
    finally:
        publisher.stop()
    # Without the private CA the broker's certificate is not trusted: no connection.
    untrusting = SignalPublisher(url, "kiosk-1", auth=MqttAuth(user, password))
    untrusting.start(wait_s=1.5)
    try:
        assert not untrusting.connected
    finally:
        untrusting.stop()
