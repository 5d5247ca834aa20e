"""The viewer's own page, served by the agent on loopback: consent and what is watched."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask, jsonify, render_template, request
from werkzeug.serving import make_server

from broker import wire

from ..reader import ItemLayout

if TYPE_CHECKING:
    from ..agent import Agent

logger = logging.getLogger(__name__)

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def create_viewer_app(agent: Agent) -> Flask:
    """The consent page and its small JSON API, bound to one running agent."""
    app = Flask(__name__)

    @app.after_request
    def _headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index():
        return render_template("viewer.html", status=agent.status(), example=_example())

    @app.get("/api/status")
    def status():
        return jsonify({**agent.status(), "learned": agent.learned()})

    @app.post("/api/consent")
    def consent():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("consent"), bool):
            usage = 'send {"consent": true, "scopes": [...]} or {"consent": false}'
            return jsonify(error=usage), 400
        if body["consent"]:
            scopes = body.get("scopes", list(wire.SCOPES))
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                return jsonify(error=f"scopes must be a list drawn from {list(wire.SCOPES)}"), 400
            try:
                agent.give_consent(scopes)
            except ValueError as exc:
                return jsonify(error=str(exc)), 400
        else:
            agent.withdraw_consent()
        return jsonify({**agent.status(), "learned": agent.learned()})

    @app.post("/api/item")
    def item():
        """The page or post now on the viewer's screen, with its layout ({"item": null}: none)."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "item" not in body:
            return jsonify(error='send {"item": "page-1", "topic": ..., "words": ...}'), 400
        try:
            layout = _layout(body) if body["item"] is not None else None
            agent.show_item(body["item"], layout)
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(item=body["item"])

    @app.post("/api/forget")
    def forget():
        # JSON only: a cross-site form cannot post JSON without a CORS preflight we refuse.
        if not isinstance(request.get_json(silent=True), dict):
            return jsonify(error="send {} as application/json"), 400
        forgotten = agent.forget()
        return jsonify({**agent.status(), "learned": agent.learned(), "forgotten": forgotten})

    return app


LAYOUT_FIELDS = ("topic", "words", "lines", "words_per_line", "box_fraction", "words_after")


def _layout(body: dict) -> ItemLayout | None:
    """The item's layout from the page's report; None when it sent only the id."""
    if "topic" not in body:
        return None
    unknown = sorted(set(body) - {"item", *LAYOUT_FIELDS})
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    for name in LAYOUT_FIELDS:
        value = body.get(name)
        if (
            name != "topic"
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, (int, float)))
        ):
            raise TypeError(f"{name} must be a number")
    return ItemLayout(
        item=body["item"],
        topic=body["topic"],
        words=int(body.get("words") or 0),
        lines=int(body["lines"]) if body.get("lines") else None,
        words_per_line=body.get("words_per_line"),
        box_fraction=body.get("box_fraction"),
        words_after=int(body.get("words_after") or 0),
    )


def _example() -> str:
    """A real message of the kind that leaves the device, for the consent screen."""
    message = wire.message(
        "expression", agent="kiosk-1", seq=42, ts=time.time(), visit="3f9c2a7be41d0c55",
        label="joy", score=0.72, valence=0.64, arousal=0.52,
        reason_units=["AU12 lip corner puller"], reason_shapes=["mouthSmile"],
        reason_values=[0.81], relative_to_rest=True,
    )  # fmt: skip
    return json.dumps(message, indent=1)


class ViewerServer:
    """Serves the viewer page on a background thread (loopback by default)."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 8001):
        self._server = make_server(host, port, app, threaded=True)
        self.host, self.port = host, self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> ViewerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
