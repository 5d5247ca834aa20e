"""The room rules: edge/ and dashboard/ never import each other; only the wire spells topics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from broker import wire

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("edge", "dashboard", "broker", "onlooker")
FORBIDDEN = {"edge": {"dashboard"}, "dashboard": {"edge"}, "broker": {"edge", "dashboard"}}
"""Which top-level packages each room must never import (broker/ is the contract both share)."""


def sources(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Every top-level package a module imports, at any depth (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def topic_like_strings(path: Path) -> list[tuple[int, str]]:
    """String literals that spell a topic: the prefix, or an MQTT wildcard in a path."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if wire.DEFAULT_PREFIX in text or "/+/" in text or text.endswith("/#"):
                out.append((node.lineno, text))
    return out


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_rooms_never_import_each_other(room):
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in sources(room)
        for package, line in imported_packages(path)
        if package in FORBIDDEN[room]
    ]
    assert not offences, "\n".join(offences)


def test_only_the_wire_module_spells_topics():
    offences = [
        f"{path.relative_to(ROOT)}:{line} {text!r}"
        for room in ROOMS
        for path in sources(room)
        if path != ROOT / "broker" / "wire.py"
        for line, text in topic_like_strings(path)
    ]
    # The production Mosquitto ACL template is configuration, not code: it is generated from
    # the same Topics (broker/credentials.py) and checked by tests/test_broker_production.py.
    assert not offences, "\n".join(offences)


def test_the_checks_see_an_offence(tmp_path):
    """The two checks catch what they look for (so a silent pass means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def later():\n    from dashboard.state import DashboardState\n"
        "TOPIC = 'onlooker/v1/agents/+/available'\n"
    )
    assert ("dashboard", 2) in imported_packages(bad)
    assert topic_like_strings(bad) == [(3, "onlooker/v1/agents/+/available")]
