"""The embedded broker, exercised by a real paho-mqtt client against real mosquitto and amqtt."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from broker import embedded
from broker.embedded import START_TIMEOUT_S, BrokerError, EmbeddedBroker, find_mosquitto
from conftest import free_port, get_json, require, wait_until

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0
QUIET_S = 0.5  # how long "nothing arrives" is watched for


def _require(kind: str) -> None:
    if kind == "mosquitto" and find_mosquitto() is None:
        message = "mosquitto not installed (apt-get install mosquitto); amqtt case still runs"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)


@pytest.fixture(params=["mosquitto", "amqtt"])
def kind(request: pytest.FixtureRequest) -> str:
    _require(request.param)
    return request.param


@pytest.fixture
def broker(kind: str) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(prefer=kind) as running:
        assert running.kind == kind
        yield running


class Peer:
    """A paho 2.x client whose received messages land in a queue."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        client_id: str | None = None,
        clean_session: bool | None = None,
        protocol: int = mqtt.MQTTv311,
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subscribed: queue.Queue[int] = queue.Queue()
        self._connected: queue.Queue[object] = queue.Queue()
        self.session_present: bool | None = None
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:10]}",
            clean_session=clean_session,
            protocol=protocol,
        )
        # Short retries, so a peer whose broker was stopped under it shuts down at once.
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.2)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.put(mid)
        self.broker = broker

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        self.session_present = flags.session_present
        self._connected.put(reason)

    def connect(self, **options: Any) -> Peer:
        self.client.connect(self.broker.host, self.broker.port, keepalive=30, **options)
        self.client.loop_start()
        reason = self._connected.get(timeout=TIMEOUT_S)
        assert not reason.is_failure, f"CONNECT refused: {reason}"
        return self

    def connect_unthreaded(self, keepalive: int = 30) -> Peer:
        """Connect with no network thread, so the test decides when (if ever) it talks again."""
        self.client.connect(self.broker.host, self.broker.port, keepalive=keepalive)
        deadline = time.monotonic() + TIMEOUT_S
        while self._connected.empty() and time.monotonic() < deadline:
            self.client.loop(timeout=0.05)
        reason = self._connected.get_nowait()
        assert not reason.is_failure, f"CONNECT refused: {reason}"
        return self

    def vanish(self) -> None:
        """Close the socket without DISCONNECT, as when a kiosk loses power or network."""
        sock = self.client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def subscribe(self, topic: str, qos: int = 1) -> Peer:
        _, mid = self.client.subscribe(topic, qos=qos)
        assert self.subscribed.get(timeout=TIMEOUT_S) == mid
        return self

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=TIMEOUT_S)
        assert info.is_published()

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT_S)

    def all_messages(self, count: int) -> list[mqtt.MQTTMessage]:
        """`count` messages, then whatever else arrives within QUIET_S (duplicates, say)."""
        got = [self.next_message() for _ in range(count)]
        time.sleep(QUIET_S)
        while not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(broker: EmbeddedBroker) -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def _peer(peers: list[Peer], broker: EmbeddedBroker) -> Peer:
    peer = Peer(broker).connect()
    peers.append(peer)
    return peer


def _topic(name: str) -> str:
    return f"onlooker-test/{uuid.uuid4().hex[:8]}/{name}"


def test_publish_subscribe_round_trip(broker: EmbeddedBroker, peers: list[Peer]) -> None:
    subscriber = _peer(peers, broker).subscribe("onlooker-test/+/round")
    publisher = _peer(peers, broker)
    topic = _topic("round")
    payload = b'{"v":1,"type":"heartbeat"}' + bytes(range(256))
    publisher.publish(topic, payload)
    message = subscriber.next_message()
    assert (message.topic, message.payload, message.retain) == (topic, payload, False)


