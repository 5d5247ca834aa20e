"""Nothing crosses the line: consent, the allow-list and "forget me", watched on a real broker.

Every test here runs the real agent on a real sample video against a real Mosquitto, and
records every message on `onlooker/#` the way `mosquitto_sub` would.
"""

from __future__ import annotations

import json
import re
import threading
import time
from urllib.request import Request, urlopen

import paho.mqtt.client as mqtt
import pytest

from broker import wire
from conftest import (
    CHROMIUM,
    WireTap,
    get_json,
    require_browser,
    start_agent,
    start_viewer_agent,
    stop,
    wait_until,
)
from edge.publisher import SignalPublisher

pytestmark = pytest.mark.integration

LONGEST_ARRAY = 9
"""No array on the wire is longer than this (the 3x3 screen regions)."""


EXPRESSION = dict(
    label="joy", score=0.5, valence=0.5, arousal=0.5, reason_units=[], reason_shapes=[],
    reason_values=[], relative_to_rest=False,
)  # fmt: skip
ATTENTION = dict(
    present=True, faces=1, looking=True, yaw=0.0, pitch=0.0, roll=0.0, distance_cm=60,
    blinks=0, look_aways=0,
)  # fmt: skip


def post_json(url: str, body: dict) -> dict:
    # Like the page's own scripts: the viewer refuses a POST without the page's token.
    with urlopen(url.split("/api/", 1)[0] + "/", timeout=5) as page:
        token = re.search(r'name="onlooker-token" content="([^"]+)"', page.read().decode())[1]
    headers = {"Content-Type": "application/json", "X-Onlooker-Token": token}
    request = Request(url, data=json.dumps(body).encode(), headers=headers)
    with urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def viewer_agent(broker, sample, tmp_path, name="single_face.mp4", *extra):
    return start_viewer_agent(broker.url, sample(name), tmp_path, *extra)


ALLOW_LIST = {
    "common": {
        "v": "int 1..1",
        "type": "text 24",
        "agent": "text 32",
        "seq": "int 0..9007199254740992",
        "ts": "round 1 0..100000000000.0",
    },
    "heartbeat": {
        "fps": "round 1 0..1000",
        "latency_ms": "round 1 0..60000",
        "model": "text 64",
        "model_version": "text 48",
        "source": "text 16 of camera,video,images",
        "uptime_s": "round 0 0..1000000000.0",
        "watching": "bool",
    },
    "visit": {
        "visit": "text 32",
        "event": "text 8 of start,end",
        "consent": "text 16 of viewer,recorded-source",
        "scopes": "[text 16 of expression,attention,reading] x3 unique",
    },
    "attention": {
        "visit": "text 32",
        "present": "bool",
        "faces": "int 0..32",
        "looking": "bool or null",
        "yaw": "round 1 -180.0..180.0 or null",
        "pitch": "round 1 -180.0..180.0 or null",
        "roll": "round 1 -180.0..180.0 or null",
        "distance_cm": "round 0 0..1000 or null",
        "blinks": "int 0..1000000.0",
        "look_aways": "int 0..1000000.0",
    },
    "attention_summary": {
        "visit": "text 32",
        "item": "text 48 or null",
        "time_present_s": "round 1 0..86400",
        "looking_share": "round 2 0.0..1.0",
        "longest_look_s": "round 1 0..86400",
        "look_aways": "int 0..1000000.0",
        "look_away_s": "round 1 0..86400",
        "interruptions": "int 0..1000000.0",
        "interruption_s": "round 1 0..86400",
        "blinks": "int 0..1000000.0",
        "blink_rate_per_min": "round 1 0..600 or null",
        "mean_distance_cm": "round 0 0..1000 or null",
        "calibrated": "bool",
        "regions": "[round 2 0.0..1.0] x9 or null",
    },
    "expression": {
        "visit": "text 32",
        "label": "text 16 of neutral,joy,surprise,anger,sadness,fear,disgust,contempt",
        "score": "round 2 0.0..1.0",
        "valence": "round 2 -1.0..1.0",
        "arousal": "round 2 0.0..1.0",
        "reason_units": "[text 48] x3",
        "reason_shapes": "[text 32] x3",
        "reason_values": "[round 2 0.0..1.0] x3",
        "relative_to_rest": "bool",
    },
    "reaction": {
        "visit": "text 32",
        "item": "text 48",
        "seconds": "round 1 0..86400",
        "frames": "int 0..10000000.0",
        "peak": "[round 2 0.0..1.0] x8",
        "mean": "[round 2 0.0..1.0] x8",
    },
    "page": {
        "visit": "text 32",
        "item": "text 48",
        "topic": "text 16 of health,money,politics,love,technology,travel,food,nature",
        "words": "int 0..100000",
        "seconds": "round 1 0..86400",
        "away_s": "round 1 0..86400",
        "wpm": "round 0 0..100000 or null",
        "skim": "bool",
        "dwell": "bool",
        "revisit": "bool",
        "back_turn": "bool",
        "lines_read": "int 0..10000 or null",
        "weight": "round 2 0.0..1.0",
    },
    "reading": {
        "visit": "text 32",
        "item": "text 48 or null",
        "state": "text 16 of reading,not_reading,away",
        "lines_read": "int 0..10000 or null",
        "gaze_wpm": "round 0 0..100000 or null",
        "skimming": "bool",
        "progress": "round 2 0.0..1.0 or null",
        "personal_wpm": "round 0 0..100000",
        "time_left_s": "round 0 0..10000000.0 or null",
        "chapter_time_left_s": "round 0 0..10000000.0 or null",
        "gaze_pages": "int 0..10000",
        "gaze_skims": "int 0..10000 or null",
    },
    "feedback": {
        "visit": "text 32",
        "conclusion": "text 16 of expression,feeling,attention,pace,skims,interests,time_left",
        "answer": "text 16 of right,wrong,cant_say,neutral,joy,surprise,anger,sadness,fear,"
        "disgust,contempt",
    },
    "purge": {
        "visit": "text 32",
        "reason": "text 16 of forget,withdrawn",
    },
}  # fmt: skip
"""Everything that may leave the device, field by field: its kind, resolution and bounds.
A copy of `wire.COMMON` and `wire.FIELDS`, kept here on purpose: widening the privacy
boundary (a field, a finer rounding, a longer list or string, a wider range) takes a change
in two places, and review of both."""


