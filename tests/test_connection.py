"""One MQTT connection module for agent and dashboard: the same settings mean the same thing."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from test_end_to_end import free_port, get_json, stop, wait_until

from broker.connection import MqttAuth, make_client, topic_prefix
from broker.embedded import find_mosquitto
from conftest import require
from dashboard import create_app
from edge.publisher import SignalPublisher

CA_WITH_PLAIN_MQTT = "ONLOOKER_MQTT_CA is set but the broker URL is not mqtts://"


def test_a_ca_file_with_a_plain_url_is_refused_alike_by_agent_and_dashboard(tmp_path):
    """Before: the agent refused to start while the dashboard silently spoke TLS to port 1883."""
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ValueError, match=CA_WITH_PLAIN_MQTT):
        SignalPublisher("mqtt://127.0.0.1:1883", "kiosk-1", auth=MqttAuth(ca_file=str(ca)))
    with pytest.raises(ValueError, match=CA_WITH_PLAIN_MQTT):
        create_app(
            {"BROKER_URL": "mqtt://127.0.0.1:1883", "BROKER_TLS_CA": str(ca),
             "MQTT_AUTOSTART": False}
        )  # fmt: skip
    # With mqtts:// both accept the file and the client verifies the broker against it.
    with pytest.raises(Exception, match="PEM|certificate|lib"):  # not a real certificate
        make_client("mqtts://127.0.0.1:8883", "x", MqttAuth(ca_file=str(ca)))
    client, address = make_client("mqtts://broker.example", "x", MqttAuth())
    assert (address.port, address.tls) == (8883, True)


def test_a_password_without_a_user_is_refused_on_both_sides():
    with pytest.raises(ValueError, match="ONLOOKER_MQTT_PASSWORD is set but"):
        SignalPublisher("mqtt://127.0.0.1:1883", "kiosk-1", auth=MqttAuth(password="secret"))
    with pytest.raises(ValueError, match="BROKER_PASSWORD is set without BROKER_USERNAME"):
        create_app(
            {"BROKER_URL": "mqtt://127.0.0.1:1883", "BROKER_PASSWORD": "x",
             "MQTT_AUTOSTART": False}
        )  # fmt: skip


def test_the_topic_prefix_comes_from_one_variable():
    assert topic_prefix({}) == "onlooker/v1"
    assert topic_prefix({"ONLOOKER_TOPIC_PREFIX": "museum/kiosks"}) == "museum/kiosks"
    with pytest.raises(ValueError):
        topic_prefix({"ONLOOKER_TOPIC_PREFIX": "museum/#"})


@pytest.mark.integration
def test_a_custom_prefix_deployment_runs_under_its_own_acl(tmp_path):
    """Before: the agent could not be given the prefix the dashboard and the ACL use, so a
    custom-prefix deployment's agents were refused by their own ACL. The demo's embedded
    Mosquitto enforces an ACL for the prefix it was given."""
    require(find_mosquitto() is not None, "mosquitto is not installed (apt-get install mosquitto)")
    dashboard_port, viewer_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    demo = subprocess.Popen(
        [sys.executable, "-m", "onlooker", "demo", "--duration", "20", "--no-browser",
         "--topic-prefix", "museum/kiosks", "--model", "blendshapes",
         "--dashboard-port", str(dashboard_port), "--viewer-port", str(viewer_port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert wait_until(lambda: re.search(r"broker\s+mqtt://", log.read_text()), 20)
        base = f"http://127.0.0.1:{dashboard_port}"
        started = time.monotonic()
        online = wait_until(
            lambda: any(a["online"] and (a["fps"] or 0) > 0 for a in get_json(base + "/api/agents")[
                "agents"]),
            25,
        )  # fmt: skip
        assert online, log.read_text()[-3000:]
        print(f"agent online under museum/kiosks after {time.monotonic() - started:.1f} s")
    finally:
        stop(demo)
    assert "refused" not in log.read_text().lower(), log.read_text()[-3000:]