def test_retained_message_reaches_late_subscriber(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    topic = _topic("available")
    _peer(peers, broker).publish(topic, "online", retain=True)
    late = _peer(peers, broker).subscribe(topic)
    message = late.next_message()
    assert (message.payload, message.retain) == (b"online", True)


def test_last_will_on_abrupt_disconnect(
    kind: str, broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    topic = _topic("available")
    watcher = _peer(peers, broker).subscribe(topic)
    agent = Peer(broker)
    agent.client.will_set(topic, "offline", qos=1, retain=True)
    agent.connect_unthreaded()
    agent.client.publish(topic, "online", qos=0, retain=True)
    agent.client.loop(timeout=0.05)
    assert watcher.next_message().payload == b"online"
    agent.vanish()

    assert watcher.next_message().payload == b"offline"
    late = _peer(peers, broker).subscribe(topic)
    message = late.next_message()
    assert (message.payload, message.retain) == (b"offline", True)


def test_last_will_on_keepalive_expiry(
    kind: str, broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    topic = _topic("available")
    watcher = _peer(peers, broker).subscribe(topic)
    agent = Peer(broker)
    agent.client.will_set(topic, "offline", qos=1, retain=True)
    agent.connect_unthreaded(keepalive=1)
    silent_since = time.monotonic()
    # Go silent with the socket still open, as when a kiosk's cable is pulled: no FIN, no
    # PINGREQ. The MQTT spec says the broker drops it after 1.5 x keepalive; mosquitto 2.0
    # checks keepalives about every 5 s, so it needs more than 1.5 x 1 s.
    try:
        wait_s = 8.0 if kind == "mosquitto" else 3.0
        assert watcher.messages.get(timeout=wait_s).payload == b"offline"
        assert time.monotonic() - silent_since >= 1.0, "dropped before its keepalive ran out"
    except queue.Empty:
        pytest.fail(f"{kind} sent no will within {wait_s} s of a 1 s keepalive expiring")
    finally:
        sock = agent.client.socket()
        if sock is not None:
            sock.close()


def test_no_last_will_on_clean_disconnect(broker: EmbeddedBroker, peers: list[Peer]) -> None:
    topic = _topic("available")
    watcher = _peer(peers, broker).subscribe(topic)
    agent = Peer(broker)
    agent.client.will_set(topic, "offline", qos=1, retain=True)
    agent.connect()
    agent.close()
    with pytest.raises(queue.Empty):
        watcher.messages.get(timeout=QUIET_S)


# --- sessions: what a dashboard that restarts relies on ---------------------------------------


def test_qos1_queued_for_a_disconnected_persistent_session_is_delivered_on_reconnect(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    """MQTT 3.1.1, clean session off: what was published while it was away comes, in order."""
    client_id, topic = f"dash-{uuid.uuid4().hex[:8]}", _topic("attention")
    first = Peer(broker, client_id, clean_session=False).connect().subscribe(topic)
    first.close()
    publisher = _peer(peers, broker)
    for i in range(20):
        publisher.publish(topic, f"m{i}")
    back = Peer(broker, client_id, clean_session=False).connect()  # no new SUBSCRIBE
    peers.append(back)
    assert back.session_present
    got = back.all_messages(20)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(20)]
    assert not any(m.retain for m in got), "queued messages are not retained messages"


AMQTT_SPEAKS_311_ONLY = pytest.mark.xfail(
    strict=True, reason="amqtt speaks MQTT 3.1.1 only: it refuses an MQTT 5 CONNECT"
)


@pytest.mark.parametrize(
    "kind",
    ["mosquitto", pytest.param("amqtt", marks=AMQTT_SPEAKS_311_ONLY)],
    indirect=True,
)
def test_qos1_queued_for_a_disconnected_mqtt5_session_is_delivered_on_reconnect(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    """MQTT 5, clean start off with a session expiry: the same."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = 60
    client_id, topic = f"dash-{uuid.uuid4().hex[:8]}", _topic("attention")
    first = Peer(broker, client_id, protocol=mqtt.MQTTv5)
    first.connect(clean_start=False, properties=expiry).subscribe(topic)
    first.close()
    publisher = _peer(peers, broker)
    for i in range(5):
        publisher.publish(topic, f"m{i}")
    back = Peer(broker, client_id, protocol=mqtt.MQTTv5)
    back.connect(clean_start=False, properties=expiry)
    peers.append(back)
    assert back.session_present
    assert [m.payload for m in back.all_messages(5)] == [f"m{i}".encode() for i in range(5)]


def test_qos1_unacknowledged_when_the_subscriber_vanished_is_sent_again(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    """A dashboard killed between receiving a message and acknowledging it gets it again."""
    client_id, topic = f"dash-{uuid.uuid4().hex[:8]}", _topic("page")
    first = Peer(broker, client_id, clean_session=False)
    first.client.manual_ack_set(True)  # receive, never PUBACK
    first.connect().subscribe(topic)
    _peer(peers, broker).publish(topic, "m0")
    assert first.next_message().payload == b"m0"
    first.client.loop_stop()
    first.vanish()
    back = Peer(broker, client_id, clean_session=False).connect()
    peers.append(back)
    got = back.all_messages(1)
    assert [(m.payload, m.dup) for m in got] == [(b"m0", True)]


def test_retained_message_reaches_a_late_subscriber_exactly_once(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    """Another client subscribed to a matching filter must not make it arrive twice."""
    topic = _topic("available")
    _peer(peers, broker).subscribe("onlooker-test/#")  # e.g. a wire tap
    _peer(peers, broker).publish(topic, "online", retain=True)
    late = _peer(peers, broker).subscribe(topic)
    assert [(m.payload, m.retain) for m in late.all_messages(1)] == [(b"online", True)]


def test_retained_message_reaches_a_returning_persistent_session_once(
    broker: EmbeddedBroker, peers: list[Peer]
) -> None:
    """A persistent session that subscribes again on reconnect (as paho users do) gets it once."""
    client_id, topic = f"dash-{uuid.uuid4().hex[:8]}", _topic("available")
    Peer(broker, client_id, clean_session=False).connect().subscribe(topic).close()
    _peer(peers, broker).publish(topic, "online", retain=True)
    back = Peer(broker, client_id, clean_session=False).connect()
    peers.append(back)
    time.sleep(QUIET_S)  # while away it was queued once (QoS 1); the SUBSCRIBE adds one more
    back.subscribe(topic)
    got = [(m.payload, m.retain) for m in back.all_messages(2)]
    assert sorted(got) == [(b"online", False), (b"online", True)]


def test_port_zero_gives_distinct_ports(kind: str) -> None:
    with EmbeddedBroker(prefer=kind) as one, EmbeddedBroker(prefer=kind) as two:
        assert one.port != two.port
        assert 0 < one.port < 65536 and 0 < two.port < 65536
        assert one.url == f"mqtt://127.0.0.1:{one.port}"
        for running in (one, two):
            Peer(running).connect().close()


def test_stop_frees_port_and_is_idempotent(kind: str) -> None:
    running = EmbeddedBroker(prefer=kind).start()
    port = running.port
    Peer(running).connect().close()
    running.stop()
    running.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
    # The same port can be taken again at once: nothing of the old broker holds it.
    with EmbeddedBroker(port=port, prefer=kind) as again:
        assert again.port == port
        Peer(again).connect().close()


def test_stop_with_clients_in_flight_is_prompt(kind: str) -> None:
    # amqtt on Python < 3.12 could hang in shutdown when a packet arrived as its reader was
    # cancelled (about one stop in five here); several rounds make that visible.
    for _ in range(5):
        running = EmbeddedBroker(prefer=kind).start()
        subscriber = Peer(running).connect().subscribe("onlooker-test/#")
        publisher = Peer(running).connect()
        publisher.publish(_topic("state"), "online", retain=True)
        began = time.monotonic()
        running.stop()
        assert time.monotonic() - began < 2.0
        for peer in (subscriber, publisher):
            peer.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT_S).close()


def test_stop_removes_temporary_files(kind: str) -> None:
    running = EmbeddedBroker(prefer=kind).start()
    tmpdir = running._tmpdir
    if kind == "mosquitto":
        assert tmpdir is not None and (tmpdir / "mosquitto.conf").is_file()
    running.stop()
    assert running._tmpdir is None
    if tmpdir is not None:
        assert not tmpdir.exists()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on `port`."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def _outside_address() -> str | None:
    """An address of this host that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; UDP connect sends nothing
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_binds_loopback_only(broker: EmbeddedBroker) -> None:
    if sys.platform.startswith("linux"):
        assert _listening_addresses(broker.port) == {"0100007F"}  # 127.0.0.1 and nothing else
    outside = _outside_address()
    if outside is None and not sys.platform.startswith("linux"):
        pytest.skip("no non-loopback address to try and no /proc/net to read")
    if outside is not None:
        with pytest.raises(OSError):
            socket.create_connection((outside, broker.port), timeout=1.0).close()


def test_auto_picks_mosquitto_when_available() -> None:
    _require("mosquitto")
    with EmbeddedBroker() as running:
        assert running.kind == "mosquitto"


def test_auto_falls_back_to_amqtt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "find_mosquitto", lambda: None)
    with EmbeddedBroker() as running:
        assert running.kind == "amqtt"


def test_mosquitto_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "find_mosquitto", lambda: None)
    with pytest.raises(BrokerError, match=r"apt-get install mosquitto.*prefer=\"amqtt\""):
        EmbeddedBroker(prefer="mosquitto").start()


def test_port_in_use_reports_why(kind: str) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"127.0.0.1:{port}"):
            EmbeddedBroker(port=port, prefer=kind).start()


def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedBroker(host="0.0.0.0")
    with pytest.raises(ValueError, match="prefer"):
        EmbeddedBroker(prefer="hivemq")


# --- dying with the parent ------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a live process from /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), fields[19]


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below `root` (so a reused pid is not mistaken)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def _still_running(processes: dict[int, str]) -> list[int]:
    """Those of `processes` still running (a zombie nobody reaps here has let go of all)."""
    alive = []
    for pid, start in processes.items():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == start and stat[0] != "Z":
            alive.append(pid)
    return alive


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _nobody_listens(port: int) -> bool:
    """No server on the port (a closed connection's TIME_WAIT may still hold it for bind())."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _sigkill_and_check_nothing_is_left(code: str) -> None:
    """Run `code` (it starts a mosquitto broker) in a new Python, SIGKILL it, look what's left."""
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    below: dict[int, str] = {}
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        found = re.search(r"mosquitto broker on mqtt://127\.0\.0\.1:(\d+)", line)
        assert found, f"unexpected first line {line!r}"
        port = int(found.group(1))
        below = _descendants(parent.pid)
        folders = {
            Path(arg).parent
            for pid in below
            for arg in Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            if "onlooker-mosquitto-" in arg and arg.endswith(".conf")
        }
        assert len(folders) == 1, folders
        _kill_and_check_nothing_is_left(parent, below, port, folders.pop())
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=TIMEOUT_S)
        for pid in _still_running(below):  # a failed run must not leave its broker either
            os.kill(pid, signal.SIGKILL)


