"""Expression backends scored on labelled stills: the logic behind `onlooker eval expression`.

    onlooker eval expression DIR [DIR ...] [--model A --model B ...] [--json FILE]

Each DIR holds one folder per class (`DIR/<label>/*.jpg|png`), named by any usual synonym
(happy/happiness/joy, sad/sadness, angry/anger, ...). Every image goes through the same Face
Landmarker and the same crop the agent uses; the landmarker runs once per image and every
backend reads its result. Accuracy and recall are over the faces found; faces not found are
counted apart (they are the landmarker's miss, the same for every backend).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .face import FaceAnalyzer, FaceObservation
from .signals import main_face

logger = logging.getLogger(__name__)

CLASSES = ("happy", "sad", "angry", "surprise", "fear", "disgust", "neutral", "contempt")
"""The class names the evaluation reports, in this order."""

SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("happy", "happiness", "joy", "joyful", "ha"), "happy"),
    **dict.fromkeys(("sad", "sadness", "unhappy", "sa"), "sad"),
    **dict.fromkeys(("angry", "anger", "mad", "an"), "angry"),
    **dict.fromkeys(("surprise", "surprised", "su"), "surprise"),
    **dict.fromkeys(("fear", "afraid", "scared", "fearful", "fe"), "fear"),
    **dict.fromkeys(("disgust", "disgusted", "di"), "disgust"),
    **dict.fromkeys(("neutral", "normal", "calm", "ne"), "neutral"),
    **dict.fromkeys(("contempt", "contemptuous", "co"), "contempt"),
}
"""Folder names (lower case) accepted for each class."""

FROM_EMOTION = {
    "joy": "happy",
    "sadness": "sad",
    "anger": "angry",
    "surprise": "surprise",
    "fear": "fear",
    "disgust": "disgust",
    "neutral": "neutral",
    "contempt": "contempt",
}
"""Onlooker's emotion vocabulary (edge.expression.EMOTIONS) to the evaluation's class names."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class EvalError(ValueError):
    """The labelled folder cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class LabelledImage:
    """One still and its true class."""

    path: Path
    label: str  # one of CLASSES


def class_of(folder_name: str) -> str | None:
    """The class a folder name stands for, or None if it is no known synonym."""
    return SYNONYMS.get(folder_name.strip().lower())


BASIC = CLASSES[:7]
"""Ekman's seven basic expressions (without contempt): `--classes basic`."""


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """`--classes`: "basic" or a comma list of class names or synonyms (None: every class)."""
    if not text:
        return None
    if text.strip().lower() == "basic":
        return BASIC
    out = []
    for word in text.split(","):
        label = class_of(word)
        if label is None:
            raise EvalError(f"unknown class {word!r}; known: {', '.join(CLASSES)} or 'basic'")
        out.append(label)
    return tuple(out)


