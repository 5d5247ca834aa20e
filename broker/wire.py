"""The wire contract: MQTT topics and the versioned message schema.

Edge agents and the dashboard both import this module; nothing else decides what a topic
looks like or which fields a message may carry. Every JSON message is validated where it
is produced (`encode`) and where it is consumed (`decode`). A field that is not on the
allow-list of its message type is an error, so nothing unplanned can cross the wire.

Topic layout (``<prefix>`` defaults to ``onlooker/v1``)::

    <prefix>/agents/<agent>/available            retained  "online" | "offline" (last will)
    <prefix>/agents/<agent>/heartbeat                      JSON  type "heartbeat"
    <prefix>/agents/<agent>/visits/<visit>/<type>          JSON  a visit-scoped type
                  (visit, attention, attention_summary, expression, reaction, page, reading,
                   feedback, purge)

Each visit-scoped signal type belongs to one consent scope (`SCOPE_OF`): a message is
published only when its visit's viewer consented to that scope. A `feedback` message (the
visitor grading one conclusion) belongs to the scope of the conclusion it grades
(`FEEDBACK_SCOPE`); `scope_of` answers for any message.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_PREFIX = "onlooker/v1"
MAX_PAYLOAD_BYTES = 2048
"""No message on the wire is larger than this; producers refuse, consumers drop."""

ONLINE = "online"
OFFLINE = "offline"

AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
"""A page or post on the viewer's screen (chosen by the viewer page, never by the person)."""
VISIT_ID = re.compile(r"^[a-z0-9]{8,32}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")

EXPRESSIONS = ("neutral", "joy", "surprise", "anger", "sadness", "fear", "disgust", "contempt")
TOPICS = ("health", "money", "politics", "love", "technology", "travel", "food", "nature")
"""What a page or post is about: the vocabulary from which interests are inferred."""
READING_STATES = ("reading", "not_reading", "away")
SCOPES = ("expression", "attention", "reading")
"""What a viewer can consent to, one by one."""
CONSENT_KINDS = ("viewer", "recorded-source")
PURGE_REASONS = ("forget", "withdrawn")
VISIT_EVENTS = ("start", "end")
SOURCE_KINDS = ("camera", "video", "images")
FEEDBACK_SCOPE = {
    "expression": "expression",  # the expression overall
    "feeling": "expression",  # "what were you actually feeling?" beside the timeline
    "attention": "attention",
    "pace": "reading",
    "skims": "reading",
    "interests": "reading",
    "time_left": "reading",
}
"""The conclusions a visitor can grade, and the consent scope each one was drawn from."""
CONCLUSIONS = tuple(FEEDBACK_SCOPE)
GRADES = ("right", "wrong", "cant_say")
"""A visitor's grade of a conclusion; `feeling` is answered with one of `EXPRESSIONS`."""


class WireError(ValueError):
    """A topic or message that does not follow the contract; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- topics -----------------------------------------------------------------------------


def check_agent_id(agent: str) -> str:
    """Return `agent` if it is a valid agent id, else raise `WireError`."""
    if not isinstance(agent, str) or not AGENT_ID.match(agent):
        raise WireError("bad_agent_id", f"agent id {agent!r} must match {AGENT_ID.pattern}")
    return agent


def check_visit_id(visit: str) -> str:
    """Return `visit` if it is a valid visit pseudonym, else raise `WireError`."""
    if not isinstance(visit, str) or not VISIT_ID.match(visit):
        raise WireError("bad_visit_id", f"visit id {visit!r} must match {VISIT_ID.pattern}")
    return visit


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it is a usable topic prefix (no wildcards, no empty levels)."""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise WireError("bad_prefix", f"topic prefix {prefix!r} must be plain levels like a/b")
    return prefix