def _kill_and_check_nothing_is_left(
    parent: subprocess.Popen[str], below: dict[int, str], port: int, folder: Path
) -> None:
    assert below, f"no broker process below {parent.pid}"
    assert not _port_is_free(port) and folder.is_dir()
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=TIMEOUT_S)
    assert parent.stdout is not None
    parent.stdout.close()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and (
        _still_running(below) or not _port_is_free(port) or folder.exists()
    ):
        time.sleep(0.05)
    assert _still_running(below) == [], "the broker outlived its SIGKILLed parent"
    assert _port_is_free(port), f"port {port} still held after the parent was SIGKILLed"
    assert not folder.exists(), "the run folder (passwords, config) was left behind"


@pytest.fixture
def linux_mosquitto() -> None:
    require(sys.platform.startswith("linux"), "reads /proc to find the broker's processes")
    _require("mosquitto")


def test_sigkilled_onlooker_broker_leaves_no_mosquitto_and_no_port(linux_mosquitto) -> None:
    code = "from onlooker.cli import main; main(['broker', '--port', '0', '--prefer', 'mosquitto'])"
    _sigkill_and_check_nothing_is_left(code)


def test_sigkilled_parent_without_parent_death_signal_is_noticed_by_the_keeper(
    linux_mosquitto,
) -> None:
    """As on macOS and Windows: the keeper alone, seeing its stdin close, stops mosquitto."""
    code = (
        "import time\n"
        "from broker import embedded\n"
        "embedded.die_with_parent = lambda: None\n"
        "broker = embedded.EmbeddedBroker(prefer='mosquitto', agents=['kiosk-1']).start()\n"
        "print(f'mosquitto broker on {broker.url}', flush=True)\n"
        "time.sleep(60)\n"
    )
    _sigkill_and_check_nothing_is_left(code)


