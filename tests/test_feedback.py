"""'Was the screen right?': the visitor's answers at the agent's gate and in the dashboard."""

from __future__ import annotations

import json

import pytest
from test_agent import ScriptedAnalyzer, ScriptedSource, run_agent, wait

from broker import wire
from dashboard.state import DashboardState
from edge.feedback import conclusions
from edge.publisher import SignalPublisher

VISIT = "feedc0de00000001"


def publisher_with_visit(scopes, end=True) -> SignalPublisher:
    """A publisher (never connected: messages wait in its outbox) with one visit."""
    publisher = SignalPublisher("mqtt://127.0.0.1:1", "kiosk-1")
    assert publisher.publish("visit", visit=VISIT, event="start", consent="viewer", scopes=scopes)
    if end:
        assert publisher.publish("visit", visit=VISIT, event="end", consent="viewer", scopes=scopes)
    return publisher


def queued(publisher: SignalPublisher) -> list[dict]:
    return [json.loads(e.payload) for e in publisher._outbox if e.payload]


def test_the_gate_lets_an_answer_out_only_for_a_consented_scope_of_a_finished_visit():
    publisher = publisher_with_visit(["expression", "reading"])
    assert publisher.publish("feedback", visit=VISIT, conclusion="expression", answer="wrong")
    assert publisher.publish("feedback", visit=VISIT, conclusion="feeling", answer="sadness")
    assert publisher.publish("feedback", visit=VISIT, conclusion="pace", answer="cant_say")
    # Attention was not consented to: nothing about it, not even an answer, leaves.
    assert not publisher.publish("feedback", visit=VISIT, conclusion="attention", answer="right")
    # Off-contract kinds and answers are refused and counted.
    assert not publisher.publish("feedback", visit=VISIT, conclusion="face", answer="right")
    assert not publisher.publish("feedback", visit=VISIT, conclusion="feeling", answer="right")
    assert not publisher.publish("feedback", visit=VISIT, conclusion="pace", answer="too slow")
    assert publisher.refused == 4
    sent = [m for m in queued(publisher) if m["type"] == "feedback"]
    assert [(m["conclusion"], m["answer"]) for m in sent] == [
        ("expression", "wrong"), ("feeling", "sadness"), ("pace", "cant_say"),
    ]  # fmt: skip
    assert set(sent[0]) == {"v", "type", "agent", "seq", "ts", "visit", "conclusion", "answer"}
    assert publisher.ledgers[VISIT].answers == {
        "expression": "wrong", "feeling": "sadness", "pace": "cant_say",
    }  # fmt: skip


def test_no_answer_while_the_visit_runs_nor_after_it_is_forgotten_or_expired():
    running = publisher_with_visit(["expression"], end=False)
    assert not running.publish("feedback", visit=VISIT, conclusion="expression", answer="right")
    publisher = publisher_with_visit(["expression"])
    assert publisher.publish("feedback", visit=VISIT, conclusion="expression", answer="right")
    # "Forget me": unsent answers are discarded with the rest, later ones refused.
    publisher.purge(VISIT, "forget")
    assert not [m for m in queued(publisher) if m["type"] == "feedback"]
    assert not publisher.publish("feedback", visit=VISIT, conclusion="expression", answer="wrong")
    expired = publisher_with_visit(["expression"])
    expired.forget_ledger(VISIT)  # the retention period ended on the device
    assert not expired.publish("feedback", visit=VISIT, conclusion="expression", answer="right")
    # The purge also clears any retained message on the feedback topic.
    cleared = [e.topic for e in publisher._outbox if e.payload == b"" and e.retain]
    assert wire.Topics().visit("kiosk-1", VISIT, "feedback") in cleared


