"""docs/protocol.md stays true to broker/wire.py: its examples validate, its tables are complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from broker import wire

DOC = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.S)]


def test_there_is_an_example_of_every_message_type():
    assert {m["type"] for m in EXAMPLES} == set(wire.FIELDS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda m: m["type"])
def test_every_example_passes_the_contract(example):
    topic = wire.Topics().for_message(example)
    assert wire.decode(wire.Topics().parse(topic), json.dumps(example).encode()) == example


@pytest.mark.parametrize("kind", sorted(wire.FIELDS))
def test_every_field_of_the_contract_is_documented(kind):
    section = DOC.split(f"### `{kind}`")[1].split("\n### ")[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert documented == set(wire.FIELDS[kind])


def test_the_size_bound_and_prefix_in_the_doc_match_the_code():
    assert f"{wire.MAX_PAYLOAD_BYTES} bytes" in DOC
    assert f"`{wire.DEFAULT_PREFIX}`" in DOC


def test_rates_in_the_doc_match_the_agent_defaults():
    from edge.agent import AgentConfig

    config = AgentConfig()
    assert f"every {config.heartbeat_s:g} s" in DOC
    assert f"at most {config.max_rate_hz:g} per second" in DOC
    assert f"gone for {config.leave_after_s:g} s" in DOC


PRIVACY = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text()


@pytest.mark.parametrize("kind", sorted(wire.FIELDS))
def test_privacy_doc_lists_every_field_that_can_leave(kind):
    row = re.search(rf"^\| `{kind}` \| (.*?) \|", PRIVACY, re.M)
    assert row, f"docs/privacy.md has no row for {kind}"
    assert set(re.findall(r"`(\w+)`", row.group(1))) == set(wire.FIELDS[kind])
