"""The wire contract refuses everything off its allow-list, at both ends."""

from __future__ import annotations

import json

import pytest

from broker import wire

TOPICS = wire.Topics()


ENVELOPE = dict(agent="kiosk-1", seq=3, ts=1764150000.123, visit="a1b2c3d4e5f60718")


def attention(**overrides):
    fields = dict(
        ENVELOPE, present=True, faces=1, looking=True, yaw=-12.345, pitch=3.21, roll=None,
        distance_cm=55, blinks=3, look_aways=0,
    )  # fmt: skip
    fields.update(overrides)
    return fields


def expression(**overrides):
    fields = dict(
        ENVELOPE, label="joy", score=0.8349, valence=0.7, arousal=0.5,
        reason_units=["AU12 lip corner puller"], reason_shapes=["mouthSmile"],
        reason_values=[0.81], relative_to_rest=True,
    )  # fmt: skip
    fields.update(overrides)
    return fields


def test_message_rounds_scores_angles_and_time():
    msg = wire.message("attention", **attention())
    assert msg["yaw"] == -12.3
    assert msg["ts"] == 1764150000.1
    assert msg["roll"] is None
    assert wire.message("expression", **expression())["score"] == 0.83


@pytest.mark.parametrize(
    "kind, overrides, reason",
    [
        ("attention", {"landmarks": [[0.1, 0.2, 0.3]] * 478}, "extra_field"),
        ("expression", {"blendshapes": {"mouthSmileLeft": 0.9}}, "extra_field"),
        ("attention", {"faces": "1"}, "wrong_type"),
        ("attention", {"present": 1}, "wrong_type"),
        ("expression", {"label": "bored"}, "out_of_range"),
        ("expression", {"score": 1.5}, "out_of_range"),
        ("attention", {"yaw": float("nan")}, "out_of_range"),
        ("attention", {"agent": "Kiosk_1"}, "bad_agent_id"),
        ("expression", {"visit": "../../etc"}, "bad_visit_id"),
        ("expression", {"reason_values": [0.1, 0.2, 0.3, 0.4]}, "out_of_range"),
        ("expression", {"reason_shapes": "mouthSmile"}, "wrong_type"),
    ],
)
def test_off_contract_fields_are_refused(kind, overrides, reason):
    fields = (attention if kind == "attention" else expression)(**overrides)
    with pytest.raises(wire.WireError) as caught:
        wire.encode({"v": 1, "type": kind, **fields})
    assert caught.value.reason == reason


def test_missing_field_and_unknown_version_and_type_are_refused():
    fields = attention()
    del fields["faces"]
    with pytest.raises(wire.WireError, match="missing_field"):
        wire.message("attention", **fields)
    with pytest.raises(wire.WireError, match="unknown_version"):
        wire.encode({"v": 2, "type": "attention", **attention()})
    with pytest.raises(wire.WireError, match="unknown_type"):
        wire.message("frame", **attention())


@pytest.mark.parametrize(
    "scopes, ok",
    [([], True), (["expression"], True), (list(wire.SCOPES), True),
     (["expression", "expression"], False), (["faces"], False), ("expression", False),
     (list(wire.SCOPES) + ["reading"], False)],
)  # fmt: skip
def test_visit_scopes_are_a_short_list_of_known_scopes(scopes, ok):
    fields = dict(ENVELOPE, event="start", consent="viewer", scopes=scopes)
    if ok:
        assert wire.message("visit", **fields)["scopes"] == scopes
    else:
        with pytest.raises(wire.WireError):
            wire.message("visit", **fields)


def test_every_signal_type_belongs_to_a_consent_scope():
    assert set(wire.SCOPE_OF) == set(wire.VISIT_TYPES) - {"visit", "purge", "feedback"}
    assert set(wire.SCOPE_OF.values()) <= set(wire.SCOPES)
    # Feedback belongs to the scope of the conclusion it grades.
    assert set(wire.FEEDBACK_SCOPE.values()) == set(wire.SCOPES)
    for conclusion, scope in wire.FEEDBACK_SCOPE.items():
        assert wire.scope_of("feedback", {"conclusion": conclusion}) == scope
    assert wire.scope_of("feedback", {"conclusion": "face"}) is None
    assert wire.scope_of("page", {}) == "reading"
    assert wire.scope_of("purge", {}) is None


def feedback(**overrides):
    return {"v": 1, "type": "feedback", **ENVELOPE, "conclusion": "expression",
            "answer": "right", **overrides}  # fmt: skip