def test_the_summary_offers_only_conclusions_that_left_the_device():
    publisher = publisher_with_visit(["expression", "attention", "reading"], end=False)
    ledger = publisher.ledgers[VISIT]
    assert conclusions(ledger) == []  # nothing published yet: nothing to grade
    for label in ("joy", "joy", "neutral"):
        ledger.record({"type": "expression", "label": label})
    ledger.record({"type": "page", "skim": True, "seconds": 3.0, "away_s": 0.0, "topic": "love"})
    ledger.record({"type": "page", "skim": False, "seconds": 40.0, "away_s": 5.0,
                   "topic": "health"})  # fmt: skip
    ledger.record({"type": "reading", "personal_wpm": 190, "time_left_s": 300})
    ledger.record({"type": "attention_summary", "looking_share": 0.8, "look_aways": 2})
    found = {c["kind"]: c["params"] for c in conclusions(ledger)}
    assert list(found) == list(wire.CONCLUSIONS[:1]) + ["feeling", "attention", "pace", "skims",
                                                         "interests", "time_left"]  # fmt: skip
    assert found["expression"] == {"label": "joy", "share": 0.67}
    assert found["pace"] == {"wpm": 190, "verdict": "slower"}
    assert found["skims"] == {"skimmed": 1, "pages": 2}
    assert found["interests"] == {"topic": "health"}
    assert found["time_left"] == {"seconds": 300}
    only_reading = publisher_with_visit(["reading"], end=False).ledgers[VISIT]
    only_reading.record({"type": "reading", "personal_wpm": 238, "time_left_s": None})
    assert [c["kind"] for c in conclusions(only_reading)] == ["pace"]


# --- the dashboard -----------------------------------------------------------------------

TOPICS = wire.Topics()


class Feed:
    """Feeds a DashboardState the way its MQTT subscriber does: decode, then apply."""

    def __init__(self, **options):
        self.now = 1_795_000_000.0
        self.state = DashboardState(clock=lambda: self.now, **options)
        self.seq: dict[str, int] = {}

    def send(self, kind: str, agent: str = "kiosk-1", **fields) -> None:
        self.seq[agent] = self.seq.get(agent, -1) + 1
        message = wire.message(kind, agent=agent, seq=self.seq[agent], ts=self.now, **fields)
        payload = json.dumps(message).encode()
        info = TOPICS.parse(TOPICS.for_message(message))
        self.state.count_received()
        try:
            self.state.apply(info, wire.decode(info, payload), payload)
        except wire.WireError as exc:
            self.state.count_rejected(exc.reason)

    def raw(self, agent: str, visit: str, kind: str, body: dict) -> None:
        """A payload straight onto the wire, as a buggy or hostile client could send it."""
        info = TOPICS.parse(TOPICS.visit(agent, visit, kind))
        self.state.count_received()
        try:
            self.state.apply(info, wire.decode(info, json.dumps(body).encode()))
        except wire.WireError as exc:
            self.state.count_rejected(exc.reason)

    def visit(self, visit: str, label: str = "joy", agent: str = "kiosk-1", scopes=None):
        scopes = list(wire.SCOPES) if scopes is None else scopes
        self.send("visit", agent, visit=visit, event="start", consent="viewer", scopes=scopes)
        if "expression" in scopes:
            for _ in range(3):
                self.send("expression", agent, visit=visit, label=label, score=0.8, valence=0.5,
                          arousal=0.5, reason_units=[], reason_shapes=[], reason_values=[],
                          relative_to_rest=False)  # fmt: skip
        self.send("visit", agent, visit=visit, event="end", consent="viewer", scopes=scopes)

    def answer(self, visit: str, conclusion: str, answer: str, agent: str = "kiosk-1"):
        self.send("feedback", agent, visit=visit, conclusion=conclusion, answer=answer)


def vid(i: int) -> str:
    return f"{i:04d}feedbeef0000"


