"""The dashboard page and the server share their facts from one source: GET /api/contract is
built from the Python constants that define them, and the page's modules copy none of them.

Also: the page is native ES modules (one entry, relative imports only, no bundle, no package),
served with a JavaScript type under the unchanged Content-Security-Policy."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from broker import wire
from dashboard import CONTENT_SECURITY_POLICY, create_app, profile
from dashboard.api import FELT, STREAM_RETRY_AFTER_S
from dashboard.visits import ITEM_TYPES

STATIC = Path(__file__).resolve().parents[1] / "dashboard" / "static"
TEMPLATE = Path(__file__).resolve().parents[1] / "dashboard" / "templates" / "index.html"
MODULES = sorted(STATIC.glob("*.js"))
ENTRY = "dashboard.js"


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


# --- the page copies none of them -------------------------------------------------------------


def _texts() -> dict[str, dict[str, str]]:
    """The page's texts per language, read from i18n.js (`"key": "value",` lines)."""
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    blocks = re.split(r"^  (en|da): \{$", source, flags=re.M)
    found = {}
    for lang, block in zip(blocks[1::2], blocks[2::2], strict=True):
        found[lang] = dict(re.findall(r'^    "([^"]+)": "((?:[^"\\]|\\.)*)",$', block, flags=re.M))
    assert set(found) == {"en", "da"} and all(len(t) > 100 for t in found.values())
    return found


def _code(path: Path) -> str:
    """A module's source without its text table (i18n.js's words are checked on their own) and
    without the names of the template's fields (`field(root, "interests")` names an element)."""
    source = path.read_text(encoding="utf-8")
    if path.name == "i18n.js":
        source = re.sub(r'^    "[^"]+": ".*",$', "", source, flags=re.M)
    return re.sub(r'\b(setField|field)\(([^,()]+), "[^"]+"', r"\1(\2, ", source)


def _served() -> dict[str, Any]:
    return make_app().test_client().get("/api/contract").get_json()


# Words the page uses for a reason of its own that happen to equal a served value.
OWN_WORDS = {
    "pace": "also the key of dashboard/profile.py's pace conclusion, which the reading panel reads",
}


def test_no_module_writes_down_a_served_fact() -> None:
    served = _served()
    words = {
        *served["expressions"], *served["topics"], *served["scopes"], *served["consent_kinds"],
        *served["reading_states"], *served["item_kinds"], *served["feedback"]["graded"],
        served["feedback"]["felt"], *(name for _, name in served["score"]["ratings"]),
        *served["sources"].values(),
    } - set(OWN_WORDS)  # fmt: skip
    # Distinctive numbers only: 1000, 20, 5 and the like also mean milliseconds, pixels, …;
    # the browser test checks those facts by serving other values.
    numbers = {served["adult_wpm"], *(f for f, _ in served["score"]["ratings"] if f is not None)}
    numbers.add(int(served["retention_s"]))
    copies = []
    for path in MODULES:
        code = _code(path)
        copies += [(path.name, w) for w in words if re.search(rf"[\"']{re.escape(w)}[\"']", code)]
        copies += [(path.name, n) for n in numbers if re.search(rf"(?<![\w.]){n}(?![\w.])", code)]
    assert copies == [], f"import these from contract.js instead: {copies}"


def test_no_text_states_a_served_fact() -> None:
    served = _served()
    numbers = {
        served["adult_wpm"], served["score"]["start"], served["crowd_k"],
        int(served["retention_s"]), round(served["retention_s"] / 60),
        *(f for f, _ in served["score"]["ratings"] if f is not None),
    }  # fmt: skip
    names = [name for _, name in served["score"]["ratings"] if len(name) > 1]
    stated = []
    for lang, texts in _texts().items():
        for key, text in texts.items():
            plain = re.sub(r"\{\w+\}", "", text)
            for n in numbers:
                if re.search(rf"(?<![\d.,]){n}(?![\d.,])", plain):
                    stated.append((lang, key, n))
            stated += [(lang, key, n) for n in names if re.search(rf"\b{n}\b", plain)]
    assert stated == [], "pass the fact as a {parameter} from contract.js"


