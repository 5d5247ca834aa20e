"""The edge agent against the bare Face Landmarker and a peer, on the same decoded frames.

    python -m benchmarks.edge                      # the table of docs/performance.md
    python -m benchmarks.edge --no-peer --frames 60
    python -m benchmarks.edge --soak 600           # resident memory over ten minutes

The sample video is decoded once (OpenCV, BGR → RGB as the agent's own sources do) into an
.npy file; every row reads exactly those frames. Each configuration runs in a fresh child
process (clean peak memory, its own CPU affinity), alternating for `--rounds` rounds:

(a) the Face Landmarker alone: MediaPipe's ``detect_for_video`` with the options Onlooker
    uses (two faces, blendshapes, transformation matrices), nothing else;
(b) Onlooker's whole edge pipeline: `edge.agent.Agent` with the same model (a fresh instance,
    VIDEO mode keeps tracking state), every signal stage, the consent gate (a recorded
    source that consented to every scope), validation, serialisation and publishing over
    MQTT to a Mosquitto broker started for the run.

Time per frame is wall time from handing a frame over to being asked for the next one; CPU
per frame is process CPU time (every thread) over the same spans. "1 core" rows run the child
under ``taskset -c 0`` (the broker it starts inherits the affinity): a stand-in for a small
board. The peer is the `fer` package (FER2013 CNN behind an OpenCV Haar cascade, on
TensorFlow), installed by this script into its own virtual environment and run by
`benchmarks/peer_fer.py` on the same .npy; it is optional and skipped with a reason when it
cannot be installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PEER_REQUIREMENT = "fer==25.10.3"
# fer's own dependencies include facenet-pytorch (PyTorch, for its MTCNN detector) and moviepy
# (for videos); FER(mtcnn=False) on arrays needs neither, so only this runtime is installed.
PEER_RUNTIME = (
    "tensorflow-cpu",
    "opencv-contrib-python",
    "pandas",
    "requests",
    "tqdm",
    "Pillow",
    "setuptools<81",  # fer imports pkg_resources
)
PEER_DISK_BYTES = 4 << 30
PEER_INSTALL_TIMEOUT_S = 1800.0
CHILD_TIMEOUT_S = 1800.0
ENVELOPE = ("v", "type", "agent", "seq", "ts", "visit")

TARGET_PIPELINE_RATIO = 0.9
TARGET_PEER_RATIO = 2.0
TARGET_ONE_CORE_FPS = 30.0
TARGET_PI_SPEEDUP = 2.5
TARGET_RSS_MB = 400.0


# --- frames ---------------------------------------------------------------------------------


def decode_video(path: Path, out: Path, max_frames: int | None = None) -> tuple[int, float]:
    """Decode `path` once into an RGB uint8 .npy of shape (n, h, w, 3); return (n, fps)."""
    from edge.sources import VideoFileSource

    source = VideoFileSource(path, realtime=False)
    try:
        frames = [f.image for f in itertools.islice(source.frames(), max_frames)]
    finally:
        source.close()
    fps = source.fps
    if not frames:
        raise SystemExit(f"{path}: no frames decoded")
    np.save(out, np.stack(frames))
    return len(frames), fps


class FrameFile:
    """Frames of a decoded .npy read one at a time into a fresh buffer, as a camera hands them
    over: the process never holds all of them, so its resident memory is the agent's own."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran or dtype != np.uint8 or len(shape) != 4:
            raise ValueError(f"{path}: expected C-ordered uint8 frames (n, h, w, 3)")
        self.count, *self.frame_shape = shape
        self.frame_bytes = int(np.prod(self.frame_shape))
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> np.ndarray:
        buf = bytearray(self.frame_bytes)
        os.preadv(self._fd, [buf], self.offset + index * self.frame_bytes)
        return np.frombuffer(buf, dtype=np.uint8).reshape(self.frame_shape)

    def close(self) -> None:
        os.close(self._fd)


