"""facex's CNN per face on one core: the weight-quantised file as shipped vs its float32 rewrite.

    python -m benchmarks.facex_speed [--video WolfgangLanger_Pexels.mp4] [--every 4] [--cpu 0]

The video is decoded and the Face Landmarker finds the faces once; each face is cut out as the
facex backend cuts it (the Haar-framed box from the landmarks). Then both models read the same
crops, one interpreter thread each, pinned to one CPU: the time per face is the backend's
`probabilities` (resize to 200x200 and the CNN), p50 and p95. The last lines say whether the
two agree: the share of crops with the same top label and the largest difference of any
probability.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.machine import cpu_name  # noqa: E402
from edge import assets  # noqa: E402
from edge.face import MediaPipeFaceLandmarker  # noqa: E402
from edge.models.facex import (  # noqa: E402
    FACEX_NAMES,
    MODEL_ASSET,
    QUANTISED_ASSET,
    FacexExpressionModel,
    face_box,
)
from edge.models.fer_cnn import crop_square  # noqa: E402
from edge.sources import VideoFileSource  # noqa: E402


def face_crops(video: str, every: int) -> list[np.ndarray]:
    """Grey face crops, framed as the facex backend frames them, from every n-th frame."""
    source = VideoFileSource(assets.asset_path(video), realtime=False)
    analyzer = MediaPipeFaceLandmarker(assets.asset_path(assets.MODEL))
    crops = []
    try:
        for frame in source.frames():
            faces = analyzer.analyze(frame.image, frame.t_ms)
            if frame.index % every or not faces:
                continue
            grey = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
            h, w = grey.shape
            crops += [crop_square(grey, face_box(f, w, h)).copy() for f in faces]
    finally:
        analyzer.close()
        source.close()
    return crops


def run(model: FacexExpressionModel, crops: list[np.ndarray], repeat: int):
    """Probabilities for every crop, and the seconds each call took (after one warm-up pass)."""
    for crop in crops[:5]:
        model.probabilities(crop)
    times, probs = [], []
    for r in range(repeat):
        for crop in crops:
            start = time.perf_counter()
            p = model.probabilities(crop)
            times.append(time.perf_counter() - start)
            if r == 0:
                probs.append(p)
    return np.array(probs), times


def main(argv: list[str] | None = None) -> None:
    """Print ms per face (p50, p95) for both files, their ratio, and how well they agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--every", type=int, default=4, help="use every n-th frame's faces")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: any one)")
    args = parser.parse_args(argv)

    crops = face_crops(args.video, args.every)
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    models = {
        "quantised": FacexExpressionModel(assets.asset_path(QUANTISED_ASSET), threads=1),
        "float32": FacexExpressionModel(assets.asset_path(MODEL_ASSET), threads=1),
    }
    results = {name: run(model, crops, args.repeat) for name, model in models.items()}
    sides = [c.shape[0] for c in crops]
    print(
        f"{args.video}: {len(crops)} face crops (every {args.every}th frame, "
        f"side {min(sides)}-{max(sides)} px), one core of {cpu_name()}"
    )
    ms = {}
    for name, (_, times) in results.items():
        ms[name] = 1000 * statistics.median(times)
        p95 = 1000 * sorted(times)[int(0.95 * (len(times) - 1))]
        print(f"  {name:9s} {ms[name]:6.2f} ms p50  {p95:6.2f} ms p95 per face")
    (pq, _), (pf, _) = results["quantised"], results["float32"]
    same = float(np.mean(pq.argmax(1) == pf.argmax(1)))
    diff = np.abs(pq - pf).max(1)
    labels = ", ".join(
        f"{FACEX_NAMES[i]} {n}" for i, n in enumerate(np.bincount(pf.argmax(1), minlength=7)) if n
    )
    print(
        f"facex ms per face p50, one core: quantised {ms['quantised']:.2f}, "
        f"float32 {ms['float32']:.2f} ({ms['quantised'] / ms['float32']:.2f}x faster)"
    )
    print(
        f"same top label on {100 * same:.1f}% of crops; largest probability difference per "
        f"crop: median {np.median(diff):.4f}, p95 {np.percentile(diff, 95):.4f}, "
        f"max {diff.max():.4f}"
    )
    print(f"float32 top labels: {labels}")


if __name__ == "__main__":
    main()
