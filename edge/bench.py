"""Benchmark expression backends on the same frames: speed, agreement and label stability.

    python -m edge.bench --model blendshapes --model fer-cnn --source WolfgangLanger_Pexels.mp4

The logic behind `onlooker bench`. A source that is not a path is looked up among the cached
sample assets by name.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from .expression import EmotionEstimate, ExpressionModel, ExpressionTracker, label_flips
from .face import FaceAnalyzer, FaceObservation
from .signals import main_face

logger = logging.getLogger(__name__)

CAMERA_FRAMES = 300
"""A webcam never ends: without --frames the benchmark stops after this many."""


@dataclass(frozen=True)
class Observation:
    """The landmarker's main face in one frame (None: no face), with the frame's time."""

    t_ms: int
    face: FaceObservation | None


@dataclass
class BackendResult:
    """One backend's run: time per frame and its raw and published labels, frame by frame."""

    name: str
    ms: list[float] = field(default_factory=list)  # estimate + tracker update, frames with a face
    raw: list[str | None] = field(default_factory=list)  # the backend's own label per frame
    published: list[str | None] = field(default_factory=list)  # the tracker's label per frame

    @property
    def p50(self) -> float:
        return percentile(self.ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.ms, 95)

    @property
    def raw_flips(self) -> int:
        return label_flips(self.raw)

    @property
    def published_flips(self) -> int:
        return label_flips(self.published)


@dataclass
class BenchReport:
    """Everything `onlooker bench` prints."""

    source: str
    frames: int
    faces: int
    landmarker_ms: list[float]
    backends: list[BackendResult]

    def fps(self, backend: BackendResult) -> float:
        """Frames per second of landmarker + this backend, from the mean time per frame."""
        per_frame = statistics.fmean(self.landmarker_ms or [0.0])
        per_frame += sum(backend.ms) / max(1, self.frames)
        return 1000.0 / per_frame if per_frame > 0 else float("inf")

    def agreement(self, a: BackendResult, b: BackendResult, published: bool = False) -> float:
        """Share of frames where both backends read a face and gave the same label."""
        xs, ys = (a.published, b.published) if published else (a.raw, b.raw)
        pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
        return sum(x == y for x, y in pairs) / len(pairs) if pairs else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear), NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _frames(source: str, max_frames: int | None) -> Iterator[tuple[np.ndarray, int, bool]]:
    """(rgb, t_ms, still) from a video, image folder or webcam, as fast as it decodes."""
    from .sources import open_source

    spec = _resolve(source)
    frames = open_source(spec, loop=False, realtime=False)
    if spec.isdigit() and max_frames is None:
        max_frames = CAMERA_FRAMES
    try:
        for i, frame in enumerate(frames.frames()):
            if max_frames is not None and i >= max_frames:
                return
            yield frame.image, frame.t_ms, frames.still
    finally:
        frames.close()


def _resolve(source: str) -> str:
    """A path as given, or the cached sample asset of that name."""
    if source.isdigit() or Path(source).expanduser().exists():
        return source
    from . import assets

    if source in assets.ASSETS:
        return str(assets.asset_path(source))
    return source  # open_source reports what is wrong with it


def _default_analyzer() -> FaceAnalyzer:
    from . import assets
    from .face import MediaPipeFaceLandmarker

    # Two faces, as the agent runs by default: MediaPipe tracks differently with one.
    return MediaPipeFaceLandmarker(assets.asset_path(assets.MODEL), max_faces=2)


def observe(
    source: str, analyzer: FaceAnalyzer | None = None, max_frames: int | None = None
) -> list[Observation]:
    """Run the landmarker once over a source and keep the main face of every frame."""
    own = analyzer is None
    analyzer = analyzer or _default_analyzer()
    try:
        return [
            Observation(t_ms, main_face(analyzer.analyze(rgb, t_ms, still=still)))
            for rgb, t_ms, still in _frames(source, max_frames)
        ]
    finally:
        if own:
            analyzer.close()


def track(
    observations: Sequence[Observation],
    model: ExpressionModel,
    tracker: ExpressionTracker | None = None,
    image: Callable[[int], np.ndarray | None] = lambda i: None,
) -> BackendResult:
    """Run one backend and a tracker over observed frames, timing estimate + update per frame."""
    tracker = tracker or ExpressionTracker()
    result = BackendResult(model.name)
    clock = time.perf_counter_ns
    for i, obs in enumerate(observations):
        t0 = clock()
        raw: EmotionEstimate | None = model.estimate(image(i), obs.face) if obs.face else None
        published = tracker.update(obs.t_ms / 1000.0, raw)
        elapsed = clock() - t0
        if obs.face is not None:
            result.ms.append(elapsed / 1e6)
        result.raw.append(raw.label if raw else None)
        result.published.append(published.label if published else None)
    return result


