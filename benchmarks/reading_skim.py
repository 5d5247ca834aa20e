"""Which per-page gaze figure tells skimming from reading: the study behind the skim verdict.

    python -m benchmarks.reading_skim [--data ../shared/data/reading]

On the webqamgaze pages (information seeking `is` against normal reading `nr`), AUC of each
candidate score as it is (absolute), minus the median of all the reader's pages (relative,
after the fact) and minus the median of the reader's earlier pages (live); logistic
combinations fitted on the tuning half only; and two checks that a score judges the reader,
not the tracker: the same lab readings (drift) at 4 deg against 1 deg of webcam noise, and
normal-reading pages late in a session against early ones (time alone). docs/reading.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from benchmarks.reading_eval import (
    SEED,
    WebcamNoise,
    auc,
    data_dir,
    eval_webqamgaze,
    load_drift,
    load_webqamgaze,
    missing_data,
    run_gaze,
    webcam_samples,
)
from edge.reading import GazeSummary

RUN_RANGE = 0.06
"""A 'fixation run' lasts while the smoothed x stays within this many text widths."""


def fixation_runs(t: np.ndarray, x: np.ndarray, smooth_s: float = 0.2) -> tuple[float, float]:
    """Runs per second of gaze and the median step between raw samples (text widths), from the
    horizontal gaze x smoothed over `smooth_s` as the estimator smooths it."""
    keep = ~np.isnan(x)
    t, x = t[keep], x[keep]
    if t.size < 3:
        return 0.0, 0.0
    sums = np.concatenate([[0.0], np.cumsum(x)])
    runs, lo, hi, j, seen = 1, x[0], x[0], 0, 0.0
    for i in range(1, t.size):
        gap = t[i] - t[i - 1]
        while t[j] < t[i] - smooth_s:
            j += 1
        xs = (sums[i + 1] - sums[j]) / (i + 1 - j)
        if gap > 0.5:
            runs, lo, hi = runs + 1, xs, xs
            continue
        seen += gap
        lo, hi = min(lo, xs), max(hi, xs)
        if hi - lo > RUN_RANGE:
            runs, lo, hi = runs + 1, xs, xs
    return runs / max(seen, 1e-6), float(np.median(np.abs(np.diff(x))))


def parts(s: GazeSummary) -> dict[str, float]:
    """The skim score's parts as shares of the observed time."""
    obs = max(s.observed_s, 1e-6)
    return {"forward": s.forward_s / obs, "jump": s.jump_s / obs, "scan": s.scan_sweeps / obs}


def relative(values: np.ndarray, people: np.ndarray, live: bool = False,
             prior: float = 0.0) -> np.ndarray:  # fmt: skip
    """Each page minus the median of the reader's pages (all of them, or only earlier ones
    with `prior` as the first)."""
    out = np.empty_like(values)
    for person in set(people.tolist()):
        idx = np.flatnonzero(people == person)
        if live:
            for k, i in enumerate(idx):
                out[i] = values[i] - np.median(np.r_[prior, values[idx[:k]]])
        else:
            out[idx] = values[idx] - np.median(values[idx])
    return out


