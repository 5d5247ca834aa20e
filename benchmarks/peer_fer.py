"""The peer of benchmarks/edge.py: the `fer` package on the same decoded frames.

    <peer venv>/bin/python benchmarks/peer_fer.py FRAMES.npy [--cpus 0]

Runs inside the peer's own virtual environment (fer 25.10.3 on TensorFlow), never in
Onlooker's: it imports nothing from Onlooker. FER(mtcnn=False) finds faces with OpenCV's Haar
cascade and reads each with the FER2013 CNN (fer's default TF Lite model). Frames arrive as
RGB and are turned into the BGR that fer expects before the clock starts. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def read_frames(path: str):
    """Yield the frames one at a time into fresh buffers, never holding all of them."""
    import numpy as np

    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
        size = shape[1] * shape[2] * shape[3]
        for _ in range(shape[0]):
            yield np.frombuffer(bytearray(f.read(size)), dtype=np.uint8).reshape(shape[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", help="an .npy of RGB uint8 frames (n, h, w, 3)")
    parser.add_argument("--cpus", help="pin to these CPUs (comma-separated), like taskset")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})

    import logging

    import cv2
    import numpy as np

    warnings.filterwarnings("ignore")  # TensorFlow's deprecation notices, not ours to fix
    from fer import __version__
    from fer.fer import FER

    logging.getLogger("fer").setLevel(logging.WARNING)
    frames = read_frames(args.frames)
    detector = FER(mtcnn=False)
    detector.detect_emotions(cv2.cvtColor(next(read_frames(args.frames)), cv2.COLOR_RGB2BGR))

    ms: list[float] = []
    cpu_s = 0.0
    faces = 0
    for rgb in frames:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cpu0, t0 = time.process_time(), time.perf_counter()
        found = detector.detect_emotions(bgr)
        ms.append((time.perf_counter() - t0) * 1000.0)
        cpu_s += time.process_time() - cpu0
        faces += bool(found)
    total_s = sum(ms) / 1000.0
    print(
        json.dumps(
            {
                "version": __version__,
                "frames": len(ms),
                "faces": faces,
                "fps": len(ms) / total_s,
                "ms_p50": float(np.percentile(ms, 50)),
                "ms_p95": float(np.percentile(ms, 95)),
                "cpu_ms_per_frame": 1000.0 * cpu_s / len(ms),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
