"""Shared fixtures: real brokers on free ports and the hash-pinned sample media."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from broker import wire
from broker.embedded import EmbeddedBroker, find_mosquitto
from dashboard import create_app
from dashboard.server import DashboardServer

os.environ.setdefault("GLOG_minloglevel", "2")

IN_CI = bool(os.environ.get("CI"))


def require(condition: bool, why: str) -> None:
    """Skip with `why` on a developer machine; fail in CI, where everything must be installed."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{why} (CI must install it: see .ci/run)")
        pytest.skip(why)


def require_module(name: str, why: str) -> Any:
    """Import `name`, or skip with `why` on a developer machine and fail in CI (`require`)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, why)


CHROMIUM = Path("/usr/bin/chromium")


def require_browser() -> Any:
    """Playwright's sync API with the system Chromium present; skip locally, fail in CI."""
    sync_api = require_module("playwright.sync_api", "playwright is not installed (make test)")
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_api


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """Path of a hash-pinned sample asset (fetched into the cache on first use)."""
    from edge import assets

    def path(name: str) -> Path:
        return assets.asset_path(name)

    return path


@pytest.fixture(scope="session")
def model_path(sample) -> Path:
    from edge import assets

    return sample(assets.MODEL)


@pytest.fixture(scope="module")
def landmarker(model_path):
    """The real Face Landmarker (VIDEO and IMAGE mode), one per test module."""
    from edge.face import MediaPipeFaceLandmarker

    analyzer = MediaPipeFaceLandmarker(model_path)
    yield analyzer
    analyzer.close()


@pytest.fixture
def mosquitto() -> Iterator[EmbeddedBroker]:
    require(find_mosquitto() is not None, "mosquitto is not installed (apt-get install mosquitto)")
    with EmbeddedBroker(prefer="mosquitto") as broker:
        yield broker


@pytest.fixture
def amqtt_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(prefer="amqtt") as broker:
        yield broker


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request) -> Iterator[EmbeddedBroker]:
    """Each test runs once against Mosquitto and once against the pure-Python broker."""
    if request.param == "mosquitto":
        require(find_mosquitto() is not None, "mosquitto is not installed")
    with EmbeddedBroker(prefer=request.param) as broker:
        yield broker


class WireTap:
    """A real MQTT subscriber that records every message under the prefix, like mosquitto_sub."""

    def __init__(self, url: str, prefix: str = wire.DEFAULT_PREFIX):
        host, port = wire.parse_broker_url(url)
        self.topics = wire.Topics(prefix)
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topics.subscription, 1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "wire tap could not subscribe"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def decoded(self) -> list[dict]:
        """Every JSON message, validated against the wire contract (fails on any deviation)."""
        out = []
        for topic, payload, _ in self.snapshot():
            info = self.topics.parse(topic)
            if not payload:
                continue  # an empty payload clears a retained message (a purge does this)
            if info.kind == "available":
                wire.decode_availability(payload)
            else:
                out.append(wire.decode(info, payload))
        return out

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.decoded() if m["type"] == kind]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def dump(self) -> str:
        return "\n".join(f"{t} {p[:200]!r}" for t, p, _ in self.snapshot()[-20:]) or "(nothing)"


@pytest.fixture
def wiretap_factory() -> Iterator[Callable[[str], WireTap]]:
    taps: list[WireTap] = []

    def make(url: str) -> WireTap:
        tap = WireTap(url)
        taps.append(tap)
        return tap

    yield make
    for tap in taps:
        tap.close()


def get_json(url: str, timeout: float = 5.0):
    """GET a JSON document from a local server."""
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


# --- the whole path: agents as processes, dashboards in-process ---------------------------


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


def viewer_status(base: str) -> dict | None:
    """The viewer page's /api/status, or None while the agent is not serving yet."""
    try:
        return get_json(base + "/api/status")
    except OSError:
        return None


def start_viewer_agent(
    broker_url: str, source: Path, tmp_path: Path, *extra: str
) -> tuple[subprocess.Popen, str]:
    """A real agent on `source` whose viewer asks for consent; returns it and its page's URL."""
    port = free_port()
    agent = start_agent(
        broker_url, source, tmp_path / "agent.log", "--consent", "viewer",
        "--viewer-port", str(port), *extra,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: viewer_status(base), 30), (tmp_path / "agent.log").read_text()[-2000:]
    return agent, base


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(15)


@pytest.fixture
def dashboard_on():
    """Start dashboards (real Flask app and server, real MQTT subscriber) on free ports."""
    servers = []

    def start(broker_url: str, heartbeat_timeout_s: float = 10.0, **config) -> DashboardServer:
        app = create_app(
            {"BROKER_URL": broker_url, "HEARTBEAT_TIMEOUT_S": heartbeat_timeout_s, **config}
        )
        server = DashboardServer(app, port=0).start()
        servers.append(server)
        subscriber = app.extensions.get("onlooker_mqtt")
        if subscriber is not None and config.get("MQTT_AUTOSTART", True):
            # Subscribed before the test sends anything: a message published earlier (not
            # retained) would be lost to it, and the test would race the subscription.
            subscriber.wait_connected(10)
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


# --- the production Mosquitto configuration (broker/production/), on a free loopback port ---


class ProductionMosquitto:
    """Mosquitto run with the shipped broker/production/ configuration and generated
    credentials, moved to a loopback port and a temporary folder; restartable on its port."""

    def __init__(self, folder: Path, agents: list[str], tls: bool = False, **credentials):
        from broker import credentials as creds

        self.folder = folder
        self.written = creds.generate(folder / "onlooker", agents, **credentials)
        self.env = {
            name: dict(
                line.split("=", 1)
                for line in path.read_text().splitlines()
                if line and not line.startswith("#")
            )
            for name, path in self.written.env_files.items()
        }
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        conf = (creds.PRODUCTION_DIR / "mosquitto.conf").read_text()
        conf = conf.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        if tls:
            conf += (
                (creds.PRODUCTION_DIR / "tls.conf")
                .read_text()
                .replace("listener 8883", f"listener {self.tls_port} 127.0.0.1")
            )
        conf = conf.replace("/etc/mosquitto/onlooker/", f"{folder}/onlooker/")
        conf += "\npersistence false\nlog_dest stderr\nlog_type all\n"
        if os.geteuid() == 0:  # as root, mosquitto would become `mosquitto` and lose the 0600 files
            conf += "user root\n"
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(conf)
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> ProductionMosquitto:
        require(find_mosquitto() is not None, "mosquitto is not installed")
        seen = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        ready = wait_until(
            lambda: (
                self.process.poll() is not None
                or (b" running" in self.log.read_bytes()[seen:] and accepts(self.port))
            ),
            10,
            0.02,
        )
        assert ready and self.process.poll() is None, self.log.read_text()[-2000:]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def credentials(self, name: str) -> tuple[str, str]:
        env = self.env[name]
        return env["ONLOOKER_MQTT_USERNAME"], env["ONLOOKER_MQTT_PASSWORD"]


def accepts(port: int) -> bool:
    """Whether something listens on this loopback port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def production_mosquitto(tmp_path) -> Iterator[Callable[..., ProductionMosquitto]]:
    """Start Mosquitto with the production configuration: `production_mosquitto(agents)`."""
    started: list[ProductionMosquitto] = []

    def start(agents: list[str], **options) -> ProductionMosquitto:
        folder = tmp_path / f"broker{len(started)}"
        folder.mkdir(exist_ok=True)
        broker = ProductionMosquitto(folder, agents, **options)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()
