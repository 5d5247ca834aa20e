"""The one page, in its modes (overview, exhibition, teacher) and as a printable receipt."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from broker import wire

bp = Blueprint("page", __name__)

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
    config = current_app.config
    return render_template(
        "index.html",
        mode=mode,
        lang=_lang(),
        visit=visit,
        retention=int(float(config["RETENTION_S"])),
        hold=float(config["EXHIBITION_HOLD_S"]),
    )


@bp.get("/receipt/<visit_id>")
def receipt(visit_id: str) -> str:
    """A printable data receipt for one visit (filled from /api/visits/<id>)."""
    if not wire.VISIT_ID.match(visit_id):
        abort(404)
    return _page("receipt", visit_id)
