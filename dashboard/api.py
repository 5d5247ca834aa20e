"""JSON API, health check and the Server-Sent Events stream."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from broker import wire
from dashboard import profile
from dashboard.state import DashboardState
from dashboard.visits import ITEM_TYPES

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

STREAMS_STOP = "onlooker_streams_stop"
STREAM_RETRY_AFTER_S = 5
"""A refused event stream (too many open) is told to come back after this many seconds."""


def _state() -> DashboardState:
    return current_app.extensions["onlooker_state"]


@bp.get("/api/agents")
def agents() -> Response:
    """Every agent seen, sorted by id."""
    return jsonify(agents=_state().agents())


@bp.get("/api/visits")
def visits() -> Response:
    """Every remembered visit, newest first."""
    return jsonify(visits=_state().visits())


@bp.get("/api/visits/<visit_id>")
def visit(visit_id: str) -> Response | tuple[Response, int]:
    """One visit, or 404."""
    found = _state().visit(visit_id)
    if found is None:
        return jsonify(error=f"no visit {visit_id!r}"), 404
    return jsonify(visit=found)


@bp.get("/api/visits/<visit_id>/raw")
def visit_raw(visit_id: str) -> Response | tuple[Response, int]:
    """The exact payloads kept for a visit, as they left the device: ``{key: payload}``.

    Keys are a message type (its latest message), ``type:item`` for a page or post, and
    ``visit:start`` / ``visit:end``.
    """
    found = _state().raw(visit_id)
    if found is None:
        return jsonify(error=f"no visit {visit_id!r}"), 404
    return jsonify(visit=visit_id, raw=found)


@bp.get("/api/agents/<agent_id>/raw")
def agent_raw(agent_id: str) -> Response | tuple[Response, int]:
    """The agent's latest heartbeat exactly as it arrived."""
    state = _state()
    if state.agent(agent_id) is None:
        return jsonify(error=f"no agent {agent_id!r}"), 404
    return jsonify(agent=agent_id, raw={"heartbeat": state.raw_heartbeat(agent_id)})


@bp.get("/api/crowd")
def crowd() -> Response:
    """Figures across visits; each is withheld ("not enough visits") below k visits.

    ``?visit=<id>`` adds how that visit compares (`compare`) and the conclusions drawn from it.
    """
    visit_id = request.args.get("visit")
    state = _state()
    figures = state.crowd(visit_id)
    if visit_id is not None:
        figures["conclusions"] = profile.crowd_conclusions(figures["compare"], state.crowd_k)
    return jsonify(figures)


FELT = "feeling"
"""The one feedback conclusion answered with an expression word, not a grade (`wire.GRADES`)."""


def contract(config: Any) -> dict[str, Any]:
    """The facts the page shares with the server, read from the constants that define them.

    The page (dashboard/static/contract.js) imports these and copies none of them: the wire's
    vocabularies, the profile's reading average, patents and score, and this app's k,
    retention and exhibition hold as configured.
    """
    return {
        "expressions": list(wire.EXPRESSIONS),  # in order: a reaction's `mean` follows it
        "topics": list(wire.TOPICS),
        "scopes": list(wire.SCOPES),
        "consent_kinds": list(wire.CONSENT_KINDS),
        "reading_states": list(wire.READING_STATES),
        # The message types about one page or post: a visit keeps each per item too, and
        # /api/visits/<id>/raw names those copies "<type>:<item>".
        "item_kinds": list(ITEM_TYPES),
        "feedback": {
            "graded": [kind for kind in wire.CONCLUSIONS if kind != FELT],
            "felt": FELT,
        },
        "adult_wpm": profile.ADULT_WPM,
        "sources": dict(profile.SOURCES),
        "score": {
            "start": profile.SCORE_START,
            # The lowest rating has no floor: JSON has no -Infinity, so null.
            "ratings": [
                [floor if math.isfinite(floor) else None, name] for floor, name in profile.RATINGS
            ],
            "terms": [key for key, *_ in profile.SCORE_TERMS],
        },
        "crowd_k": int(config["CROWD_K"]),
        "retention_s": float(config["RETENTION_S"]),
        "exhibition_hold_s": float(config["EXHIBITION_HOLD_S"]),
        "stream_retry_s": STREAM_RETRY_AFTER_S,
    }


@bp.get("/api/contract")
def contract_facts() -> Response:
    """The contract facts the page needs, from one source (see `contract`)."""
    return jsonify(contract(current_app.config))


@bp.get("/api/feedback")
def feedback() -> Response:
    """What visitors said about each screen's conclusions ("was the screen right?"): per
    screen and conclusion kind, withheld below k answering visits; never per visit."""
    return jsonify(_state().feedback())