def logistic(x: np.ndarray, y: np.ndarray, lam: float) -> Callable[[np.ndarray], np.ndarray]:
    """L2-penalised logistic regression on standardised columns (Newton steps)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.column_stack([np.ones(len(x)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    penalty = lam * np.diag(np.r_[0.0, np.ones(z.shape[1] - 1)])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        w -= np.linalg.solve(hessian, z.T @ (p - y) + penalty @ w)
    return lambda b: np.column_stack([np.ones(len(b)), (b - mu) / sd]) @ w


def fit_on_tune(x: np.ndarray, y: np.ndarray, tune: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Scores of a logistic model fitted on the tuning half, its penalty chosen by 5-fold
    cross-validation over the tuning half's people."""
    tune_people = sorted(set(people[tune].tolist()))
    folds = [set(tune_people[k::5]) for k in range(5)]

    def cv(lam: float) -> float:
        s = np.full(len(x), np.nan)
        for fold in folds:
            test = tune & np.isin(people, list(fold))
            s[test] = logistic(x[tune & ~test], y[tune & ~test], lam)(x[test])
        return auc(s[tune & y], s[tune & ~y])

    best = max((0.1, 1.0, 10.0, 100.0), key=cv)
    return logistic(x[tune], y[tune], best)(x)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table of candidate skim scores and the two tracker checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with drift/ and webqamgaze/")
    args = parser.parse_args(argv)
    path = data_dir(args.data)
    why = missing_data(path)
    if why:
        print(why, file=sys.stderr)
        return 2
    results = eval_webqamgaze(load_webqamgaze(path))
    y = np.array([r.trial.condition == "is" for r in results])
    tune = np.array([r.trial.tune for r in results])
    people = np.array([r.trial.participant for r in results])
    runs = np.array([fixation_runs(r.trial.t_s, r.trial.x_norm) for r in results])
    scores = {
        "skim score (the product's)": np.array([r.summary.skim_score for r in results]),
        "time along a line (share, reversed)": -np.array(
            [parts(r.summary)["forward"] for r in results]
        ),
        "time jumping right (share)": np.array([parts(r.summary)["jump"] for r in results]),
        "leftward jumps ending no line (per s)": np.array(
            [parts(r.summary)["scan"] for r in results]
        ),
        "not reading (share of time)": np.array([1 - r.summary.reading_fraction for r in results]),
        f"fixation runs per s (smoothed x within {RUN_RANGE} widths)": runs[:, 0],
        "median step between raw samples": runs[:, 1],
        "page-turn ln(wpm)": np.log([r.trial.gt_wpm for r in results]),
    }

    def a(v: np.ndarray, half: np.ndarray) -> float:
        return auc(v[half & y], v[half & ~y])

    print("## Candidate skim scores, webqamgaze (is against nr), AUC held-out / tune\n")
    print("| score | absolute | minus the reader's median (after the fact) "
          "| minus the earlier pages' median (live) |")  # fmt: skip
    print("| --- | --- | --- | --- |")
    rel = {}
    for name, v in scores.items():
        rel[name] = relative(v, people)
        live = relative(v, people, live=True, prior=float(np.median(v[tune])))
        print(
            f"| {name} | {a(v, ~tune):.2f} / {a(v, tune):.2f} | {a(rel[name], ~tune):.2f} / "
            f"{a(rel[name], tune):.2f} | {a(live, ~tune):.2f} / {a(live, tune):.2f} |"
        )
    names = list(scores)
    combos = {
        "the skim score's three parts": names[1:4],
        "skim score + fixation runs": [names[0], names[5]],
        "skim score + page-turn ln(wpm)": [names[0], names[7]],
        "every figure above": names,
        "every figure but the two tracker-noise ones": [n for n in names if n not in names[5:7]],
    }
    print("\nLogistic combinations fitted on the tuning half (penalty by 5-fold CV over its "
          "people), AUC held-out / tune:\n")  # fmt: skip
    print("| combination | absolute | relative (after the fact) |")
    print("| --- | --- | --- |")
    for label, cols in combos.items():
        fitted = {}
        for kind, source in (("abs", scores), ("rel", rel)):
            x = np.column_stack([source[c] for c in cols])
            fitted[kind] = fit_on_tune(x, y, tune, people)
        print(
            f"| {label} | {a(fitted['abs'], ~tune):.2f} / {a(fitted['abs'], tune):.2f} "
            f"| {a(fitted['rel'], ~tune):.2f} / {a(fitted['rel'], tune):.2f} |"
        )

    # Does a score judge the reader or the tracker?
    position = np.zeros(len(results), int)
    seen: Counter = Counter()
    for i, r in enumerate(results):
        position[i] = seen[(r.trial.participant, r.trial.condition)]
        seen[(r.trial.participant, r.trial.condition)] += 1
    late = ~y & np.isin(position, [3, 4])
    early = ~y & np.isin(position, [1, 2])
    drift = load_drift(path)
    noisy: dict[float, list[tuple[float, float, float]]] = {1.0: [], 4.0: []}
    for level, rows in noisy.items():
        for trial in drift:
            rng = np.random.default_rng([SEED, int(trial.trial_id.split("_")[-1]), int(level * 10)])
            t, x = webcam_samples(trial, WebcamNoise(noise_deg=level), rng)
            s = run_gaze(t, x, trial.words / trial.lines, trial.lines)
            rows.append((s.skim_score, *fixation_runs(t, x)))
    print("\nReader or tracker? AUC of the same lab readings (drift, 48 pages, all reading) at "
          "4 deg against 1 deg of webcam noise (0.5: the score ignores the noise); AUC of "
          "normal-reading pages 4-5 against pages 2-3 of the same reader, relative scores "
          "(time alone; in this data `is` pages always come after `nr` pages):\n")  # fmt: skip
    print("| score | 4 deg vs 1 deg, same readings | late vs early normal reading |")
    print("| --- | --- | --- |")
    for k, name in ((0, names[0]), (1, names[5]), (2, names[6])):
        hi = [row[k] for row in noisy[4.0]]
        lo = [row[k] for row in noisy[1.0]]
        r = rel[name]
        print(f"| {name} | {auc(hi, lo):.2f} | {auc(r[late], r[early]):.2f} |")
    order = Counter(
        "".join(
            "I" if r.trial.condition == "is" else "N" for r in results if r.trial.participant == p
        )
        for p in sorted(set(people.tolist()))
    )
    nr_first = sum(n for seq, n in order.items() if "IN" not in seq)
    print(
        f"\nReaders whose pages in file order are all `nr` before all `is`: {nr_first} of "
        f"{sum(order.values())}."
    )
    if not math.isfinite(a(scores[names[0]], ~tune)):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