def test_the_dashboard_shows_a_screen_s_record_only_from_five_answering_visits():
    feed = Feed()
    answers = ["right", "wrong", "right", "cant_say", "right", "wrong"]
    felt = ["joy", "sadness", "joy", "neutral", "anger", "joy"]
    for i in range(6):
        feed.visit(vid(i), label="joy")
    feed.visit(vid(99))  # a visit that never answers counts nowhere
    for i in range(4):
        feed.answer(vid(i), "expression", answers[i])
        feed.answer(vid(i), "feeling", felt[i])
    screen = feed.state.feedback()["screens"]["kiosk-1"]
    assert screen["kinds"]["expression"] == {
        "visits": 4, "value": None, "withheld": "not enough visits",
    }  # fmt: skip
    assert screen["confusion"]["value"] is None
    feed.answer(vid(4), "expression", answers[4])
    feed.answer(vid(4), "feeling", felt[4])
    screen = feed.state.feedback()["screens"]["kiosk-1"]
    figure = screen["kinds"]["expression"]
    assert figure["withheld"] is None and figure["visits"] == 5
    # Right 3 times out of the 4 that said right or wrong; one could not say.
    assert figure["value"] == {"right": 3, "wrong": 1, "cant_say": 1, "graded": 4}
    confusion = screen["confusion"]
    assert confusion["visits"] == 5
    assert confusion["value"] == {"joy": {"joy": 2, "sadness": 1, "neutral": 1, "anger": 1}}
    # A changed answer replaces the earlier one: one visit, one answer per conclusion.
    feed.answer(vid(1), "expression", "right")
    figure = feed.state.feedback()["screens"]["kiosk-1"]["kinds"]["expression"]
    assert figure["value"] == {"right": 4, "wrong": 0, "cant_say": 1, "graded": 4}
    # Only kinds someone answered appear; nothing per visit is listed anywhere.
    assert set(screen["kinds"]) == {"expression", "feeling"}
    listed = json.dumps(feed.state.visits()) + json.dumps(feed.state.raw(vid(1)))
    assert "feedback" not in listed and "cant_say" not in listed and "sadness" not in listed


def test_forget_me_and_retention_take_a_visit_s_answers_with_it():
    feed = Feed(retention_s=60)
    for i in range(5):
        feed.visit(vid(i))
        feed.answer(vid(i), "pace", "wrong")
    assert feed.state.feedback()["screens"]["kiosk-1"]["kinds"]["pace"]["withheld"] is None
    feed.send("purge", visit=vid(0), reason="forget")
    figure = feed.state.feedback()["screens"]["kiosk-1"]["kinds"]["pace"]
    assert figure == {"visits": 4, "value": None, "withheld": "not enough visits"}
    # A late answer for the purged visit cannot bring it back.
    feed.answer(vid(0), "pace", "wrong")
    assert feed.state.counters()["rejected"]["purged_visit"] == 1
    assert feed.state.feedback()["screens"]["kiosk-1"]["kinds"]["pace"]["visits"] == 4
    # An answer does not extend the visit's life: retention counts from its last signal.
    feed.now += 59
    feed.answer(vid(1), "pace", "right")
    feed.now += 2
    assert feed.state.feedback()["screens"] == {}


def test_answers_per_screen_are_kept_apart():
    feed = Feed()
    for i in range(5):
        feed.visit(vid(i), agent="kiosk-1")
        feed.visit(vid(10 + i), agent="kiosk-2")
        feed.answer(vid(i), "skims", "right", agent="kiosk-1")
    for i in range(3):
        feed.answer(vid(10 + i), "skims", "wrong", agent="kiosk-2")
    screens = feed.state.feedback()["screens"]
    assert screens["kiosk-1"]["kinds"]["skims"]["value"]["right"] == 5
    assert screens["kiosk-2"]["kinds"]["skims"]["value"] is None
    assert screens["kiosk-2"]["kinds"]["skims"]["visits"] == 3


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"conclusion": "face", "answer": "right"}, "out_of_range"),
        ({"conclusion": "pace", "answer": "way off"}, "out_of_range"),
        ({"conclusion": "feeling", "answer": "wrong"}, "bad_answer"),
        ({"conclusion": "expression", "answer": "joy"}, "bad_answer"),
        ({"conclusion": "pace", "answer": "right", "text": "hello"}, "extra_field"),
        ({"conclusion": "pace"}, "missing_field"),
    ],
)
def test_the_dashboard_refuses_and_counts_bad_answers(body, reason):
    feed = Feed()
    feed.visit(vid(1))
    feed.raw("kiosk-1", vid(1), "feedback",
             {"v": 1, "type": "feedback", "agent": "kiosk-1", "seq": 50, "ts": feed.now,
              "visit": vid(1), **body})  # fmt: skip
    assert feed.state.counters()["rejected"] == {reason: 1}
    assert feed.state.feedback()["screens"] == {}