def run_bench(
    models: Sequence[str],
    source: str,
    max_frames: int | None = None,
    analyzer: FaceAnalyzer | None = None,
    tracker_factory: Callable[[], ExpressionTracker] = ExpressionTracker,
) -> BenchReport:
    """Each backend on the same frames in one run; the landmarker runs once per frame."""
    from .models import create_expression_model

    if not models:
        raise ValueError("name at least one model to benchmark")
    if len(set(models)) != len(models):
        raise ValueError(f"each model once, please: {list(models)}")
    backends = [create_expression_model(name) for name in models]
    trackers = [tracker_factory() for _ in backends]
    results = [BackendResult(name) for name in models]
    own = analyzer is None
    analyzer = analyzer or _default_analyzer()
    landmarker_ms: list[float] = []
    frames = faces = 0
    clock = time.perf_counter_ns
    try:
        for rgb, t_ms, still in _frames(source, max_frames):
            t0 = clock()
            face = main_face(analyzer.analyze(rgb, t_ms, still=still))
            landmarker_ms.append((clock() - t0) / 1e6)
            frames += 1
            faces += face is not None
            for backend, tracker, result in zip(backends, trackers, results, strict=True):
                t0 = clock()
                raw = backend.estimate(rgb, face) if face is not None else None
                published = tracker.update(t_ms / 1000.0, raw)
                if face is not None:
                    result.ms.append((clock() - t0) / 1e6)
                result.raw.append(raw.label if raw else None)
                result.published.append(published.label if published else None)
    finally:
        for backend in backends:
            backend.close()
        if own:
            analyzer.close()
    return BenchReport(str(source), frames, faces, landmarker_ms, results)


def format_report(report: BenchReport) -> str:
    """The report as the plain-text table `onlooker bench` prints."""
    lm = report.landmarker_ms
    lines = [
        f"source {report.source}: {report.frames} frames, {report.faces} with a face "
        f"({platform.machine()}, {os.cpu_count()} CPUs)",
        f"face landmarker: {percentile(lm, 50):.2f} ms p50, {percentile(lm, 95):.2f} ms p95",
        "",
        f"{'model':<16} {'fps':>7} {'ms p50':>8} {'ms p95':>8} {'raw flips':>10} "
        f"{'published flips':>16}",
    ]
    for b in report.backends:
        lines.append(
            f"{b.name:<16} {report.fps(b):>7.1f} {b.p50:>8.3f} {b.p95:>8.3f} "
            f"{b.raw_flips:>10} {b.published_flips:>16}"
        )
    lines.append("(fps: landmarker + model; ms: the model's estimate + tracker update)")
    if len(report.backends) > 1:
        lines += ["", "agreement on the label (frames where both read a face):"]
        for a, b in combinations(report.backends, 2):
            lines.append(
                f"  {a.name} vs {b.name}: {report.agreement(a, b):.0%} per frame, "
                f"{report.agreement(a, b, published=True):.0%} published"
            )
    return "\n".join(lines)


def step_timing(
    observations: Sequence[Observation], model: ExpressionModel, repeats: int = 3
) -> list[float]:
    """Milliseconds of estimate + tracker update per frame with a face, best of `repeats` runs."""
    best: list[float] | None = None
    for _ in range(repeats):
        ms = track(observations, model).ms
        if best is None or statistics.fmean(ms) < statistics.fmean(best):
            best = ms
    return best or []


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m edge.bench`: the same report `onlooker bench` prints."""
    parser = argparse.ArgumentParser(prog="python -m edge.bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(format_report(run_bench(args.model or ["blendshapes"], args.source, args.frames)))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `onlooker bench`."""
    from . import assets

    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="an expression model to benchmark; repeat to compare (default: blendshapes)",
    )
    parser.add_argument(
        "--source",
        default=assets.SAMPLE_VIDEO,
        help="video file, image folder, webcam index or sample asset name "
        f"(default {assets.SAMPLE_VIDEO})",
    )
    parser.add_argument("--frames", type=int, help="stop after this many frames")


if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    sys.exit(main())
