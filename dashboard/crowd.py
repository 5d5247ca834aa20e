"""Crowd figures: what many visits show together, each withheld below k visits.

Figures across the visits held (the dominant expression, time present, reading pace, the
item that moved or was skimmed most), how one visit compares with them, and what visitors
said about each screen's conclusions. A figure with fewer than `k` visits behind it is
``{"value": None, "withheld": "not enough visits"}``; nothing here is per visit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from broker.wire import EXPRESSIONS, FEEDBACK_SCOPE, GRADES
from dashboard.visits import Visit, pace


def figure(behind: int, k: int, compute: Callable[[], Any]) -> dict[str, Any]:
    """`compute()` with `behind` visits behind it, or withheld below `k`."""
    if behind < k:
        return {"visits": behind, "value": None, "withheld": "not enough visits"}
    return {"visits": behind, "value": compute(), "withheld": None}


def emotion(reaction: dict[str, Any]) -> float:
    """How strongly an item moved the viewer: the mean share of expressions other than neutral."""
    return round(1.0 - reaction["mean"][0], 2) if reaction.get("mean") else 0.0


def percentile(ordered: list[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list, rounded to 2 decimals."""
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)


def _quartiles(ordered: list[float]) -> dict[str, float]:
    return {
        "p25": percentile(ordered, 25),
        "median": percentile(ordered, 50),
        "p75": percentile(ordered, 75),
    }


def crowd(visits: list[Visit], k: int, visit: Visit | None, visit_id: str | None) -> dict:
    """The crowd figures; with `visit_id`, how that visit (None: not held) compares."""
    with_expression = [v for v in visits if v.expressions]
    with_attention = [v for v in visits if v.attention_seen]
    dominant = Counter(v.expressions.most_common(1)[0][0] for v in with_expression)
    present = sorted(v.attention_present / v.attention_seen for v in with_attention)
    paces = {v.visit: p for v in visits if (p := pace(v)) is not None}
    ordered_paces = sorted(paces.values())
    emotional = item_figure(visits, k, "reaction", emotion)
    skimmed = item_figure(visits, k, "page", lambda page: float(page["skim"]))
    result = {
        "k": k,
        "visits": len(visits),
        "expressions": figure(
            len(with_expression),
            k,
            lambda: {label: round(n / len(with_expression), 2) for label, n in dominant.items()},
        ),
        "present_share": figure(len(with_attention), k, lambda: _quartiles(present)),
        "pace_wpm": figure(len(paces), k, lambda: _quartiles(ordered_paces)),
        "most_emotional_item": emotional,
        "most_skimmed_item": skimmed,
    }
    if visit_id is not None:
        result["compare"] = compare(visit, k, paces, emotional, skimmed)
    return result


def item_figure(
    visits: list[Visit], k: int, key: str, measure: Callable[[dict[str, Any]], float]
) -> dict[str, Any]:
    """The item that scores highest on `measure`, among items at least k visits saw."""
    per_item: dict[str, list[float]] = {}
    behind = 0
    for visit in visits:
        found = [(item, measure(e[key])) for item, e in visit.items.items() if key in e]
        behind += bool(found)
        for item, value in found:
            per_item.setdefault(item, []).append(value)

    def best() -> dict[str, Any] | None:
        shared = {i: sum(v) / len(v) for i, v in per_item.items() if len(v) >= k}
        if not shared:
            return None
        item = max(sorted(shared), key=lambda i: shared[i])
        return {"item": item, "value": round(shared[item], 2), "visits": len(per_item[item])}

    result = figure(behind, k, best)
    if result["withheld"] is None and result["value"] is None:
        result["withheld"] = "no item seen by enough visits"
    return result


def compare(
    visit: Visit | None,
    k: int,
    paces: dict[str, float],
    emotional: dict[str, Any],
    skimmed: dict[str, Any],
) -> dict[str, Any]:
    """How one visit compares with the crowd, under the same k rule."""
    if visit is None:
        return {"visit": None, "withheld": "no such visit"}
    mine = paces.get(visit.visit)
    others = [p for v, p in paces.items() if v != visit.visit]
    rank = None
    withheld = None
    if mine is None:
        withheld = "no reading pace for this visit"
    elif len(paces) < k:
        withheld = "not enough visits"
    else:
        below = sum(p < mine for p in others) + 0.5 * sum(p == mine for p in others)
        rank = round(100 * below / len(others)) if others else None
    top_item = (emotional.get("value") or {}).get("item")
    skim_item = (skimmed.get("value") or {}).get("item")
    mine_top = max(
        ((i, emotion(e["reaction"])) for i, e in visit.items.items() if "reaction" in e),
        key=lambda kv: kv[1],
        default=(None, 0.0),
    )[0]
    page = (visit.items.get(skim_item or "") or {}).get("page")
    return {
        "visit": visit.visit,
        "pace_wpm": mine,
        "pace_percentile": rank,
        "pace_withheld": withheld,
        "most_emotional_item": top_item,
        "same_most_emotional": top_item is not None and top_item == mine_top,
        "most_skimmed_item": skim_item,
        "skimmed_it_too": bool(page and page["skim"]),
    }


def feedback_screens(visits: Iterable[Visit], k: int, only: str | None = None) -> dict:
    """What visitors said about each screen's (agent's) conclusions, over the visits that
    answered: per conclusion kind the answers (one per visit, the latest), and for the
    expression a confusion table (the screen's overall expression against what the visitor
    said they felt); each figure withheld below `k` answering visits."""
    answered: dict[str, list[Visit]] = {}
    for visit in visits:
        if visit.answers and (only is None or visit.agent == only):
            answered.setdefault(visit.agent, []).append(visit)
    return {agent: _feedback_screen(held, k) for agent, held in sorted(answered.items())}


def _feedback_screen(visits: list[Visit], k: int) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind in FEEDBACK_SCOPE:
        said = [v.answers[kind][1] for v in visits if kind in v.answers]
        if not said:
            continue
        counts = Counter(said)
        if kind == "feeling":
            felt = {word: counts[word] for word in EXPRESSIONS if counts[word]}
            kinds[kind] = figure(len(said), k, lambda f=felt: f)
        else:
            kinds[kind] = figure(
                len(said),
                k,
                lambda c=counts: {
                    **{grade: c[grade] for grade in GRADES},
                    "graded": c["right"] + c["wrong"],
                },
            )
    pairs = [
        (v.expressions.most_common(1)[0][0], v.answers["feeling"][1])
        for v in visits
        if "feeling" in v.answers and v.expressions
    ]

    def table() -> dict[str, dict[str, int]]:
        rows: dict[str, dict[str, int]] = {}
        for inferred, felt in sorted(pairs):
            row = rows.setdefault(inferred, {})
            row[felt] = row.get(felt, 0) + 1
        return rows

    return {"visits": len(visits), "kinds": kinds, "confusion": figure(len(pairs), k, table)}
