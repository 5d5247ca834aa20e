"""The MQTT subscriber: validated wire messages in, `DashboardState` updates out.

paho's network thread only puts each message in an inbox and returns, so it can read and
acknowledge at the broker's pace however busy the machine is; a worker thread takes the
inbox in batches, validates each message and applies the batch under one lock, with one
wake-up for the event streams. The inbox is bounded (`INBOX_MAX`): beyond it the oldest
messages are dropped and counted (`dropped_backlog`), never silently. How far behind the
worker is (`backlog`, `lag_ms`, `behind`) is in the counters, /healthz, /metrics and on the
page.

The session is persistent (MQTT clean session off, under a client id that stays the same
across restarts): while the dashboard restarts, the broker keeps what arrives for it and
delivers it when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask, current_app

from broker import wire
from broker.connection import MqttAuth, make_client
from dashboard.state import DashboardState

logger = logging.getLogger(__name__)

EXTENSION = "onlooker_mqtt"
KEEPALIVE_S = 30
DEFAULT_CLIENT_ID = "onlooker-dashboard"
"""The client id (and so the persistent session) of a dashboard; a second dashboard on the
same broker and prefix needs its own (``MQTT_CLIENT_ID``), or the two take the session
from each other."""
INBOX_MAX = 200_000
"""Messages waiting for the worker at most (three minutes of 100 kiosks); beyond, the oldest
go and are counted."""
BATCH_MAX = 1000
"""Messages applied under one lock at most, so a long backlog never stalls the page."""


def parse_url(url: str) -> tuple[str, int, bool]:
    """Split ``mqtt://host:port`` or ``mqtts://host:port`` into host, port and TLS."""
    address = wire.broker_address(url)
    return address.host, address.port, address.tls