def labelled_images(
    dirs: Iterable[str | os.PathLike[str]], classes: Sequence[str] | None = None
) -> list[LabelledImage]:
    """Every image under DIR/<label>/ for each DIR (only `classes` if given), sorted."""
    images: list[LabelledImage] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise EvalError(f"{root} is not a folder; expected DIR/<label>/*.jpg")
        found = 0
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            label = class_of(sub.name)
            if label is None:
                logger.warning("folder %s is no known class and is skipped", sub)
                continue
            if classes is not None and label not in classes:
                continue
            for path in sorted(sub.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                    images.append(LabelledImage(path, label))
                    found += 1
        if not found:
            known = ", ".join(sorted(SYNONYMS))
            raise EvalError(
                f"no labelled images in {root}: put them in folders named by class ({known})"
            )
    return images


@dataclass
class Observed:
    """One labelled still as the landmarker saw it: the RGB image and its main face (or None)."""

    item: LabelledImage
    image: np.ndarray | None
    face: FaceObservation | None


def observe(
    images: Sequence[LabelledImage],
    analyzer: FaceAnalyzer,
    progress: Callable[[str], None] | None = None,
) -> list[Observed]:
    """Run the landmarker once per still (IMAGE mode, as the agent treats a still)."""
    import cv2

    out = []
    for i, item in enumerate(images, 1):
        bgr = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if bgr is None:
            logger.warning("%s cannot be read as an image; counted as no face", item.path)
            out.append(Observed(item, None, None))
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        face = main_face(analyzer.analyze(rgb, 0, still=True))
        out.append(Observed(item, rgb, face))
        if progress is not None and (i % 100 == 0 or i == len(images)):
            progress(f"landmarker: {i}/{len(images)} images")
    return out


@dataclass
class BackendScore:
    """One backend's answers on the labelled stills."""

    name: str
    truth: list[str] = field(default_factory=list)  # faces found, true class
    answer: list[str] = field(default_factory=list)  # faces found, the backend's class
    no_face: int = 0
    ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """The figures `--json` writes for this backend (fractions 0-1)."""
        n = len(self.truth)
        present = [c for c in CLASSES if c in self.truth]
        recall = {}
        for c in present:
            idx = [i for i, t in enumerate(self.truth) if t == c]
            recall[c] = sum(self.answer[i] == c for i in idx) / len(idx)
        correct = sum(a == t for a, t in zip(self.answer, self.truth, strict=True))
        return {
            "accuracy": correct / n if n else 0.0,
            "balanced_accuracy": statistics.fmean(recall.values()) if recall else 0.0,
            "recall": recall,
            "neutral_share": self.answer.count("neutral") / n if n else 0.0,
            "no_face": self.no_face,
            "ms_p50": statistics.median(self.ms) if self.ms else 0.0,
            "n_faces": n,
            "confusion": self.confusion(),
        }

    def confusion(self) -> dict[str, dict[str, int]]:
        """Counts by true class (rows) and answered class (columns), classes present only."""
        rows = [c for c in CLASSES if c in self.truth]
        cols = [c for c in CLASSES if c in self.truth or c in self.answer]
        table = {r: dict.fromkeys(cols, 0) for r in rows}
        for t, a in zip(self.truth, self.answer, strict=True):
            table[t][a] += 1
        return table


def score_backend(name: str, model, observed: Sequence[Observed]) -> BackendScore:
    """Ask one backend about every still whose face was found; time each answer."""
    result = BackendScore(name)
    for obs in observed:
        if obs.face is None:
            result.no_face += 1
            continue
        forget = getattr(model, "forget", None)
        if forget is not None:
            forget()  # each still is a face of its own: nothing carries over from the last
        t0 = time.perf_counter()
        estimate = model.estimate(obs.image, obs.face)
        result.ms.append((time.perf_counter() - t0) * 1000.0)
        result.truth.append(obs.item.label)
        result.answer.append(FROM_EMOTION[estimate.label] if estimate is not None else "neutral")
    return result


def evaluate(
    dirs: Sequence[str | os.PathLike[str]],
    models: Sequence[str],
    analyzer: FaceAnalyzer,
    progress: Callable[[str], None] | None = None,
    classes: Sequence[str] | None = None,
) -> dict[str, object]:
    """Every named backend on the same stills; the report `--json` writes."""
    from .models import create_expression_model

    images = labelled_images(dirs, classes)
    observed = observe(images, analyzer, progress)
    truth = [o.item.label for o in observed]
    report: dict[str, object] = {
        "n": len(images),
        "dirs": [str(d) for d in dirs],
        "classes": {c: truth.count(c) for c in CLASSES if c in truth},
        "models": {},
    }
    for name in models:
        model = _one_core(create_expression_model, name)
        try:
            score = score_backend(name, model, observed)
        finally:
            model.close()
        report["models"][name] = score.summary()  # type: ignore[index]
        if progress is not None:
            progress(f"{name}: done")
    return report


def _one_core(create, name: str):
    """A backend limited to one thread where it takes the option (ms are one-core figures)."""
    try:
        return create(name, threads=1)
    except TypeError:
        return create(name)


def format_report(report: dict[str, object]) -> str:
    """The printed report: one block per backend."""
    classes = report["classes"]
    assert isinstance(classes, dict)
    n_faces = None
    lines = [
        f"{report['n']} labelled stills: "
        + ", ".join(f"{c} {k}" for c, k in classes.items())
        + f"; true neutral share {classes.get('neutral', 0) / max(1, report['n']):.0%}"
    ]
    models = report["models"]
    assert isinstance(models, dict)
    for name, s in models.items():
        n_faces = s["n_faces"]
        lines.append("")
        lines.append(
            f"== {name}: accuracy {s['accuracy']:.1%}, balanced {s['balanced_accuracy']:.1%}, "
            f"answers neutral {s['neutral_share']:.1%}, faces not found {s['no_face']}, "
            f"{s['ms_p50']:.2f} ms per face (p50, one core)"
        )
        lines.append("   recall: " + ", ".join(f"{c} {r:.0%}" for c, r in s["recall"].items()))
        confusion = s["confusion"]
        cols = list(next(iter(confusion.values())).keys()) if confusion else []
        width = max([len(c) for c in cols] + [8])
        lines.append(
            "   " + "true \\ said".ljust(12) + "".join(c[:width].rjust(width + 1) for c in cols)
        )
        for row, counts in confusion.items():
            lines.append(
                "   " + row.ljust(12) + "".join(str(counts[c]).rjust(width + 1) for c in cols)
            )
    if n_faces is not None:
        lines.append("")
        lines.append(f"(accuracy and recall over the {n_faces} stills with a face found)")
    return "\n".join(lines)


def write_json(report: dict[str, object], path: str | os.PathLike[str]) -> None:
    """Write the report as JSON, figures rounded to 4 places."""

    def rounded(v):
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, dict):
            return {k: rounded(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rounded(x) for x in v]
        return v

    Path(path).write_text(json.dumps(rounded(report), indent=2) + "\n", encoding="utf-8")


def progress_to_stderr(message: str) -> None:
    """Progress lines for long runs, kept off stdout so the report stays clean."""
    print(message, file=sys.stderr, flush=True)