# --- measuring ------------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the kernel's resident high-water mark (VmHWM) of this process (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM since the last reset, else the process's lifetime maximum."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource  # not on Windows
    except ImportError:
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb(pid: int | str = "self") -> float | None:
    """Current resident memory (VmRSS) of a process, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


@dataclasses.dataclass
class Phase:
    """One timed pass over the frames."""

    ms: list[float] = dataclasses.field(default_factory=list)
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    faces: int = 0
    messages: Counter = dataclasses.field(default_factory=Counter)
    fields: set[str] = dataclasses.field(default_factory=set)
    publisher: dict[str, int] = dataclasses.field(default_factory=dict)

    def merge(self, other: Phase) -> None:
        self.ms += other.ms
        self.cpu_s += other.cpu_s
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)
        self.faces += other.faces
        self.messages += other.messages
        self.fields |= other.fields
        for key, value in other.publisher.items():
            self.publisher[key] = self.publisher.get(key, 0) + value

    def summary(self) -> dict[str, Any]:
        total_s = sum(self.ms) / 1000.0
        return {
            "frames": len(self.ms),
            "fps": len(self.ms) / total_s if total_s else float("nan"),
            "ms_p50": percentile(self.ms, 50),
            "ms_p95": percentile(self.ms, 95),
            "cpu_ms_per_frame": 1000.0 * self.cpu_s / max(1, len(self.ms)),
            "peak_rss_mb": self.peak_rss_mb,
            "faces": self.faces,
            "messages": dict(self.messages),
            "fields": sorted(self.fields),
            "publisher": self.publisher,
        }


def time_landmarker(frames: FrameFile, model_path: Path, fps: float, max_faces: int) -> Phase:
    """(a) MediaPipe's Face Landmarker alone, with the options the agent gives it."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=max_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    phase = Phase()
    reset_peak_rss()
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        step_ms = 1000.0 / fps
        for i in range(len(frames)):
            image = frames.read(i)
            cpu0, t0 = time.process_time(), time.perf_counter()
            result = landmarker.detect_for_video(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=image), int(i * step_ms)
            )
            phase.ms.append((time.perf_counter() - t0) * 1000.0)
            phase.cpu_s += time.process_time() - cpu0
            phase.faces += bool(result.face_landmarks)
    phase.peak_rss_mb = peak_rss_mb()
    return phase


def _frame_source_class():
    from edge.sources import Frame, FrameSource

    class TimedFrameSource(FrameSource):
        """Pre-decoded frames as fast as the agent takes them; times what it does with each."""

        kind = "video"
        realtime = False  # a benchmark, not a camera: the agent never skips frames for pace

        def __init__(self, frames: FrameFile, fps: float, phase: Phase):
            self._frames = frames
            self.fps = fps
            self._phase = phase

        def frames(self) -> Iterator[Frame]:
            step_ms = 1000.0 / self.fps
            for i in range(len(self._frames)):
                image = self._frames.read(i)
                cpu0, t0 = time.process_time(), time.perf_counter()
                yield Frame(image, int(i * step_ms), i, time.monotonic())
                # Back here: the agent has done everything it does with frame i.
                self._phase.ms.append((time.perf_counter() - t0) * 1000.0)
                self._phase.cpu_s += time.process_time() - cpu0

    return TimedFrameSource


def profile_supported(profile: str) -> str | None:
    """Why the agent cannot run `profile`, or None when it can."""
    from edge import agent

    names = {f.name for f in dataclasses.fields(agent.AgentConfig)}
    if profile == "default":
        return None
    if "profile" not in names:
        return "this agent has no `profile` setting yet"
    known = getattr(agent, "PROFILES", None)
    if known is not None and profile not in known:
        return f"unknown profile {profile!r} (known: {', '.join(sorted(known))})"
    return None


