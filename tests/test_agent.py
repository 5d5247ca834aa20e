"""The agent's consent gate, visits and rate limit, watched on a real broker.

The face model and the camera are the seams faked here: a scripted analyzer says which frames
hold a face, so every expected message can be stated exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from broker import wire
from edge.agent import Agent, AgentConfig
from edge.attention import AttentionTracker
from edge.face import FaceAnalyzer, FaceObservation
from edge.models import create_expression_model
from edge.publisher import SignalPublisher
from edge.reader import ItemLayout
from edge.sources import Frame, FrameSource

SMILE = FaceObservation(
    landmarks=np.random.default_rng(0).uniform(0.3, 0.7, (478, 3)).astype(np.float32),
    blendshapes={
        "mouthSmileLeft": 0.9,
        "mouthSmileRight": 0.9,
        "cheekSquintLeft": 0.5,
        "cheekSquintRight": 0.5,
    },  # fmt: skip
    transform=np.eye(4),
)

SIGNALS = {
    "attention": dict(
        present=True, faces=1, looking=True, yaw=0.0, pitch=0.0, roll=0.0, distance_cm=60,
        blinks=0, look_aways=0,
    ),
    "attention_summary": dict(
        item=None, time_present_s=3.0, looking_share=0.8, longest_look_s=2.0, look_aways=1,
        look_away_s=0.5, interruptions=0, interruption_s=0.0, blinks=2, blink_rate_per_min=12.0,
        mean_distance_cm=60, calibrated=False, regions=None,
    ),
    "expression": dict(
        label="joy", score=0.8, valence=0.6, arousal=0.5, reason_units=["AU12 lip corner puller"],
        reason_shapes=["mouthSmile"], reason_values=[0.8], relative_to_rest=True,
    ),
    "reaction": dict(item="page-1", seconds=2.0, frames=60, peak=[0.1] * 8, mean=[0.05] * 8),
    "page": dict(
        item="page-1", topic="travel", words=200, seconds=40.0, away_s=0.0, wpm=300, skim=False,
        dwell=False, revisit=False, back_turn=False, lines_read=None, weight=1.0,
    ),
    "reading": dict(
        item="page-1", state="reading", lines_read=4, gaze_wpm=250, skimming=False,
        progress=0.4, personal_wpm=262, time_left_s=1380, chapter_time_left_s=300, gaze_pages=3,
        gaze_skims=1,
    ),
}  # fmt: skip
"""One complete, valid message of each consent-scoped kind: only consent can refuse it."""


class ScriptedSource(FrameSource):
    """`n` blank frames, 10 ms of stream time apart, paced in wall time like a camera."""

    kind = "video"

    def __init__(self, n: int, step_ms: int = 10, gate: threading.Event | None = None, at=None,
                 size=(8, 8)):  # fmt: skip
        self.n, self.step_ms, self.gate = n, step_ms, gate
        self.width, self.height = size
        self.fps = 1000 / step_ms
        self.at = at or {}  # frame index -> callable run just before that frame

    def frames(self) -> Iterator[Frame]:
        image = np.zeros((self.height, self.width, 3), np.uint8)
        for i in range(self.n):
            if self.gate is not None:
                self.gate.wait()
            if i in self.at:
                self.at[i]()
            time.sleep(self.step_ms / 1000)
            yield Frame(image, i * self.step_ms, i, time.monotonic())


class ScriptedAnalyzer(FaceAnalyzer):
    """A face on the frames for which `has_face(index)` is true."""

    name, version = "scripted", "1"

    def __init__(self, has_face, cost_s: float = 0.0):
        self.has_face, self.calls, self.cost_s, self.widths = has_face, 0, cost_s, set()

    def analyze(self, image, t_ms, still=False):
        self.calls += 1
        self.widths.add(image.shape[1])
        time.sleep(self.cost_s)
        return [SMILE] if self.has_face(self.calls - 1) else []


def run_agent(url, source, analyzer, **config) -> Agent:
    # The scripted face has blendshapes but no real pixels: the blendshape backend reads it,
    # the default fusion backend (which also looks at the pixels) is tested on real faces.
    config.setdefault("expression_model", "blendshapes")
    agent = Agent(AgentConfig(broker_url=url, heartbeat_s=0.2, **config), source, analyzer)
    thread = threading.Thread(target=agent.run)
    thread.start()
    return agent, thread


def test_without_consent_only_availability_and_heartbeats_cross(any_broker, wiretap_factory):
    tap = wiretap_factory(any_broker.url)
    agent, thread = run_agent(any_broker.url, ScriptedSource(100), ScriptedAnalyzer(lambda i: 1))
    thread.join(30)
    assert agent.frames == 100
    kinds = {tap.topics.parse(t).kind for t, _, _ in tap.snapshot()}
    assert kinds == {"available", "heartbeat"}, tap.dump()
    assert all(not m["watching"] for m in tap.of_type("heartbeat"))
    assert agent.visits_started == 0


def test_consent_starts_a_visit_and_face_messages_are_rate_limited(mosquitto, wiretap_factory):
    tap = wiretap_factory(mosquitto.url)
    gate = threading.Event()
    # 150 frames of 10 ms = 1.5 s of stream time; the face is there throughout.
    agent, thread = run_agent(
        mosquitto.url,
        ScriptedSource(150, gate=gate),
        ScriptedAnalyzer(lambda i: True),
        consent="viewer",
    )
    agent.give_consent()
    started = time.monotonic()
    gate.set()
    thread.join(30)
    elapsed = time.monotonic() - started
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 2, 5), tap.dump()
    start, end = tap.of_type("visit")
    assert (start["event"], end["event"]) == ("start", "end")
    assert start["visit"] == end["visit"] and start["consent"] == "viewer"
    faces = tap.of_type("attention")
    assert faces and all(m["visit"] == start["visit"] for m in faces)
    # Presence is confirmed after the tracker's enter time (0.5 s), then holds.
    present = [m for m in faces if m["present"]]
    assert present and faces[-1]["present"] and all(m["yaw"] == 0.0 for m in present)
    expressions = tap.of_type("expression")
    assert expressions and {m["label"] for m in expressions} == {"joy"}
    assert all("AU12 lip corner puller" in m["reason_units"] for m in expressions)
    assert len(expressions) <= int(elapsed / 0.2) + 1
    # At the end, what the screen concluded about the whole visit.
    (summary,) = tap.of_type("attention_summary")
    assert summary["item"] is None and 0.5 <= summary["time_present_s"] <= 1.5
    # ≤ 5 Hz: at most one message per 0.2 s of the run, plus the first one.
    assert len(faces) <= int(elapsed / 0.2) + 1, (len(faces), elapsed)
    assert len(faces) >= 3
    # Viewer consent ends with the visit: the next person must agree anew.
    assert not agent.consented


def test_visit_survives_a_short_miss_and_ends_after_the_leave_time(mosquitto, wiretap_factory):
    tap = wiretap_factory(mosquitto.url)
    # Face on frames 0-49, gone 50-59 (100 ms: a miss), back 60-99, gone from 100 on.
    # With leave_after_s = 0.3, the visit ends 300 ms of stream time after frame 99.
    present = lambda i: i < 50 or 60 <= i < 100  # noqa: E731
    agent, thread = run_agent(
        mosquitto.url,
        ScriptedSource(200),
        ScriptedAnalyzer(present),
        consent="recorded-source",
        leave_after_s=0.3,
    )
    thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 2, 5), tap.dump()
    assert agent.visits_started == 1
    assert [m["event"] for m in tap.of_type("visit")] == ["start", "end"]
    assert agent.visit is None


def test_withdrawal_ends_the_visit_and_stops_publishing(mosquitto, wiretap_factory):
    tap = wiretap_factory(mosquitto.url)
    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(300), ScriptedAnalyzer(lambda i: True), consent="viewer"
    )
    agent.give_consent()
    assert tap.wait_for(lambda: len(tap.of_type("attention")) >= 2, 10), tap.dump()
    agent.withdraw_consent()
    withdrawn_at = len(tap.snapshot())
    assert tap.wait_for(lambda: any(m["event"] == "end" for m in tap.of_type("visit")), 2)
    time.sleep(0.6)
    after = [tap.topics.parse(t).kind for t, p, _ in tap.snapshot()[withdrawn_at:] if p]
    assert "attention" not in after and "expression" not in after, after
    # Withdrawal purges the visit everywhere: a purge command, and retained copies cleared.
    (purge,) = tap.of_type("purge")
    assert purge["reason"] == "withdrawn" and purge["visit"] == tap.of_type("visit")[0]["visit"]
    cleared = {tap.topics.parse(t).kind for t, p, _ in tap.snapshot() if not p}
    assert cleared == set(wire.VISIT_TYPES) - {"purge"}
    agent.stop()
    thread.join(30)
    assert agent.visits_started == 1


def test_a_message_with_landmarks_never_reaches_the_broker(mosquitto, wiretap_factory):
    from edge.publisher import SignalPublisher

    tap = wiretap_factory(mosquitto.url)
    publisher = SignalPublisher(mosquitto.url, "kiosk-9")
    publisher.start(wait_s=5)
    visit = "0123456789abcdef"
    assert publisher.publish(
        "visit", visit=visit, event="start", consent="viewer", scopes=["attention"]
    )
    fields = dict(
        visit=visit, present=True, faces=1, looking=True, yaw=0.0, pitch=0.0, roll=0.0,
        distance_cm=60, blinks=0, look_aways=0,
    )  # fmt: skip
    assert not publisher.publish("attention", landmarks=SMILE.landmarks.tolist(), **fields)
    assert not publisher.publish("attention", **{**fields, "visit": "ffffffffffffffff"})
    # Complete and valid (test below), refused only because the visit consented to attention.
    assert not publisher.publish("expression", visit=visit, **SIGNALS["expression"])
    assert publisher.publish("attention", **fields)
    assert publisher.publish(
        "visit", visit=visit, event="end", consent="viewer", scopes=["attention"]
    )
    assert not publisher.publish("attention", **fields)  # the visit is closed
    publisher.stop()
    assert publisher.refused == 4
    assert tap.wait_for(lambda: wire.OFFLINE.encode() in [p for _, p, _ in tap.snapshot()], 5)
    assert all(b"landmarks" not in p for _, p, _ in tap.snapshot())
    kinds = [tap.topics.parse(t).kind for t, _, _ in tap.snapshot()]
    assert kinds == ["available", "visit", "attention", "visit", "available"], tap.dump()


def test_signals_cover_every_consent_scoped_kind():
    assert set(SIGNALS) == set(wire.SCOPE_OF)
    for kind, fields in SIGNALS.items():
        wire.build(kind, agent="kiosk-1", seq=0, ts=1.0, visit="0123456789abcdef", **fields)


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_the_publisher_refuses_a_signal_whose_scope_the_visit_did_not_consent_to(
    mosquitto, wiretap_factory, kind
):
    """The publisher's own per-scope check, with nothing before it: the last gate."""
    scope = wire.SCOPE_OF[kind]
    tap = wiretap_factory(mosquitto.url)
    publisher = SignalPublisher(mosquitto.url, "kiosk-scope")
    publisher.start(wait_s=5)
    without, consented = "0123456789abcdef", "fedcba9876543210"
    try:
        others = [s for s in wire.SCOPES if s != scope]  # every scope but the signal's own
        assert publisher.publish(
            "visit", visit=without, event="start", consent="viewer", scopes=others
        )
        assert publisher.publish(
            "visit", visit=consented, event="start", consent="viewer", scopes=[scope]
        )
        assert not publisher.publish(kind, visit=without, **SIGNALS[kind])
        assert publisher.refused == 1
        assert publisher.publish(kind, visit=consented, **SIGNALS[kind])  # same fields, consented
        assert publisher.sent == 3  # the two starts and the consented signal, nothing else
    finally:
        publisher.stop()
    assert tap.wait_for(lambda: wire.OFFLINE.encode() in [p for _, p, _ in tap.snapshot()], 5)
    assert [(m["type"], m["visit"]) for m in tap.of_type(kind)] == [(kind, consented)]


