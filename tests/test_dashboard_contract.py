"""The dashboard page and the server share their facts from one source: GET /api/contract is
built from the Python constants that define them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flask import Flask

from broker import wire
from dashboard import create_app, profile
from dashboard.api import FELT, STREAM_RETRY_AFTER_S
from dashboard.state import ITEM_TYPES


def make_app(**config: Any) -> Flask:
    return create_app({"MQTT_AUTOSTART": False, **config})


@pytest.fixture
def client():
    return make_app().test_client()


def expected_contract(config: Any) -> dict[str, Any]:
    """The contract written out by hand from the constants, as a reader of the code would."""
    return {
        "expressions": list(wire.EXPRESSIONS),
        "topics": list(wire.TOPICS),
        "scopes": list(wire.SCOPES),
        "consent_kinds": list(wire.CONSENT_KINDS),
        "reading_states": list(wire.READING_STATES),
        "item_kinds": list(ITEM_TYPES),
        "feedback": {"graded": [c for c in wire.CONCLUSIONS if c != FELT], "felt": FELT},
        "adult_wpm": profile.ADULT_WPM,
        "sources": profile.SOURCES,
        "score": {
            "start": profile.SCORE_START,
            "ratings": [[f if math.isfinite(f) else None, n] for f, n in profile.RATINGS],
            "terms": [term[0] for term in profile.SCORE_TERMS],
        },
        "crowd_k": config["CROWD_K"],
        "retention_s": config["RETENTION_S"],
        "exhibition_hold_s": config["EXHIBITION_HOLD_S"],
        "stream_retry_s": STREAM_RETRY_AFTER_S,
    }


# --- the served facts are the Python constants -----------------------------------------------


def test_the_contract_is_served_from_the_python_constants(client) -> None:
    response = client.get("/api/contract")
    assert response.status_code == 200 and response.is_json
    served = response.get_json()
    assert served == expected_contract(client.application.config)
    assert FELT in wire.CONCLUSIONS  # the one conclusion answered with a feeling, not a grade
    assert served["feedback"]["graded"] + [FELT] == sorted(
        wire.CONCLUSIONS, key=[*served["feedback"]["graded"], FELT].index
    )


def test_the_contract_follows_this_apps_configuration() -> None:
    app = make_app(CROWD_K=7, RETENTION_S=180, EXHIBITION_HOLD_S=3.5)
    served = app.test_client().get("/api/contract").get_json()
    assert (served["crowd_k"], served["retention_s"], served["exhibition_hold_s"]) == (7, 180, 3.5)


def test_a_refused_stream_is_told_to_retry_after_the_served_delay() -> None:
    app = make_app(MAX_STREAMS=0)
    response = app.test_client().get("/api/stream")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(STREAM_RETRY_AFTER_S)
