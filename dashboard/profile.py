"""What a visit's signals add up to: plain-language conclusions and a warning-style score.

Both are computed from a visit's JSON (`DashboardState` builds it from validated messages
only) and returned as keys with numbers, never as sentences: the page words them in English
or Danish. Every conclusion names the patent that claims the inference (`source`).
"""

from __future__ import annotations

from typing import Any

from broker.wire import EXPRESSIONS

ADULT_WPM = 238
"""Adults read non-fiction silently at about 238 words a minute (Brysbaert 2019)."""

SOURCES = {
    "facebook": "Facebook US 9,681,166 B2",
    "verizon": "Verizon US 2012/0304206 A1",
    "amazon_timer": "Amazon US 9,069,332 B1",
    "amazon_speed": "Amazon US 9,544,204",
    "amazon_eye": "Amazon US 9,256,784 B1",
    "ebook_systems": "E-Book Systems US 2003/0210226",
}
"""The patents of DESIGN.md, by the key conclusions and score terms use."""

SCORE_START = 1000
RATINGS = ((1050, "AAA"), (1030, "AA"), (960, "A"), (850, "B"), (600, "C"), (float("-inf"), "D"))
"""Rongcheng's pilot as reported: 1000 starting points; AAA from 1050 down to D below 600."""

# (key, weight, unit, cap): points = clamp(weight × input, ±cap). Arbitrary on purpose: someone
# always chooses the weights, and the visitor never sees them. Here they are in full view.
SCORE_TERMS = (
    ("looking", 100.0, "× (share looking − 0.5)", 50),
    ("look_aways", -5.0, "× look-aways", 100),
    ("mood", 60.0, "× mean valence", 60),
    ("pace", 0.25, "× (wpm − 238)", 60),
    ("skims", -15.0, "× pages skimmed", 90),
    ("dwells", 10.0, "× pages dwelt on", 60),
    ("politics", -80.0, "× share of time on politics", 80),
    ("interruptions", -10.0, "× interruptions", 100),
)


