"""Many kiosks through one Mosquitto into one dashboard: loss, delay, dashboard CPU and memory.

    python -m benchmarks.load --agents 10 50 100 --duration 60 [--busy 2] [--streams 1]

For each N: a Mosquitto on a free loopback port, the dashboard in a process of its own, and
N simulated agents (no camera, no model) in this process, each a real `SignalPublisher`
sending the real message mix at the real rates through the real consent gate and outbox:
one visit after another (25–45 s each), attention and expression at 5 Hz, reading at 1 Hz,
a page every 8–15 s with its reaction and attention summary, heartbeats every 2 s (QoS 0).

The dashboard process records when each message was applied to its state (agent, seq,
time); the delay is that time minus the moment the agent called `publish`. Lost means a QoS 1
message published and never applied. CPU and resident memory of the dashboard process are
sampled from /proc every second. `--streams N` keeps N dashboard pages' event streams open
and read (default 1: a hall's dashboard has its page open). `--busy N` starts N CPU-bound
processes beside the run, as a busy machine has (a browser, a video call). Mosquitto's own
figures come from its `$SYS` topics: messages it dropped (`publish/messages/dropped`, for
any client) and the most it held at once (`store/messages/count`). Everything stays on
loopback and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from broker import wire

MAX_AGENTS = 200
MAX_DURATION_S = 600.0
DRAIN_S = 5.0
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Result:
    agents: int
    busy: int
    streams: int
    duration_s: float
    published_qos1: int
    applied: int
    lost: int
    duplicates_applied: int
    delay_p50_ms: float | None
    delay_p99_ms: float | None
    delay_max_ms: float | None
    dashboard_cpu_percent: float
    dashboard_rss_mb_start: float
    dashboard_rss_mb_end: float
    dashboard_rss_mb_max: float
    dashboard_rss_mb_by_minute: list[float]
    outbox_dropped: int
    broker_dropped: int | None
    broker_held_max: int | None
    dashboard_backlog_max: int | None
    dashboard_lag_ms_max: int | None
    dashboard_dropped: int | None
    stream_events: int


# --- the dashboard side (runs in its own process) ------------------------------------------


def serve_dashboard(broker_url: str, port: int, record: Path) -> None:
    """The real dashboard app, with `DashboardState.apply` timed into `record`."""
    from dashboard import create_app
    from dashboard.server import DashboardServer
    from dashboard.state import DashboardState

    out = record.open("w", buffering=1 << 16)
    lock = threading.Lock()
    original = DashboardState.apply_batch

    def timed_apply_batch(self, items, *args, **kwargs):
        errors = original(self, items, *args, **kwargs)
        now = time.time()
        refused = {id(item) for item, _exc in errors}
        lines = [
            f"{message['agent']} {message['seq']} {now:.6f}\n"
            for item in items
            if id(item) not in refused and isinstance(message := item[1], dict)
        ]
        with lock:
            out.writelines(lines)
        return errors

    DashboardState.apply_batch = timed_apply_batch  # type: ignore[method-assign]
    app = create_app({"BROKER_URL": broker_url})
    server = DashboardServer(app, port=port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"dashboard {server.url}", flush=True)
    stop.wait()
    server.stop()
    with lock:
        out.close()


# --- the agents -----------------------------------------------------------------------------


class SimulatedKiosk:
    """One agent without camera: visits with the real mix of messages at the real rates."""

    def __init__(self, url: str, agent: str, rng: random.Random):
        from edge.publisher import MqttAuth, SignalPublisher

        self.publisher = SignalPublisher(url, agent, auth=MqttAuth())
        self.agent = agent
        self.rng = rng
        self.sent: dict[int, float] = {}  # seq -> time.time() of publish (QoS 1 only)
        self.next_at: dict[str, float] = {}
        self.visit: str | None = None
        self.visit_ends = 0.0
        self.page = 0
        self.started = time.time()

    def _publish(self, kind: str, qos: int = 1, **fields) -> None:
        before = time.time()
        if self.publisher.publish(kind, qos=qos, **fields) and qos:
            self.sent[self.publisher.last_seq] = before

    def tick(self, now: float) -> None:
        """Publish whatever is due at `now` (wall clock)."""
        due = self.next_at
        if due.get("heartbeat", 0) <= now:
            due["heartbeat"] = now + 2.0
            self._publish("heartbeat", qos=0, fps=24.0, latency_ms=12.0, model="simulated",
                          model_version="1", source="camera", uptime_s=now - self.started,
                          watching=self.visit is not None)  # fmt: skip
        if self.visit is None:
            if due.get("visit", 0) <= now:
                self.visit = os.urandom(8).hex()
                self.visit_ends = now + self.rng.uniform(25, 45)
                self._publish("visit", visit=self.visit, event="start", consent="viewer",
                              scopes=list(wire.SCOPES))  # fmt: skip
                for kind, period in (("attention", 0.2), ("expression", 0.2), ("reading", 1.0),
                                     ("page", 8.0)):  # fmt: skip
                    due[kind] = now + self.rng.uniform(0, period)
            return
        visit = self.visit
        if now >= self.visit_ends:
            self._page_done(visit)
            self._publish("visit", visit=visit, event="end", consent="viewer",
                          scopes=list(wire.SCOPES))  # fmt: skip
            self.visit = None
            due["visit"] = now + self.rng.uniform(1, 5)
            return
        r = self.rng.random
        if due["attention"] <= now:
            due["attention"] += 0.2
            self._publish("attention", visit=visit, present=True, faces=1, looking=r() < 0.7,
                          yaw=round(r() * 40 - 20, 1), pitch=round(r() * 20 - 10, 1),
                          roll=round(r() * 10 - 5, 1), distance_cm=5 * round(r() * 20 + 40),
                          blinks=int(now - self.started) // 4, look_aways=3)  # fmt: skip
        if due["expression"] <= now:
            due["expression"] += 0.2
            self._publish("expression", visit=visit, label=self.rng.choice(wire.EXPRESSIONS),
                          score=round(r(), 2), valence=round(r() * 2 - 1, 2),
                          arousal=round(r(), 2), reason_units=["AU12 lip corner puller"],
                          reason_shapes=["mouthSmile"], reason_values=[round(r(), 2)],
                          relative_to_rest=True)  # fmt: skip
        if due["reading"] <= now:
            due["reading"] += 1.0
            self._publish("reading", visit=visit, item=f"page-{self.page}", state="reading",
                          lines_read=int(r() * 20), gaze_wpm=int(150 + r() * 150),
                          skimming=False, progress=round(r(), 2), personal_wpm=238,
                          time_left_s=400, chapter_time_left_s=120, gaze_pages=3,
                          gaze_skims=1)  # fmt: skip
        if due["page"] <= now:
            due["page"] = now + self.rng.uniform(8, 15)
            self._page_done(visit)

    def _page_done(self, visit: str) -> None:
        r = self.rng.random
        item = f"page-{self.page}"
        self.page += 1
        self._publish("page", visit=visit, item=item, topic=self.rng.choice(wire.TOPICS),
                      words=140, seconds=round(8 + r() * 7, 1), away_s=0.0, wpm=230, skim=False,
                      dwell=False, revisit=False, back_turn=False, lines_read=9,
                      weight=1.0)  # fmt: skip
        self._publish("reaction", visit=visit, item=item, seconds=10.0, frames=240,
                      peak=[round(r(), 2) for _ in wire.EXPRESSIONS],
                      mean=[round(r() / 2, 2) for _ in wire.EXPRESSIONS])  # fmt: skip
        self._publish("attention_summary", visit=visit, item=item, time_present_s=10.0,
                      looking_share=0.7, longest_look_s=5.0, look_aways=1, look_away_s=1.0,
                      interruptions=0, interruption_s=0.0, blinks=3, blink_rate_per_min=12.0,
                      mean_distance_cm=60, calibrated=False, regions=None)  # fmt: skip


class StreamReader(threading.Thread):
    """One open dashboard page: reads /api/stream and counts the events."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.events, self._stop = url, 0, threading.Event()

    def run(self) -> None:
        from urllib.request import urlopen

        while not self._stop.is_set():
            try:
                with urlopen(self.url, timeout=5) as response:
                    for line in response:
                        if line.startswith(b"event:"):
                            self.events += 1
                        if self._stop.is_set():
                            return
            except OSError:
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


