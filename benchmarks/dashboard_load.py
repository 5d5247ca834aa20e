"""The dashboard page under load: simulated agents at full rate, the browser's update delay.

    python -m benchmarks.dashboard_load [--agents 20] [--seconds 20] [--broker mqtt://…]

Starts a broker (Mosquitto when installed) unless --broker is given, the dashboard on a free
port, and N simulated agents: real paho clients publishing wire-valid messages at the rates
docs/protocol.md allows (attention and expression 5/s each, reading 1/s, a heartbeat every
2 s, a page, reaction and attention summary every few seconds). Headless Chromium (Debian's,
driven by Playwright) shows the exhibition page, which follows the newest visit. The page
records, at each render, how old the shown visit's newest message is (browser clock minus the
message's `ts`; both on this machine, `ts` rounded to 0.1 s), and the main thread's long tasks.
"""

from __future__ import annotations

import argparse
import itertools
import random
import secrets
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from broker import wire

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PAGES = [
    ("page-1", "travel", 142), ("page-2", "money", 150), ("page-3", "politics", 138),
    ("page-4", "food", 120), ("page-5", "health", 160), ("page-6", "love", 130),
]  # fmt: skip


LONG_TASKS = """() => {
  window.__long = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration)))
    .observe({entryTypes: ["longtask"]});
}"""


class SimulatedAgent:
    """A paho client that publishes what an edge agent would, wire-validated, on demand."""

    def __init__(
        self, broker_url: str, agent: str, prefix: str = wire.DEFAULT_PREFIX, will: bool = True
    ):
        host, port = wire.parse_broker_url(broker_url)
        self.agent = agent
        self.topics = wire.Topics(prefix)
        self.seq = itertools.count()
        self.visit: str | None = None
        self.scopes = list(wire.SCOPES)
        self.clock_offset_s = 0.0  # a seam: this agent's clock runs this far ahead
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if will:
            self.client.will_set(self.topics.available(agent), wire.OFFLINE, qos=1, retain=True)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        self.available(wire.ONLINE)

    def ts(self) -> float:
        return time.time() + self.clock_offset_s

    def available(self, status: str) -> None:
        info = self.client.publish(self.topics.available(self.agent), status, qos=1, retain=True)
        info.wait_for_publish(5)

    def send(self, kind: str, wait: bool = True, **fields: Any) -> dict[str, Any]:
        """Publish one message (QoS 1); returns it as sent."""
        message = wire.message(kind, agent=self.agent, seq=next(self.seq), ts=self.ts(), **fields)
        self.publish(message, wait)
        return message

    def publish(self, message: dict[str, Any], wait: bool = True) -> None:
        info = self.client.publish(self.topics.for_message(message), wire.encode(message), qos=1)
        if wait:
            info.wait_for_publish(5)

    def heartbeat(self, wait: bool = True, **fields: Any) -> dict[str, Any]:
        values = {
            "fps": 24.0, "latency_ms": 14.0, "model": "mediapipe-face-landmarker",
            "model_version": "float16/1", "source": "video", "uptime_s": 5,
            "watching": self.visit is not None,
        }  # fmt: skip
        return self.send("heartbeat", wait, **{**values, **fields})

    def start_visit(self, visit: str | None = None, scopes: list[str] | None = None) -> str:
        self.visit = visit or secrets.token_hex(8)
        self.scopes = list(scopes or wire.SCOPES)
        self.send("visit", visit=self.visit, event="start", consent="recorded-source",
                  scopes=self.scopes)  # fmt: skip
        return self.visit

    def end_visit(self) -> None:
        assert self.visit is not None
        self.send("visit", visit=self.visit, event="end", consent="recorded-source",
                  scopes=self.scopes)  # fmt: skip
        self.visit = None

    def expression(self, label: str = "joy", wait: bool = True, **fields: Any) -> dict[str, Any]:
        values = {
            "label": label, "score": 0.8, "valence": 0.6 if label == "joy" else -0.2,
            "arousal": 0.5, "reason_units": ["AU12 lip corner puller", "AU6 cheek raiser"],
            "reason_shapes": ["mouthSmile", "cheekSquint"], "reason_values": [0.82, 0.41],
            "relative_to_rest": True,
        }  # fmt: skip
        return self.send("expression", wait, visit=self.visit, **{**values, **fields})

    def attention(self, wait: bool = True, **fields: Any) -> dict[str, Any]:
        values = {
            "present": True, "faces": 1, "looking": True, "yaw": 4.5, "pitch": 2.0,
            "roll": -1.0, "distance_cm": 55, "blinks": 3, "look_aways": 1,
        }  # fmt: skip
        return self.send("attention", wait, visit=self.visit, **{**values, **fields})

    def attention_summary(self, item: str | None = None, **fields: Any) -> dict[str, Any]:
        values = {
            "time_present_s": 30.0, "looking_share": 0.8, "longest_look_s": 12.0,
            "look_aways": 2, "look_away_s": 3.0, "interruptions": 1, "interruption_s": 2.5,
            "blinks": 9, "blink_rate_per_min": 18.0, "mean_distance_cm": 55,
            "calibrated": False, "regions": None,
        }  # fmt: skip
        return self.send("attention_summary", visit=self.visit, item=item, **{**values, **fields})

    def page(self, item: str, topic: str, words: int, seconds: float, **fields: Any) -> dict:
        wpm = round(words / (seconds / 60)) if seconds > 0 else None
        values = {
            "away_s": 0.0, "wpm": wpm, "skim": seconds < 5 or (wpm or 0) > 900,
            "dwell": (wpm or 999) < 238 / 2.5, "revisit": False, "back_turn": False,
            "lines_read": None, "weight": 1.0,
        }  # fmt: skip
        return self.send("page", visit=self.visit, item=item, topic=topic, words=words,
                         seconds=seconds, **{**values, **fields})  # fmt: skip

    def reaction(self, item: str, mean: list[float], seconds: float = 20.0) -> dict[str, Any]:
        peak = [min(1.0, m * 1.5) for m in mean]
        return self.send("reaction", visit=self.visit, item=item, seconds=seconds, frames=400,
                         peak=peak, mean=mean)  # fmt: skip

    def reading(self, item: str | None, wait: bool = True, **fields: Any) -> dict[str, Any]:
        values = {
            "state": "reading", "lines_read": 4, "gaze_wpm": 250, "skimming": False,
            "progress": 0.4, "personal_wpm": 262, "time_left_s": 1380, "chapter_time_left_s": 300,
            "gaze_pages": 3, "gaze_skims": 1,
        }  # fmt: skip
        return self.send("reading", wait, visit=self.visit, item=item, **{**values, **fields})

    def purge(self, reason: str = "forget") -> None:
        assert self.visit is not None
        self.send("purge", visit=self.visit, reason=reason)
        self.visit = None

    def close(self, clean: bool = True) -> None:
        if clean:
            self.available(wire.OFFLINE)
        self.client.disconnect()
        self.client.loop_stop()