@dataclass(frozen=True)
class Topics:
    """Builds and parses the topics of one deployment (one prefix)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    @property
    def subscription(self) -> str:
        """The filter a consumer subscribes to in order to see everything."""
        return f"{self.prefix}/#"

    def available(self, agent: str) -> str:
        return f"{self.prefix}/agents/{check_agent_id(agent)}/available"

    def heartbeat(self, agent: str) -> str:
        return f"{self.prefix}/agents/{check_agent_id(agent)}/heartbeat"

    def visit(self, agent: str, visit: str, kind: str) -> str:
        """Topic of a visit-scoped message of type `kind` (see `VISIT_TYPES`)."""
        if kind not in VISIT_TYPES:
            raise WireError("unknown_type", f"{kind!r} is not a visit message type")
        return f"{self.prefix}/agents/{check_agent_id(agent)}/visits/{check_visit_id(visit)}/{kind}"

    def for_message(self, message: dict[str, Any]) -> str:
        """The topic a validated message is published on."""
        kind = message["type"]
        if kind == "heartbeat":
            return self.heartbeat(message["agent"])
        return self.visit(message["agent"], message["visit"], kind)

    def parse(self, topic: str) -> TopicInfo:
        """Split a topic into (kind, agent, visit); raise `WireError` if it is not ours."""
        if not topic.startswith(self.prefix + "/"):
            raise WireError("foreign_topic", topic)
        parts = topic[len(self.prefix) + 1 :].split("/")
        if len(parts) == 3 and parts[0] == "agents" and parts[2] in ("available", "heartbeat"):
            return TopicInfo(parts[2], check_agent_id(parts[1]), None)
        if len(parts) == 5 and parts[0] == "agents" and parts[2] == "visits":
            if parts[4] not in VISIT_TYPES:
                raise WireError("unknown_type", topic)
            return TopicInfo(parts[4], check_agent_id(parts[1]), check_visit_id(parts[3]))
        raise WireError("unknown_topic", topic)


@dataclass(frozen=True)
class TopicInfo:
    kind: str
    agent: str
    visit: str | None


# --- fields -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A finite number in [lo, hi], rounded to `digits` decimals when produced."""

    lo: float
    hi: float
    digits: int = 2
    integer: bool = False

    def coerce(self, name: str, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WireError("wrong_type", f"{name} must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise WireError("out_of_range", f"{name} is not finite")
        if self.integer:
            if isinstance(value, float) and not value.is_integer():
                raise WireError("wrong_type", f"{name} must be an integer")
            value = int(value)
        if not self.lo <= value <= self.hi:
            raise WireError("out_of_range", f"{name}={value} outside [{self.lo}, {self.hi}]")
        return value if self.integer else round(float(value), self.digits)


@dataclass(frozen=True)
class Text:
    """A short string, optionally from a fixed vocabulary."""

    max_len: int
    choices: tuple[str, ...] | None = None

    def coerce(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise WireError("wrong_type", f"{name} must be a string")
        if self.choices is not None and value not in self.choices:
            raise WireError("out_of_range", f"{name}={value!r} not one of {self.choices}")
        if len(value) > self.max_len or any(ord(c) < 32 for c in value):
            raise WireError("out_of_range", f"{name} too long or has control characters")
        return value


@dataclass(frozen=True)
class Flag:
    def coerce(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise WireError("wrong_type", f"{name} must be true or false")
        return value


@dataclass(frozen=True)
class Optional_:
    """A field that may be JSON null (for example head pose while no face is seen)."""

    inner: Num | Text | Flag | ListOf

    def coerce(self, name: str, value: Any) -> Any:
        return None if value is None else self.inner.coerce(name, value)


@dataclass(frozen=True)
class ListOf:
    """A JSON array of at most `max_items` values of one kind, without duplicates if `unique`."""

    inner: Num | Text | Flag
    max_items: int
    unique: bool = False

    def coerce(self, name: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise WireError("wrong_type", f"{name} must be a list")
        if len(value) > self.max_items:
            raise WireError("out_of_range", f"{name} has more than {self.max_items} items")
        items = [self.inner.coerce(f"{name}[{i}]", v) for i, v in enumerate(value)]
        if self.unique and len(set(items)) != len(items):
            raise WireError("out_of_range", f"{name} repeats an item")
        return items


_ANGLE = Optional_(Num(-180.0, 180.0, digits=1))

# Fields every JSON message carries. `ts` is Unix time rounded to 0.1 s; `seq` counts the
# messages of one agent process, so a consumer can see duplicates and gaps.
COMMON = {
    "v": Num(SCHEMA_VERSION, SCHEMA_VERSION, integer=True),
    "type": Text(24),
    "agent": Text(32),
    "seq": Num(0, 2**53, integer=True),
    "ts": Num(0, 1e11, digits=1),
}

# The allow-list: per message type, the only fields it may carry beyond COMMON.
# Add a field here (and to docs/protocol.md) before any producer may send it.
FIELDS: dict[str, dict[str, Num | Text | Flag | ListOf | Optional_]] = {
    "heartbeat": {
        "fps": Num(0, 1000, digits=1),
        "latency_ms": Num(0, 60_000, digits=1),
        "model": Text(64),
        "model_version": Text(48),
        "source": Text(16, SOURCE_KINDS),
        "uptime_s": Num(0, 1e9, digits=0),
        "watching": Flag(),
    },
    "visit": {
        "visit": Text(32),
        "event": Text(8, VISIT_EVENTS),
        "consent": Text(16, CONSENT_KINDS),
        "scopes": ListOf(Text(16, SCOPES), len(SCOPES), unique=True),
    },
    "attention": {
        "visit": Text(32),
        "present": Flag(),
        "faces": Num(0, 32, integer=True),
        "looking": Optional_(Flag()),
        "yaw": _ANGLE,
        "pitch": _ANGLE,
        "roll": _ANGLE,
        "distance_cm": Optional_(Num(0, 1000, digits=0)),
        "blinks": Num(0, 1e6, integer=True),
        "look_aways": Num(0, 1e6, integer=True),
    },
    "attention_summary": {
        "visit": Text(32),
        "item": Optional_(Text(48)),  # null: the whole visit
        "time_present_s": Num(0, 86_400, digits=1),
        "looking_share": Num(0.0, 1.0),
        "longest_look_s": Num(0, 86_400, digits=1),
        "look_aways": Num(0, 1e6, integer=True),
        "look_away_s": Num(0, 86_400, digits=1),
        "interruptions": Num(0, 1e6, integer=True),
        "interruption_s": Num(0, 86_400, digits=1),
        "blinks": Num(0, 1e6, integer=True),
        "blink_rate_per_min": Optional_(Num(0, 600, digits=1)),
        "mean_distance_cm": Optional_(Num(0, 1000, digits=0)),
        "calibrated": Flag(),
        "regions": Optional_(ListOf(Num(0.0, 1.0), 9)),
    },
    "expression": {
        "visit": Text(32),
        "label": Text(16, EXPRESSIONS),
        "score": Num(0.0, 1.0),
        "valence": Num(-1.0, 1.0),
        "arousal": Num(0.0, 1.0),
        # The explanation: up to 3 action units, the blendshapes that stand for them, values.
        "reason_units": ListOf(Text(48), 3),
        "reason_shapes": ListOf(Text(32), 3),
        "reason_values": ListOf(Num(0.0, 1.0), 3),
        "relative_to_rest": Flag(),
    },
    "reaction": {
        "visit": Text(32),
        "item": Text(48),
        "seconds": Num(0, 86_400, digits=1),
        "frames": Num(0, 1e7, integer=True),
        # Peak and mean of each emotion while the item was shown, in EXPRESSIONS order.
        "peak": ListOf(Num(0.0, 1.0), len(EXPRESSIONS)),
        "mean": ListOf(Num(0.0, 1.0), len(EXPRESSIONS)),
    },
    "page": {
        "visit": Text(32),
        "item": Text(48),
        "topic": Text(16, TOPICS),
        "words": Num(0, 100_000, integer=True),
        "seconds": Num(0, 86_400, digits=1),
        "away_s": Num(0, 86_400, digits=1),
        "wpm": Optional_(Num(0, 100_000, digits=0)),
        "skim": Flag(),
        "dwell": Flag(),
        "revisit": Flag(),
        "back_turn": Flag(),
        "lines_read": Optional_(Num(0, 10_000, integer=True)),
        "weight": Num(0.0, 1.0),
    },
    "reading": {
        "visit": Text(32),
        "item": Optional_(Text(48)),
        "state": Text(16, READING_STATES),
        "lines_read": Optional_(Num(0, 10_000, integer=True)),
        "gaze_wpm": Optional_(Num(0, 100_000, digits=0)),
        "skimming": Flag(),
        "progress": Optional_(Num(0.0, 1.0)),
        "personal_wpm": Num(0, 100_000, digits=0),
        "time_left_s": Optional_(Num(0, 1e7, digits=0)),
        "chapter_time_left_s": Optional_(Num(0, 1e7, digits=0)),
        # The visit's pages with gaze so far, and how many of them look skimmed against the
        # reader's own reading (null until 3 pages): counts, never a page's score.
        "gaze_pages": Num(0, 10_000, integer=True),
        "gaze_skims": Optional_(Num(0, 10_000, integer=True)),
    },
    # The visitor's answer to one conclusion: its kind and the answer, nothing else.
    "feedback": {
        "visit": Text(32),
        "conclusion": Text(16, CONCLUSIONS),
        "answer": Text(16, GRADES + EXPRESSIONS),
    },
    # A command, not a signal: delete the visit and everything derived from it, everywhere.
    "purge": {
        "visit": Text(32),
        "reason": Text(16, PURGE_REASONS),
    },
}
VISIT_TYPES = (
    "visit", "attention", "attention_summary", "expression", "reaction", "page", "reading",
    "feedback", "purge",
)  # fmt: skip
SCOPE_OF = {
    "attention": "attention",
    "attention_summary": "attention",
    "expression": "expression",
    "reaction": "expression",
    "page": "reading",
    "reading": "reading",
}
"""The consent scope each visit-scoped signal type needs (`visit` and `purge` need none;
`feedback` needs the scope of the conclusion it grades, see `scope_of`)."""


def scope_of(kind: str, fields: dict[str, Any]) -> str | None:
    """The consent scope a message of type `kind` with `fields` needs (None: no scope)."""
    if kind == "feedback":
        return FEEDBACK_SCOPE.get(fields.get("conclusion"))  # type: ignore[arg-type]
    return SCOPE_OF.get(kind)


def _validate(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise WireError("not_object", "a message is a JSON object")
    kind = message.get("type")
    if kind not in FIELDS:
        raise WireError("unknown_type", f"type {kind!r}; known: {sorted(FIELDS)}")
    if message.get("v") != SCHEMA_VERSION:
        raise WireError("unknown_version", f"schema version {message.get('v')!r}")
    spec = {**COMMON, **FIELDS[kind]}
    extra = sorted(set(message) - set(spec))
    if extra:
        raise WireError("extra_field", f"{kind} may not carry {extra}")
    missing = sorted(set(spec) - set(message))
    if missing:
        raise WireError("missing_field", f"{kind} lacks {missing}")
    clean = {name: spec[name].coerce(name, message[name]) for name in spec}
    check_agent_id(clean["agent"])
    if "visit" in clean:
        check_visit_id(clean["visit"])
    if clean.get("item") is not None and not ITEM_ID.match(clean["item"]):
        raise WireError("bad_item_id", f"item id {clean['item']!r} must match {ITEM_ID.pattern}")
    if kind == "feedback":
        words = EXPRESSIONS if clean["conclusion"] == "feeling" else GRADES
        if clean["answer"] not in words:
            raise WireError("bad_answer", f"{clean['conclusion']} is answered with one of {words}")
    return clean


def message(kind: str, **fields: Any) -> dict[str, Any]:
    """Build a validated, rounded message of type `kind` (raises `WireError`)."""
    return _validate({"v": SCHEMA_VERSION, "type": kind, **fields})


def _serialise(clean: dict[str, Any]) -> bytes:
    data = json.dumps(clean, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}")
    return data


def encode(message_: dict[str, Any]) -> bytes:
    """Validate, round and serialise a message; refuse anything off the allow-list."""
    return _serialise(_validate(message_))


def build(kind: str, **fields: Any) -> tuple[dict[str, Any], bytes]:
    """A validated message of type `kind` and its payload, validated once (for producers)."""
    clean = message(kind, **fields)
    return clean, _serialise(clean)


MAX_NESTING = 8
"""No wire message nests deeper than 2 (an object holding lists): 8 leaves room, not more."""


def _nesting(payload: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in a JSON text (brackets inside strings aside);
    0 when there are too few brackets to exceed `MAX_NESTING`."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_NESTING:
        return 0  # the common case, decided in C: too few brackets to nest deeply
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def decode(topic_info: TopicInfo, payload: bytes) -> dict[str, Any]:
    """Parse and validate a JSON payload received on a topic described by `topic_info`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    if _nesting(payload) > MAX_NESTING:
        # Refused before parsing: a deeply nested document would exhaust the parser's stack.
        raise WireError("too_deep", f"JSON nested deeper than {MAX_NESTING} levels")
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError("malformed_json", str(exc)) from None
    clean = _validate(raw)
    if clean["type"] != topic_info.kind or clean["agent"] != topic_info.agent:
        raise WireError("topic_mismatch", "type or agent differs from the topic")
    if topic_info.visit is not None and clean.get("visit") != topic_info.visit:
        raise WireError("topic_mismatch", "visit differs from the topic")
    return clean


def decode_availability(payload: bytes) -> str:
    """Return ``online`` or ``offline``; anything else is a `WireError`."""
    text = payload.decode("utf-8", errors="replace")
    if text not in (ONLINE, OFFLINE):
        raise WireError("bad_availability", repr(text[:32]))
    return text


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, and whether the connection is TLS (``mqtts://``)."""

    host: str
    port: int
    tls: bool


_BROKER_URL = re.compile(r"(mqtts?)://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?/?")


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (TLS); ValueError for anything else."""
    match = _BROKER_URL.fullmatch(url) if isinstance(url, str) else None
    if not match:
        raise ValueError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
    tls = match.group(1) == "mqtts"
    port = int(match.group(3) or (8883 if tls else 1883))
    if not 0 < port < 65536:
        raise ValueError(f"broker port {port} is out of range")
    return BrokerAddress(match.group(2).strip("[]"), port, tls)


def parse_broker_url(url: str) -> tuple[str, int]:
    """Host and port of a ``mqtt://`` or ``mqtts://`` broker URL."""
    address = broker_address(url)
    return address.host, address.port
