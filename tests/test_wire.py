"""The wire contract refuses everything off its allow-list, at both ends."""

from __future__ import annotations

import json

import pytest

from broker import wire

TOPICS = wire.Topics()


def face(**overrides):
    fields = dict(
        agent="kiosk-1",
        seq=3,
        ts=1764150000.123,
        visit="a1b2c3d4e5f60718",
        present=True,
        faces=1,
        expression="joy",
        expression_score=0.8349,
        yaw=-12.345,
        pitch=3.21,
        roll=None,
    )
    fields.update(overrides)
    return fields


def test_message_rounds_scores_angles_and_time():
    msg = wire.message("face", **face())
    assert msg["expression_score"] == 0.83
    assert msg["yaw"] == -12.3
    assert msg["ts"] == 1764150000.1
    assert msg["roll"] is None


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"landmarks": [[0.1, 0.2, 0.3]] * 478}, "extra_field"),
        ({"blendshapes": {"mouthSmileLeft": 0.9}}, "extra_field"),
        ({"faces": "1"}, "wrong_type"),
        ({"present": 1}, "wrong_type"),
        ({"expression": "bored"}, "out_of_range"),
        ({"expression_score": 1.5}, "out_of_range"),
        ({"yaw": float("nan")}, "out_of_range"),
        ({"agent": "Kiosk_1"}, "bad_agent_id"),
        ({"visit": "../../etc"}, "bad_visit_id"),
    ],
)
def test_off_contract_fields_are_refused(overrides, reason):
    with pytest.raises(wire.WireError) as caught:
        wire.encode({"v": 1, "type": "face", **face(**overrides)})
    assert caught.value.reason == reason


def test_missing_field_and_unknown_version_and_type_are_refused():
    fields = face()
    del fields["faces"]
    with pytest.raises(wire.WireError, match="missing_field"):
        wire.message("face", **fields)
    with pytest.raises(wire.WireError, match="unknown_version"):
        wire.encode({"v": 2, "type": "face", **face()})
    with pytest.raises(wire.WireError, match="unknown_type"):
        wire.message("frame", **face())


def test_round_trip_through_topic_and_payload():
    msg = wire.message("face", **face())
    topic = TOPICS.for_message(msg)
    assert topic == "onlooker/v1/agents/kiosk-1/visits/a1b2c3d4e5f60718/face"
    info = TOPICS.parse(topic)
    assert wire.decode(info, wire.encode(msg)) == msg


def test_decode_refuses_a_payload_that_disagrees_with_its_topic():
    payload = wire.encode(wire.message("face", **face()))
    other = TOPICS.parse(TOPICS.visit("kiosk-2", "a1b2c3d4e5f60718", "face"))
    with pytest.raises(wire.WireError, match="topic_mismatch"):
        wire.decode(other, payload)


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


@pytest.mark.parametrize("url", ["http://x:1", "mqtt://h:0", "mqtt://h:99999", "h:1883"])
def test_bad_broker_urls(url):
    with pytest.raises(ValueError):
        wire.parse_broker_url(url)


def test_prefix_with_wildcards_is_refused():
    with pytest.raises(wire.WireError):
        wire.Topics("onlooker/+")
