"""The agent's side of MQTT: availability, last will, and validated messages only."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from broker import wire

logger = logging.getLogger(__name__)


@dataclass
class Ledger:
    """What left the device about one visit: counts and the last message of each type."""

    visit: str
    counts: Counter = field(default_factory=Counter)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)  # expression labels published

    def record(self, message: dict[str, Any]) -> None:
        self.counts[message["type"]] += 1
        self.last[message["type"]] = message
        if message["type"] == "expression":
            self.labels[message["label"]] += 1


class SignalPublisher:
    """The privacy boundary: the one place that decides what leaves the device.

    A message is handed to the MQTT client only if it passes the wire allow-list and, for a
    visit-scoped signal, only while that visit is open and its viewer consented to the
    signal's scope. Reconnects with back-off when the broker goes.
    """

    def __init__(self, broker_url: str, agent: str, prefix: str = wire.DEFAULT_PREFIX):
        self.host, self.port = wire.parse_broker_url(broker_url)
        self.agent = wire.check_agent_id(agent)
        self.topics = wire.Topics(prefix)
        self._seq = itertools.count()
        self._connected = threading.Event()
        self.sent = 0
        self.refused = 0  # messages refused before they reached the client
        self._scopes: dict[str, frozenset[str]] = {}  # open visit -> consented scopes
        self.ledgers: dict[str, Ledger] = {}  # visit -> what was published about it
        self._gate = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"onlooker-agent-{agent}",
            clean_session=True,
        )
        # The will must be set before connecting: the broker announces `offline` for us
        # when the connection drops without a DISCONNECT (crash, kill -9, cable pulled).
        self.client.will_set(self.topics.available(agent), wire.OFFLINE, qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, wait_s: float = 0.0) -> None:
        """Connect in the background; optionally wait up to `wait_s` for the first CONNACK."""
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if wait_s and not self._connected.wait(wait_s):
            logger.warning(
                "broker %s:%s not reachable yet; retrying in the background", self.host, self.port
            )

    def stop(self) -> None:
        """Announce `offline` (retained) and disconnect cleanly."""
        if self.connected:
            info = self.client.publish(
                self.topics.available(self.agent), wire.OFFLINE, qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the connection: %s", reason_code)
            return
        logger.info("connected to broker %s:%s", self.host, self.port)
        self._connected.set()
        client.publish(self.topics.available(self.agent), wire.ONLINE, qos=1, retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if reason_code != 0:
            logger.warning("lost the broker (%s); reconnecting with back-off", reason_code)

    def _consented(self, kind: str, fields: dict[str, Any]) -> str | None:
        """Why a message may not leave now, or None when it may (call with the gate held)."""
        if kind == "visit":
            if fields.get("event") == "start" or fields.get("visit") in self._scopes:
                return None
            return "the visit is not open"
        if kind in wire.SCOPE_OF:
            scopes = self._scopes.get(fields.get("visit"))
            if scopes is None:
                return "no open, consented visit"
            if wire.SCOPE_OF[kind] not in scopes:
                return f"the viewer did not consent to {wire.SCOPE_OF[kind]}"
        return None

    def publish(self, kind: str, qos: int = 1, **fields: Any) -> bool:
        """Validate, gate on consent and publish one message; refused ones never reach MQTT."""
        with self._gate:
            why = self._consented(kind, fields)
            try:
                if why is not None:
                    raise wire.WireError("not_consented", why)
                message = wire.message(
                    kind, agent=self.agent, seq=next(self._seq), ts=time.time(), **fields
                )
                payload = wire.encode(message)
            except wire.WireError as exc:
                self.refused += 1
                logger.error("refused to publish %s: %s", kind, exc)
                return False
            if kind == "visit":
                if message["event"] == "start":
                    self._scopes[message["visit"]] = frozenset(message["scopes"])
                    self.ledgers[message["visit"]] = Ledger(message["visit"])
                else:
                    self._scopes.pop(message["visit"], None)
            if kind in wire.VISIT_TYPES and message["visit"] in self.ledgers:
                self.ledgers[message["visit"]].record(message)
            self.client.publish(self.topics.for_message(message), payload, qos=qos)
            self.sent += 1
            return True

    def purge(self, visit: str, reason: str) -> bool:
        """Close the visit, tell every consumer to delete it, and clear retained messages."""
        with self._gate:
            self._scopes.pop(visit, None)
            self.ledgers.pop(visit, None)
            try:
                message = wire.message(
                    "purge", agent=self.agent, seq=next(self._seq), ts=time.time(),
                    visit=visit, reason=reason,
                )  # fmt: skip
            except wire.WireError as exc:
                logger.error("cannot purge %s: %s", visit, exc)
                return False
            # Nothing of ours is retained under a visit, but a stray retained message (a
            # buggy or hostile client) would outlive the purge: an empty retained payload
            # deletes it from the broker.
            for kind in wire.VISIT_TYPES:
                if kind != "purge":
                    self.client.publish(self.topics.visit(self.agent, visit, kind), b"", 1, True)
            self.client.publish(self.topics.for_message(message), wire.encode(message), qos=1)
            self.sent += 1
            logger.info("visit %s purged (%s)", visit, reason)
            return True

    def forget_ledger(self, visit: str) -> None:
        """Drop the local record of what was published about a visit (retention ended)."""
        with self._gate:
            self.ledgers.pop(visit, None)
