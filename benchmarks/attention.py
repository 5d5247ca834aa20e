"""Per-frame cost of the attention tracker next to the Face Landmarker's own, on real frames.

    python -m benchmarks.attention [--video WolfgangLanger_Pexels.mp4] [--repeat 20]

The video is decoded and analysed once (the landmarker timed per frame); the observations are
kept, and then only `AttentionTracker.update` is timed over them, `--repeat` times.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

from edge import assets  # noqa: E402
from edge.attention import AttentionTracker  # noqa: E402
from edge.face import MediaPipeFaceLandmarker  # noqa: E402
from edge.sources import VideoFileSource  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """Print ms/frame of the landmarker and of the tracker, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    source = VideoFileSource(assets.asset_path(args.video), realtime=False)
    analyzer = MediaPipeFaceLandmarker(assets.asset_path(assets.MODEL))
    frames, model_s = [], []
    try:
        for frame in source.frames():
            start = time.perf_counter()
            faces = analyzer.analyze(frame.image, frame.t_ms)
            model_s.append(time.perf_counter() - start)
            frames.append(
                (frame.t_ms / 1000.0, faces, (frame.image.shape[1], frame.image.shape[0]))
            )
    finally:
        analyzer.close()
        source.close()

    update_s = []
    for _ in range(args.repeat):
        tracker = AttentionTracker()
        for t_s, faces, size in frames:
            start = time.perf_counter()
            tracker.update(t_s, faces, size)
            update_s.append(time.perf_counter() - start)
            tracker.drain_events()

    with_face = sum(1 for _, faces, _ in frames if faces)
    model_ms = 1000.0 * statistics.mean(model_s)
    update_ms = 1000.0 * statistics.mean(update_s)
    p99_ms = 1000.0 * sorted(update_s)[int(0.99 * (len(update_s) - 1))]
    print(f"{args.video}: {len(frames)} frames ({with_face} with a face), {platform.machine()}")
    print(f"face landmarker          {model_ms:8.3f} ms/frame (mean of one pass)")
    print(f"AttentionTracker.update  {update_ms:8.3f} ms/frame (mean of {args.repeat} passes)")
    print(f"AttentionTracker.update  {p99_ms:8.3f} ms/frame (99th percentile)")
    print(f"ratio update/landmarker  {update_ms / model_ms:8.4f}")


if __name__ == "__main__":
    main()