class CountingExpressionModel:
    """The real blendshape expression model (it reads the scripted face), counting its runs."""

    def __init__(self) -> None:
        self.inner, self.calls = create_expression_model("blendshapes"), 0
        self.name, self.version = self.inner.name, self.inner.version

    def estimate(self, image, face):
        self.calls += 1
        return self.inner.estimate(image, face)


class CountingAttention(AttentionTracker):
    """The real attention tracker, counting the frames the agent feeds it."""

    updates = 0

    def update(self, t_s, faces, image_size):
        self.updates += 1
        return super().update(t_s, faces, image_size)


def layout(item: str) -> ItemLayout:
    return ItemLayout(item, "travel", 200, 10, 20.0, 0.5, 1000)


@pytest.mark.parametrize("scope", wire.SCOPES)
def test_the_agent_computes_and_asks_to_send_only_what_the_one_scope_allows(
    mosquitto, wiretap_factory, scope
):
    """The agent's per-scope checks, with the publisher's gate behind them: a signal outside
    the scope is not computed, and the agent never even asks the publisher to send it
    (`refused` stays 0), while every kind of the consented scope does cross."""
    tap = wiretap_factory(mosquitto.url)
    holder: dict[str, Agent] = {}
    at = {40: lambda: holder["agent"].show_item("page-1", layout("page-1")),
          100: lambda: holder["agent"].show_item("page-2", layout("page-2"))}  # fmt: skip
    gate = threading.Event()
    model = CountingExpressionModel()
    config = AgentConfig(broker_url=mosquitto.url, heartbeat_s=0.2, consent="recorded-source",
                         scopes=(scope,))  # fmt: skip
    agent = Agent(config, ScriptedSource(160, gate=gate, at=at), ScriptedAnalyzer(lambda i: True),
                  expression_model=model)  # fmt: skip
    agent.attention = CountingAttention()
    holder["agent"] = agent
    thread = threading.Thread(target=agent.run)
    thread.start()
    gate.set()
    thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 2, 5), tap.dump()
    assert tap.of_type("visit")[0]["scopes"] == [scope]
    sent = {m["type"] for m in tap.decoded()} & set(wire.SCOPE_OF)
    assert sent == {kind for kind, of in wire.SCOPE_OF.items() if of == scope}, tap.dump()
    assert agent.publisher.refused == 0
    assert (model.calls > 0) == (scope == "expression"), model.calls
    assert (agent.attention.updates > 0) == (scope in ("attention", "reading"))