def reaction_for(label: str, strength: float = 0.6) -> list[float]:
    """A plausible `mean` vector whose strongest non-neutral expression is `label`."""
    mean = [round(1.0 - strength, 2)] + [0.0] * 7
    mean[wire.EXPRESSIONS.index(label)] = round(strength, 2)
    return mean


def tell_a_story(agent: SimulatedAgent, pace_s: float = 0.0, backdate: bool = False) -> None:
    """One complete read of the sample pages: pages, reactions, summaries, reading states.

    Starts a visit unless one is open. With `backdate`, the messages carry the times of a
    visit that began minutes ago (so timelines and paces look real); the agent's clock is
    back to now afterwards.
    """
    moods = ["joy", "neutral", "surprise", "joy", "sadness", "joy"]
    pages = [(p, {"money": 3.5, "politics": 70.0}.get(p[1], p[2] / 250 * 60)) for p in PAGES]
    if backdate:
        agent.clock_offset_s = -sum(seconds for _, seconds in pages) - 5
    if agent.visit is None:
        agent.start_visit()
    for ((item, topic, words), seconds), mood in zip(pages, moods, strict=True):
        steps = max(3, int(seconds / 4))
        valence = {"joy": 0.7, "sadness": -0.5, "surprise": 0.2}.get(mood, 0.0)
        for step in range(steps):
            if step % 4 == 0:
                agent.reading(item, personal_wpm=255, progress=round(step / steps, 2))
            agent.attention(look_aways=step // 6, blinks=step)
            label = mood if step % 3 else "neutral"
            agent.expression(label, valence=valence if label == mood else 0.0)
            if backdate:
                agent.clock_offset_s += seconds / steps
        agent.page(item, topic, words, seconds)
        agent.reaction(item, reaction_for(mood if mood != "neutral" else "surprise", 0.5))
        agent.attention_summary(item)
        time.sleep(pace_s)
    agent.attention_summary(None)
    agent.clock_offset_s = 0.0


class _Runner(threading.Thread):
    """One simulated agent at full rate: 5 attention + 5 expression a second, and the rest."""

    def __init__(self, agent: SimulatedAgent, stop: threading.Event):
        super().__init__(daemon=True)
        self.agent, self.stop = agent, stop
        self.sent = 0

    def run(self) -> None:
        agent = self.agent
        agent.start_visit()
        tick = 0
        labels = ["joy", "neutral", "surprise", "sadness"]
        while not self.stop.is_set():
            began = time.monotonic()
            agent.attention(wait=False, look_aways=tick // 20, blinks=tick // 7)
            agent.expression(random.choice(labels), wait=False, score=round(random.random(), 2))
            self.sent += 2
            if tick % 5 == 0:
                item, topic, words = PAGES[(tick // 25) % len(PAGES)]
                agent.reading(item, wait=False, personal_wpm=200 + tick % 100)
                self.sent += 1
            if tick % 10 == 0:
                agent.heartbeat(wait=False)
                self.sent += 1
            if tick % 25 == 24:
                item, topic, words = PAGES[(tick // 25) % len(PAGES)]
                agent.page(item, topic, words, random.uniform(3, 60))
                agent.reaction(item, reaction_for(random.choice(labels[::2]), 0.5))
                self.sent += 2
            tick += 1
            self.stop.wait(max(0.0, 0.2 - (time.monotonic() - began)))


def run(agents: int, seconds: float, broker_url: str | None, browser: Any = None) -> dict[str, Any]:
    """Run the benchmark and return its figures; `browser`: a launched Playwright Chromium."""
    from contextlib import nullcontext

    from playwright.sync_api import sync_playwright

    from broker.embedded import EmbeddedBroker
    from dashboard import create_app
    from dashboard.server import DashboardServer

    broker = None if broker_url else EmbeddedBroker().start()
    url = broker_url or broker.url  # type: ignore[union-attr]
    app = create_app({"BROKER_URL": url})
    server = DashboardServer(app, port=0).start()
    stop = threading.Event()
    runners: list[_Runner] = []
    try:
        assert app.extensions["onlooker_mqtt"].wait_connected(10), "dashboard did not connect"
        with nullcontext(None) if browser is not None else sync_playwright() as playwright:
            own = playwright is not None
            if own:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(server.url + "/?mode=exhibition")
            page.evaluate(LONG_TASKS)
            for n in range(agents):
                runners.append(_Runner(SimulatedAgent(url, f"sim-{n:02d}"), stop))
            for runner in runners:
                runner.start()
            time.sleep(2)  # warm up: visits start, the page settles on the newest
            page.evaluate("() => { window.onlookerMetrics.delays = []; window.__long = []; }")
            renders_before = page.evaluate("() => window.onlookerMetrics.renders")
            began = time.monotonic()
            time.sleep(seconds)
            delays = page.evaluate("() => window.onlookerMetrics.delays")
            renders = page.evaluate("() => window.onlookerMetrics.renders") - renders_before
            long_tasks = page.evaluate("() => window.__long")
            probe_began = time.perf_counter()
            page.evaluate("() => 1")  # a round trip: is the main thread free?
            probe_ms = (time.perf_counter() - probe_began) * 1000
            elapsed = time.monotonic() - began
            page.close()
            if own:
                browser.close()
    finally:
        stop.set()
        for runner in runners:
            runner.join(2)
            runner.agent.close()
        server.stop()
        if broker is not None:
            broker.stop()
    sent = sum(r.sent for r in runners)
    health = app.extensions["onlooker_state"].counters()
    ordered = sorted(delays) or [float("nan")]
    return {
        "agents": agents,
        "seconds": round(elapsed, 1),
        "messages_sent": sent,
        "messages_per_s": round(sent / elapsed),
        "dashboard_received": health["received"],
        "dashboard_dropped": health["dropped"],
        "renders_per_s": round(renders / elapsed, 1),
        "update_delay_ms_p50": round(statistics.median(ordered) * 1000),
        "update_delay_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000),
        "update_delay_ms_max": round(ordered[-1] * 1000),
        "long_tasks": len(long_tasks),
        "long_task_ms_max": round(max(long_tasks, default=0)),
        "main_thread_round_trip_ms": round(probe_ms, 1),
        "console_errors": len(errors),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--broker", help="mqtt://host:port (default: start one)")
    args = parser.parse_args(argv)
    for key, value in run(args.agents, args.seconds, args.broker).items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