def _health() -> dict[str, Any]:
    subscriber = current_app.extensions.get("onlooker_mqtt")
    connected = bool(subscriber is not None and subscriber.connected)
    return {
        "status": "ok" if connected else "degraded",
        "mqtt_connected": connected,
        **_state().counters(),
    }


@bp.get("/healthz")
def healthz() -> Response:
    """``ok`` while the subscriber is connected and subscribed, else ``degraded``; counters."""
    return jsonify(_health())


@bp.get("/metrics")
def metrics() -> Response:
    """The counters of /healthz and per-agent figures in the Prometheus text format."""
    health = _health()
    lines: list[str] = []

    def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP onlooker_{name} {doc}")
        lines.append(f"# TYPE onlooker_{name} {kind}")
        for labels, value in samples:
            lines.append(f"onlooker_{name}{labels} {value:g}")

    # Label values are wire-validated agent ids, topic kinds and our own reason keys: no
    # quote or backslash can reach them, so they need no escaping.
    def one(value: float) -> list[tuple[str, float]]:
        return [("", value)]

    def per(label: str, values: dict[str, Any]) -> list[tuple[str, float]]:
        return [(f'{{{label}="{k}"}}', v) for k, v in sorted(values.items()) if v is not None]

    agents = {a["agent"]: a for a in _state().agents()}

    def per_agent(name: str) -> list[tuple[str, float]]:
        return per("agent", {k: a[name] for k, a in agents.items()})

    table = [
        ("mqtt_connected", "gauge", "1 while subscribed to the broker.",
         one(int(health["mqtt_connected"]))),
        ("messages_received_total", "counter", "Messages on subscribed topics, valid or not.",
         one(health["received"])),
        ("messages_accepted_total", "counter", "Messages applied, by topic kind.",
         per("kind", health["accepted"])),
        ("messages_rejected_total", "counter", "Messages dropped as off-contract, by reason.",
         per("reason", health["rejected"])),
        ("messages_duplicate_total", "counter", "QoS 1 re-deliveries recognised and ignored.",
         one(health["duplicates"])),
        ("messages_dropped_total", "counter", "Messages agents sent that never arrived.",
         one(health["dropped"])),
        ("agent_restarts_total", "counter", "Agent processes seen starting again.",
         one(health["restarts"])),
        ("inbox_dropped_total", "counter", "Messages the dashboard's full inbox dropped.",
         one(health["dropped_backlog"])),
        ("inbox_backlog", "gauge", "Messages waiting in the dashboard's inbox (last batch).",
         one(health["backlog"])),
        ("inbox_lag_seconds", "gauge", "How long the last batch's oldest message waited.",
         one(health["lag_ms"] / 1000)),
        ("behind", "gauge", "1 while the dashboard is behind (a message waited 1 s or more).",
         one(int(health["behind"]))),
        ("visits", "gauge", "Visits held in memory.", one(health["visits"])),
        ("visits_active", "gauge", "Visits running now.", one(health["visits_active"])),
        ("agent_online", "gauge", "1 while the agent is online.",
         per("agent", {k: int(a["online"]) for k, a in agents.items()})),
        ("agent_fps", "gauge", "Frames analysed per second (last heartbeat).", per_agent("fps")),
        ("agent_clock_skew_seconds", "gauge", "Agent ts minus the dashboard's clock (median).",
         per_agent("clock_skew_s")),
        ("agent_dropped_messages", "gauge", "Messages of this agent process that never arrived.",
         per_agent("gaps")),
        ("agent_rejected_messages", "counter", "Messages naming this agent that were refused.",
         per("agent", {k: sum(a["rejected"].values()) for k, a in agents.items()})),
    ]  # fmt: skip
    for name, kind, doc, samples in table:
        metric(name, kind, doc, samples)
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


# --- admin actions ----------------------------------------------------------------------------


def _loopback(host: str | None) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _own_origin(origin: str) -> bool:
    """Whether `origin` is this dashboard's: a trusted host name on the port it listens on.

    Never compared with ``request.host_url``: that is built from the Host header, which the
    page making the request controls.
    """
    from dashboard import host_allowed, trusted_hosts

    try:
        parsed = urlsplit(origin)
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or parsed.path or parsed.hostname is None:
        return False
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    own_port = request.environ.get("SERVER_PORT")
    return (
        host_allowed(host, trusted_hosts(current_app.config))
        and own_port is not None
        and str(port) == str(own_port)
    )


def _admin_refusal() -> tuple[Response, int] | None:
    """None when the request may reset or purge; else the JSON refusal.

    A request must be JSON (a cross-site form cannot send that without CORS, which we never
    allow) and come from the page's own origin. When the dashboard listens beyond loopback,
    or a token is configured, it must carry the token too.
    """
    if not request.is_json:
        return jsonify(error="send Content-Type: application/json"), 415
    origin = request.headers.get("Origin")
    if origin is not None and not _own_origin(origin):
        return jsonify(error="cross-origin admin request refused"), 403
    token = current_app.config.get("ADMIN_TOKEN")
    exposed = not _loopback(current_app.config.get("BIND_HOST")) or not _loopback(
        request.remote_addr
    )
    if not token and not exposed:
        return None
    if not token:
        return jsonify(error="admin actions are off: set ONLOOKER_ADMIN_TOKEN"), 403
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), str(token).encode()):
        return jsonify(error="admin token missing or wrong"), 401
    return None


