"""The viewer's own page, served by the agent on loopback: consent and what is watched."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import logging
import math
import secrets
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask, abort, jsonify, render_template, request
from werkzeug.serving import make_server

from broker import wire

from ..reader import ItemLayout
from .content import LANGUAGES, load_books, load_feed

if TYPE_CHECKING:
    from ..agent import Agent

logger = logging.getLogger(__name__)

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
TOKEN_HEADER = "X-Onlooker-Token"
"""Every POST carries the token served in the page (a `<meta name="onlooker-token">`)."""


MAX_BODY_BYTES = 16 * 1024
"""The page's largest POST is a few hundred bytes."""


def _body():
    """The request's JSON, or None when it is missing, malformed or nested too deeply."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def host_allowed(host: str | None, configured: tuple[str, ...] = ()) -> bool:
    """Whether a request's ``Host`` header names this machine's loopback or a configured host.

    A page on another name (``evil.example`` rebound to 127.0.0.1 by its DNS) sends that name
    in ``Host``: refusing it is what stops DNS rebinding. The port is not checked.
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
    if name == "localhost" or name in (c.strip("[]").lower() for c in configured):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def create_viewer_app(agent: Agent, host: str = "127.0.0.1") -> Flask:
    """The consent page and its small JSON API, bound to one running agent.

    Only requests whose ``Host`` is a loopback name or `host` (where the page is served) are
    answered, and every POST must carry the page's token (`TOKEN_HEADER`).
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    hosts = (host,)
    token = secrets.token_urlsafe(32)
    app.config["PAGE_TOKEN"] = token

    @app.before_request
    def _trusted():
        if not host_allowed(request.headers.get("Host"), hosts):
            abort(400, "this page answers only on its own host name")
        if request.method == "POST":
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return jsonify(error=f"missing or wrong {TOKEN_HEADER}: reload the page"), 403
        return None

    @app.after_request
    def _headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index():
        return render_template(
            "viewer.html", status=agent.status(), example=_example(), token=token
        )

    @app.get("/api/content")
    def content():
        """The books and the feed in one language, as the reader shows them."""
        lang = request.args.get("lang", "en")
        if lang not in LANGUAGES:
            return jsonify(error=f"lang must be one of {list(LANGUAGES)}"), 400
        return jsonify(_content(lang))

    @app.get("/api/status")
    def status():
        return jsonify({**agent.status(), "learned": agent.learned()})

    @app.post("/api/consent")
    def consent():
        body = _body()
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
        body = _body()
        if not isinstance(body, dict) or "item" not in body:
            return jsonify(error='send {"item": "page-1", "topic": ..., "words": ...}'), 400
        try:
            layout = _layout(body) if body["item"] is not None else None
            agent.show_item(body["item"], layout)
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(item=body["item"])

    @app.post("/api/calibration")
    def calibration():
        """Calibration steps: {"kind": "expression", "emotion": "joy", "phase": "start"|"end"},
        {"kind": "gaze", "phase": "start"|"point"|"end", "region": 0..8 | null}, or "read this
        line": {"kind": "line", "phase": "start"} then {"kind": "line", "phase": "end", "left":
        0.2, "right": 0.8} (the line's edges as shares of the screen's width)."""
        body = _body()
        if not isinstance(body, dict) or body.get("kind") not in ("expression", "gaze", "line"):
            return jsonify(error='send {"kind": "expression" | "gaze" | "line", "phase": ...}'), 400
        try:
            if body["kind"] == "line":
                edges = [body.get("left"), body.get("right")]
                if any(e is not None and (isinstance(e, bool) or not isinstance(e, int | float))
                       for e in edges):  # fmt: skip
                    raise ValueError("left and right must be numbers")
                result = agent.calibrate_reading(body.get("phase"), *edges)
            elif body["kind"] == "expression":
                result = agent.calibrate_expression(str(body.get("emotion")), body.get("phase"))
            else:
                region = body.get("region")
                if region is not None and (isinstance(region, bool) or not isinstance(region, int)):
                    raise ValueError("region must be an integer 0..8 or null")
                result = agent.calibrate_gaze(body.get("phase"), region)
        except ValueError as exc:
            return jsonify(error=str(exc)), 409
        return jsonify(result)

    @app.post("/api/feedback")
    def feedback():
        """The visitor grades one conclusion: {"conclusion": "pace", "answer": "wrong"}."""
        body = _body()
        if (
            not isinstance(body, dict)
            or set(body) != {"conclusion", "answer"}
            or not all(isinstance(v, str) for v in body.values())
        ):
            return jsonify(error='send {"conclusion": "expression", "answer": "right"}'), 400
        try:
            agent.feedback(body["conclusion"], body["answer"])
        except ValueError as exc:
            return jsonify(error=str(exc)), 409
        return jsonify({**agent.status(), "learned": agent.learned()})

    @app.post("/api/forget")
    def forget():
        # JSON only: a cross-site form cannot post JSON without a CORS preflight we refuse.
        if not isinstance(_body(), dict):
            return jsonify(error="send {} as application/json"), 400
        forgotten = agent.forget()
        return jsonify({**agent.status(), "learned": agent.learned(), "forgotten": forgotten})

    return app


FEED_TITLE = {"en": "Your feed", "da": "Dit feed"}


@functools.lru_cache(maxsize=len(LANGUAGES))
def _content(lang: str) -> dict:
    """Books and feed flattened to one language, with each item's word count."""

    def words(text: str) -> int:
        return len(text.split())

    books = [
        {
            "id": book.id,
            "title": book.title[lang],
            "author": book.author[lang],
            "chapters": [
                {
                    "title": chapter.title.get(lang, "") if chapter.title else "",
                    "pages": [
                        {
                            "id": p.id,
                            "topic": p.topic,
                            "text": p.text[lang],
                            "words": words(p.text[lang]),
                        }
                        for p in chapter.pages
                    ],
                }
                for chapter in book.chapters
            ],
        }
        for book in load_books()
    ]
    feed = [
        {"id": post.id, "topic": post.topic, "author": post.author, "text": post.text[lang],
         "words": words(post.text[lang])}
        for post in load_feed()
    ]  # fmt: skip
    return {"books": books, "feed": feed, "feed_title": FEED_TITLE[lang]}


LAYOUT_FIELDS = (
    "topic", "words", "lines", "words_per_line", "box_fraction", "words_after",
    "chapter_words_after", "box_left",
)  # fmt: skip


def _layout(body: dict) -> ItemLayout | None:
    """The item's layout from the page's report; None when it sent only the id."""
    if "topic" not in body:
        return None
    unknown = sorted(set(body) - {"item", *LAYOUT_FIELDS})
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    for name in LAYOUT_FIELDS:
        value = body.get(name)
        if name == "topic" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number")
        if not math.isfinite(value) or abs(value) > 1e9:
            raise ValueError(f"{name} must be a finite number")
    return ItemLayout(
        item=body["item"],
        topic=body["topic"],
        words=int(body.get("words") or 0),
        lines=int(body["lines"]) if body.get("lines") else None,
        words_per_line=body.get("words_per_line"),
        box_fraction=body.get("box_fraction"),
        box_left=body.get("box_left"),
        words_after=int(body.get("words_after") or 0),
        chapter_words_after=(
            int(body["chapter_words_after"])
            if body.get("chapter_words_after") is not None
            else None
        ),
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
