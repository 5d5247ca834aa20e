"""Fit the `fusion` expression backend's head on labelled stills of a tuning half.

    python -m benchmarks.expression_fit TUNE_DIR [TUNE_DIR ...] [--check HELDOUT_DIR ...]

Each DIR is laid out as `onlooker eval expression` reads it (`DIR/<label>/*.jpg`). For every
still the Face Landmarker runs once (IMAGE mode, as the agent treats a still); the two CNNs
and the blendshapes give the features `edge.models.fusion.features` defines; a class-balanced
multinomial logistic regression with an L2 penalty is fitted by gradient descent (numpy only)
and written to `edge/models/fusion_head.json` with where it came from. Features are cached
beside the data (`--cache`), so a second fit takes seconds. With `--check`, the fitted head is
scored on held-out stills too; the tuning figures are printed for comparison, never as results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edge import assets
from edge.expression_eval import labelled_images, observe
from edge.face import MediaPipeFaceLandmarker
from edge.models import fusion

HEAD_PATH = Path(fusion.__file__).with_name("fusion_head.json")


def _key(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(fusion.FEATURE_VERSION.encode())
    return h.hexdigest()[:16]


def collect(dirs: list[str], cache: Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features, class indices, paths) for every still with a face found, cached."""
    images = labelled_images(dirs)
    key = _key([i.path for i in images])
    if cache is not None:
        cached = cache / f"fusion-features-{key}.npz"
        if cached.exists():
            data = np.load(cached, allow_pickle=False)
            return data["x"], data["y"], [str(p) for p in data["paths"]]
    analyzer = MediaPipeFaceLandmarker(assets.asset_path(assets.MODEL))
    parts = fusion.FeatureParts(threads=1)
    xs, ys, paths = [], [], []
    t0 = time.monotonic()
    try:
        observed = observe(images, analyzer, progress=lambda m: print(m, file=sys.stderr))
        for i, obs in enumerate(observed, 1):
            if obs.face is None or _emotion(obs.item.label) not in fusion.CLASSES:
                continue  # no face, or contempt: too few stills to learn it
            xs.append(parts.features(obs.image, obs.face))
            ys.append(fusion.CLASSES.index(_emotion(obs.item.label)))
            paths.append(str(obs.item.path))
            if i % 200 == 0:
                print(
                    f"features: {i}/{len(observed)} ({time.monotonic() - t0:.0f} s)",
                    file=sys.stderr,
                )
    finally:
        analyzer.close()
        parts.close()
    x, y = np.array(xs, dtype=np.float64), np.array(ys, dtype=np.int64)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"fusion-features-{key}.npz", x=x, y=y, paths=np.array(paths))
    return x, y, paths


def _emotion(label: str) -> str:
    from edge.expression_eval import FROM_EMOTION

    return {v: k for k, v in FROM_EMOTION.items()}[label]


def person_of(path: str) -> str:
    """The person a still shows: the file name up to `__` (the layout of the labelled sets)."""
    name = Path(path).name
    return name.split("__")[0] if "__" in name else name


def person_weights(y: np.ndarray, people: list[str]) -> np.ndarray:
    """1 / (that person's stills of that class): each person counts once per class."""
    counts = Counter(zip(people, y.tolist(), strict=True))
    return np.array([1.0 / counts[(p, c)] for p, c in zip(people, y.tolist(), strict=True)])


def fit(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    people: list[str] | None = None,
    steps: int = 3000,
    lr: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardise, then class- (and person-) balanced softmax regression: (mean, scale, W, b)."""
    k = len(fusion.CLASSES)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    n, d = z.shape
    # One person with 41 stills of a class must not teach the class alone: each person
    # counts once per class; then every class present weighs the same in the loss.
    base = person_weights(y, people) if people is not None else np.ones(n)
    counts = np.bincount(y, weights=base, minlength=k)
    present = counts > 0
    sample_w = np.where(present[y], base / np.maximum(counts[y], 1e-12), 0.0)
    sample_w *= n / sample_w.sum()
    onehot = np.eye(k)[y]
    w = np.zeros((d, k))
    b = np.zeros(k)
    b[~present] = -10.0  # a class with no stills is never answered
    for _ in range(steps):
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_w[:, None] / n
        w -= lr * (z.T @ g + l2 * w)
        b[present] -= lr * g.sum(axis=0)[present]
    return mean, scale, w, b


def predict(head: dict, x: np.ndarray) -> np.ndarray:
    """Class indices from a head as saved."""
    z = (x - np.array(head["mean"])) / np.array(head["scale"])
    return np.argmax(z @ np.array(head["weights"]) + np.array(head["bias"]), axis=1)


def figures(y: np.ndarray, answer: np.ndarray) -> str:
    """Accuracy, balanced accuracy, recall per class, neutral share."""
    recalls = {}
    for c in np.unique(y):
        recalls[fusion.CLASSES[c]] = float(np.mean(answer[y == c] == c))
    neutral = fusion.CLASSES.index("neutral")
    return (
        f"accuracy {np.mean(answer == y):.1%}, balanced {np.mean(list(recalls.values())):.1%}, "
        f"neutral answered {np.mean(answer == neutral):.1%} (true {np.mean(y == neutral):.1%}); "
        + ", ".join(f"{c} {r:.0%}" for c, r in recalls.items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", metavar="TUNE_DIR")
    parser.add_argument("--check", nargs="*", default=[], metavar="HELDOUT_DIR")
    parser.add_argument(
        "--l2",
        type=float,
        default=0.1,
        help="L2 penalty (default 0.1: the best of 0.01/0.1/1 in a 5-fold cross-validation "
        "by person on the tuning half, scored with each person counted once)",
    )
    parser.add_argument(
        "--cache", type=Path, default=assets.cache_dir() / "fit", help="feature cache folder"
    )
    parser.add_argument("--out", type=Path, default=HEAD_PATH, help="where the head is written")
    parser.add_argument("--dry-run", action="store_true", help="print figures, write nothing")
    args = parser.parse_args(argv)
    x, y, paths = collect(args.dirs, args.cache)
    mean, scale, w, b = fit(x, y, args.l2, people=[person_of(p) for p in paths])
    head = {
        "feature_version": fusion.FEATURE_VERSION,
        "classes": list(fusion.CLASSES),
        "features": fusion.feature_names(),
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "weights": w.round(6).tolist(),
        "bias": b.round(6).tolist(),
        "fitted_on": {
            "dirs": [Path(d).as_posix() for d in args.dirs],
            "stills": int(len(y)),
            "per_class": {
                fusion.CLASSES[c]: int(n) for c, n in enumerate(np.bincount(y, minlength=7)) if n
            },
            "l2": args.l2,
            "weights": "each person once per class, each class equal",
            "command": "python -m benchmarks.expression_fit " + " ".join(args.dirs),
        },
    }
    print("tuning (fitted on, not a result):", figures(y, predict(head, x)))
    if args.check:
        xh, yh, _ = collect(args.check, args.cache)
        print("held out:", figures(yh, predict(head, xh)))
    if not args.dry_run:
        args.out.write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")
        print(f"head written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