def test_the_dashboard_refuses_answers_out_of_scope_or_about_unknown_visits():
    feed = Feed()
    feed.visit(vid(1), scopes=["reading"])
    feed.answer(vid(1), "expression", "right")  # expression was never consented to
    feed.answer(vid(2), "pace", "right")  # no such visit: an answer never makes one
    assert feed.state.counters()["rejected"] == {"not_consented": 1, "unknown_visit": 1}
    assert feed.state.feedback()["screens"] == {}
    assert [v["visit"] for v in feed.state.visits()] == [vid(1)]


def test_the_api_serves_the_aggregate_and_the_stream_carries_it():
    from dashboard import create_app

    app = create_app({"TESTING": True, "CROWD_K": 5})
    feed = Feed()
    feed.state = app.extensions["onlooker_state"]
    feed.now = feed.state.clock()
    for i in range(5):
        feed.visit(vid(i))
        feed.answer(vid(i), "time_left", "right" if i else "wrong")
    client = app.test_client()
    body = client.get("/api/feedback").get_json()
    assert body["k"] == 5
    figure = body["screens"]["kiosk-1"]["kinds"]["time_left"]
    assert figure == {
        "visits": 5, "value": {"right": 4, "wrong": 1, "cant_say": 0, "graded": 5},
        "withheld": None,
    }  # fmt: skip
    assert feed.state.snapshot()["feedback"] == body
    version = feed.state.version
    feed.send("purge", visit=vid(3), reason="forget")
    events = dict(feed.state.wait_for_changes(version, timeout=0.1).events)
    assert events["feedback"]["agent"] == "kiosk-1"
    assert events["feedback"]["screen"]["kinds"]["time_left"]["value"] is None


def test_the_agent_takes_answers_after_its_visit_and_not_after_forget_me(mosquitto):
    """A real agent on scripted frames: the visitor's answers go out through the viewer API
    only about conclusions it drew, only after the visit, and never after "Forget me"."""
    from edge.viewer import create_viewer_app

    agent, thread = run_agent(
        mosquitto.url, ScriptedSource(80), ScriptedAnalyzer(lambda i: i < 30),
        consent="recorded-source", scopes=("expression",), leave_after_s=0.1,
    )  # fmt: skip
    thread.join(30)
    client = create_viewer_app(agent).test_client()
    token = {"X-Onlooker-Token": client.application.config["PAGE_TOKEN"]}

    def post(body):
        return client.post("/api/feedback", json=body, headers=token)

    learned = agent.learned()
    assert [c["kind"] for c in learned["conclusions"]] == ["expression", "feeling"]
    assert learned["answers"] == {}
    visit = learned["visit"]
    ok = post({"conclusion": "feeling", "answer": "surprise"})
    assert ok.status_code == 200 and ok.get_json()["learned"]["answers"] == {"feeling": "surprise"}
    # Only what the screen concluded, only with the words of the contract.
    assert post({"conclusion": "pace", "answer": "right"}).status_code == 409  # not consented
    assert post({"conclusion": "feeling", "answer": "right"}).status_code == 409
    assert post({"conclusion": "expression", "answer": "bored"}).status_code == 409
    for bad in ({"conclusion": "expression"}, {"conclusion": "expression", "answer": 1},
                {"conclusion": "expression", "answer": "right", "note": "hi"}, []):  # fmt: skip
        assert post(bad).status_code == 400
    unsigned = client.post("/api/feedback", json={"conclusion": "expression", "answer": "right"})
    assert unsigned.status_code == 403  # without the page's token
    assert agent.publisher.ledgers[visit].counts["feedback"] == 1
    assert agent.forget()
    assert post({"conclusion": "expression", "answer": "right"}).status_code == 409
    assert wait(lambda: agent.publisher.stats()["queued"] == 0, 5)
    assert agent.publisher.refused == 2  # the two answers off the contract's words