def time_pipeline(
    frames: FrameFile, model_path: Path, fps: float, max_faces: int, broker_url: str, profile: str
) -> Phase:
    """(b) Onlooker's whole edge pipeline, publishing to the broker at `broker_url`."""
    from edge.agent import Agent, AgentConfig
    from edge.face import MediaPipeFaceLandmarker

    settings: dict[str, Any] = dict(
        agent_id="bench", broker_url=broker_url, consent="recorded-source", heartbeat_s=2.0
    )
    if profile != "default":
        settings["profile"] = profile
    phase = Phase()
    analyzer = MediaPipeFaceLandmarker(model_path, max_faces=max_faces)
    source = _frame_source_class()(frames, fps, phase)
    agent = Agent(AgentConfig(**settings), source, analyzer)
    publish = agent.publisher.publish

    def counted(kind: str, qos: int = 1, **fields: Any) -> bool:
        phase.messages[kind] += 1
        if kind != "heartbeat":
            phase.fields.update(f"{kind}.{name}" for name in fields if name not in ENVELOPE)
        return publish(kind, qos, **fields)

    agent.publisher.publish = counted  # type: ignore[method-assign]
    reset_peak_rss()
    try:
        agent.run()
    finally:
        analyzer.close()
    phase.peak_rss_mb = peak_rss_mb()
    stats = agent.publisher.stats()
    phase.publisher = {k: stats[k] for k in ("sent", "refused", "unsent_at_stop")}
    phase.publisher["visits"] = agent.visits_started
    return phase


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration: (a) and (b) alternating for `rounds` rounds, in this process."""
    from broker.embedded import EmbeddedBroker

    if spec.get("cpus") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(spec["cpus"]))
    frames = FrameFile(Path(spec["frames"]))
    model_path = Path(spec["model"])
    landmarker, pipeline = Phase(), Phase()
    why_not = profile_supported(spec["profile"])
    if why_not:
        return {"skipped": why_not}
    try:
        with EmbeddedBroker(prefer=spec["broker"]) as broker:
            for _ in range(spec["rounds"]):
                landmarker.merge(
                    time_landmarker(frames, model_path, spec["fps"], spec["max_faces"])
                )
                pipeline.merge(
                    time_pipeline(
                        frames, model_path, spec["fps"], spec["max_faces"], broker.url,
                        spec["profile"],
                    )
                )  # fmt: skip
            broker_kind = broker.kind
    finally:
        frames.close()
    return {
        "landmarker": landmarker.summary(),
        "pipeline": pipeline.summary(),
        "broker": broker_kind,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
    }


def _child(args: list[str], cores: str, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Run `python -m benchmarks.edge <args>` (pinned to CPU 0 for cores == "1")."""
    cmd = [sys.executable, "-m", "benchmarks.edge", *args]
    if cores == "1":
        taskset = shutil.which("taskset")
        cmd = [taskset, "-c", "0", *cmd] if taskset else [*cmd, "--cpus", "0"]
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=_child_env()
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
    return json.loads(lines[-1])


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# --- the peer -------------------------------------------------------------------------------


def peer_dir() -> Path:
    from edge import assets

    return assets.cache_dir() / "bench" / "fer-venv"


def peer_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peer(venv: Path, log=print) -> tuple[Path | None, str | None]:
    """The peer venv's python, installing fer and its runtime on first use; or why not."""
    python = peer_python(venv)
    check = [str(python), "-c", "import fer.fer, tensorflow, cv2"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, None
    venv.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(venv.parent).free
    if free < PEER_DISK_BYTES:
        return None, f"only {free / 2**30:.1f} GB free in {venv.parent}; TensorFlow needs ~3 GB"
    log(f"installing the peer ({PEER_REQUIREMENT} + TensorFlow CPU) into {venv}; takes minutes")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", PEER_REQUIREMENT],
        [str(python), "-m", "pip", "install", "-q", *PEER_RUNTIME],
    ]
    deadline = time.monotonic() + PEER_INSTALL_TIMEOUT_S
    for step in steps:
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=max(1, deadline - time.monotonic())
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(step[-3:])}` failed: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(step[-3:])}` failed: {' | '.join(tail)}"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, "fer was installed but does not import"
    return python, None


