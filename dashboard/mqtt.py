"""The MQTT subscriber: validated wire messages in, `DashboardState` updates out."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask, current_app

from broker import wire
from broker.connection import MqttAuth, make_client
from dashboard.state import DashboardState

logger = logging.getLogger(__name__)

EXTENSION = "onlooker_mqtt"
KEEPALIVE_S = 30


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
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()
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
        self.client_id = app.config.get("MQTT_CLIENT_ID") or (
            f"onlooker-dashboard-{secrets.token_hex(4)}"
        )
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
                self.broker_url, self.client_id, self._auth(), who="the dashboard"
            )
            host, port, tls = address.host, address.port, address.tls
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_subscribe = self._on_subscribe
            client.on_message = self._on_message
            # connect_async: a broker that is not up yet is retried by the loop, not fatal here.
            client.connect_async(host, port, keepalive=KEEPALIVE_S)
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
        state = self.state
        if state is None:
            return
        try:
            state.count_received()
            try:
                topic = msg.topic
            except UnicodeDecodeError:
                raise wire.WireError("bad_topic", "topic is not UTF-8") from None
            self.handle(topic, msg.payload, retained=bool(msg.retain))
        except wire.WireError as exc:
            state.count_rejected(exc.reason)
            logger.warning("dropped message on %s: %s", _printable(msg), exc.reason)
            logger.debug("details for %s: %s", _printable(msg), exc.detail)
        except Exception:
            state.count_rejected("internal_error")
            logger.exception("error handling message on %s", _printable(msg))

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Validate one message and apply it; raises `WireError` on anything off-contract."""
        assert self.state is not None
        info = self.topics.parse(topic)
        if retained and payload and info.kind != "available":
            # Onlooker retains only availability: any other retained message is a plant.
            raise wire.WireError("retained_signal", "only availability may be retained")
        if not payload and info.kind != "available":
            self.state.count_cleared()  # a purge clearing retained messages: nothing to apply
            return
        if info.kind == "available":
            self.state.apply(info, wire.decode_availability(payload))
        else:
            self.state.apply(info, wire.decode(info, payload), raw=bytes(payload))


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
