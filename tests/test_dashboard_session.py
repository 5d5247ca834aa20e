"""Nothing lost while the dashboard restarts, or while it falls behind (issue 15).

The dashboard keeps a persistent MQTT session (clean session off, a client id that stays
the same across restarts): what agents send while it is away waits at the broker and is
applied when it is back. Against Mosquitto and against the embedded fallback (amqtt).
"""

from __future__ import annotations

import time

from broker.connection import MqttAuth
from conftest import wait_until
from dashboard import create_app
from dashboard.mqtt import DEFAULT_CLIENT_ID, default_client_id
from edge.publisher import SignalPublisher

VISIT = "5e55105e55105e55"
EXPRESSION = {"label": "joy", "score": 0.8, "valence": 0.6, "arousal": 0.5,
              "reason_units": [], "reason_shapes": [], "reason_values": [],
              "relative_to_rest": False}  # fmt: skip


def _dashboard(url: str, **config):
    app = create_app({"BROKER_URL": url, "MQTT_CLIENT_ID": "dash-session-test", **config})
    subscriber = app.extensions["onlooker_mqtt"]
    assert subscriber.wait_connected(10), "the dashboard did not connect"
    return app, subscriber, app.extensions["onlooker_state"]


def _send(publisher: SignalPublisher, n: int) -> None:
    for _ in range(n):
        assert publisher.publish("expression", visit=VISIT, **EXPRESSION)
    assert wait_until(lambda: publisher.stats()["queued"] == 0, 15), publisher.stats()
    time.sleep(0.3)  # the last PUBACKs: the broker holds every message


def _restart_and_count(url: str, persistent: bool) -> tuple[dict, dict]:
    publisher = SignalPublisher(url, "kiosk-session", auth=MqttAuth())
    publisher.start(wait_s=10)
    _app, subscriber, state = _dashboard(url, MQTT_PERSISTENT_SESSION=persistent)
    try:
        assert publisher.publish("visit", visit=VISIT, event="start", consent="viewer",
                                 scopes=["expression"])  # fmt: skip
        _send(publisher, 20)
        assert wait_until(lambda: state.counters()["accepted"].get("expression") == 20, 10)
        subscriber.stop()  # the dashboard goes away (a restart, an update)
        _send(publisher, 300)  # … while the kiosk goes on
        _app, subscriber, state = _dashboard(url, MQTT_PERSISTENT_SESSION=persistent)
        back = 10 if persistent else 2  # without the session, the 300 never come
        wait_until(lambda: state.counters()["accepted"].get("expression", 0) >= 300, back)
        _send(publisher, 30)  # and after it is back
        wait_until(lambda: state.counters()["accepted"].get("expression", 0) >= 330, 10)
        time.sleep(0.5)
        return state.counters(), state.agent("kiosk-session")
    finally:
        subscriber.stop()
        publisher.stop()


def test_a_dashboard_restart_loses_nothing_the_broker_held(any_broker) -> None:
    counters, agent = _restart_and_count(any_broker.url, persistent=True)
    assert counters["accepted"]["expression"] == 330, counters
    assert counters["dropped"] == 0 and agent["gaps"] == 0, (counters, agent)


def test_without_the_persistent_session_a_restart_loses_what_came_meanwhile(mosquitto) -> None:
    """The control: the same run with a clean session loses the 300 sent while away."""
    counters, _agent = _restart_and_count(mosquitto.url, persistent=False)
    assert counters["accepted"]["expression"] == 30, counters


def test_the_client_id_is_stable_across_restarts_and_one_per_prefix() -> None:
    assert default_client_id("onlooker/v1") == DEFAULT_CLIENT_ID
    assert default_client_id("museum/hall-2") == "onlooker-dashboard-museum-hall-2"
    ids = {
        create_app({"MQTT_AUTOSTART": False}).extensions["onlooker_mqtt"].client_id
        for _ in range(2)
    }
    assert ids == {DEFAULT_CLIENT_ID}
