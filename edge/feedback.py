"""What the screen concluded about a visit, as the visitor's summary shows it to be graded.

Built only from what left the device (the publisher's `Ledger`), so the visitor grades
exactly what the dashboard was told: the expression overall, attention, reading pace, pages
skimmed (by the page-turn timer and, looking back over the visit, by the eyes against the
visitor's own reading), interests and time left; and, beside the expression timeline, "what were you
actually feeling?" (`feeling`). Each conclusion is a key with numbers; the page words it.
"""

from __future__ import annotations

from typing import Any

from broker import wire

from .publisher import Ledger

ADULT_WPM = 238
"""The adult average the pace is compared with (docs/reading.md)."""


def conclusions(ledger: Ledger | None) -> list[dict[str, Any]]:
    """The conclusions that left the device about a visit, in the order the summary shows them.

    Each is ``{"kind": one of wire.CONCLUSIONS, "params": {...}}``; a conclusion appears only
    when its scope was consented to and a message it rests on was published.
    """
    if ledger is None:
        return []
    found: list[dict[str, Any]] = []
    if "expression" in ledger.scopes and ledger.labels:
        label, count = sorted(ledger.labels.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        share = round(count / sum(ledger.labels.values()), 2)
        found.append({"kind": "expression", "params": {"label": label, "share": share}})
        found.append({"kind": "feeling", "params": {"labels": dict(ledger.labels)}})
    summary = ledger.last.get("attention_summary")
    if "attention" in ledger.scopes and summary is not None:
        found.append(
            {
                "kind": "attention",
                "params": {
                    "looking_share": summary["looking_share"],
                    "look_aways": summary["look_aways"],
                },
            }
        )
    reading = ledger.last.get("reading")
    if "reading" in ledger.scopes:
        if reading is not None:
            wpm = reading["personal_wpm"]
            verdict = "faster" if wpm > ADULT_WPM else "slower" if wpm < ADULT_WPM else "same"
            found.append({"kind": "pace", "params": {"wpm": wpm, "verdict": verdict}})
        if ledger.pages:
            params = {"skimmed": ledger.skims, "pages": ledger.pages}
            if reading is not None and reading.get("gaze_skims") is not None:
                # Retrospective: the visit's pages against the reader's own median page.
                params["by_eye"] = reading["gaze_skims"]
                params["by_eye_pages"] = reading["gaze_pages"]
            found.append({"kind": "skims", "params": params})
        if ledger.topics and max(ledger.topics.values()) > 0:
            topic = max(sorted(ledger.topics), key=lambda t: ledger.topics[t])
            found.append({"kind": "interests", "params": {"topic": topic}})
        if reading is not None and reading.get("time_left_s") is not None:
            found.append({"kind": "time_left", "params": {"seconds": reading["time_left_s"]}})
    assert all(c["kind"] in wire.CONCLUSIONS for c in found)
    return found