@pytest.mark.parametrize(
    ("prefix", "vocabulary"),
    [
        ("expr.", "expressions"), ("topic.", "topics"), ("scope.", "scopes"),
        ("consent.", "consent_kinds"), ("read.state.", "reading_states"),
        ("feedback.kind.", "feedback.graded"), ("score.term.", "score.terms"),
    ],
)  # fmt: skip
def test_every_served_word_has_a_text_in_each_language_and_no_other(prefix, vocabulary) -> None:
    values: Any = _served()
    for part in vocabulary.split("."):
        values = values[part]
    for lang, texts in _texts().items():
        keys = {key.removeprefix(prefix) for key in texts if key.startswith(prefix)}
        assert keys == set(values), (lang, prefix)


def test_every_conclusion_the_profile_draws_has_its_sentence_in_each_language() -> None:
    """dashboard/profile.py names its conclusions in code, not in a constant: read them there."""
    code = (STATIC.parents[1] / "dashboard" / "profile.py").read_text(encoding="utf-8")
    drawn = re.findall(r'add\(\s*"(\w+)",\s*"(\w+)",\s*"(\w+)"', code)
    drawn += re.findall(r'"key": "(\w+)", "source": "(\w+)", "audience": "(\w+)"', code)
    assert len(drawn) > 10
    for lang, texts in _texts().items():
        for key, source, audience in drawn:
            said = f"c.{key}" in texts or any(k.startswith(f"c.{key}.") for k in texts)
            assert said, (lang, key)
            assert source in profile.SOURCES and f"c.audience.{audience}" in texts, (lang, key)


def test_the_templates_panels_name_served_scopes_sources_and_message_types() -> None:
    html = TEMPLATE.read_text(encoding="utf-8")
    assert set(re.findall(r'data-scope="([^"]+)"', html)) <= set(wire.SCOPES)
    assert set(re.findall(r'data-source="([^"]+)"', html)) <= set(profile.SOURCES)
    raw = set(re.findall(r'data-raw="([^"]+)"', html))
    assert raw and raw <= set(wire.VISIT_TYPES)


# --- native ES modules, served as JavaScript under the same policy ------------------------------


def _imports(path: Path) -> list[str]:
    return re.findall(r'^import .* from "([^"]+)";$', path.read_text(encoding="utf-8"), flags=re.M)


def test_the_page_is_one_entry_module_importing_the_rest_by_relative_path(client) -> None:
    html = client.get("/").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == [f'<script type="module" src="/static/{ENTRY}">'], scripts
    reached, queue = set(), [ENTRY]
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        reached.add(name)
        for specifier in _imports(STATIC / name):
            # No bare specifier (a package), no other origin, no build step: files beside it.
            assert re.fullmatch(r"\./[a-z0-9-]+\.js", specifier), (name, specifier)
            assert (STATIC / specifier[2:]).exists(), (name, specifier)
            queue.append(specifier[2:])
    assert reached == {path.name for path in MODULES}, "a module nothing imports"
    assert {p.name for p in MODULES if p.name.startswith("panel-")} >= {
        "panel-now.js", "panel-timeline.js", "panel-attention.js", "panel-reading.js",
        "panel-reactions.js", "panel-interests.js", "panel-summary.js", "panel-datapoints.js",
        "panel-crowd.js", "panel-score.js", "panel-agents.js", "panel-visits.js",
        "panel-feedback.js", "panel-receipt.js",
    }  # fmt: skip


def test_every_module_is_javascript_under_the_unchanged_policy(client) -> None:
    assert client.get("/").headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    policy = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    for path in MODULES:
        response = client.get(f"/static/{path.name}")
        assert response.status_code == 200, path.name
        assert response.mimetype == "text/javascript", (path.name, response.mimetype)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        code = response.get_data(as_text=True)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                     "eval(", "new Function", "setTimeout(\"", "import("):  # fmt: skip
            assert sink not in code, (path.name, sink)