def test_a_burst_of_sigterms_stops_the_process_and_never_deadlocks_it() -> None:
    """On Linux a SIGKILLed parent's threads die one by one and each can send the child its
    parent-death SIGTERM. A handler that took a lock (`Event.set`) deadlocked when the next
    SIGTERM came while it held it: the agent outlived a SIGKILLed demo. The CLI's handler
    hands the signal on and takes no lock."""
    code = (
        "import os, signal, threading, time\n"
        "from onlooker import cli\n"
        "stopped = threading.Event()\n"
        "cli._sigterm_stops(stopped.set)\n"
        "def pelt():\n"
        "    for _ in range(20000):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "pelter = threading.Thread(target=pelt, daemon=True)\n"
        "pelter.start()\n"
        "until = time.monotonic() + 5.0\n"
        "while pelter.is_alive() and time.monotonic() < until:\n"
        "    stopped.wait(0.001)  # the main thread takes the Event's lock again and again\n"
        "print('stopped' if stopped.is_set() else 'not stopped', flush=True)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("a burst of SIGTERMs deadlocked the process")
    assert (result.returncode, result.stdout) == (0, "stopped\n"), result.stderr


def test_a_broker_started_from_a_short_lived_thread_outlives_the_thread() -> None:
    """Linux's parent-death signal follows the thread that forked, not the process."""
    _require("mosquitto")
    started: list[EmbeddedBroker] = []
    worker = threading.Thread(
        target=lambda: started.append(EmbeddedBroker(prefer="mosquitto").start())
    )
    worker.start()
    worker.join(timeout=START_TIMEOUT_S)
    [running] = started
    try:
        time.sleep(0.5)  # a SIGTERM from the thread's exit would have landed by now
        assert running._process is not None and running._process.poll() is None
        Peer(running).connect().close()
    finally:
        running.stop()


def _agent_online(dashboard_port: int) -> bool:
    """The demo's dashboard shows an agent online and sending frames."""
    try:
        agents = get_json(f"http://127.0.0.1:{dashboard_port}/api/agents")["agents"]
    except OSError:
        return False
    return any(a["online"] and (a["fps"] or 0) > 0 for a in agents)


def test_demo_runs_on_amqtt_where_no_mosquitto_is_installed(sample, tmp_path) -> None:
    """`make demo` on a machine without the mosquitto binary: the agent reaches the dashboard."""
    code = (
        "import sys\n"
        "from broker import embedded\n"
        "embedded.find_mosquitto = lambda: None  # as where no mosquitto is installed\n"
        "from onlooker.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    dashboard_port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-c", code, "demo", "--no-browser", "--duration", "25",
             "--source", str(sample("WolfgangLanger_Pexels.mp4")),
             "--dashboard-port", str(dashboard_port), "--viewer-port", str(free_port())],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip

    try:
        assert wait_until(lambda: _agent_online(dashboard_port), 60), log.read_text()[-3000:]
        assert demo.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=TIMEOUT_S)
    text = log.read_text()
    assert "(amqtt, embedded, open to local processes)" in text and "demo stopped" in text


