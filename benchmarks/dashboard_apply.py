"""Where the dashboard's time goes per message: the load benchmark's traffic, replayed in-process.

    python -m benchmarks.dashboard_apply [--agents 100] [--seconds 60] [--profile 25]

The messages are made by the load benchmark's simulated kiosks (`benchmarks.load`: real
`SignalPublisher`s, real consent gate, the real mix and rates) over `--seconds` of simulated
time, captured from their outboxes instead of sent. They are then fed, in order, to the
dashboard's own subscriber (`MqttSubscriber.handle`: topic parse, validation, state update)
with no broker and no network, so the figure is the dashboard's CPU cost alone and repeats
from run to run. Measured in the same run, as the reference: `json.loads` of every payload
(the least any subscriber must do). With `--stream`, an event stream follows the state the way
an open dashboard page does (`wait_for_changes` on another thread, every visit that changed
turned into JSON). `--profile N` prints the N functions with the most time of their own.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import threading
import time

from benchmarks.load import SimulatedKiosk

TICK_S = 0.01


def capture(agents: int, seconds: float, seed: int = 1) -> list[tuple[str, bytes]]:
    """The (topic, payload) pairs `agents` kiosks publish over `seconds` simulated seconds."""
    rng = random.Random(seed)
    kiosks = [SimulatedKiosk("mqtt://127.0.0.1:1", f"load-{i:03d}", rng) for i in range(agents)]
    for kiosk in kiosks:
        kiosk.publisher.max_buffer = 1 << 30  # never started: the outbox is the capture
    messages: list[tuple[str, bytes]] = []
    start = time.time()
    steps = int(seconds / TICK_S)
    for step in range(steps):
        now = start + step * TICK_S
        for kiosk in kiosks:
            kiosk.started = min(kiosk.started, start)
            kiosk.tick(now)
            outbox = kiosk.publisher._outbox
            while outbox:
                entry = outbox.popleft()
                messages.append((entry.topic, entry.payload))
    return messages


def _app():
    from dashboard import create_app

    app = create_app({"MQTT_AUTOSTART": False, "BROKER_URL": "mqtt://127.0.0.1:1"})
    return app, app.extensions["onlooker_mqtt"], app.extensions["onlooker_state"]


def replay(
    messages: list[tuple[str, bytes]], stream: bool, batch: int = 1
) -> tuple[float, int, dict]:
    """Seconds to feed every message to a fresh dashboard; events sent by the stream."""
    _, subscriber, state = _app()
    sent = [0]
    done = threading.Event()

    def follow() -> None:
        version = state.version
        while not done.is_set():
            changes = state.wait_for_changes(version, timeout=0.05)
            version = changes.version
            for _kind, data in changes.events:
                json.dumps(data)
                sent[0] += 1
            time.sleep(0.02)  # the page's batching interval (SSE_MIN_INTERVAL_S)

    follower = threading.Thread(target=follow, daemon=True)
    if stream:
        follower.start()
    queued = [(_Message(topic, payload), 0.0) for topic, payload in messages]
    began = time.perf_counter()
    for start in range(0, len(queued), batch):  # what the subscriber's worker does
        subscriber._apply_batch(queued[start : start + batch], 0)
    elapsed = time.perf_counter() - began
    done.set()
    if stream:
        follower.join(5)
    return elapsed, sent[0], state.counters()


class _Message:
    """What paho hands `on_message`: the topic, the payload, the retain flag."""

    __slots__ = ("topic", "payload", "retain")

    def __init__(self, topic: str, payload: bytes):
        self.topic, self.payload, self.retain = topic, payload, False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100, help="simulated kiosks (100)")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds (60)")
    parser.add_argument("--stream", action="store_true", help="an open page follows the state")
    parser.add_argument("--batch", type=int, default=1,
                        help="messages applied under one lock (1: one at a time)")  # fmt: skip
    parser.add_argument("--profile", type=int, metavar="N", help="print the top N functions")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    messages = capture(args.agents, args.seconds)
    rate = len(messages) / args.seconds
    print(f"{len(messages)} messages from {args.agents} kiosks over {args.seconds:.0f} s "
          f"({rate:.0f}/s)")  # fmt: skip
    began = time.perf_counter()
    for _topic, payload in messages:
        json.loads(payload)
    parse_s = time.perf_counter() - began
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
    elapsed, events, counters = replay(messages, args.stream, args.batch)
    if args.profile:
        profiler.disable()
    if counters["rejected"]:
        raise SystemExit(f"the dashboard rejected messages: {counters['rejected']}")
    per_message_us = 1e6 * elapsed / len(messages)
    print(f"json.loads alone: {1e6 * parse_s / len(messages):.1f} µs per message")
    print(f"dashboard: {per_message_us:.1f} µs per message, {len(messages) / elapsed:.0f}/s, "
          f"{elapsed / parse_s:.1f}× json.loads; one core at this traffic: "
          f"{100 * per_message_us * rate / 1e6:.0f} %"
          + (f"; stream sent {events} events" if args.stream else ""))  # fmt: skip
    if args.profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
