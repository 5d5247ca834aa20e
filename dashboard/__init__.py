"""The Onlooker dashboard: a Flask app that shows, live, what each screen has learned."""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Flask, Response

from broker import wire
from dashboard import api, page
from dashboard.mqtt import MqttSubscriber
from dashboard.state import CROWD_K, MAX_VISITS, RETENTION_S, DashboardState

DEFAULTS: dict[str, Any] = {
    "BROKER_URL": "mqtt://127.0.0.1:1883",
    "TOPIC_PREFIX": wire.DEFAULT_PREFIX,
    "HEARTBEAT_TIMEOUT_S": 10.0,  # no heartbeat for this long: offline, even without a will
    "MQTT_AUTOSTART": True,  # connect the subscriber inside create_app
    "MQTT_CLIENT_ID": None,  # None: a fresh random id per app
    "MAX_VISITS": MAX_VISITS,
    "RETENTION_S": RETENTION_S,  # a finished visit is deleted this long after it ends (0: at once)
    "CROWD_K": CROWD_K,  # crowd figures only when at least this many visits are behind them
    "SSE_KEEPALIVE_S": 15.0,  # comment line this often, so proxies keep the stream open
    "SSE_POLL_S": 1.0,  # how often a stream wakes to notice timeouts and shutdown
    "SSE_MAX_S": 600.0,  # streams end after this; EventSource reconnects with a fresh snapshot
    "CLOCK": None,  # a seam for tests: a callable returning Unix time
}
ENV_OVERRIDES = {"ONLOOKER_BROKER": "BROKER_URL", "ONLOOKER_TOPIC_PREFIX": "TOPIC_PREFIX"}
CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the dashboard app; `test_config` overrides defaults and environment variables."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    for env_name, key in ENV_OVERRIDES.items():
        if os.environ.get(env_name):
            app.config[key] = os.environ[env_name]
    if test_config is not None:
        app.config.from_mapping(test_config)
    wire.check_prefix(app.config["TOPIC_PREFIX"])

    app.extensions["onlooker_state"] = DashboardState(
        heartbeat_timeout_s=float(app.config["HEARTBEAT_TIMEOUT_S"]),
        clock=app.config["CLOCK"],
        max_visits=int(app.config["MAX_VISITS"]),
        retention_s=float(app.config["RETENTION_S"]),
        crowd_k=int(app.config["CROWD_K"]),
    )
    app.extensions["onlooker_streams_stop"] = threading.Event()

    app.register_blueprint(api.bp)
    app.register_blueprint(page.bp)
    app.after_request(_security_headers)
    MqttSubscriber().init_app(app)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
