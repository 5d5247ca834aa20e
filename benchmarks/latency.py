"""End-to-end delay: from a frame's capture to the browser receiving the signal it produced.

    python -m benchmarks.latency                          # 180 s at 30 fps, dashboard defaults
    python -m benchmarks.latency --sse-min-interval 0.1 --sse-min-interval 0

Everything runs on loopback in one process tree: Mosquitto (embedded), the dashboard (Flask,
its MQTT subscriber and its Server-Sent Events stream), headless Chromium on the dashboard
page, and the edge agent in-process on the sample video's frames, decoded beforehand and
handed over at camera rate (`--fps`) by a source that notes each frame's capture time (the
moment a camera would deliver it) and drops frames as a camera does when the agent falls more
than two frames behind.

The probe: the agent's publisher is wrapped to note, for every `attention` and `expression`
message, its visit, its number within that visit and kind, and the frame being processed. In
the page, an init script wraps `EventSource` so that every `visit` event of the dashboard's
own stream is stamped on arrival with ``performance.timeOrigin + performance.now()`` together
with the visit's per-kind message counts. The n-th message of a kind has reached the browser
with the first event whose count of that kind is ≥ n. The page's clock is compared with
Python's `time.time()` before and after (the offset is printed and subtracted).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

from benchmarks.machine import cpu_name  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
KINDS = ("attention", "expression")
TARGET_P95_MS = 60.0

PROBE_JS = """
(() => {
  const Native = window.EventSource;
  const records = [];
  window.__latencyProbe = records;
  class ProbedEventSource extends Native {
    constructor(url, options) {
      super(url, options);
      this.addEventListener("visit", (event) => {
        const t = performance.timeOrigin + performance.now();
        try {
          const v = JSON.parse(event.data);
          const c = v.counts || {};
          records.push([t, v.visit, c.attention || 0, c.expression || 0]);
        } catch (e) { /* the dashboard reports unreadable events itself */ }
      });
    }
  }
  window.EventSource = ProbedEventSource;
})();
"""


def decode(video: Path, max_frames: int | None = None) -> list[np.ndarray]:
    """Every frame of `video` as RGB, decoded once before the clock starts."""
    from edge.sources import VideoFileSource

    source = VideoFileSource(video, realtime=False)
    try:
        frames = [f.image for f in itertools.islice(source.frames(), max_frames)]
    finally:
        source.close()
    if not frames:
        raise SystemExit(f"{video}: no frames decoded")
    return frames


def _camera_class():
    from edge.sources import Frame, FrameSource

    class CameraRateSource(FrameSource):
        """Decoded frames, looping, delivered at `fps` like a camera; notes capture times."""

        kind = "video"
        realtime = True

        def __init__(self, images: list[np.ndarray], fps: float, duration_s: float):
            self.images = images
            self.fps = fps
            self.duration_s = duration_s
            self.captured: list[float] = []  # wall-clock capture time per frame index
            self.current = -1  # the index of the frame the agent is working on
            self.dropped = 0

        def frames(self) -> Iterator[Frame]:
            step = 1.0 / self.fps
            start_mono = time.monotonic()
            wall_minus_mono = time.time() - start_mono
            index = 0
            while index * step < self.duration_s:
                due = start_mono + index * step
                self.captured.append(due + wall_minus_mono)
                late = time.monotonic() - due
                if late > 2 * step:
                    self.dropped += 1  # a camera overwrites what nobody took in time
                    index += 1
                    continue
                if late < 0:
                    time.sleep(-late)
                self.current = index
                image = self.images[index % len(self.images)]
                yield Frame(image, int(index * step * 1000), index, due)
                index += 1

    return CameraRateSource


def clock_offset(page: Any, samples: int = 15) -> tuple[float, float]:
    """(page clock − time.time(), uncertainty) in seconds, from the tightest round trip."""
    best = (float("inf"), 0.0)
    for _ in range(samples):
        t0 = time.time()
        browser_ms = page.evaluate("performance.timeOrigin + performance.now()")
        t1 = time.time()
        if t1 - t0 < best[0]:
            best = (t1 - t0, browser_ms / 1000.0 - (t0 + t1) / 2)
    return best[1], best[0] / 2


def stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p95", "p99", "max", "mean")}
    a = np.asarray(values)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


def match(
    published: list[tuple[str, str, int, int, float]],
    arrivals: list[list[Any]],
    captured: list[float],
    offset_s: float,
) -> dict[str, Any]:
    """Pair each published message with the first browser event that shows it."""
    by_visit: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
    for t_ms, visit, attention, expression in arrivals:
        by_visit[visit].append((t_ms / 1000.0 - offset_s, attention, expression))
    total, agent, wire, unmatched = [], [], [], 0
    column = {"attention": 1, "expression": 2}
    for visit, kind, n, index, t_pub in published:
        events = by_visit.get(visit, [])
        seen = next((e[0] for e in events if e[column[kind]] >= n), None)
        if seen is None:
            unmatched += 1
            continue
        total.append((seen - captured[index]) * 1000.0)
        agent.append((t_pub - captured[index]) * 1000.0)
        wire.append((seen - t_pub) * 1000.0)
    return {
        "messages": len(published),
        "matched": len(total),
        "unmatched": unmatched,
        "total_ms": stats(total),
        "agent_ms": stats(agent),
        "wire_ms": stats(wire),
    }


def run_once(
    images: list[np.ndarray],
    args: argparse.Namespace,
    sse_min_interval: float | None,
    sync_api: Any,
    model_path: Path,
    log=print,
) -> dict[str, Any]:
    """One pass of `--duration` seconds with one dashboard stream setting."""
    from broker.embedded import EmbeddedBroker
    from dashboard import create_app
    from dashboard.server import DashboardServer
    from edge.agent import Agent, AgentConfig
    from edge.face import MediaPipeFaceLandmarker

    with EmbeddedBroker(prefer=args.broker) as broker:
        config: dict[str, Any] = {"BROKER_URL": broker.url}
        if sse_min_interval is not None:
            config["SSE_MIN_INTERVAL_S"] = sse_min_interval
        app = create_app(config)
        effective = app.config.get("SSE_MIN_INTERVAL_S")
        subscriber = app.extensions["onlooker_mqtt"]
        if not subscriber.wait_connected(10.0):
            raise SystemExit("the dashboard did not connect to the broker")
        with DashboardServer(app, port=0) as server, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.add_init_script(PROBE_JS)
                page.goto(server.url + "/")
                page.wait_for_function("Array.isArray(window.__latencyProbe)")
                offset_before, _ = clock_offset(page)

                source = _camera_class()(images, args.fps, args.duration)
                settings: dict[str, Any] = dict(
                    agent_id="latency", broker_url=broker.url, consent="recorded-source",
                    heartbeat_s=2.0,
                )  # fmt: skip
                if args.profile != "default":
                    settings["profile"] = args.profile
                analyzer = MediaPipeFaceLandmarker(model_path, max_faces=2)
                agent = Agent(AgentConfig(**settings), source, analyzer)
                published: list[tuple[str, str, int, int, float]] = []
                counters: dict[tuple[str, str], int] = defaultdict(int)
                publish = agent.publisher.publish

                def probed(kind: str, qos: int = 1, **fields: Any) -> bool:
                    ok = publish(kind, qos, **fields)
                    if ok and kind in KINDS:
                        key = (fields["visit"], kind)
                        counters[key] += 1
                        published.append(
                            (fields["visit"], kind, counters[key], source.current, time.time())
                        )
                    return ok

                agent.publisher.publish = probed  # type: ignore[method-assign]
                runner = threading.Thread(target=agent.run, name="agent", daemon=True)
                started = next_log = time.monotonic()
                runner.start()
                while runner.is_alive():
                    page.wait_for_timeout(1000)  # keeps Playwright's connection serviced
                    if time.monotonic() >= next_log:
                        next_log += 30.0
                        log(f"  {time.monotonic() - started:5.0f} s, {len(published)} signals")
                analyzer.close()
                page.wait_for_timeout(1500)  # the last events in flight
                arrivals = page.evaluate("window.__latencyProbe")
                offset_after, half_rtt = clock_offset(page)
            finally:
                browser.close()
    offset = (offset_before + offset_after) / 2
    result = match(published, arrivals, source.captured, offset)
    result.update(
        sse_min_interval_s=effective,
        frames=agent.frames,
        dropped=source.dropped,
        clock_offset_ms=offset * 1000.0,
        clock_drift_ms=(offset_after - offset_before) * 1000.0,
        clock_uncertainty_ms=half_rtt * 1000.0,
    )
    return result


def machine() -> str:
    cpu = cpu_name()
    load = os.getloadavg()[0]
    return (
        f"machine: {cpu} ({platform.machine()}, {os.cpu_count()} CPUs), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"load average {load:.2f}"
    )


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"Onlooker end-to-end delay: {report['video']} at {report['fps']:.0f} fps for "
        f"{report['duration']:.0f} s per row, profile {report['profile']}, Mosquitto, dashboard "
        "and headless Chromium on loopback",
        report["machine"],
        "",
        f"{'dashboard SSE batching':<24} {'signals':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}   {'agent p95':>9} {'wire p95':>8}  {'dropped':>7}",
    ]
    for row in report["rows"]:
        t, a, w = row["total_ms"], row["agent_ms"], row["wire_ms"]
        batching = f"{row['sse_min_interval_s']:.2f} s" + (" (default)" if row["default"] else "")
        lines.append(
            f"{batching:<24} {row['matched']:>8} {t['p50']:>7.1f} {t['p95']:>7.1f} "
            f"{t['p99']:>7.1f} {t['max']:>7.1f}   {a['p95']:>9.1f} {w['p95']:>8.1f}  "
            f"{row['dropped']:>7}"
        )
    lines += [
        "",
        "delay: frame capture → the dashboard's `visit` event carrying the signal arrives in "
        "the page;",
        "agent: capture → publish call (waiting, inference, signals); wire: publish → browser "
        "(outbox, MQTT, dashboard, SSE).",
    ]
    for row in report["rows"]:
        lines.append(
            f"clock offset page − Python {row['clock_offset_ms']:+.2f} ms (drift "
            f"{row['clock_drift_ms']:+.2f} ms, ±{row['clock_uncertainty_ms']:.2f} ms); "
            f"{row['unmatched']} of {row['messages']} signals never shown; "
            f"{row['frames']} frames processed"
        )
    lines.append("")
    for row in report["rows"]:
        p95 = row["total_ms"]["p95"]
        mark = "met" if p95 < TARGET_P95_MS else "NOT met"
        lines.append(
            f"target p95 < {TARGET_P95_MS:.0f} ms at {report['fps']:.0f} fps "
            f"(batching {row['sse_min_interval_s']:.2f} s): {p95:.1f} ms [{mark}]"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds per row")
    parser.add_argument("--profile", default="default", help="agent profile")
    parser.add_argument("--broker", default="mosquitto", choices=("auto", "mosquitto", "amqtt"))
    parser.add_argument(
        "--sse-min-interval",
        type=float,
        action="append",
        metavar="S",
        help="the dashboard's SSE_MIN_INTERVAL_S for a row; repeat for several rows "
        "(default: one row with the dashboard's own default)",
    )
    parser.add_argument("--json", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    try:
        from playwright import sync_api
    except ImportError:
        print("skipped: playwright is not installed (pip install playwright)")
        return 0
    if not CHROMIUM.exists():
        print(f"skipped: no Chromium at {CHROMIUM} (apt-get install chromium)")
        return 0
    from dashboard import DEFAULTS
    from edge import assets

    video = Path(args.video) if Path(args.video).is_file() else assets.asset_path(args.video)
    images = decode(video)
    default_interval = DEFAULTS.get("SSE_MIN_INTERVAL_S")
    rows = []
    for interval in args.sse_min_interval or [None]:
        shown = "the default" if interval is None else f"{interval} s"
        log(f"running {args.duration:.0f} s with SSE batching {shown} …")
        row = run_once(images, args, interval, sync_api, assets.asset_path(assets.MODEL), log)
        row["default"] = interval is None or interval == default_interval
        rows.append(row)
    report = {
        "video": video.name,
        "fps": args.fps,
        "duration": args.duration,
        "profile": args.profile,
        "machine": machine(),
        "rows": rows,
    }
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