class MqttSubscriber:
    """Subscribes to every Onlooker topic under a prefix and feeds a `DashboardState`."""

    def __init__(self, app: Flask | None = None):
        self.state: DashboardState | None = None
        self.broker_url = ""
        self.topics = wire.Topics()
        self.client_id = ""
        self.username: str | None = None
        self.password: str | None = None
        self.tls_ca: str | None = None
        self.clean_session = False
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._inbox: deque[tuple[mqtt.MQTTMessage, float]] = deque()
        self._inbox_ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the app's config, register as ``app.extensions["onlooker_mqtt"]``, maybe start."""
        self.state = app.extensions["onlooker_state"]
        self.broker_url = app.config["BROKER_URL"]
        parse_url(self.broker_url)  # a bad URL is a config error: fail at startup
        self.username = app.config.get("BROKER_USERNAME") or None
        self.password = app.config.get("BROKER_PASSWORD") or None
        self.tls_ca = app.config.get("BROKER_TLS_CA") or None
        if self.password and not self.username:
            raise ValueError("BROKER_PASSWORD is set without BROKER_USERNAME")
        # The agent's rules, from the same module: a CA with an mqtt:// URL is an error here too.
        self._auth().check(wire.broker_address(self.broker_url))
        self.topics = wire.Topics(app.config["TOPIC_PREFIX"])
        self.client_id = app.config.get("MQTT_CLIENT_ID") or default_client_id(self.topics.prefix)
        self.clean_session = not app.config.get("MQTT_PERSISTENT_SESSION", True)
        app.extensions[EXTENSION] = self
        if app.config.get("MQTT_AUTOSTART", True):
            self.start()

    @property
    def connected(self) -> bool:
        """True only between a successful CONNACK and the next disconnect."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (and subscribed) or `timeout` s pass; return `connected`."""
        return self._connected.wait(timeout)

    def start(self) -> MqttSubscriber:
        """Connect in the background (retrying with back-off) and run the network thread."""
        with self._lock:
            if self._client is not None:
                return self
            client, address = make_client(
                self.broker_url,
                self.client_id,
                self._auth(),
                who="the dashboard",
                clean_session=self.clean_session,
            )
            host, port, tls = address.host, address.port, address.tls
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            # connect_async: a broker that is not up yet is retried by the loop, not fatal here.
            client.connect_async(host, port, keepalive=KEEPALIVE_S)
            self._stopping = False
            self._worker = threading.Thread(
                target=self._work, name="onlooker-dashboard-inbox", daemon=True
            )
            self._worker.start()
            client.loop_start()
            self._client = client
            logger.info(
                "dashboard subscribing to %s at %s:%d%s%s",
                self.topics.subscription,
                host,
                port,
                " over TLS" if tls else "",
                f" as {self.username}" if self.username else "",
            )
            return self

    def _auth(self) -> MqttAuth:
        return MqttAuth(self.username, self.password, self.tls_ca)

    def stop(self) -> None:
        """Disconnect and stop the network thread; safe to call more than once."""
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        self._connected.clear()  # first, so the disconnect callback does not warn about it
        client.disconnect()
        client.loop_stop()
        self._connected.clear()
        with self._inbox_ready:  # what arrived is applied first: the broker has it acked
            self._stopping = True
            self._inbox_ready.notify_all()
        if self._worker is not None:
            self._worker.join(10)
            self._worker = None

    # --- callbacks: never raise from here, an exception kills paho's network thread ---------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        try:
            if reason_code.is_failure:
                self._connected.clear()
                logger.warning("broker %s refused the dashboard: %s", self.broker_url, reason_code)
                return
            # Subscribing here, not once, so every reconnect subscribes again.
            result, _mid = client.subscribe(self.topics.subscription, qos=1)
            if result != mqtt.MQTT_ERR_SUCCESS:
                logger.warning("subscribe to %s failed: %s", self.topics.subscription, result)
        except Exception:
            logger.exception("error in on_connect")

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        try:
            if any(code.is_failure for code in reason_codes):
                logger.warning("broker refused subscription %s", self.topics.subscription)
                return
            self._connected.set()
            logger.info("dashboard connected to %s", self.broker_url)
        except Exception:
            logger.exception("error in on_subscribe")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        try:
            if self._connected.is_set():
                logger.warning("dashboard lost the broker (%s); reconnecting", reason_code)
            self._connected.clear()
        except Exception:
            logger.exception("error in on_disconnect")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # paho's network thread: only queue it (no parsing, no lock the page may hold).
        try:
            with self._inbox_ready:
                self._inbox.append((msg, time.monotonic()))
                if len(self._inbox) > INBOX_MAX:
                    self._inbox.popleft()
                    if self.state is not None:
                        self.state.count_dropped_backlog()
                self._inbox_ready.notify()
        except Exception:
            logger.exception("error queueing a message")

    def _work(self) -> None:
        """The worker: take the inbox in batches, validate, apply each batch at once."""
        while True:
            with self._inbox_ready:
                while not self._inbox and not self._stopping:
                    self._inbox_ready.wait()
                if not self._inbox:
                    return
                count = min(len(self._inbox), BATCH_MAX)
                batch = [self._inbox.popleft() for _ in range(count)]
                backlog = len(self._inbox)
            try:
                self._apply_batch(batch, backlog)
            except Exception:
                logger.exception("error applying a batch of %d messages", len(batch))

    def drain(self) -> int:
        """Apply everything in the inbox now, on this thread; how many messages there were.

        For a subscriber whose worker is not running (tests, replays)."""
        with self._inbox_ready:
            batch = list(self._inbox)
            self._inbox.clear()
        if batch:
            self._apply_batch(batch, 0)
        return len(batch)

    def _apply_batch(self, batch: list[tuple[mqtt.MQTTMessage, float]], backlog: int) -> None:
        state = self.state
        if state is None:
            return
        lag_s = time.monotonic() - batch[0][1]
        items: list[tuple[wire.TopicInfo, Any, bytes | None]] = []
        rejected: list[str] = []
        cleared = 0
        for msg, _queued in batch:
            try:
                try:
                    topic = msg.topic
                except UnicodeDecodeError:
                    raise wire.WireError("bad_topic", "topic is not UTF-8") from None
                item = self.decode(topic, msg.payload, retained=bool(msg.retain))
            except wire.WireError as exc:
                rejected.append(exc.reason)
                _log_drop(msg, exc)
            except Exception:
                rejected.append("internal_error")
                logger.exception("error handling message on %s", _printable(msg))
            else:
                if item is None:
                    cleared += 1
                else:
                    items.append(item)
        errors = state.apply_batch(
            items, received=len(batch), rejected=rejected, cleared=cleared,
            lag_s=lag_s, backlog=backlog,
        )  # fmt: skip
        for (info, _message, _raw), exc in errors:
            logger.warning("dropped %s message of %s: %s", info.kind, info.agent, exc.reason)
            logger.debug("details: %s", exc.detail)

    def decode(
        self, topic: str, payload: bytes, retained: bool = False
    ) -> tuple[wire.TopicInfo, Any, bytes | None] | None:
        """Validate one message: what to apply, or None for an empty retained payload (a
        publisher clearing a retained message: nothing to apply). `WireError` when off-contract."""
        info = self.topics.parse(topic)
        if retained and payload and info.kind != "available":
            # Onlooker retains only availability: any other retained message is a plant.
            raise wire.WireError("retained_signal", "only availability may be retained")
        if not payload and info.kind != "available":
            return None
        if info.kind == "available":
            return info, wire.decode_availability(payload), None
        return info, wire.decode(info, payload), bytes(payload)

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Validate one message and apply it now; raises `WireError` on anything off-contract.

        The synchronous path (tests, replays); messages from the broker go through the inbox.
        """
        assert self.state is not None
        item = self.decode(topic, payload, retained)
        if item is None:
            self.state.count_cleared()
        else:
            self.state.apply(*item)


def default_client_id(prefix: str) -> str:
    """``onlooker-dashboard``, or with a non-default prefix ``onlooker-dashboard-<prefix>``
    (``/`` as ``-``): one persistent session per dashboard of a site."""
    if prefix == wire.DEFAULT_PREFIX:
        return DEFAULT_CLIENT_ID
    return f"{DEFAULT_CLIENT_ID}-{prefix.replace('/', '-')}"[:64]


def _log_drop(msg: mqtt.MQTTMessage, exc: wire.WireError) -> None:
    logger.warning("dropped message on %s: %s", _printable(msg), exc.reason)
    logger.debug("details for %s: %s", _printable(msg), exc.detail)


def _printable(msg: mqtt.MQTTMessage) -> str:
    # Topics come from outside: bound their length and keep control characters out of logs.
    try:
        topic = msg.topic
    except UnicodeDecodeError:
        return "<topic not UTF-8>"
    return repr(topic[:160])


def get_subscriber() -> MqttSubscriber | None:
    """The current app's subscriber, if `init_app` ran."""
    return current_app.extensions.get(EXTENSION)
