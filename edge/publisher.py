"""The agent's side of MQTT: availability, last will, and validated messages only.

Messages wait in a bounded, ordered outbox of the publisher's own (paho keeps unsent QoS 1
messages in memory, unbounded and without an age limit). A pump thread hands them to paho
while the broker is there, at most `WINDOW` unacknowledged at a time; while it is gone they
stay in the outbox, the oldest dropped beyond `max_buffer`, any older than `ttl_s` dropped on
replay. A purge is never dropped, and the signals of the purged visit still waiting in the
outbox are discarded: nothing about a person leaves after "forget me".
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from broker import wire
from broker.connection import ENV_CA, ENV_PASSWORD, ENV_USERNAME, MqttAuth, make_client

__all__ = ["ENV_CA", "ENV_PASSWORD", "ENV_USERNAME", "MqttAuth", "Ledger", "SignalPublisher"]

logger = logging.getLogger(__name__)

MQTTS_PORT = 8883
WINDOW = 16
"""QoS 1 messages handed to paho and not yet acknowledged, at most (paho allows 20 in
flight; the rest of its headroom is for `online` and `offline`)."""
MAX_BUFFER = 1000
"""Messages kept while the broker is away: about 90 s of a busy visit (≈ 11 messages/s)."""
TTL_S = 120.0
"""A message older than this is not replayed: the dashboard is live, and a stale signal is
personal data kept longer for nothing."""
RESYNC_WAIT_S = 5.0
"""After a reconnect, how long the pump waits for paho to re-send what was in flight."""
STOP_FLUSH_S = 3.0


@dataclass
class Ledger:
    """What left the device about one visit: counts and the last message of each type, and
    what the visitor's summary needs to show the conclusions drawn from them."""

    visit: str
    scopes: frozenset[str] = frozenset()  # what the viewer consented to
    counts: Counter = field(default_factory=Counter)
    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: Counter = field(default_factory=Counter)  # expression labels published
    pages: int = 0  # page messages published
    skims: int = 0  # … of which skimmed
    topics: dict[str, float] = field(default_factory=dict)  # topic -> seconds looked at
    answers: dict[str, str] = field(default_factory=dict)  # conclusion -> the visitor's answer

    def record(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        self.counts[kind] += 1
        self.last[kind] = message
        if kind == "expression":
            self.labels[message["label"]] += 1
        elif kind == "page":
            self.pages += 1
            self.skims += bool(message["skim"])
            looked = max(0.0, message["seconds"] - message["away_s"])
            self.topics[message["topic"]] = self.topics.get(message["topic"], 0.0) + looked
        elif kind == "feedback":
            self.answers[message["conclusion"]] = message["answer"]


@dataclass
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    visit: str | None
    created: float  # time.monotonic()
    sticky: bool = False  # a purge or a retained-clear: never expired, never dropped
    bracket: bool = False  # a visit's start or end (no signal about the person)
    buffered: bool = False  # waited while the broker was away


class SignalPublisher:
    """The privacy boundary: the one place that decides what leaves the device.

    A message is handed to the MQTT client only if it passes the wire allow-list and, for a
    visit-scoped signal, only while that visit is open and its viewer consented to the
    signal's scope. Reconnects with back-off when the broker goes, keeping what it could not
    send in a bounded outbox (see the module docstring); `stats()` counts what happened.
    """

    def __init__(
        self,
        broker_url: str,
        agent: str,
        prefix: str = wire.DEFAULT_PREFIX,
        auth: MqttAuth | None = None,
        max_buffer: int = MAX_BUFFER,
        ttl_s: float = TTL_S,
    ):
        self.address = wire.broker_address(broker_url)
        self.host, self.port = self.address.host, self.address.port
        self.agent = wire.check_agent_id(agent)
        self.topics = wire.Topics(prefix)
        self.auth = MqttAuth.from_env() if auth is None else auth
        if max_buffer < 1 or ttl_s <= 0:
            raise ValueError("max_buffer must be ≥ 1 and ttl_s > 0")
        self.max_buffer = max_buffer
        self.ttl_s = ttl_s
        self._seq = itertools.count()
        self._connected = threading.Event()
        self.sent = 0  # messages accepted for the wire (validated and consented)
        self.refused = 0  # messages refused before they reached the client
        self.last_seq: int | None = None  # seq of the last message accepted
        self.counters: Counter = Counter()  # buffered, replayed, expired, dropped_overflow, …
        self.refusal: str | None = None  # why the broker last refused us, if it did
        self._scopes: dict[str, frozenset[str]] = {}  # open visit -> consented scopes
        self.ledgers: dict[str, Ledger] = {}  # visit -> what was published about it
        # One lock for the gate and the outbox. It is a leaf: nobody calls paho holding it, so
        # paho's callbacks (which hold paho's locks) may take it.
        self._gate = threading.Condition()
        self._outbox: deque[_Outgoing] = deque()
        self._droppable = 0  # non-sticky messages in the outbox
        self._pending: set[int] = set()  # mids handed to paho, PUBACK not yet seen
        self._acked_early: set[int] = set()  # PUBACKs that beat the pump's bookkeeping
        self._online = False  # the pump's view: connected, and paho may be handed messages
        self._resync_until = 0.0
        self._stopping = False
        self._pump: threading.Thread | None = None
        # The will is set before connecting: the broker announces `offline` for us when the
        # connection drops without a DISCONNECT (crash, kill -9, cable pulled).
        self.client, _ = make_client(
            broker_url,
            f"onlooker-agent-{agent}",
            self.auth,
            will_topic=self.topics.available(agent),
            who="the agent",
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stats(self) -> dict[str, int]:
        """Counters: sent, refused, buffered, replayed, expired, dropped_overflow, …, queued."""
        with self._gate:
            keys = ("buffered", "replayed", "expired", "dropped_overflow", "skipped_offline",
                    "discarded_purged", "unsent_at_stop")  # fmt: skip
            return {
                "sent": self.sent,
                "refused": self.refused,
                **{key: self.counters[key] for key in keys},
                "queued": len(self._outbox),
                "in_flight": len(self._pending),
            }

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, wait_s: float = 0.0) -> None:
        """Connect in the background; optionally wait up to `wait_s` for the first CONNACK."""
        self._pump = threading.Thread(target=self._pump_loop, name="mqtt-outbox", daemon=True)
        self._pump.start()
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if wait_s and not self._connected.wait(wait_s):
            logger.warning(
                "broker %s:%s not reachable yet; retrying in the background", self.host, self.port
            )

    def stop(self) -> None:
        """Send what is waiting (briefly), announce `offline` (retained), disconnect cleanly."""
        deadline = time.monotonic() + STOP_FLUSH_S
        with self._gate:
            self._stopping = True
            self._gate.notify_all()
            while (self._outbox or self._pending) and self._online:
                if not self._gate.wait(max(0.0, deadline - time.monotonic())):
                    break
            left = len(self._outbox)
            self.counters["unsent_at_stop"] += left
            self._outbox.clear()
            self._droppable = 0
            self._gate.notify_all()
        if left:
            logger.warning("stopping with %d messages not sent (broker unreachable)", left)
        if self._pump is not None:
            self._pump.join(timeout=2.0)
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

    # --- paho callbacks: never raise here, an exception kills paho's network thread -------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        try:
            if reason_code.is_failure:
                self.refusal = str(reason_code)
                logger.error(
                    "broker %s:%s refused the connection: %s (check %s / %s)",
                    self.host, self.port, reason_code, ENV_USERNAME, ENV_PASSWORD,
                )  # fmt: skip
                return
            self.refusal = None
            logger.info("connected to broker %s:%s", self.host, self.port)
            with self._gate:
                self._online = True
                # paho re-sends what was in flight right after this callback returns; the
                # pump waits for those acknowledgements first, so order is kept.
                self._resync_until = time.monotonic() + RESYNC_WAIT_S
                self._gate.notify_all()
            self._connected.set()
            client.publish(self.topics.available(self.agent), wire.ONLINE, qos=1, retain=True)
        except Exception:
            logger.exception("error in on_connect")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        try:
            self._connected.clear()
            with self._gate:
                self._online = False
                self._mark_buffered_locked()
                self._gate.notify_all()
            if reason_code != 0:
                logger.warning("lost the broker (%s); reconnecting with back-off", reason_code)
        except Exception:
            logger.exception("error in on_disconnect")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        try:
            with self._gate:
                if mid in self._pending:
                    self._pending.discard(mid)
                    self._gate.notify_all()
                else:
                    self._acked_early.add(mid)
        except Exception:
            logger.exception("error in on_publish")

    # --- the outbox -------------------------------------------------------------------------

    def _mark_buffered_locked(self) -> None:
        """The broker went away: what waits is now buffered; QoS 0 is not kept (at most once)."""
        kept: deque[_Outgoing] = deque()
        for entry in self._outbox:
            if entry.qos == 0:
                self.counters["skipped_offline"] += 1
                self._droppable -= 1
                continue
            if not entry.buffered:
                entry.buffered = True
                self.counters["buffered"] += 1
            kept.append(entry)
        self._outbox = kept

    def _enqueue_locked(self, entry: _Outgoing) -> None:
        if self._stopping and not self._online:
            self.counters["unsent_at_stop"] += 1
            return
        if not self._online:
            if entry.qos == 0:
                self.counters["skipped_offline"] += 1  # heartbeats say "alive now", not later
                return
            entry.buffered = True
            self.counters["buffered"] += 1
            self._expire_head_locked()
        if not entry.sticky:
            if self._droppable >= self.max_buffer:
                self._drop_oldest_locked()
            self._droppable += 1
        self._outbox.append(entry)
        self._gate.notify_all()

    def _expire_head_locked(self) -> None:
        now = time.monotonic()
        while self._outbox and self._is_expired(self._outbox[0], now):
            self._outbox.popleft()
            self._droppable -= 1
            self.counters["expired"] += 1

    def _is_expired(self, entry: _Outgoing, now: float) -> bool:
        return not entry.sticky and now - entry.created > self.ttl_s

    def _drop_oldest_locked(self) -> None:
        for index, entry in enumerate(self._outbox):
            if not entry.sticky:
                del self._outbox[index]
                self._droppable -= 1
                self.counters["dropped_overflow"] += 1
                if self.counters["dropped_overflow"] in (1, 10, 100) or (
                    self.counters["dropped_overflow"] % 1000 == 0
                ):
                    logger.warning(
                        "outbox full (%d messages): dropped the oldest, %d so far",
                        self.max_buffer, self.counters["dropped_overflow"],
                    )  # fmt: skip
                return

    def _next_locked(self) -> _Outgoing | None:
        """Wait until a message may go to paho now and return it, or None when stopping."""
        while True:
            if self._stopping and (not self._outbox or not self._online):
                return None
            now = time.monotonic()
            if self._online and self._outbox:
                if self._resync_until and self._pending and now < self._resync_until:
                    self._gate.wait(self._resync_until - now)
                    continue
                if self._resync_until and self._pending:
                    logger.warning("%d messages were not re-acknowledged after reconnecting",
                                   len(self._pending))  # fmt: skip
                    self._pending.clear()
                self._resync_until = 0.0
                if len(self._pending) < WINDOW:
                    entry = self._outbox.popleft()
                    if not entry.sticky:
                        self._droppable -= 1
                    if self._is_expired(entry, now):
                        self.counters["expired"] += 1
                        continue
                    return entry
            self._gate.wait(1.0)

    def _pump_loop(self) -> None:
        """The only thread that hands messages to paho, one at a time, in order."""
        while True:
            with self._gate:
                entry = self._next_locked()
                if entry is None:
                    self._gate.notify_all()
                    return
            try:
                info = self.client.publish(entry.topic, entry.payload, entry.qos, entry.retain)
            except Exception:  # noqa: BLE001 (a bad message must not stop the pump)
                logger.exception("paho refused a message for %s", entry.topic)
                continue
            with self._gate:
                if entry.buffered:
                    self.counters["replayed"] += 1
                ok = info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
                if entry.qos and ok and info.mid not in self._acked_early:
                    # NO_CONN: paho keeps a QoS 1 message and re-sends it on reconnect.
                    self._pending.add(info.mid)
                self._acked_early.clear()  # only the pump publishes: older entries are stale
                self._gate.notify_all()

    # --- the gate ---------------------------------------------------------------------------

    def _consented(self, kind: str, fields: dict[str, Any]) -> str | None:
        """Why a message may not leave now, or None when it may (call with the gate held)."""
        if kind == "visit":
            if fields.get("event") == "start" or fields.get("visit") in self._scopes:
                return None
            return "the visit is not open"
        if kind == "feedback":
            # The visitor's answers come after the visit, while the device still remembers it
            # (not forgotten, within retention), and only about what they consented to.
            ledger = self.ledgers.get(fields.get("visit"))  # type: ignore[arg-type]
            if ledger is None or fields.get("visit") in self._scopes:
                return "no finished visit remembered under that name"
            scope = wire.scope_of(kind, fields)
            if scope is not None and scope not in ledger.scopes:
                return f"the viewer did not consent to {scope}"
            return None
        if kind in wire.SCOPE_OF:
            scopes = self._scopes.get(fields.get("visit"))
            if scopes is None:
                return "no open, consented visit"
            if wire.SCOPE_OF[kind] not in scopes:
                return f"the viewer did not consent to {wire.SCOPE_OF[kind]}"
        return None

    def publish(self, kind: str, qos: int = 1, **fields: Any) -> bool:
        """Validate, gate on consent and queue one message; refused ones never reach MQTT."""
        with self._gate:
            why = self._consented(kind, fields)
            try:
                if why is not None:
                    raise wire.WireError("not_consented", why)
                message, payload = wire.build(
                    kind, agent=self.agent, seq=next(self._seq), ts=time.time(), **fields
                )
            except wire.WireError as exc:
                self.refused += 1
                logger.error("refused to publish %s: %s", kind, exc)
                return False
            if kind == "visit":
                if message["event"] == "start":
                    self._scopes[message["visit"]] = frozenset(message["scopes"])
                    self.ledgers[message["visit"]] = Ledger(
                        message["visit"], frozenset(message["scopes"])
                    )
                else:
                    self._scopes.pop(message["visit"], None)
            if kind in wire.VISIT_TYPES and message["visit"] in self.ledgers:
                self.ledgers[message["visit"]].record(message)
            self.last_seq = message["seq"]
            self._enqueue_locked(
                _Outgoing(self.topics.for_message(message), payload, qos, False,
                          message.get("visit"), time.monotonic(), bracket=kind == "visit")
            )  # fmt: skip
            self.sent += 1
            return True

    def purge(self, visit: str, reason: str) -> bool:
        """Close the visit, tell every consumer to delete it, and clear retained messages.

        What of the visit still waits in the outbox is discarded, not sent: after "forget me"
        nothing more about that person leaves the device. The purge itself is never dropped.
        """
        with self._gate:
            self._scopes.pop(visit, None)
            self.ledgers.pop(visit, None)
            try:
                message, payload = wire.build(
                    "purge", agent=self.agent, seq=next(self._seq), ts=time.time(),
                    visit=visit, reason=reason,
                )  # fmt: skip
            except wire.WireError as exc:
                logger.error("cannot purge %s: %s", visit, exc)
                return False
            # Its start and end stay: they say no more than the purge itself, and bracket it.
            kept = deque(e for e in self._outbox if e.visit != visit or e.sticky or e.bracket)
            discarded = len(self._outbox) - len(kept)
            if discarded:
                self.counters["discarded_purged"] += discarded
                self._droppable -= discarded
                self._outbox = kept
                logger.info("purge: %d unsent messages of visit %s discarded", discarded, visit)
            now = time.monotonic()
            # Nothing of ours is retained under a visit, but a stray retained message (a
            # buggy or hostile client) would outlive the purge: an empty retained payload
            # deletes it from the broker.
            for kind in wire.VISIT_TYPES:
                if kind != "purge":
                    topic = self.topics.visit(self.agent, visit, kind)
                    self._enqueue_locked(_Outgoing(topic, b"", 1, True, visit, now, sticky=True))
            self._enqueue_locked(
                _Outgoing(self.topics.for_message(message), payload, 1, False, visit, now,
                          sticky=True)
            )  # fmt: skip
            self.sent += 1
            logger.info("visit %s purged (%s)", visit, reason)
            return True

    def forget_ledger(self, visit: str) -> None:
        """Drop the local record of what was published about a visit (retention ended)."""
        with self._gate:
            self.ledgers.pop(visit, None)