@bp.post("/api/admin/reset")
def admin_reset() -> Response | tuple[Response, int]:
    """Delete every visit held here (between volunteers); agents stay."""
    refused = _admin_refusal()
    if refused is not None:
        return refused
    deleted = _state().reset()
    logger.info("admin reset: %d visits deleted", deleted)
    return jsonify(deleted=deleted)


@bp.post("/api/admin/purge/<visit_id>")
def admin_purge(visit_id: str) -> Response | tuple[Response, int]:
    """Delete one visit here and everything derived from it; later messages cannot revive it."""
    refused = _admin_refusal()
    if refused is not None:
        return refused
    return jsonify(visit=visit_id, purged=_state().purge(visit_id))


@bp.get("/api/stream")
def stream() -> Response:
    """Server-Sent Events: a ``snapshot``, then ``agent`` and ``visit`` events as they change."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    release = _take_stream_slot(app)
    if release is None:
        response = jsonify(error="too many open event streams; try again shortly")
        response.status_code = 503
        response.headers["Retry-After"] = str(STREAM_RETRY_AFTER_S)
        return response
    events = _events(
        _state(),
        app.extensions[STREAMS_STOP],
        keepalive_s=float(app.config["SSE_KEEPALIVE_S"]),
        poll_s=float(app.config["SSE_POLL_S"]),
        max_s=float(app.config["SSE_MAX_S"]),
        min_interval_s=float(app.config["SSE_MIN_INTERVAL_S"]),
    )
    response = Response(
        events,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(release)  # the server closes it when the stream ends or drops
    return response


STREAM_SLOTS = "onlooker_stream_slots"


def _take_stream_slot(app: Flask) -> Any:
    """A slot for one more event stream (each holds a server thread), or None at the cap.

    Returns the function that gives the slot back; calling it twice gives back one slot.
    """
    lock, count = app.extensions.setdefault(STREAM_SLOTS, (threading.Lock(), [0]))
    with lock:
        if count[0] >= int(app.config["MAX_STREAMS"]):
            return None
        count[0] += 1
    released = threading.Event()

    def release() -> None:
        with lock:
            if not released.is_set():
                released.set()
                count[0] -= 1

    return release


def open_stream_count(app: Flask) -> int:
    """Event streams open now."""
    lock, count = app.extensions.setdefault(STREAM_SLOTS, (threading.Lock(), [0]))
    with lock:
        return count[0]


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _events(
    state: DashboardState,
    stop: threading.Event,
    keepalive_s: float,
    poll_s: float,
    max_s: float,
    min_interval_s: float = 0.0,
) -> Iterator[str]:
    # Waits are bounded by poll_s, so a stream notices shutdown (and heartbeat timeouts)
    # within a second and never holds a server thread forever.
    began = last_sent = time.monotonic()
    snapshot = state.snapshot()
    version = snapshot.pop("version")
    yield "retry: 2000\n" + _event("snapshot", snapshot)
    while not stop.is_set() and time.monotonic() - began < max_s:
        changes = state.wait_for_changes(version, timeout=poll_s)
        version = changes.version
        if changes.resync:
            snapshot = state.snapshot()
            version = snapshot.pop("version")
            yield _event("snapshot", snapshot)
            last_sent = time.monotonic()
        elif changes.events:
            yield "".join(_event(kind, data) for kind, data in changes.events)
            last_sent = time.monotonic()
            # Busy agents change a visit many times a second; a short pause lets those
            # changes fold into one event per visit, so the browser keeps up.
            if min_interval_s > 0:
                stop.wait(min_interval_s)
        elif time.monotonic() - last_sent >= keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()


def close_streams(app: Flask) -> None:
    """End every open event stream of `app` within one poll interval."""
    app.extensions[STREAMS_STOP].set()


def open_streams(app: Flask) -> None:
    """Allow event streams again after `close_streams`."""
    app.extensions[STREAMS_STOP].clear()


def _is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/metrics")


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    """API errors as JSON with their status code; the page keeps Flask's HTML errors."""
    if not _is_api_request():
        return error
    # Flask has already logged an unhandled exception; its text stays out of the response.
    message = error.name if isinstance(error, InternalServerError) else error.description
    response = jsonify(error=message or error.name)
    response.status_code = error.code or 500
    allowed = getattr(error, "valid_methods", None)
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response
