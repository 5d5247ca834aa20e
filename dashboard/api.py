"""JSON API, health check and the Server-Sent Events stream."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from dashboard.state import DashboardState

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

STREAMS_STOP = "onlooker_streams_stop"


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


@bp.get("/api/crowd")
def crowd() -> Response:
    """Figures across visits; each is withheld ("not enough visits") below k visits."""
    return jsonify(_state().crowd())


@bp.get("/healthz")
def healthz() -> Response:
    """``ok`` while the subscriber is connected and subscribed, else ``degraded``."""
    subscriber = current_app.extensions.get("onlooker_mqtt")
    connected = bool(subscriber is not None and subscriber.connected)
    counters = _state().counters()
    return jsonify(
        status="ok" if connected else "degraded",
        mqtt_connected=connected,
        received=counters["received"],
        accepted=counters["accepted"],
        rejected=counters["rejected"],
    )


@bp.get("/api/stream")
def stream() -> Response:
    """Server-Sent Events: a ``snapshot``, then ``agent`` and ``visit`` events as they change."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    events = _events(
        _state(),
        app.extensions[STREAMS_STOP],
        keepalive_s=float(app.config["SSE_KEEPALIVE_S"]),
        poll_s=float(app.config["SSE_POLL_S"]),
        max_s=float(app.config["SSE_MAX_S"]),
    )
    return Response(
        events,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _events(
    state: DashboardState, stop: threading.Event, keepalive_s: float, poll_s: float, max_s: float
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
    return request.path.startswith("/api/") or request.path == "/healthz"


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
