"""One MQTT connection for every room: broker URL, credentials, TLS, will and reconnect.

The agent's publisher and the dashboard's subscriber both build their paho client here, so the
two cannot disagree on what a setting means (before, a CA file with an `mqtt://` URL stopped
the agent but silently turned TLS on against port 1883 in the dashboard).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from broker import wire

logger = logging.getLogger(__name__)

ENV_USERNAME = "ONLOOKER_MQTT_USERNAME"
ENV_PASSWORD = "ONLOOKER_MQTT_PASSWORD"
ENV_CA = "ONLOOKER_MQTT_CA"
ENV_PREFIX = "ONLOOKER_TOPIC_PREFIX"
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


@dataclass(frozen=True)
class MqttAuth:
    """Username, password and TLS trust anchor; from the environment, never the command line."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MqttAuth:
        """Read ONLOOKER_MQTT_USERNAME, ONLOOKER_MQTT_PASSWORD and ONLOOKER_MQTT_CA."""
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_USERNAME) or None, env.get(ENV_PASSWORD) or None,
                   env.get(ENV_CA) or None)  # fmt: skip

    def check(self, address: wire.BrokerAddress) -> None:
        """Refuse settings that cannot work or would silently weaken the connection."""
        if self.password is not None and self.username is None:
            raise ValueError(f"{ENV_PASSWORD} is set but {ENV_USERNAME} is not")
        if self.ca_file is not None:
            if not address.tls:
                raise ValueError(
                    f"{ENV_CA} is set but the broker URL is not mqtts://: use "
                    f"mqtts://{address.host}:8883 (TLS) or unset {ENV_CA}"
                )
            if not os.path.isfile(self.ca_file):
                raise ValueError(f"{ENV_CA}={self.ca_file!r} is not a file")


def topic_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The topic prefix from ONLOOKER_TOPIC_PREFIX, else the default; checked."""
    env = os.environ if environ is None else environ
    return wire.check_prefix(env.get(ENV_PREFIX) or wire.DEFAULT_PREFIX)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where a clear-text password stays local."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_client(
    url: str,
    client_id: str,
    auth: MqttAuth,
    will_topic: str | None = None,
    who: str = "the client",
    clean_session: bool = True,
) -> tuple[mqtt.Client, wire.BrokerAddress]:
    """A paho client for `url`: credentials, TLS (mqtts://), the will, reconnect back-off.

    `clean_session=False` asks the broker to keep the session (subscriptions and the QoS 1
    messages that arrive meanwhile) while the client is away; it needs a stable client id.

    ValueError for a bad URL or settings that contradict each other. The will, when given, is
    set before any connection: the broker announces `offline` on that topic when the connection
    drops without a DISCONNECT (crash, kill -9, cable pulled).
    """
    address = wire.broker_address(url)
    auth.check(address)
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
    )
    if auth.username is not None:
        client.username_pw_set(auth.username, auth.password)
        if auth.password and not address.tls and not is_loopback(address.host):
            logger.warning(
                "%s's MQTT password crosses the network in clear text to %s; use mqtts:// "
                "(docs/operations.md)",
                who,
                address.host,
            )
    if address.tls:
        # Verify the broker against the given CA (or the system's), host name included.
        client.tls_set_context(ssl.create_default_context(cafile=auth.ca_file))
    if will_topic is not None:
        client.will_set(will_topic, wire.OFFLINE, qos=1, retain=True)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
    return client, address
