"""The Onlooker dashboard: a Flask app that shows, live, what each screen has learned."""

from __future__ import annotations

import ipaddress
import os
import threading
from typing import Any

from flask import Flask, Response, abort, current_app, request

from broker import wire
from dashboard import api, page
from dashboard.mqtt import MqttSubscriber
from dashboard.state import CROWD_K, MAX_VISITS, RETENTION_S, DashboardState

DEFAULTS: dict[str, Any] = {
    "BROKER_URL": "mqtt://127.0.0.1:1883",
    "TOPIC_PREFIX": wire.DEFAULT_PREFIX,
    "HEARTBEAT_TIMEOUT_S": 10.0,  # no heartbeat for this long: offline, even without a will
    "MQTT_AUTOSTART": True,  # connect the subscriber inside create_app
    # None: "onlooker-dashboard" (with a non-default prefix, "onlooker-dashboard-<prefix>").
    # The same id across restarts is what lets the broker keep the session meanwhile; a
    # second dashboard on the same broker and prefix needs an id of its own.
    "MQTT_CLIENT_ID": None,
    "MQTT_PERSISTENT_SESSION": True,  # the broker keeps what arrives while we restart
    "MAX_VISITS": MAX_VISITS,
    "RETENTION_S": RETENTION_S,  # a finished visit is deleted this long after it ends (0: at once)
    "CROWD_K": CROWD_K,  # crowd figures only when at least this many visits are behind them
    "SSE_KEEPALIVE_S": 15.0,  # comment line this often, so proxies keep the stream open
    "SSE_POLL_S": 1.0,  # how often a stream wakes to notice timeouts and shutdown
    "SSE_MAX_S": 600.0,  # streams end after this; EventSource reconnects with a fresh snapshot
    "CLOCK": None,  # a seam for tests: a callable returning Unix time
    "BROKER_USERNAME": None,  # MQTT credentials; from the environment, never only the CLI
    "BROKER_PASSWORD": None,
    "BROKER_TLS_CA": None,  # a CA file: TLS to the broker (as does an mqtts:// URL)
    "SSE_MIN_INTERVAL_S": 0.02,  # changes are batched this long: a burst is one send, not many
    "BIND_HOST": "127.0.0.1",  # set by the server; off loopback, admin actions need the token
    "ADMIN_TOKEN": None,  # reset and purge need it when set, and always off loopback
    "EXHIBITION_HOLD_S": 20.0,  # exhibition: a finished visit stays this long, then attract
    # Host names the dashboard answers to besides loopback and BIND_HOST (a list, or a
    # comma-separated string): any other Host header is refused, which stops DNS rebinding.
    "ALLOWED_HOSTS": (),
    "MAX_STREAMS": 16,  # open event streams at most; one more is refused with 503
}
ENV_OVERRIDES = {
    "ONLOOKER_BROKER": "BROKER_URL",
    "ONLOOKER_TOPIC_PREFIX": "TOPIC_PREFIX",
    "ONLOOKER_MQTT_USERNAME": "BROKER_USERNAME",
    "ONLOOKER_MQTT_PASSWORD": "BROKER_PASSWORD",
    "ONLOOKER_MQTT_CA": "BROKER_TLS_CA",
    "ONLOOKER_ADMIN_TOKEN": "ADMIN_TOKEN",
    "ONLOOKER_ALLOWED_HOSTS": "ALLOWED_HOSTS",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


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
    app.before_request(_trusted_host)
    app.after_request(_security_headers)
    MqttSubscriber().init_app(app)
    return app


def trusted_hosts(config: Any) -> tuple[str, ...]:
    """The host names (besides loopback) this dashboard answers to: where it listens, and
    ``ALLOWED_HOSTS``. A wildcard bind address (0.0.0.0, ::) names no host."""
    extra = config.get("ALLOWED_HOSTS") or ()
    if isinstance(extra, str):
        extra = extra.split(",")
    names = [str(h).strip().strip("[]").lower() for h in extra if str(h).strip()]
    bind = str(config.get("BIND_HOST") or "").strip("[]").lower()
    try:
        wildcard = ipaddress.ip_address(bind).is_unspecified
    except ValueError:
        wildcard = False
    if bind and not wildcard:
        names.append(bind)
    return tuple(names)


def host_allowed(host: str | None, configured: tuple[str, ...] = ()) -> bool:
    """Whether a ``Host`` header (or an origin's host[:port]) names loopback or `configured`.

    A page on another name (``evil.example`` rebound to 127.0.0.1 by its DNS) sends that
    name: refusing it is what stops DNS rebinding. The port is not checked here.
    """
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return False
    else:
        name, _, port = host.partition(":")
        if port and not port.isdigit():
            return False
    if not name:
        return False
    if name == "localhost" or name in configured:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _trusted_host() -> None:
    if not host_allowed(request.headers.get("Host"), trusted_hosts(current_app.config)):
        abort(400, "the dashboard answers only on loopback and its configured host names")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
