"""What a visit's signals add up to: plain-language conclusions and a warning-style score.

Both are computed from a visit's JSON (`DashboardState` builds it from validated messages
only) and returned as keys with numbers, never as sentences: the page words them in English
or Danish. Every conclusion names the patent that claims the inference (`source`).
"""

from __future__ import annotations

import math
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


PACE_MIN_PAGES = 2
"""No "faster" or "slower than the average adult" from fewer counted pages than this."""
PACE_SD_FLOOR = 0.2
"""Smallest page-to-page spread of ln(wpm) assumed for one reader: two pages that happen to
agree do not make a certain pace."""
PACE_Z = 2.0
"""A pace differs from the adult average only when ln(pace / 238) exceeds this many standard
errors (about 95 %)."""


def counted_pages(visit: dict[str, Any]) -> list[dict[str, Any]]:
    """The pages that are evidence of a reading pace: read (no skim or dwell), first visits,
    with a weight and a finite pace."""
    return [
        p
        for p in visit.get("pages") or []
        if not (p.get("skim") or p.get("dwell") or p.get("revisit"))
        and (p.get("weight") or 0) > 0
        and isinstance(p.get("wpm"), int | float)
        and 0 < p["wpm"] < 1e5
    ]


def _read_seconds(pages: list[dict[str, Any]]) -> float:
    return round(sum(max(0.0, p["seconds"] - (p.get("away_s") or 0.0)) for p in pages), 1)


def pace_evidence(visit: dict[str, Any]) -> dict[str, Any] | None:
    """The pace the counted pages show, how sure it is, and what it rests on; None without a
    counted page. `verdict` is faster or slower only with at least PACE_MIN_PAGES pages and a
    difference from the adult average beyond PACE_Z standard errors, else unsure."""
    pages = counted_pages(visit)
    if not pages:
        return None
    weights = [float(p["weight"]) for p in pages]
    logs = [math.log(p["wpm"]) for p in pages]
    total = sum(weights)
    mean = sum(w * x for w, x in zip(weights, logs, strict=True)) / total
    n = len(pages)
    spread = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1)) if n > 1 else 0.0
    se = max(spread, PACE_SD_FLOOR) / math.sqrt(n)
    difference = mean - math.log(ADULT_WPM)
    verdict = "unsure"
    if n >= PACE_MIN_PAGES and abs(difference) > PACE_Z * se:
        verdict = "faster" if difference > 0 else "slower"
    return {
        "wpm": round(math.exp(mean)),
        "low": round(math.exp(mean - PACE_Z * se)),
        "high": round(math.exp(mean + PACE_Z * se)),
        "verdict": verdict,
        "pages": n,
        "seconds": _read_seconds(pages),
    }


def pace(visit: dict[str, Any]) -> float | None:
    """Reading pace from the counted pages only (weighted geometric mean); None before any
    page was read: the population prior the agent starts from is no evidence about anyone."""
    found = pace_evidence(visit)
    return None if found is None else float(found["wpm"])


def _evidence(pages: int | None = None, seconds: float | None = None) -> dict[str, Any]:
    return {"pages": pages, "seconds": None if seconds is None else round(float(seconds), 1)}


