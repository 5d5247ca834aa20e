"""The one page: agents and visits, kept live by /api/stream."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("page", __name__)


@bp.get("/")
def index() -> str:
    """The dashboard page; it fills itself from the event stream."""
    return render_template("index.html")