class BrokerFigures:
    """Mosquitto's $SYS figures: messages dropped, and the most held in its store at once."""

    def __init__(self, url: str):
        import paho.mqtt.client as mqtt

        self.dropped: int | None = None
        self.held_max: int | None = None
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(
            [("$SYS/broker/publish/messages/dropped", 0), ("$SYS/broker/store/messages/count", 0)]
        )
        address = wire.broker_address(url)
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        value = int(float(msg.payload))
        if msg.topic.endswith("dropped"):
            self.dropped = value
        else:
            self.held_max = max(self.held_max or 0, value)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def busy_processes(n: int) -> list[subprocess.Popen]:
    """`n` processes that each keep a core busy until killed."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]


def _proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds so far, resident MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return cpu, rss_pages * _PAGE / 1e6


def _wait_for_http(url: str, timeout: float) -> None:
    from urllib.request import urlopen

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run(
    agents: int,
    duration_s: float,
    workdir: Path,
    seed: int = 1,
    busy: int = 0,
    streams: int = 1,
) -> Result:
    """One run with `agents` simulated kiosks for `duration_s` seconds."""
    from broker.embedded import EmbeddedBroker

    if not 1 <= agents <= MAX_AGENTS or not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"agents must be 1–{MAX_AGENTS}, duration 0–{MAX_DURATION_S:.0f} s")
    if not 0 <= busy <= 16 or not 0 <= streams <= 8:
        raise ValueError("busy must be 0–16 and streams 0–8")
    record = workdir / f"applied-{agents}.txt"
    burners = busy_processes(busy)
    readers: list[StreamReader] = []
    figures: BrokerFigures | None = None
    with EmbeddedBroker(prefer="mosquitto") as broker:
        port = _free_port()
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load", "--serve-dashboard", broker.url,
             "--port", str(port), "--record", str(record)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert dashboard.stdout is not None
            dashboard.stdout.readline()
            _wait_for_http(f"http://127.0.0.1:{port}/healthz", 10)
            figures = BrokerFigures(broker.url)
            readers = [StreamReader(f"http://127.0.0.1:{port}/api/stream") for _ in range(streams)]
            for reader in readers:
                reader.start()
            rng = random.Random(seed)
            kiosks = [SimulatedKiosk(broker.url, f"load-{i:03d}", rng) for i in range(agents)]
            for kiosk in kiosks:
                kiosk.publisher.start()
            for kiosk in kiosks:
                kiosk.publisher._connected.wait(10)
            cpu0, rss0 = _proc_sample(dashboard.pid)
            rss = [rss0]
            began = time.time()
            next_sample = began + 1.0
            while (now := time.time()) < began + duration_s:
                for kiosk in kiosks:
                    kiosk.tick(now)
                if now >= next_sample:
                    rss.append(_proc_sample(dashboard.pid)[1])
                    next_sample += 1.0
                time.sleep(max(0.0, 0.01 - (time.time() - now)))
            ended = time.time()
            cpu1, rss1 = _proc_sample(dashboard.pid)
            rss.append(rss1)
            deadline = time.time() + DRAIN_S
            while time.time() < deadline and any(k.publisher.stats()["queued"] for k in kiosks):
                time.sleep(0.1)
            time.sleep(1.0)  # the last messages reach the dashboard
            dropped = 0
            for kiosk in kiosks:
                dropped += kiosk.publisher.stats()["dropped_overflow"]
                kiosk.publisher.stop()
            health = _get_json(f"http://127.0.0.1:{port}/healthz")
            time.sleep(1.5)  # $SYS figures come once a second
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
            for reader in readers:
                reader.stop()
            if figures is not None:
                figures.stop()
            dashboard.send_signal(signal.SIGTERM)
            try:
                dashboard.wait(15)
            except subprocess.TimeoutExpired:
                dashboard.kill()
                dashboard.wait(5)
    applied: dict[tuple[str, int], float] = {}
    duplicates = 0
    for line in record.read_text().splitlines():
        agent, seq, at = line.split()
        key = (agent, int(seq))
        if key in applied:
            duplicates += 1
        else:
            applied[key] = float(at)
    delays, lost, published = [], 0, 0
    for kiosk in kiosks:
        for seq, sent_at in kiosk.sent.items():
            published += 1
            at = applied.get((kiosk.agent, seq))
            if at is None:
                lost += 1
            else:
                delays.append((at - sent_at) * 1000.0)
    return Result(
        agents=agents,
        busy=busy,
        streams=streams,
        duration_s=round(ended - began, 1),
        published_qos1=published,
        applied=published - lost,
        lost=lost,
        duplicates_applied=duplicates,
        delay_p50_ms=round(_percentile(delays, 50), 1) if delays else None,
        delay_p99_ms=round(_percentile(delays, 99), 1) if delays else None,
        delay_max_ms=round(max(delays), 1) if delays else None,
        dashboard_cpu_percent=round(100 * (cpu1 - cpu0) / (ended - began), 1),
        dashboard_rss_mb_start=round(rss[1] if len(rss) > 2 else rss0, 1),
        dashboard_rss_mb_end=round(rss1, 1),
        dashboard_rss_mb_max=round(max(rss), 1),
        dashboard_rss_mb_by_minute=[round(mb, 1) for mb in rss[60::60]],
        outbox_dropped=dropped,
        broker_dropped=figures.dropped if figures else None,
        broker_held_max=figures.held_max if figures else None,
        dashboard_backlog_max=health.get("backlog_max"),
        dashboard_lag_ms_max=health.get("lag_ms_max"),
        dashboard_dropped=health.get("dropped"),
        stream_events=sum(reader.events for reader in readers),
    )


def _get_json(url: str) -> dict:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="CPU-bound processes beside the run (2 takes both cores here)",
    )
    parser.add_argument("--streams", type=int, default=1,
                        help="dashboard pages following the event stream (default 1)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="where the dashboard records (default tmp)")
    parser.add_argument("--serve-dashboard", metavar="BROKER_URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_dashboard:
        serve_dashboard(args.serve_dashboard, args.port, args.record)
        return 0
    import logging
    import tempfile

    logging.basicConfig(level=logging.ERROR)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="onlooker-load-"))
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f} before, {args.duration:.0f} s per run, "
          f"--busy {args.busy}, --streams {args.streams}")  # fmt: skip
    header = ("agents", "published", "lost", "p50 ms", "p99 ms", "max ms", "dash CPU %",
              "RSS MB start→end (max)", "broker dropped", "broker held max",
              "dash backlog max", "dash lag max ms", "stream events")  # fmt: skip
    print(" | ".join(header))
    results = []
    for n in args.agents:
        result = run(n, args.duration, workdir, busy=args.busy, streams=args.streams)
        results.append(result)
        r = result
        print(f"{r.agents} | {r.published_qos1} | {r.lost} | {r.delay_p50_ms} | "
              f"{r.delay_p99_ms} | {r.delay_max_ms} | {r.dashboard_cpu_percent} | "
              f"{r.dashboard_rss_mb_start}→{r.dashboard_rss_mb_end} ({r.dashboard_rss_mb_max}) | "
              f"{r.broker_dropped} | {r.broker_held_max} | {r.dashboard_backlog_max} | "
              f"{r.dashboard_lag_ms_max} | {r.stream_events}", flush=True)  # fmt: skip
        if r.dashboard_rss_mb_by_minute:
            print(f"  dashboard RSS MB each minute: {r.dashboard_rss_mb_by_minute}", flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