def describe(spec) -> str:
    kind = type(spec).__name__
    if kind == "Optional_":
        return describe(spec.inner) + " or null"
    if kind == "Num":
        return ("int" if spec.integer else f"round {spec.digits}") + f" {spec.lo!r}..{spec.hi!r}"
    if kind == "Text":
        return f"text {spec.max_len}" + (" of " + ",".join(spec.choices) if spec.choices else "")
    if kind == "ListOf":
        return f"[{describe(spec.inner)}] x{spec.max_items}" + (" unique" if spec.unique else "")
    assert kind == "Flag", kind
    return "bool"


def test_the_allow_list_is_exactly_the_reviewed_one():
    actual = {
        kind: {name: describe(spec) for name, spec in fields.items()}
        for kind, fields in {"common": wire.COMMON, **wire.FIELDS}.items()
    }
    assert actual == ALLOW_LIST
    # And it is coarse: no long arrays (landmarks, embeddings), no number finer than 0.01.
    assert all(int(x) <= LONGEST_ARRAY for x in re.findall(r"\] x(\d+)", str(ALLOW_LIST)))
    assert all(int(d) <= 2 for d in re.findall(r"round (\d+)", str(ALLOW_LIST)))


def test_no_field_spec_can_be_loosened_at_run_time():
    """A plugin (a swapped-in model, say) cannot make a number finer or a list longer."""
    import dataclasses

    def specs(spec):
        yield spec
        if hasattr(spec, "inner"):
            yield from specs(spec.inner)

    every = [s for f in (wire.COMMON, *wire.FIELDS.values()) for v in f.values() for s in specs(v)]
    assert {type(s).__name__ for s in every} == {"Num", "Text", "Flag", "Optional_", "ListOf"}
    for spec in every:
        name = next(iter(dataclasses.fields(spec)), None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(spec, name.name if name else "loosened", 6)


def test_numbers_and_strings_cross_only_within_their_bounds():
    """Counts are whole (3.0 is 3, 3.5 is refused); a string may use its full length, no more."""
    base = dict(visit="0123456789ab", **ATTENTION)
    whole = wire.message("attention", agent="kiosk-1", seq=0, ts=1.0, **{**base, "blinks": 3.0})
    assert whole["blinks"] == 3
    with pytest.raises(wire.WireError, match="integer"):
        wire.message("attention", agent="kiosk-1", seq=0, ts=1.0, **{**base, "blinks": 3.5})
    longest = "a" * 32  # visit: text 32
    assert wire.message("attention", agent="kiosk-1", seq=0, ts=1.0, **{**base, "visit": longest})
    with pytest.raises(wire.WireError, match="too long"):
        wire.message(
            "attention", agent="kiosk-1", seq=0, ts=1.0, **{**base, "visit": longest + "a"}
        )


@pytest.mark.parametrize("control", [chr(0), "\n", chr(27), chr(31)])
def test_text_fields_carry_no_control_characters(control):
    fields = {**EXPRESSION, "reason_units": [f"AU12 lip{control}corner"]}
    with pytest.raises(wire.WireError, match="control characters"):
        wire.message("expression", agent="kiosk-1", seq=0, ts=1.0, visit="0123456789ab", **fields)
    fields["reason_units"] = ["AU12 lip corner"]  # a space is text
    assert wire.message(
        "expression", agent="kiosk-1", seq=0, ts=1.0, visit="0123456789ab", **fields
    )


def longest_array(value) -> int:
    if isinstance(value, list):
        return max([len(value), *(longest_array(v) for v in value)])
    if isinstance(value, dict):
        return max([0, *(longest_array(v) for v in value.values())])
    return 0


def test_a_session_that_never_consents_publishes_nothing_about_the_person(
    mosquitto, wiretap_factory, sample, tmp_path
):
    tap = wiretap_factory(mosquitto.url)
    agent, base = viewer_agent(mosquitto, sample, tmp_path)
    try:
        # A face is in front of the camera the whole time; the agent sees it, and says nothing.
        assert wait_until(lambda: get_json(base + "/api/status")["face_present"], 15)
        assert wait_until(lambda: len(tap.of_type("heartbeat")) >= 3, 15)
    finally:
        stop(agent)
    kinds = {tap.topics.parse(t).kind for t, _, _ in tap.snapshot()}
    assert kinds == {"available", "heartbeat"}, tap.dump()
    assert not any(m["watching"] for m in tap.of_type("heartbeat"))


def test_consent_to_expression_only_publishes_no_attention(
    mosquitto, wiretap_factory, sample, tmp_path
):
    tap = wiretap_factory(mosquitto.url)
    agent, base = viewer_agent(mosquitto, sample, tmp_path)
    try:
        post_json(base + "/api/consent", {"consent": True, "scopes": ["expression"]})
        assert wait_until(lambda: len(tap.of_type("expression")) >= 5, 20), tap.dump()
    finally:
        stop(agent)
    assert tap.of_type("visit")[0]["scopes"] == ["expression"]
    kinds = {tap.topics.parse(t).kind for t, p, _ in tap.snapshot() if p}
    assert kinds == {"available", "heartbeat", "visit", "expression"}, tap.dump()


def test_every_message_of_a_full_session_passes_the_allow_list(
    mosquitto, wiretap_factory, sample, tmp_path
):
    tap = wiretap_factory(mosquitto.url)
    agent = start_agent(
        mosquitto.url, sample("WolfgangLanger_Pexels.mp4"), tmp_path / "agent.log", "--fast",
        "--no-loop",
    )  # fmt: skip
    assert agent.wait(120) == 0, (tmp_path / "agent.log").read_text()[-2000:]
    assert wait_until(lambda: len(tap.of_type("visit")) == 2, 5)
    messages = tap.snapshot()
    assert len(messages) > 20
    for topic, payload, _ in messages:
        assert len(payload) <= wire.MAX_PAYLOAD_BYTES
        info = tap.topics.parse(topic)  # raises for any topic off the contract
        if info.kind == "available":
            assert wire.decode_availability(payload)
            continue
        decoded = wire.decode(info, payload)  # raises for any field off the allow-list
        raw = json.loads(payload)
        assert raw == decoded, "what crossed the wire is exactly the validated, rounded message"
        assert longest_array(raw) <= LONGEST_ARRAY
        assert set(raw) <= set(wire.COMMON) | set(wire.FIELDS[raw["type"]])


def test_forget_me_purges_the_visit_from_every_endpoint_and_the_broker(
    mosquitto, dashboard_on, wiretap_factory, sample, tmp_path
):
    dashboard = dashboard_on(mosquitto.url)
    tap = wiretap_factory(mosquitto.url)
    agent, base = viewer_agent(mosquitto, sample, tmp_path)
    try:
        post_json(base + "/api/consent", {"consent": True, "scopes": list(wire.SCOPES)})
        visit = wait_until(lambda: get_json(base + "/api/status")["visit"], 15)
        assert visit
        assert wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"], 10)
        # A stray retained message that names the visit (a buggy or hostile client).
        planted = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        planted.connect(mosquitto.host, mosquitto.port)
        planted.loop_start()
        topic = wire.Topics().visit("kiosk-1", visit, "expression")
        stray = wire.encode(
            wire.message("expression", agent="kiosk-1", seq=1, ts=time.time(), visit=visit,
                         **{**EXPRESSION, "label": "anger"})
        )  # fmt: skip
        planted.publish(topic, stray, qos=1, retain=True).wait_for_publish(5)
        planted.disconnect()
        planted.loop_stop()

        forgot_at = time.monotonic()
        assert post_json(base + "/api/forget", {})["forgotten"] is True
        gone = wait_until(
            lambda: get_json(dashboard.url + "/api/visits")["visits"] == [], 2, interval=0.05
        )
        assert gone, get_json(dashboard.url + "/api/visits")
        assert time.monotonic() - forgot_at < 2.0
        with pytest.raises(OSError, match="404"):
            get_json(f"{dashboard.url}/api/visits/{visit}")
        assert get_json(dashboard.url + "/api/crowd")["visits"] == 0
        learned = get_json(base + "/api/status")["learned"]
        assert learned["forgotten"] and learned["messages"] == {}

        # A new subscriber gets every retained message at once: none may name the visit.
        late = WireTap(mosquitto.url)
        time.sleep(1.0)
        retained = [t for t, _, r in late.snapshot() if r]
        late.close()
        assert [t for t in retained if visit in t] == [], retained
    finally:
        stop(agent)

    # Late and replayed messages naming the purged visit are dropped, not turned into a visit.
    def purged_dropped() -> int:
        return get_json(dashboard.url + "/healthz")["rejected"].get("purged_visit", 0)

    def about_visit(kind: str) -> list[tuple[dict, bytes]]:
        found = [(tap.topics.parse(t), p) for t, p, _ in tap.snapshot() if p]
        return [(json.loads(p), p) for i, p in found if (i.kind, i.visit) == (kind, visit)]

    dropped = purged_dropped()
    last_seq = max(m["seq"] for m in tap.decoded() if m["agent"] == "kiosk-1")
    (start,) = [p for m, p in about_visit("visit") if m["event"] == "start"]
    first_expression = about_visit("expression")[0][1]
    send = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    send.connect(mosquitto.host, mosquitto.port)
    send.loop_start()
    try:
        # Late: one more message of the stopped agent's, still on its way.
        late = wire.encode(
            wire.message("expression", agent="kiosk-1", seq=last_seq + 1, ts=time.time(),
                         visit=visit, **EXPRESSION)
        )  # fmt: skip
        send.publish(
            tap.topics.visit("kiosk-1", visit, "expression"), late, qos=1
        ).wait_for_publish(5)
        assert wait_until(lambda: purged_dropped() == dropped + 1, 5), purged_dropped()

        # The agent restarts (its seq counts from 0 again), then the visit's own messages are
        # replayed as they were sent: the seq check takes them for new; the purge memory holds.
        # Wait for this restart itself: the planted stray (seq 1, another ts) already counted
        # as one, and a replay sent before the new process is seen is an exact (seq, ts)
        # duplicate of what the old process sent, rightly dropped as such.
        def restarts() -> int:
            return get_json(dashboard.url + "/api/agents")["agents"][0]["restarts"]

        restarts_before = restarts()
        (tmp_path / "again").mkdir()
        again, _ = viewer_agent(mosquitto, sample, tmp_path / "again")
        try:
            assert wait_until(lambda: restarts() > restarts_before, 15), restarts()
            for topic_kind, payload in (("visit", start), ("expression", first_expression)):
                send.publish(
                    tap.topics.visit("kiosk-1", visit, topic_kind), payload, qos=1
                ).wait_for_publish(5)
            assert wait_until(lambda: purged_dropped() == dropped + 3, 5), get_json(
                dashboard.url + "/healthz"
            )
        finally:
            stop(again)
    finally:
        send.disconnect()
        send.loop_stop()
    assert get_json(dashboard.url + "/api/visits")["visits"] == []
    with pytest.raises(OSError, match="404"):
        get_json(f"{dashboard.url}/api/visits/{visit}")


def test_after_a_purge_nothing_late_or_queued_about_the_visit_crosses_the_wire(
    mosquitto, wiretap_factory
):
    """Forget-me on the wire: once purged, every later signal of the visit is refused by the
    publisher, and what of it still waited in the outbox is discarded, not replayed."""
    from test_agent import SIGNALS

    tap = wiretap_factory(mosquitto.url)
    publisher = SignalPublisher(mosquitto.url, "kiosk-forget")
    publisher.start(wait_s=5)
    visit, other = "f0e1d2c3b4a59687", "0123456789abcdef"
    try:
        for v in (visit, other):
            assert publisher.publish(
                "visit", visit=v, event="start", consent="viewer", scopes=list(wire.SCOPES)
            )
        for kind, fields in SIGNALS.items():
            assert publisher.publish(kind, visit=visit, **fields)
        assert tap.wait_for(lambda: len(tap.of_type("reading")) == 1, 5), tap.dump()
        with publisher._gate:  # hold the sender: what follows is still queued at the purge
            for kind, fields in SIGNALS.items():
                assert publisher.publish(kind, visit=visit, **fields)
            assert publisher.publish("attention", visit=other, **ATTENTION)
            assert publisher.purge(visit, "forget")
        assert publisher.stats()["discarded_purged"] == len(SIGNALS)
        for kind, fields in SIGNALS.items():  # late: after the purge
            assert not publisher.publish(kind, visit=visit, **fields)
        assert not publisher.publish(
            "visit", visit=visit, event="end", consent="viewer", scopes=list(wire.SCOPES)
        )
        assert publisher.refused == len(SIGNALS) + 1
        assert publisher.publish("attention", visit=other, **ATTENTION)  # others go on
        assert publisher.purge("Not-A-Visit", "forget") is False  # off the contract: nothing sent
        # Counted as sent: 2 starts, the signals twice, the other visit's 2, and the purge.
        assert publisher.sent == 2 + 2 * len(SIGNALS) + 2 + 1
    finally:
        publisher.stop()
    assert tap.wait_for(lambda: wire.OFFLINE.encode() in [p for _, p, _ in tap.snapshot()], 5)
    about = [m["type"] for m in tap.decoded() if m.get("visit") == visit]
    assert about == ["visit", *SIGNALS, "purge"], about  # each signal once, before the purge
    # Nothing about a person is retained by the broker: a new subscriber gets availability only.
    late = WireTap(mosquitto.url)
    try:
        assert late.wait_for(lambda: any(r for _, _, r in late.snapshot()), 5)
        time.sleep(0.5)  # the broker sends every retained message at once, right after this
        retained = [late.topics.parse(t).kind for t, _, r in late.snapshot() if r]
    finally:
        late.close()
    assert retained == ["available"], retained
    assert len([m for m in tap.of_type("attention") if m["visit"] == other]) == 2


def test_signals_the_purge_and_its_clears_cross_at_qos_1_and_heartbeats_at_qos_0(mosquitto):
    """The delivery the contract states (docs/architecture.md) and the dashboard's duplicate
    handling is built for: everything about a visit at least once (QoS 1), a heartbeat at most
    once (QoS 0). Watched by a subscriber asking for QoS 2, so nothing is downgraded for it."""
    from test_agent import SIGNALS

    host, port = wire.parse_broker_url(mosquitto.url)
    received: list[tuple[str, bytes, int]] = []
    subscribed = threading.Event()
    watcher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    watcher.on_connect = lambda c, u, f, rc, p: c.subscribe(wire.Topics().subscription, 2)
    watcher.on_subscribe = lambda *a: subscribed.set()
    watcher.on_message = lambda c, u, m: received.append((m.topic, bytes(m.payload), m.qos))
    watcher.connect(host, port)
    watcher.loop_start()
    publisher = SignalPublisher(mosquitto.url, "kiosk-qos")
    visit = "a0b1c2d3e4f50617"
    try:
        assert subscribed.wait(10)
        publisher.start(wait_s=5)
        assert publisher.publish(
            "visit", visit=visit, event="start", consent="viewer", scopes=list(wire.SCOPES)
        )
        for kind, fields in SIGNALS.items():
            assert publisher.publish(kind, visit=visit, **fields)
        assert publisher.publish(
            "heartbeat", qos=0, fps=30.0, latency_ms=20.0, model="m", model_version="1",
            source="video", uptime_s=1.0, watching=True,
        )  # fmt: skip
        # The signals cross before the purge (a purge discards what of the visit still waits).
        assert wait_until(lambda: len(received) >= 2 + len(SIGNALS) + 1, 5), received
        assert publisher.purge(visit, "forget")
        assert wait_until(lambda: any(t.endswith("/purge") for t, _, _ in received), 5)
    finally:
        publisher.stop()
        watcher.disconnect()
        watcher.loop_stop()
    topics = wire.Topics()
    about_visit = [(topics.parse(t).kind, bool(p), q) for t, p, q in received
                   if topics.parse(t).visit == visit]  # fmt: skip
    clears = [kind for kind, payload, _ in about_visit if not payload]
    assert sorted(clears) == sorted(k for k in wire.VISIT_TYPES if k != "purge"), about_visit
    assert {q for _, _, q in about_visit} == {1}, about_visit
    assert len(about_visit) == 1 + len(SIGNALS) + len(clears) + 1  # start, signals, clears, purge
    assert [q for t, _, q in received if topics.parse(t).kind == "heartbeat"] == [0]


def test_two_visits_made_from_the_same_video_get_unrelated_pseudonyms(
    mosquitto, wiretap_factory, sample, tmp_path
):
    tap = wiretap_factory(mosquitto.url)
    for run in range(2):
        agent = start_agent(
            mosquitto.url, sample("single_face.mp4"), tmp_path / f"agent{run}.log", "--fast",
            "--no-loop",
        )  # fmt: skip
        assert agent.wait(60) == 0
    assert wait_until(lambda: len(tap.of_type("visit")) == 4, 5)
    first, second = sorted({m["visit"] for m in tap.of_type("visit")})
    assert first != second
    assert all(wire.VISIT_ID.match(v) for v in (first, second))
    # Same frames, same face: nothing in the names may be derived from either.
    shared = max(
        (n for n in range(1, len(first) + 1) for i in range(len(first) - n + 1)
         if first[i : i + n] in second),
        default=0,
    )  # fmt: skip
    assert shared <= 5, (first, second)


@pytest.mark.parametrize("visits, shown", [(4, False), (5, True)])
def test_crowd_figures_need_at_least_five_visits(mosquitto, dashboard_on, visits, shown):
    dashboard = dashboard_on(mosquitto.url)
    publisher = SignalPublisher(mosquitto.url, "crowd-kiosk")
    publisher.start(wait_s=5)
    labels = ["joy", "joy", "surprise", "neutral", "joy"]
    try:
        for i in range(visits):
            visit = f"{i:02d}" + "c0ffee" * 2
            publisher.publish(
                "visit", visit=visit, event="start", consent="viewer", scopes=list(wire.SCOPES)
            )
            publisher.publish("expression", visit=visit, **{**EXPRESSION, "label": labels[i]})
            publisher.publish("attention", visit=visit, **ATTENTION)
        # Wait for what the figures are made of: every visit with its expression and attention.
        assert wait_until(
            lambda: (
                len(listed := get_json(dashboard.url + "/api/visits")["visits"]) == visits
                and all(v["expression"] and v["attention"] for v in listed)
            ),
            10,
        )
        crowd = get_json(dashboard.url + "/api/crowd")
    finally:
        publisher.stop()
    assert crowd["k"] == 5 and crowd["visits"] == visits
    figure = crowd["expressions"]
    if shown:
        assert figure["withheld"] is None
        assert figure["value"] == {"joy": 0.6, "surprise": 0.2, "neutral": 0.2}
        assert crowd["present_share"]["value"]["median"] == 1.0
    else:
        assert figure == {"visits": 4, "value": None, "withheld": "not enough visits"}
        assert crowd["present_share"]["value"] is None


def test_retention_deletes_a_finished_visit(mosquitto, dashboard_on, sample, tmp_path):
    dashboard = dashboard_on(mosquitto.url, RETENTION_S=0)
    agent = start_agent(
        mosquitto.url, sample("single_face.mp4"), tmp_path / "agent.log", "--fast",
        "--no-loop", "--retention", "0",
    )  # fmt: skip
    seen = wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"], 20)
    assert seen, (tmp_path / "agent.log").read_text()[-2000:]
    assert agent.wait(60) == 0
    # Retention 0: gone as soon as the visit has ended.
    assert wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"] == [], 3)


def test_consent_screen_indicator_stop_and_forget_in_a_real_browser(
    mosquitto, dashboard_on, sample, tmp_path
):
    sync_api = require_browser()
    dashboard = dashboard_on(mosquitto.url)
    agent, base = viewer_agent(mosquitto, sample, tmp_path, "single_face.mp4", "--max-visit", "4")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            errors, requests = [], []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("request", lambda r: requests.append(r.url))
            expect = sync_api.expect
            page.goto(base + "/")

            # The consent screen: nothing is chosen for the viewer, so "I agree" waits.
            expect(page.get_by_test_id("consent")).to_be_visible()
            expect(page.get_by_test_id("example")).to_contain_text('"type": "expression"')
            agree = page.get_by_role("button", name="I agree")
            expect(agree).to_be_disabled()
            page.get_by_role("button", name="Dansk").click()
            expect(page.locator("h1").first).to_have_text("Denne skærm har et kamera.")
            page.get_by_role("button", name="English").click()

            # Keyboard only: tick two scopes with Space, agree with Enter.
            page.get_by_role("checkbox").nth(0).press("Space")
            page.get_by_role("checkbox").nth(1).press("Space")
            agree.press("Enter")
            expect(page.get_by_test_id("indicator")).to_be_visible(timeout=5000)
            visit = wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"], 10)
            assert visit and visit[0]["scopes"] == ["expression", "attention"]
            page.screenshot(path=str(tmp_path / "viewer-watching.png"))

            # "Stop watching" is always in reach: the visit ends and is purged at once.
            page.get_by_role("button", name="Stop watching").click()
            expect(page.get_by_test_id("indicator")).to_be_hidden(timeout=2000)
            expect(page.get_by_test_id("forgotten")).to_be_visible(timeout=2000)
            assert wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"] == [], 2)

            # A second visit that ends by itself (4 s at most) shows what was learned.
            page.get_by_role("button", name="Start again").click()
            page.get_by_role("checkbox").nth(0).check()
            page.get_by_role("button", name="I agree").click()
            expect(page.get_by_test_id("summary")).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("summary-text")).to_contain_text("messages about you")
            assert len(get_json(dashboard.url + "/api/visits")["visits"]) == 1
            page.screenshot(path=str(tmp_path / "viewer-summary.png"))
            page.get_by_role("button", name="Forget me").click()
            expect(page.get_by_test_id("forgotten")).to_be_visible(timeout=2000)
            assert wait_until(lambda: get_json(dashboard.url + "/api/visits")["visits"] == [], 2)
            browser.close()
    finally:
        stop(agent)
    assert errors == []
    assert all(url.startswith(base) for url in requests), "the page loads nothing from outside"