def conclusions(visit: dict[str, Any]) -> list[dict[str, Any]]:
    """What an advertiser or an e-book vendor would conclude, as keys with their numbers, each
    with the evidence it rests on (`evidence`: pages and seconds; None where it does not apply)."""
    found: list[dict[str, Any]] = []

    def add(key: str, source: str, audience: str, evidence: dict[str, Any], **params: Any):
        found.append(
            {"key": key, "source": source, "audience": audience, "params": params,
             "evidence": evidence}
        )  # fmt: skip

    all_pages = visit.get("pages") or []
    pages_by_item = {p["item"]: p for p in all_pages}
    timeline = visit.get("timeline") or []
    if timeline:
        labels = [p[1] for p in timeline]
        top = max(EXPRESSIONS, key=labels.count)
        add("mostly", "facebook", "advertiser", _evidence(None, timeline[-1][0] - timeline[0][0]),
            label=top, share=round(100 * labels.count(top) / len(labels)))  # fmt: skip
    reactions = {i: e["reaction"] for i, e in (visit.get("items") or {}).items() if "reaction" in e}
    if reactions:
        joy = EXPRESSIONS.index("joy")
        item, best = max(reactions.items(), key=lambda kv: (kv[1]["mean"][joy], kv[0]))
        if best["mean"][joy] >= 0.2:
            add("smiled_at", "facebook", "advertiser", _evidence(1, best.get("seconds")),
                **_label_of(item, pages_by_item), joy=round(best["mean"][joy], 2))  # fmt: skip
        others = {i: 1 - r["mean"][0] for i, r in reactions.items()}
        item = max(sorted(others), key=lambda i: others[i])
        means = reactions[item]["mean"]
        label = EXPRESSIONS[max(range(1, len(EXPRESSIONS)), key=lambda k: means[k])]
        if not any(c["key"] == "smiled_at" and c["params"]["item"] == item for c in found):
            add("moved_by", "facebook", "advertiser", _evidence(1, reactions[item].get("seconds")),
                **_label_of(item, pages_by_item), label=label,
                strength=round(others[item], 2))  # fmt: skip
    present_s = (visit.get("attention_summary") or {}).get("time_present_s")
    looking = _looking(visit)
    if looking is not None:
        add("looking", "verizon", "advertiser", _evidence(None, present_s),
            share=round(100 * looking))  # fmt: skip
    look_aways = _look_aways(visit)
    if look_aways:
        add("look_aways", "amazon_eye", "vendor", _evidence(None, present_s), count=look_aways)
    evidence = pace_evidence(visit)
    if evidence is not None:
        add("pace", "amazon_timer", "vendor", _evidence(evidence["pages"], evidence["seconds"]),
            wpm=evidence["wpm"], low=evidence["low"], high=evidence["high"],
            verdict=evidence["verdict"], faster=evidence["verdict"] == "faster",
            average=ADULT_WPM)  # fmt: skip
    for page in all_pages:
        one = _evidence(1, max(0.0, page["seconds"] - (page.get("away_s") or 0.0)))
        if page["skim"]:
            add("skimmed", "amazon_timer", "vendor", one, item=page["item"], topic=page["topic"])
        elif page["dwell"]:
            add("dwelt", "amazon_timer", "vendor", one, item=page["item"], topic=page["topic"])
        if page["back_turn"] or page["revisit"]:
            add("went_back", "ebook_systems", "vendor", one, item=page["item"],
                topic=page["topic"])  # fmt: skip
    reading = visit.get("reading")
    if reading is not None and reading.get("gaze_skims") is not None:
        # Retrospective: each page against the median of the visit's pages, judged at the end.
        add("skimmed_by_eye", "amazon_eye", "vendor", _evidence(reading["gaze_pages"]),
            skimmed=reading["gaze_skims"], pages=reading["gaze_pages"])  # fmt: skip
    if reading is not None and reading.get("time_left_s") is not None and evidence is not None:
        add("time_left", "amazon_speed", "vendor",
            _evidence(evidence["pages"], evidence["seconds"]),
            minutes=round(reading["time_left_s"] / 60))  # fmt: skip
    interests = visit.get("interests") or {}
    if interests:
        topic, share = next(iter(interests.items()))
        on_topic = [p for p in all_pages if p["topic"] == topic]
        add("interest", "ebook_systems", "advertiser",
            _evidence(len(on_topic), _read_seconds(on_topic)), topic=topic,
            share=round(100 * share))  # fmt: skip
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
             "params": {"percentile": compare["pace_percentile"], "k": k},
             "evidence": {"pages": None, "seconds": None, "visits": k}}
        )  # fmt: skip
    if compare.get("same_most_emotional"):
        found.append(
            {"key": "same_most_emotional", "source": "facebook", "audience": "advertiser",
             "params": {"item": compare["most_emotional_item"], "k": k},
             "evidence": {"pages": None, "seconds": None, "visits": k}}
        )  # fmt: skip
    if compare.get("skimmed_it_too"):
        found.append(
            {"key": "skimmed_with_crowd", "source": "amazon_timer", "audience": "vendor",
             "params": {"item": compare["most_skimmed_item"], "k": k},
             "evidence": {"pages": None, "seconds": None, "visits": k}}
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