class BlockingExpressionModel(CountingExpressionModel):
    """A backend so slow that each estimate waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.release, self.forgotten = threading.Event(), threading.Event(), 0

    def estimate(self, image, face):
        self.inside.set()
        self.release.wait(10)
        return super().estimate(image, face)

    def forget(self) -> None:
        self.forgotten += 1


def test_consent_requests_never_wait_for_the_expression_model(mosquitto, wiretap_factory):
    """The model runs outside the agent's lock: withdrawing while it runs returns at once,
    the frame it was working on is dropped, and the model forgets as soon as it returns."""
    tap = wiretap_factory(mosquitto.url)
    model = BlockingExpressionModel()
    config = AgentConfig(broker_url=mosquitto.url, heartbeat_s=0.2, consent="viewer")
    agent = Agent(config, ScriptedSource(100), ScriptedAnalyzer(lambda i: True),
                  expression_model=model)  # fmt: skip
    thread = threading.Thread(target=agent.run)
    thread.start()
    try:
        agent.give_consent(["expression"])
        assert model.inside.wait(10)  # busy with the first frame of the visit
        forgotten = model.forgotten
        started = time.monotonic()
        assert agent.status()["watching"]
        agent.withdraw_consent()
        assert time.monotonic() - started < 1.0
        assert model.forgotten == forgotten  # not while it runs…
        model.release.set()
        assert wait(lambda: model.forgotten == forgotten + 1, 5)  # … but as soon as it returns
    finally:
        model.release.set()
        agent.stop()
        thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("purge")) == 1, 5), tap.dump()
    assert tap.of_type("expression") == [] and agent.publisher.refused == 0


def test_consent_to_expression_only_publishes_no_attention(mosquitto, wiretap_factory):
    tap = wiretap_factory(mosquitto.url)
    gate = threading.Event()
    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(80, gate=gate), ScriptedAnalyzer(lambda i: True),
        consent="viewer",
    )  # fmt: skip
    agent.give_consent(["expression"])
    gate.set()
    thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 2, 5), tap.dump()
    assert tap.of_type("visit")[0]["scopes"] == ["expression"]
    assert tap.of_type("expression")
    assert tap.of_type("attention") == []


def test_past_the_retention_period_the_device_forgets_what_it_published(mosquitto):
    """Retention on the device: the viewer's receipt ("what left the device") is kept for
    `retention_s` after the visit, then the record of what was published is dropped."""
    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(80), ScriptedAnalyzer(lambda i: i < 20),
        consent="recorded-source", leave_after_s=0.1, retention_s=1.5,
    )  # fmt: skip
    thread.join(30)
    assert agent.visits_started == 1 and agent.visit is None
    receipt = agent.learned()
    assert receipt is not None and not receipt["active"] and not receipt["forgotten"]
    assert receipt["messages"]["visit"] == 2 and receipt["messages"].get("attention")
    assert 0 < receipt["kept_for_s"] <= 2
    assert 0 < receipt["duration_s"] < 2  # a 0.2 s face and a 0.1 s leave time
    visit = receipt["visit"]
    assert visit in agent.publisher.ledgers
    assert wait(lambda: agent.learned() is None, 3)
    assert visit not in agent.publisher.ledgers
    assert agent.forget() is False  # nothing left to forget on the device


@pytest.mark.parametrize(("consent", "visits"), [("viewer", 1), ("recorded-source", 2)])
def test_forget_me_ends_a_viewers_consent_but_not_a_recorded_sources(
    mosquitto, wiretap_factory, consent, visits
):
    """After "forget me" the person in front of the screen must agree anew; a recorded source's
    standing consent goes on with the next visit, under a new pseudonym."""
    tap = wiretap_factory(mosquitto.url)
    holder: dict[str, Agent] = {}
    gate = threading.Event()
    source = ScriptedSource(150, gate=gate, at={60: lambda: holder["agent"].forget()})
    agent, thread = run_agent(
        mosquitto.url, source, ScriptedAnalyzer(lambda i: True), consent=consent
    )  # the face stays in front of the camera throughout
    holder["agent"] = agent
    if consent == "viewer":
        agent.give_consent()
    gate.set()
    thread.join(30)
    assert agent.visits_started == visits
    assert agent.consented is (consent == "recorded-source")
    assert tap.wait_for(lambda: len(tap.of_type("purge")) == 1, 5), tap.dump()
    forgotten = tap.of_type("purge")[0]["visit"]
    starts = [m["visit"] for m in tap.of_type("visit") if m["event"] == "start"]
    assert starts[0] == forgotten and len(starts) == visits and forgotten not in starts[1:]


def test_a_narrowed_consent_ends_the_visit_and_the_next_one_sends_only_what_is_left(
    mosquitto, wiretap_factory
):
    tap = wiretap_factory(mosquitto.url)
    holder: dict[str, Agent] = {}
    gate = threading.Event()
    narrow = {60: lambda: holder["agent"].give_consent(["expression"])}
    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(150, gate=gate, at=narrow), ScriptedAnalyzer(lambda i: True),
        consent="viewer",
    )  # fmt: skip
    holder["agent"] = agent
    agent.give_consent()
    gate.set()
    thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 4, 5), tap.dump()
    first, second = (m for m in tap.of_type("visit") if m["event"] == "start")
    assert first["scopes"] == list(wire.SCOPES) and second["scopes"] == ["expression"]
    assert [m["visit"] for m in tap.of_type("visit")] == [first["visit"]] * 2 + [
        second["visit"]
    ] * 2
    assert tap.of_type("expression")[-1]["visit"] == second["visit"]
    assert {m["visit"] for m in tap.of_type("attention")} == {first["visit"]}


def test_consent_to_an_unknown_or_empty_set_of_scopes_is_refused_whole():
    """A scope nobody described to the viewer cannot be agreed to, not even beside known ones."""
    agent = Agent(AgentConfig(consent="viewer"), ScriptedSource(1), ScriptedAnalyzer(bool))
    for scopes in (["expression", "identity"], ["identity"], []):
        with pytest.raises(ValueError, match="consent needs"):
            agent.give_consent(scopes)
        assert not agent.consented
    agent.give_consent(["reading"])
    assert agent.status()["scopes"] == ["reading"]


def test_agent_config_refuses_nonsense():
    with pytest.raises(wire.WireError):
        AgentConfig(agent_id="Kiosk One")
    with pytest.raises(ValueError, match="5 Hz"):
        AgentConfig(max_rate_hz=30)
    with pytest.raises(ValueError, match="consent"):
        AgentConfig(consent="assumed")


def test_agent_reconnects_when_the_broker_comes_back(wiretap_factory):
    from broker.embedded import EmbeddedBroker, find_mosquitto
    from conftest import require

    require(find_mosquitto() is not None, "mosquitto is not installed")
    first = EmbeddedBroker(prefer="mosquitto").start()
    port = first.port
    agent, thread = run_agent(first.url, ScriptedSource(100_000), ScriptedAnalyzer(lambda i: 0))
    try:
        assert agent.publisher._connected.wait(10)
        first.stop()
        assert wait(lambda: not agent.publisher.connected, 5)
        second = EmbeddedBroker(port=port, prefer="mosquitto").start()
        try:
            tap = wiretap_factory(second.url)
            # paho backs off 1 s, 2 s, …: the agent is back within a few seconds.
            assert tap.wait_for(lambda: len(tap.of_type("heartbeat")) >= 1, 15), tap.dump()
            online = (tap.topics.available("kiosk-1"), b"online")
            # "online" is published from paho's connect callback, a heartbeat from the agent's
            # loop: either may arrive first, so wait for it rather than read it once.
            seen = lambda: online in [(t, p) for t, p, _ in tap.snapshot()]  # noqa: E731
            assert tap.wait_for(seen, 5), tap.dump()
        finally:
            agent.stop()
            thread.join(30)
            second.stop()
    finally:
        agent.stop()
        first.stop()


def wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_each_page_shown_gets_its_reaction_and_attention_summary(mosquitto, wiretap_factory):
    tap = wiretap_factory(mosquitto.url)
    holder = {}
    at = {60: lambda: holder["agent"].show_item("page-1"),
          120: lambda: holder["agent"].show_item("page-2")}  # fmt: skip
    source = ScriptedSource(180, gate=(gate := threading.Event()), at=at)
    agent, thread = run_agent(
        mosquitto.url, source, ScriptedAnalyzer(lambda i: True), consent="recorded-source"
    )
    holder["agent"] = agent
    gate.set()
    thread.join(30)
    assert tap.wait_for(lambda: len(tap.of_type("visit")) == 2, 5), tap.dump()
    reactions = {m["item"]: m for m in tap.of_type("reaction")}
    assert sorted(reactions) == ["page-1", "page-2"]
    for reaction in reactions.values():
        assert reaction["frames"] == 60 and reaction["seconds"] == pytest.approx(0.6, abs=0.02)
        joy = wire.EXPRESSIONS.index("joy")
        assert reaction["peak"][joy] == max(reaction["peak"]) and reaction["mean"][joy] > 0.5
    summaries = {m["item"]: m for m in tap.of_type("attention_summary")}
    assert set(summaries) == {None, "page-1", "page-2"}
    # The whole-visit summary comes last, just before the visit's end.
    kinds = [m["type"] for m in tap.decoded() if m["type"] != "heartbeat"]
    assert kinds[-2:] == ["attention_summary", "visit"]
    with pytest.raises(ValueError):
        agent.show_item("Page One")


def test_the_pi_profile_scales_frames_and_infers_on_every_third_one(mosquitto):
    analyzer = ScriptedAnalyzer(lambda i: True)
    source = ScriptedSource(99, step_ms=40, size=(1280, 720))
    agent, thread = run_agent(mosquitto.url, source, analyzer, profile="pi")
    thread.join(30)
    assert agent.frames == 99
    assert analyzer.calls == 33
    assert analyzer.widths == {320}
    assert agent.max_rate_hz == 2.0


def test_a_slow_model_runs_on_fewer_frames_instead_of_queueing(mosquitto):
    # Frames every 20 ms (50 fps) and a model that needs 60 ms: it must skip frames.
    analyzer = ScriptedAnalyzer(lambda i: True, cost_s=0.06)
    source = ScriptedSource(60, step_ms=20)
    agent, thread = run_agent(mosquitto.url, source, analyzer)
    thread.join(60)
    assert agent.frames == 60
    assert agent.infer_every >= 4
    assert analyzer.calls <= 60 / 3


def test_calibration_belongs_to_the_visit_and_needs_one(mosquitto):
    gate = threading.Event()
    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(400, gate=gate), ScriptedAnalyzer(lambda i: i < 200),
        consent="recorded-source", leave_after_s=0.2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="running visit"):
        agent.calibrate_expression("joy", "start")
    gate.set()
    assert wait(lambda: agent.visit is not None, 5)
    agent.calibrate_expression("joy", "start")
    time.sleep(0.3)
    assert agent.calibrate_expression("joy", "end") == {"calibrated": True, "emotion": "joy"}
    assert agent.expression.gains["joy"] > 0
    # A face that never moves its eyes cannot be mapped onto the screen: said, not faked.
    agent.calibrate_gaze("start")
    for region in range(9):
        agent.calibrate_gaze("point", region)
        time.sleep(0.02)
    with pytest.raises(ValueError, match="0..8"):
        agent.calibrate_gaze("point", 9)
    assert agent.calibrate_gaze("end") == {"calibrated": False}
    thread.join(30)
    assert agent.expression.gains == {}  # forgotten with the visit


# --- frame by frame, in stream time the test chooses ---------------------------------------


def frame_at(t_ms: int) -> Frame:
    return Frame(np.zeros((8, 8, 3), np.uint8), t_ms, t_ms, time.monotonic())


def offline_agent(**config) -> Agent:
    """An agent fed frame by frame: its publisher never connects (what it publishes waits in
    the outbox, and the ledger records it)."""
    config.setdefault("expression_model", "blendshapes")
    config.setdefault("consent", "recorded-source")
    return Agent(AgentConfig(**config), ScriptedSource(1), ScriptedAnalyzer(bool))


def test_a_visit_ends_when_the_face_is_gone_longer_than_the_leave_time_and_not_before():
    agent = offline_agent(leave_after_s=3.0)
    agent._on_frame(frame_at(5000), [SMILE])  # last seen 5 s into the stream
    agent._on_frame(frame_at(8000), [])  # gone for exactly the leave time: still the viewer
    assert agent.visit is not None
    agent._on_frame(frame_at(8001), [])
    assert agent.visit is None and agent.last_visit.reason == "left"


def test_a_visit_ends_when_it_has_lasted_longer_than_max_visit_s_and_not_before():
    agent = offline_agent(max_visit_s=10.0)
    for t_ms in range(5_000, 15_001, 2_500):  # from 5 s into the stream; the face stays
        agent._on_frame(frame_at(t_ms), [SMILE])
    assert agent.visit is not None
    agent._on_frame(frame_at(15_001), [SMILE])
    assert agent.visit is None and agent.last_visit.reason == "max_duration"


def test_an_items_time_is_the_stream_time_it_was_on_screen():
    """A reaction's `seconds` come from the frames' stream time, exactly."""
    agent = offline_agent(leave_after_s=3.0)
    agent.show_item("page-1")
    for t_ms in range(0, 100_001, 2_000):
        agent._on_frame(frame_at(t_ms), [SMILE])
    agent.show_item("page-2")
    ledger = agent.publisher.ledgers[agent.visit.id]
    assert ledger.last["reaction"]["item"] == "page-1"
    assert ledger.last["reaction"]["seconds"] == 100.0


def test_a_finished_visit_is_kept_for_exactly_the_retention_period(monkeypatch):
    """Retention on the device against a faked clock: the receipt is there until `retention_s`
    after the visit ended and gone from that moment; with 0, gone the moment it ends."""
    import types

    import edge.agent

    for retention_s in (600.0, 0.0):
        agent = offline_agent(leave_after_s=0.0, retention_s=retention_s)
        agent._on_frame(frame_at(0), [SMILE])
        agent._on_frame(frame_at(1), [])
        ended = agent.last_visit.ended_at = 1000.0  # on the faked clock
        visit = agent.last_visit.id
        now = [ended]
        monkeypatch.setattr(edge.agent, "time", types.SimpleNamespace(monotonic=lambda t=now: t[0]))
        if retention_s:
            now[0] = ended + retention_s - 0.5
            assert agent.learned()["visit"] == visit
        now[0] = ended + retention_s
        assert agent.learned() is None and visit not in agent.publisher.ledgers
        monkeypatch.undo()


def test_agreeing_again_during_a_visit_leaves_no_consent_pending_after_it(monkeypatch):
    """A second "I agree" while the viewer is watched belongs to the running visit: when that
    visit ends nothing waits for a face, so nothing lapses later (against a faked clock)."""
    import types

    import edge.agent

    now = [100.0]
    monkeypatch.setattr(edge.agent, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    agent = offline_agent(consent="viewer", leave_after_s=0.0)
    agent._on_frame(frame_at(0), [SMILE])
    agent.give_consent()
    agent._on_frame(frame_at(10), [SMILE])
    assert agent.visit is not None
    agent.give_consent()  # the same scopes: the same visit goes on
    agent._on_frame(frame_at(20), [])
    assert agent.visit is None and not agent.consented
    now[0] += 60  # long past consent_wait_s and the face gap
    agent._on_frame(frame_at(60_020), [])
    assert not agent.status()["consented"] and agent.consents_lapsed == 0


def test_forget_me_purges_the_last_visit_once(monkeypatch):
    """ "Forget me" purges the visit everywhere, once: asked again, or after a withdrawal that
    purged it already, it says nothing is left to forget and sends no second purge."""
    agent = offline_agent(consent="viewer")
    purged: list[tuple[str, str]] = []
    purge = agent.publisher.purge
    monkeypatch.setattr(
        agent.publisher,
        "purge",
        lambda visit, reason: purged.append((visit, reason)) or purge(visit, reason),
    )
    assert agent.forget() is False  # no visit yet
    agent.give_consent()
    agent._on_frame(frame_at(0), [SMILE])
    first = agent.visit.id
    assert agent.forget() is True and agent.forget() is False
    agent.give_consent()
    agent._on_frame(frame_at(10), [SMILE])
    second = agent.visit.id
    agent.withdraw_consent()
    assert agent.forget() is False
    assert purged == [(first, "forget"), (second, "withdrawn")]


def test_nothing_measured_in_one_visit_carries_into_the_next():
    """Each visit is measured from scratch: the second person's summary holds their own 2 s in
    front of the screen, not the first person's 10 s as well."""
    agent = offline_agent(leave_after_s=1.0)
    summaries = []
    for start, stop in ((0, 10_000), (20_000, 22_000)):
        for t_ms in range(start, stop + 1, 500):
            agent._on_frame(frame_at(t_ms), [SMILE])
        agent._on_frame(frame_at(stop + 1_500), [])  # gone: the visit ends
        summary = agent.publisher.ledgers[agent.last_visit.id].last["attention_summary"]
        summaries.append((summary["item"], summary["time_present_s"]))
    assert agent.visits_started == 2
    assert summaries == [(None, 10.0), (None, 2.0)]
