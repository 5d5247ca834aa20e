"""The one page, in its modes (overview, exhibition, teacher) and as a printable receipt."""

from __future__ import annotations

import mimetypes

from flask import Blueprint, abort, render_template, request

from broker import wire

bp = Blueprint("page", __name__)

# The page is native ES modules, which browsers run only when served with a JavaScript type;
# some systems' MIME tables (the Windows registry, an old /etc/mime.types) say otherwise.
mimetypes.add_type("text/javascript", ".js")

MODES = ("overview", "exhibition", "teacher")
LANGUAGES = ("en", "da")


def _lang() -> str:
    lang = request.args.get("lang", "")
    return lang if lang in LANGUAGES else ""


@bp.get("/")
def index() -> str:
    """The dashboard page; ``?mode=exhibition|teacher`` and ``?lang=da``; it fills itself."""
    mode = request.args.get("mode", "overview")
    return _page(mode if mode in MODES else "overview", "")


def _page(mode: str, visit: str) -> str:
    # The facts the page shares with the server (retention, hold, k, …) are not rendered here:
    # the page imports them from GET /api/contract (dashboard/static/contract.js).
    return render_template("index.html", mode=mode, lang=_lang(), visit=visit)


@bp.get("/receipt/<visit_id>")
def receipt(visit_id: str) -> str:
    """A printable data receipt for one visit (filled from /api/visits/<id>)."""
    if not wire.VISIT_ID.match(visit_id):
        abort(404)
    return _page("receipt", visit_id)