@pytest.mark.parametrize(
    "conclusion, answer",
    [("expression", "right"), ("attention", "wrong"), ("pace", "cant_say"), ("skims", "right"),
     ("interests", "wrong"), ("time_left", "cant_say"), ("feeling", "joy"),
     ("feeling", "contempt")],
)  # fmt: skip
def test_feedback_carries_a_conclusion_and_an_answer_only(conclusion, answer):
    payload = wire.encode(feedback(conclusion=conclusion, answer=answer))
    message = json.loads(payload)
    assert set(message) == {"v", "type", "agent", "seq", "ts", "visit", "conclusion", "answer"}
    assert (message["conclusion"], message["answer"]) == (conclusion, answer)
    topic = TOPICS.for_message(message)
    assert topic == "onlooker/v1/agents/kiosk-1/visits/a1b2c3d4e5f60718/feedback"
    assert wire.decode(TOPICS.parse(topic), payload) == message


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"conclusion": "face"}, "out_of_range"),  # not a conclusion the screen draws
        ({"conclusion": "score"}, "out_of_range"),
        ({"answer": "maybe"}, "out_of_range"),
        ({"answer": "I was actually quite bored"}, "out_of_range"),  # no free text
        ({"answer": True}, "wrong_type"),
        ({"conclusion": "feeling", "answer": "right"}, "bad_answer"),  # feelings are words
        ({"conclusion": "expression", "answer": "joy"}, "bad_answer"),  # grades are grades
        ({"comment": "nice"}, "extra_field"),
        ({"item": "page-1"}, "extra_field"),
    ],
)
def test_bad_feedback_kinds_and_answers_are_refused(overrides, reason):
    with pytest.raises(wire.WireError) as caught:
        wire.encode(feedback(**overrides))
    assert caught.value.reason == reason
    # The consumer refuses the same payload with the same reason.
    bad = json.dumps(feedback(**overrides)).encode()
    info = wire.TopicInfo("feedback", "kiosk-1", ENVELOPE["visit"])
    with pytest.raises(wire.WireError) as caught:
        wire.decode(info, bad)
    assert caught.value.reason == reason


def test_round_trip_through_topic_and_payload():
    msg = wire.message("attention", **attention())
    topic = TOPICS.for_message(msg)
    assert topic == "onlooker/v1/agents/kiosk-1/visits/a1b2c3d4e5f60718/attention"
    info = TOPICS.parse(topic)
    assert wire.decode(info, wire.encode(msg)) == msg


def test_decode_refuses_a_payload_that_disagrees_with_its_topic():
    payload = wire.encode(wire.message("attention", **attention()))
    for other in (
        TOPICS.visit("kiosk-2", "a1b2c3d4e5f60718", "attention"),
        TOPICS.visit("kiosk-1", "a1b2c3d4e5f60718", "expression"),
        TOPICS.visit("kiosk-1", "ffffffffffffffff", "attention"),
    ):
        with pytest.raises(wire.WireError, match="topic_mismatch"):
            wire.decode(TOPICS.parse(other), payload)


def test_decode_refuses_oversized_and_malformed_payloads():
    info = TOPICS.parse(TOPICS.heartbeat("kiosk-1"))
    with pytest.raises(wire.WireError, match="too_large"):
        wire.decode(info, b"{" + b" " * wire.MAX_PAYLOAD_BYTES + b"}")
    with pytest.raises(wire.WireError, match="malformed_json"):
        wire.decode(info, b"{not json")
    with pytest.raises(wire.WireError, match="malformed_json"):
        wire.decode(info, b"\xff\xfe")
    with pytest.raises(wire.WireError, match="not_object"):
        wire.decode(info, json.dumps([1, 2]).encode())


@pytest.mark.parametrize(
    "topic",
    [
        "onlooker/v1/agents/+/heartbeat",
        "onlooker/v1/agents/#",
        "onlooker/v1/agents/a\x00b/heartbeat",
        "onlooker/v1/agents/kiosk-1/visits/a1b2c3d4e5f60718/landmarks",
        "onlooker/v1/agents/kiosk-1/heartbeat/extra",
        "elsewhere/agents/kiosk-1/heartbeat",
    ],
)
def test_foreign_or_injected_topics_are_refused(topic):
    with pytest.raises(wire.WireError):
        TOPICS.parse(topic)


@pytest.mark.parametrize("agent", ["", "-x", "a/b", "a+b", "a#", "x" * 33, "Ab"])
def test_topic_builders_refuse_bad_agent_ids(agent):
    with pytest.raises(wire.WireError):
        TOPICS.heartbeat(agent)


def test_availability_is_online_or_offline_only():
    assert wire.decode_availability(b"online") == "online"
    with pytest.raises(wire.WireError):
        wire.decode_availability(b"ONLINE")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884)),
        ("mqtt://broker.local", ("broker.local", 1883)),
        ("mqtt://[::1]:1883", ("::1", 1883)),
    ],
)
def test_broker_urls(url, expected):
    assert wire.parse_broker_url(url) == expected