def _label_of(item: str, pages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How to name an item: by its topic when a `page` message gave one, else by its id."""
    page = pages.get(item)
    return {"item": item, "topic": page["topic"] if page else None}


def _looking(visit: dict[str, Any]) -> float | None:
    summary = visit.get("attention_summary") or {}
    if summary.get("looking_share") is not None and summary.get("time_present_s"):
        return float(summary["looking_share"])
    return None


def _look_aways(visit: dict[str, Any]) -> int | None:
    for kind in ("attention", "attention_summary"):
        signal = visit.get(kind)
        if signal is not None:
            return int(signal["look_aways"])
    return None


def _mean_valence(visit: dict[str, Any]) -> float | None:
    points = visit.get("timeline") or []
    return round(sum(p[2] for p in points) / len(points), 2) if points else None


def pace(visit: dict[str, Any]) -> float | None:
    """Reading pace: the agent's personal pace once a page is read, else the weighted mean."""
    pages = visit.get("pages") or []
    if not pages:
        return None
    reading = visit.get("reading")
    if reading is not None:
        return float(reading["personal_wpm"])
    weighted = [(p["wpm"], p["weight"]) for p in pages if p["wpm"] and not p["skim"]]
    total = sum(w for _, w in weighted)
    return round(sum(wpm * w for wpm, w in weighted) / total) if total > 0 else None


def conclusions(visit: dict[str, Any]) -> list[dict[str, Any]]:
    """What an advertiser or an e-book vendor would conclude, as keys with their numbers."""
    found: list[dict[str, Any]] = []

    def add(key: str, source: str, audience: str, **params: Any) -> None:
        found.append({"key": key, "source": source, "audience": audience, "params": params})

    pages_by_item = {p["item"]: p for p in visit.get("pages") or []}
    timeline = visit.get("timeline") or []
    if timeline:
        labels = [p[1] for p in timeline]
        top = max(EXPRESSIONS, key=labels.count)
        add("mostly", "facebook", "advertiser", label=top,
            share=round(100 * labels.count(top) / len(labels)))  # fmt: skip
    reactions = {i: e["reaction"] for i, e in (visit.get("items") or {}).items() if "reaction" in e}
    if reactions:
        joy = EXPRESSIONS.index("joy")
        item, best = max(reactions.items(), key=lambda kv: (kv[1]["mean"][joy], kv[0]))
        if best["mean"][joy] >= 0.2:
            add("smiled_at", "facebook", "advertiser", **_label_of(item, pages_by_item),
                joy=round(best["mean"][joy], 2))  # fmt: skip
        others = {i: 1 - r["mean"][0] for i, r in reactions.items()}
        item = max(sorted(others), key=lambda i: others[i])
        means = reactions[item]["mean"]
        label = EXPRESSIONS[max(range(1, len(EXPRESSIONS)), key=lambda k: means[k])]
        if not any(c["key"] == "smiled_at" and c["params"]["item"] == item for c in found):
            add("moved_by", "facebook", "advertiser", **_label_of(item, pages_by_item),
                label=label, strength=round(others[item], 2))  # fmt: skip
    looking = _looking(visit)
    if looking is not None:
        add("looking", "verizon", "advertiser", share=round(100 * looking))
    look_aways = _look_aways(visit)
    if look_aways:
        add("look_aways", "amazon_eye", "vendor", count=look_aways)
    wpm = pace(visit)
    if wpm is not None:
        add("pace", "amazon_timer", "vendor", wpm=round(wpm),
            faster=wpm > ADULT_WPM, average=ADULT_WPM)  # fmt: skip
    for page in visit.get("pages") or []:
        if page["skim"]:
            add("skimmed", "amazon_timer", "vendor", item=page["item"], topic=page["topic"])
        elif page["dwell"]:
            add("dwelt", "amazon_timer", "vendor", item=page["item"], topic=page["topic"])
        if page["back_turn"] or page["revisit"]:
            add("went_back", "ebook_systems", "vendor", item=page["item"], topic=page["topic"])
    reading = visit.get("reading")
    if reading is not None and reading.get("time_left_s") is not None and wpm is not None:
        add("time_left", "amazon_speed", "vendor", minutes=round(reading["time_left_s"] / 60))
    interests = visit.get("interests") or {}
    if interests:
        topic, share = next(iter(interests.items()))
        add("interest", "ebook_systems", "advertiser", topic=topic, share=round(100 * share))
    return _dedupe(found)


def _dedupe(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A page read twice gives one "skimmed the page on money", not two.
    seen: set[tuple[str, str]] = set()
    unique = []
    for conclusion in found:
        params = conclusion["params"]
        key = (conclusion["key"], str(params.get("topic") or params.get("item") or ""))
        if key not in seen:
            seen.add(key)
            unique.append(conclusion)
    return unique[:12]


def crowd_conclusions(compare: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """Conclusions from the crowd comparison; only what the k rule let through."""
    found = []
    if compare.get("pace_percentile") is not None:
        found.append(
            {"key": "pace_percentile", "source": "amazon_speed", "audience": "vendor",
             "params": {"percentile": compare["pace_percentile"], "k": k}}
        )  # fmt: skip
    if compare.get("same_most_emotional"):
        found.append(
            {"key": "same_most_emotional", "source": "facebook", "audience": "advertiser",
             "params": {"item": compare["most_emotional_item"], "k": k}}
        )  # fmt: skip
    if compare.get("skimmed_it_too"):
        found.append(
            {"key": "skimmed_with_crowd", "source": "amazon_timer", "audience": "vendor",
             "params": {"item": compare["most_skimmed_item"], "k": k}}
        )  # fmt: skip
    return found


def _inputs(visit: dict[str, Any]) -> dict[str, float | None]:
    pages = visit.get("pages") or []
    summary = visit.get("attention_summary") or {}
    wpm = pace(visit)
    interests = visit.get("interests") or {}
    reading_shared = "reading" in (visit.get("scopes") or []) or bool(pages)
    return {
        "looking": None if (s := _looking(visit)) is None else s - 0.5,
        "look_aways": _look_aways(visit),
        "mood": _mean_valence(visit),
        "pace": None if wpm is None else wpm - ADULT_WPM,
        "skims": sum(p["skim"] for p in pages) if pages else None,
        "dwells": sum(p["dwell"] for p in pages) if pages else None,
        "politics": interests.get("politics", 0.0) if interests or reading_shared else None,
        "interruptions": summary.get("interruptions"),
    }


def score(visit: dict[str, Any]) -> dict[str, Any]:
    """The visit boiled down to one number, with every term of the formula."""
    inputs = _inputs(visit)
    terms = []
    total = float(SCORE_START)
    for key, weight, unit, cap in SCORE_TERMS:
        value = inputs[key]
        points = None
        if value is not None:
            points = round(max(-cap, min(cap, weight * value)))
            total += points
        terms.append(
            {"key": key, "weight": weight, "unit": unit, "cap": cap,
             "input": None if value is None else round(value, 2), "points": points}
        )  # fmt: skip
    points = round(total)
    rating = next(name for floor, name in RATINGS if points >= floor)
    return {"start": SCORE_START, "points": points, "rating": rating, "terms": terms}


def describe(visit: dict[str, Any]) -> dict[str, Any]:
    """The `profile` part of a visit's JSON: conclusions and the score."""
    return {"conclusions": conclusions(visit), "score": score(visit)}