@pytest.mark.parametrize("death_signal", [True, False], ids=["linux", "pipe-only"])
def test_a_sigkilled_demo_leaves_no_agent_broker_port_or_folder(
    linux_mosquitto, sample, tmp_path, death_signal: bool
) -> None:
    """Issue 15: `onlooker demo` killed with SIGKILL (no handler of ours runs) takes its agent,
    its broker and their ports and run folder with it. `pipe-only` is the macOS and Windows
    path: no parent-death signal, only the closed standard input the agent and keeper watch."""
    code = (
        "import sys\n"
        "from broker import embedded\n"
        + ("" if death_signal else "embedded.die_with_parent = lambda: None\n")
        + "from onlooker.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    dashboard_port, viewer_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-c", code, "demo", "--no-browser",
             "--source", str(sample("WolfgangLanger_Pexels.mp4")),
             "--dashboard-port", str(dashboard_port), "--viewer-port", str(viewer_port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
    below: dict[int, str] = {}

    try:
        assert wait_until(lambda: _agent_online(dashboard_port), 60), log.read_text()[-3000:]
        broker_port = int(re.search(r"broker\s+mqtt://127\.0\.0\.1:(\d+)", log.read_text())[1])
        below = _descendants(demo.pid)
        named = {pid: Path(f"/proc/{pid}/cmdline").read_text() for pid in below}
        commands = list(named.values())
        assert any("agent" in c and "--exit-with-parent" in c for c in commands), commands
        assert any("mosquitto" in c for c in commands), commands
        folders = {
            Path(arg).parent
            for c in commands
            for arg in c.split("\0")
            if "onlooker-mosquitto-" in arg and arg.endswith(".conf")
        }
        ports = (dashboard_port, viewer_port, broker_port)
        assert not any(map(_nobody_listens, ports)) and len(folders) == 1, folders
        folder = folders.pop()
        demo.send_signal(signal.SIGKILL)
        demo.wait(timeout=TIMEOUT_S)

        def left() -> bool:
            return bool(
                _still_running(below) or not all(map(_nobody_listens, ports)) or folder.exists()
            )

        # The agent stops cleanly first (about 2 s here), each step with its own bound: the
        # outbox flush (3 s), the pump (2 s), `offline` (2 s), the heartbeat (3 s), paho's
        # reconnect wait (1 s), the viewer's poll (0.5 s).
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and left():
            time.sleep(0.1)
        outlived = {pid: named[pid][:200] for pid in _still_running(below)}
        assert outlived == {}, f"a process of the demo outlived it\n{log.read_text()[-3000:]}"
        assert all(map(_nobody_listens, ports)), "a port of the demo still listens"
        assert not folder.exists(), "the broker's run folder (passwords) was left behind"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=TIMEOUT_S)
        for pid in _still_running(below):
            os.kill(pid, signal.SIGKILL)