def test_tls_broker_urls():
    assert wire.broker_address("mqtts://pi.local") == wire.BrokerAddress("pi.local", 8883, True)
    assert wire.broker_address("mqtt://pi.local").tls is False


@pytest.mark.parametrize("url", ["http://x:1", "mqtt://h:0", "mqtt://h:99999", "h:1883"])
def test_bad_broker_urls(url):
    with pytest.raises(ValueError):
        wire.parse_broker_url(url)


def test_prefix_with_wildcards_is_refused():
    with pytest.raises(wire.WireError):
        wire.Topics("onlooker/+")


@pytest.mark.parametrize(
    "item, ok", [("page-3", True), ("feed-travel-2", True), ("Page 3", False), ("a/b", False),
                 ("x" * 49, False), ("", False)],
)  # fmt: skip
def test_item_ids_are_plain(item, ok):
    fields = dict(ENVELOPE, item=item, seconds=12.3, frames=300, peak=[0.1] * 8, mean=[0.05] * 8)
    if ok:
        assert wire.message("reaction", **fields)["item"] == item
    else:
        with pytest.raises(wire.WireError):
            wire.message("reaction", **fields)


def test_reaction_lists_hold_one_value_per_expression():
    fields = dict(ENVELOPE, item="page-1", seconds=1, frames=3, peak=[0.1] * 9, mean=[0.1] * 8)
    with pytest.raises(wire.WireError, match="out_of_range"):
        wire.message("reaction", **fields)


def test_the_payload_bound_is_exactly_max_payload_bytes_at_both_ends():
    """A consumer takes a message of exactly MAX_PAYLOAD_BYTES and drops one byte more; a
    producer refuses to serialise anything larger, whatever validated it."""
    msg = wire.message("attention", **attention())
    info = TOPICS.parse(TOPICS.for_message(msg))
    payload = wire.encode(msg)
    padded = payload + b" " * (wire.MAX_PAYLOAD_BYTES - len(payload))  # JSON allows the spaces
    assert len(padded) == wire.MAX_PAYLOAD_BYTES and wire.decode(info, padded) == msg
    with pytest.raises(wire.WireError, match="too_large"):
        wire.decode(info, padded + b" ")
    empty = len(wire._serialise({"pad": ""}))
    assert len(wire._serialise({"pad": "x" * (wire.MAX_PAYLOAD_BYTES - empty)})) == 2048
    with pytest.raises(wire.WireError, match="too_large"):
        wire._serialise({"pad": "x" * (wire.MAX_PAYLOAD_BYTES - empty + 1)})


def test_the_serialiser_refuses_numbers_json_cannot_carry():
    """A second lock behind `Num.coerce`: NaN and infinities never become a payload."""
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            wire._serialise({"score": value})


def nested(depth: int) -> bytes:
    """A JSON object whose deepest value sits `depth` brackets down, with one more bracket
    beside it (a payload with few brackets is not even measured)."""
    return b'{"a":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b',"b":[]}'


def test_json_nested_past_max_nesting_is_refused_before_it_is_parsed():
    """Depth MAX_NESTING is parsed (and refused by the allow-list); one deeper is refused as
    too deep, unparsed: the reject counters tell the two apart."""
    info = TOPICS.parse(TOPICS.heartbeat("kiosk-1"))
    with pytest.raises(wire.WireError) as parsed:
        wire.decode(info, nested(wire.MAX_NESTING))
    assert parsed.value.reason == "unknown_type"
    with pytest.raises(wire.WireError) as deep:
        wire.decode(info, nested(wire.MAX_NESTING + 1))
    assert deep.value.reason == "too_deep"
    assert wire.MAX_NESTING == 8  # docs/protocol.md states it


def test_a_refused_availability_payload_is_quoted_at_most_32_characters():
    """What a stranger put on the topic reaches the log only in part."""
    with pytest.raises(wire.WireError) as refused:
        wire.decode_availability(b"x" * 100)
    assert refused.value.detail == repr("x" * 32)


def test_a_consumer_subscribes_to_everything_under_its_prefix_and_nothing_else():
    assert wire.Topics("site-a/onlooker").subscription == "site-a/onlooker/#"


def test_the_wires_value_objects_cannot_be_changed_once_checked():
    """A topic prefix, a parsed topic and a broker address are checked when made: none can be
    swapped afterwards for a wildcard, another visit or a plain-text connection."""
    import dataclasses

    address = wire.broker_address("mqtts://pi.local")
    for thing, name, value in (
        (wire.Topics(), "prefix", "#"),
        (TOPICS.parse(TOPICS.heartbeat("kiosk-1")), "visit", "ffffffffffffffff"),
        (address, "tls", False),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(thing, name, value)