def run_peer(python: Path, frames: Path, cores: str) -> dict[str, Any]:
    cmd = [str(python), str(REPO / "benchmarks" / "peer_fer.py"), str(frames)]
    if cores == "1":
        taskset = shutil.which("taskset")
        cmd = [taskset, "-c", "0", *cmd] if taskset else [*cmd, "--cpus", "0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"failed": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-800:]}"}
    return json.loads(lines[-1])


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = float("nan")
    versions = {}
    for name in ("mediapipe", "numpy", "paho-mqtt", "opencv-contrib-python"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 (a missing version is only left out)
            pass
    from broker.embedded import find_mosquitto
    from onlooker.kiosk import board_model

    board = board_model(Path("/"))
    mosquitto = find_mosquitto()
    broker = "amqtt (no mosquitto)"
    if mosquitto:
        out = subprocess.run([mosquitto, "-h"], capture_output=True, text=True).stdout
        broker = out.splitlines()[0].strip() if out else "mosquitto"
    return {
        "cpu": cpu_name(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "broker": broker,
        "load": _load(),
        "board": board or None,
    }


def _load() -> list[float]:
    """The 1/5/15-minute load averages (NaN on Windows, which has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [math.nan] * 3


def machine_line(m: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return (
        f"machine: {m['cpu']} ({m['arch']}, {m['cpus']} CPUs, {m['memory_gb']} GB), {m['os']}, "
        f"Python {m['python']}, {versions}; broker: {m['broker']}; load average at start "
        f"{m['load'][0]:.2f}" + (f", at the end {m['load_end'][0]:.2f}" if "load_end" in m else "")
    )


# --- the report -----------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    v = report["video"]
    lines = [
        f"Onlooker edge benchmark: {v['name']}, {v['frames']} frames {v['width']}x{v['height']} "
        f"@ {v['fps']:.3f} fps, decoded once, the same frames for every row "
        f"({report['rounds']} round(s) each)",
        machine_line(report["machine"]),
        "",
        f"{'row':<38} {'cores':>5} {'fps':>7} {'ms p50':>7} {'ms p95':>7} {'CPU ms/f':>8} "
        f"{'peak MB':>8} {'b/a':>5}",
    ]
    for row in report["rows"]:
        if "skipped" in row or "failed" in row:
            why = row.get("skipped") or row.get("failed")
            lines.append(f"{row['name']:<38} {row['cores']:>5}  skipped: {why}")
            continue
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else ""
        lines.append(
            f"{row['name']:<38} {row['cores']:>5} {row['fps']:>7.1f} {row['ms_p50']:>7.2f} "
            f"{row['ms_p95']:>7.2f} {row['cpu_ms_per_frame']:>8.2f} {row['peak_rss_mb']:>8.0f} "
            f"{ratio:>5}"
        )
    lines += [
        "",
        "fps from the summed time per frame; CPU: process CPU time (all threads) per frame;",
        "peak MB: the process's resident high-water mark during that pass (VmHWM).",
    ]
    if report.get("signals"):
        s = report["signals"]
        lines.append(
            f"signals: Onlooker published {s['messages']} messages of {len(s['kinds'])} kinds "
            f"({', '.join(s['kinds'])}) carrying {len(s['fields'])} distinct fields; "
            f"the peer returns {s['peer_fields']} per face (a box and 7 emotion scores)."
        )
    if report.get("peer_note"):
        lines.append(f"peer: {report['peer_note']}")
    if report.get("targets"):
        lines += ["", "targets:"]
        for t in report["targets"]:
            mark = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
            lines.append(f"  [{mark:>7}] {t['target']}: {t['measured']}")
    lines += ["", "One line to paste back (an issue, or docs/performance.md):", paste_line(report)]
    return "\n".join(lines)


def board_state() -> dict[str, str]:
    """Temperature and throttling at the end of the run, where the board reports them."""
    from onlooker.doctor import INFO, check_temperature, check_throttling

    found = {"temp": check_temperature(), "throttled": check_throttling()}
    return {k: f.detail.split(":")[0].split(" (")[0] for k, f in found.items() if f.status != INFO}


def paste_line(report: dict[str, Any]) -> str:
    """Everything needed to compare two machines, on one line (`onlooker-bench 1;` first)."""
    m, v = report["machine"], report["video"]
    fields = [
        "onlooker-bench 1",
        f"board={m.get('board') or '-'}",
        f"cpu={m['cpu']}",
        f"arch={m['arch']}",
        f"cpus={m['cpus']}",
        f"mem={m['memory_gb']}GB",
        f"os={m['os']}",
        f"python={m['python']}",
        f"mediapipe={m['versions'].get('mediapipe', '?')}",
        f"video={v['name']}:{v['frames']}x{v['width']}x{v['height']}",
    ]
    for row in report["rows"]:
        where = f"{row['key']}/{'all' if row['cores'] == 'all' else row['cores'] + 'core'}"
        if "fps" in row:
            fields.append(f"{where}={row['fps']:.1f}fps,p95={row['ms_p95']:.1f}ms")
        else:
            fields.append(f"{where}=skipped")
    fields += [f"{k}={val}" for k, val in (m.get("board_state") or {}).items()]
    return "; ".join(fields)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def find(name: str, cores: str) -> dict[str, Any] | None:
        for row in rows:
            if row["key"] == name and row["cores"] == cores and "fps" in row:
                return row
        return None

    where = {"all": "all cores", "1": "one core"}
    out = []
    for cores in ("all", "1"):
        b = find("pipeline:default", cores)
        if b:
            out.append({
                "target": f"pipeline ≥ {TARGET_PIPELINE_RATIO} × landmarker fps ({where[cores]})",
                "measured": f"{b['ratio']:.2f}",
                "met": b["ratio"] >= TARGET_PIPELINE_RATIO,
            })  # fmt: skip
    for cores in ("all", "1"):
        b, peer = find("pipeline:default", cores), find("peer", cores)
        if b and peer:
            ratio = b["fps"] / peer["fps"]
            out.append({
                "target": f"pipeline ≥ {TARGET_PEER_RATIO} × fer peer fps ({where[cores]})",
                "measured": f"{ratio:.2f} ({b['fps']:.1f} vs {peer['fps']:.1f} fps)",
                "met": ratio >= TARGET_PEER_RATIO,
            })  # fmt: skip
    one = find("pipeline:default", "1")
    if one:
        out.append({
            "target": f"pipeline ≥ {TARGET_ONE_CORE_FPS:.0f} fps on one core",
            "measured": f"{one['fps']:.1f} fps",
            "met": one["fps"] >= TARGET_ONE_CORE_FPS,
        })  # fmt: skip
    pi = find("pipeline:pi", "1")
    if one and pi:
        speedup = pi["fps"] / one["fps"]
        out.append({
            "target": f"pi profile ≥ {TARGET_PI_SPEEDUP} × default on one core",
            "measured": f"{speedup:.2f} ({pi['fps']:.1f} vs {one['fps']:.1f} fps)",
            "met": speedup >= TARGET_PI_SPEEDUP,
        })  # fmt: skip
    peaks = [r["peak_rss_mb"] for r in rows if r["key"].startswith("pipeline") and "fps" in r]
    if peaks:
        out.append({
            "target": f"agent resident memory < {TARGET_RSS_MB:.0f} MB",
            "measured": f"peak {max(peaks):.0f} MB",
            "met": max(peaks) < TARGET_RSS_MB,
        })  # fmt: skip
    return out


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Decode, run every configuration and the peer, and return the report."""
    from edge import assets

    video = Path(args.video) if Path(args.video).is_file() else assets.asset_path(args.video)
    model = assets.asset_path(assets.MODEL)
    workdir = Path(tempfile.mkdtemp(prefix="onlooker-bench-"))
    try:
        frames_path = workdir / "frames.npy"
        count, fps = decode_video(video, frames_path, args.frames)
        shape = np.load(frames_path, mmap_mode="r").shape
        report: dict[str, Any] = {
            "video": {"name": video.name, "frames": count, "fps": fps, "height": shape[1],
                      "width": shape[2]},
            "rounds": args.rounds,
            "machine": machine(),
            "rows": [],
        }  # fmt: skip
        configs = [(cores, "default") for cores in args.cores]
        configs += [("1", profile) for profile in args.profile if profile != "default"]
        for cores, profile in configs:
            spec = {
                "frames": str(frames_path), "model": str(model), "fps": fps,
                "max_faces": args.max_faces, "rounds": args.rounds, "profile": profile,
                "broker": args.broker,
            }  # fmt: skip
            log(f"running cores={cores} profile={profile} …")
            result = _child(["--child", json.dumps(spec)], cores)
            report["rows"] += _rows(result, cores, profile)
        if args.peer:
            python, why = ensure_peer(Path(args.peer_venv) if args.peer_venv else peer_dir(), log)
            if python is None:
                report["peer_note"] = f"skipped: {why}"
                log(f"peer skipped: {why}")
            for cores in args.cores if python else ():
                log(f"running the fer peer, cores={cores} …")
                result = run_peer(python, frames_path, cores)
                row = {"key": "peer", "name": "fer peer (Haar cascade + FER2013 CNN)",
                       "cores": cores}  # fmt: skip
                if "fps" in result:
                    row.update(
                        {
                            k: result[k]
                            for k in ("fps", "ms_p50", "ms_p95", "cpu_ms_per_frame", "peak_rss_mb")
                        }
                    )
                    report["peer_note"] = (
                        f"fer {result.get('version')} in {python.parent.parent}, FER(mtcnn=False), "
                        f"found a face in {result['faces']} of {result['frames']} frames"
                    )  # fmt: skip
                else:
                    row.update(result)
                report["rows"].append(row)
        pipeline = next((r for r in report["rows"] if r["key"] == "pipeline:default"
                         and "fields" in r), None)  # fmt: skip
        if pipeline:
            report["signals"] = {
                "messages": sum(pipeline["messages"].values()),
                "kinds": sorted(k for k in pipeline["messages"] if k != "heartbeat"),
                "fields": pipeline["fields"],
                "peer_fields": 1 + 7,
            }
        report["targets"] = targets(report["rows"])
        report["machine"]["load_end"] = _load()
        report["machine"]["board_state"] = board_state()
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _rows(result: dict[str, Any], cores: str, profile: str) -> list[dict[str, Any]]:
    label = "" if profile == "default" else f", --profile {profile}"
    names = {
        "landmarker": f"(a) Face Landmarker alone{' (ref.)' if label else ''}",
        "pipeline": f"(b) Onlooker whole pipeline{label}",
    }
    if "landmarker" not in result:
        why = {k: result[k] for k in ("skipped", "failed") if k in result}
        return [{"key": f"pipeline:{profile}", "name": names["pipeline"], "cores": cores, **why}]
    a, b = result["landmarker"], result["pipeline"]
    rows = [
        {"key": f"landmarker:{profile}", "name": names["landmarker"], "cores": cores, **a},
        {"key": f"pipeline:{profile}", "name": names["pipeline"], "cores": cores, **b,
         "ratio": b["fps"] / a["fps"]},
    ]  # fmt: skip
    return rows if profile == "default" else rows[1:]


# --- soak -----------------------------------------------------------------------------------


def soak_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The agent on the looping sample video at camera pace, against Mosquitto."""
    from broker.embedded import EmbeddedBroker
    from edge.agent import Agent, AgentConfig
    from edge.face import MediaPipeFaceLandmarker
    from edge.sources import VideoFileSource

    with EmbeddedBroker(prefer=spec["broker"]) as broker:
        source = VideoFileSource(spec["video"], loop=True, realtime=True)
        analyzer = MediaPipeFaceLandmarker(spec["model"], max_faces=spec["max_faces"])
        settings: dict[str, Any] = dict(
            agent_id="soak", broker_url=broker.url, consent="recorded-source", heartbeat_s=2.0,
            duration_s=spec["seconds"], max_visit_s=spec["max_visit_s"],
        )  # fmt: skip
        if spec["profile"] != "default":
            settings["profile"] = spec["profile"]
        agent = Agent(AgentConfig(**settings), source, analyzer)
        try:
            agent.run()
        finally:
            analyzer.close()
            source.close()
        stats = agent.publisher.stats()
    return {
        "frames": agent.frames,
        "dropped": getattr(source, "dropped", 0),
        "visits": agent.visits_started,
        "sent": stats["sent"],
        "unsent_at_stop": stats["unsent_at_stop"],
    }


def soak(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Sample the agent process's resident memory every `--sample` seconds for `--soak` s."""
    from edge import assets

    video = Path(args.video) if Path(args.video).is_file() else assets.asset_path(args.video)
    spec = {
        "video": str(video), "model": str(assets.asset_path(assets.MODEL)),
        "seconds": args.soak, "max_faces": args.max_faces, "profile": args.profile[0],
        "broker": args.broker, "max_visit_s": args.max_visit,
    }  # fmt: skip
    cmd = [sys.executable, "-m", "benchmarks.edge", "--soak-child", json.dumps(spec)]
    started = time.monotonic()
    child = subprocess.Popen(
        cmd, cwd=REPO, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.extend(child.stderr or ()), daemon=True)
    drain.start()
    samples: list[tuple[float, float]] = []
    while child.poll() is None:
        rss = rss_mb(child.pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        if len(samples) % max(1, int(60 / args.sample)) == 1:
            log(f"  {samples[-1][0]:6.0f} s  {samples[-1][1]:6.1f} MB")
        time.sleep(args.sample)
    out = (child.stdout.read() if child.stdout else "").splitlines()
    drain.join(timeout=5)
    lines = [line for line in out if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise SystemExit(f"soak child failed (exit {child.returncode}): {''.join(err)[-1500:]}")
    result = json.loads(lines[-1])
    warm = min(60.0, args.soak * 0.2)  # model load, first visit, allocator warm-up
    steady = [(t, m) for t, m in samples if t >= warm]
    ts, ms = np.array([s[0] for s in steady]), np.array([s[1] for s in steady])
    slope = float(np.polyfit(ts, ms, 1)[0]) * 60.0 if len(steady) > 2 else float("nan")
    window = max(1, len(steady) // 10)
    growth = float(ms[-window:].mean() - ms[:window].mean()) if len(steady) else float("nan")
    return {
        "seconds": args.soak,
        "machine": machine(),
        "video": video.name,
        "profile": args.profile[0],
        "samples": len(samples),
        "warmup_s": warm,
        "rss_start_mb": float(ms[:window].mean()) if len(steady) else float("nan"),
        "rss_end_mb": float(ms[-window:].mean()) if len(steady) else float("nan"),
        "rss_max_mb": max(m for _, m in samples) if samples else float("nan"),
        "growth_mb": growth,
        "slope_mb_per_min": slope,
        **result,
    }


def format_soak(s: dict[str, Any]) -> str:
    grows = s["growth_mb"] > max(5.0, 0.02 * s["rss_start_mb"])
    return "\n".join([
        f"Onlooker soak: the agent on {s['video']} looping at camera pace for {s['seconds']:.0f} s "
        f"(profile {s['profile']}), Mosquitto on loopback",
        machine_line(s["machine"]),
        f"frames {s['frames']} (dropped {s['dropped']} to keep pace), visits {s['visits']}, "
        f"messages {s['sent']}",
        f"resident memory: {s['rss_start_mb']:.1f} MB after {s['warmup_s']:.0f} s warm-up → "
        f"{s['rss_end_mb']:.1f} MB at the end (first vs last tenth of the steady samples), "
        f"max {s['rss_max_mb']:.1f} MB",
        f"growth {s['growth_mb']:+.1f} MB, trend {s['slope_mb_per_min']:+.2f} MB/min → "
        f"{'GROWS' if grows else 'no growth'} (threshold: 5 MB or 2 %); "
        f"{'under' if s['rss_max_mb'] < TARGET_RSS_MB else 'OVER'} {TARGET_RSS_MB:.0f} MB",
    ])  # fmt: skip


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.edge", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4",
                        help="video file or sample asset name")  # fmt: skip
    parser.add_argument("--frames", type=int, help="use only the first N frames")
    parser.add_argument("--rounds", type=int, default=2, help="alternating (a)/(b) passes")
    parser.add_argument("--cores", action="append", choices=("all", "1"),
                        help="all CPUs and/or one core (taskset -c 0); default both")  # fmt: skip
    parser.add_argument("--profile", action="append",
                        help="agent profile(s); non-default ones run on one core (default: "
                        "default and pi)")  # fmt: skip
    parser.add_argument("--max-faces", type=int, default=2)
    parser.add_argument("--broker", default="mosquitto", choices=("auto", "mosquitto", "amqtt"))
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip the fer peer")
    parser.add_argument("--peer-venv", help="where to install the peer (default: the cache)")
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="instead: run the agent this long and sample its resident memory",
    )
    parser.add_argument("--sample", type=float, default=1.0, help="soak sampling interval, s")
    parser.add_argument(
        "--max-visit",
        type=float,
        default=60.0,
        help="soak: a visit ends after this long, so visits come and go",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--soak-child", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cores = args.cores or ["all", "1"]
    args.profile = args.profile or ["default", "pi"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0
    if args.soak_child:
        print(json.dumps(soak_child(json.loads(args.soak_child))), flush=True)
        return 0
    if args.soak:
        report = soak(args, log=lambda m: print(m, file=sys.stderr, flush=True))
        print(format_soak(report))
    else:
        report = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
        print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
