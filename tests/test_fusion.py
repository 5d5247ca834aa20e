"""The default expression backend: facex + FER2013 CNNs + blendshapes through a fitted head."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.expression import EMOTIONS, ExpressionTracker, label_flips
from edge.models import DEFAULT_EXPRESSION_MODEL, create_expression_model, fusion
from edge.models.fusion import FusionExpressionModel, load_head

pytestmark = pytest.mark.integration


class Clock:
    """A hand-driven clock for the CNN's rate limit (the seam; the models are real)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def faces(landmarker, sample):
    out = {}
    for name in ("0-f15-hao-ph.jpg", "0-f1-su-ph.jpg", "single_face.jpg", "15-f13-anc-ph.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(sample(name))), cv2.COLOR_BGR2RGB)
        (face,) = landmarker.analyze(rgb, 0, still=True)
        out[name] = (rgb, face)
    return out


def test_fusion_is_the_default_backend():
    assert DEFAULT_EXPRESSION_MODEL == "fusion"


def test_the_head_records_what_it_was_fitted_on():
    head = load_head()
    fitted = head["fitted_on"]
    assert all("tune" in d for d in fitted["dirs"]), "the head must be fitted on tuning halves"
    assert fitted["stills"] >= 500
    assert set(fitted["per_class"]) == set(fusion.CLASSES)
    assert len(head["features"]) == len(fusion.feature_names())


@pytest.mark.parametrize(
    "name, label",
    [("0-f15-hao-ph.jpg", "joy"), ("single_face.jpg", "joy"), ("0-f1-su-ph.jpg", "surprise")],
)
def test_clear_posed_faces_are_read(faces, name, label):
    model = FusionExpressionModel(cnn_interval_s=0)
    try:
        estimate = model.estimate(*faces[name])
    finally:
        model.close()
    assert estimate.label == label, estimate.scores
    assert set(estimate.scores) == set(EMOTIONS) and estimate.scores["contempt"] == 0.0
    assert sum(estimate.scores.values()) == pytest.approx(1.0)
    # The reasons are the action units measured in the same face.
    assert estimate.reasons and estimate.reasons[0].action_unit.startswith("AU")


def test_the_cnns_run_at_most_once_per_interval_and_again_after_forget(faces, monkeypatch):
    clock = Clock()
    model = FusionExpressionModel(cnn_interval_s=0.5, clock=clock)
    calls = []
    real = model._parts.cnn_features
    monkeypatch.setattr(model._parts, "cnn_features", lambda *a: calls.append(1) or real(*a))
    happy, surprised = faces["0-f15-hao-ph.jpg"], faces["0-f1-su-ph.jpg"]
    try:
        model.estimate(*happy)
        for _ in range(10):  # a third of a second of frames: the CNNs' answer is reused
            clock.t += 0.033
            model.estimate(*happy)
        assert len(calls) == 1
        # Between CNN runs the blendshapes still move the answer: the surprised face's
        # blendshapes with the happy face's CNN output no longer read as plain joy.
        mixed = model.estimate(surprised[0], surprised[1])
        alone = FusionExpressionModel(cnn_interval_s=0)
        try:
            pure = alone.estimate(*happy)
        finally:
            alone.close()
        assert mixed.scores["joy"] < pure.scores["joy"]
        clock.t += 0.5
        model.estimate(*happy)
        assert len(calls) == 2
        model.forget()
        model.estimate(*happy)
        assert len(calls) == 3
    finally:
        model.close()


def test_a_head_that_does_not_fit_is_a_clear_error(tmp_path):
    head = load_head()
    bad = tmp_path / "head.json"
    bad.write_text(json.dumps({**head, "feature_version": "fusion-0"}))
    with pytest.raises(ValueError, match="refit it"):
        FusionExpressionModel(head_path=bad)
    head["weights"] = np.zeros((3, 7)).tolist()
    bad.write_text(json.dumps(head))
    with pytest.raises(ValueError, match="shapes"):
        FusionExpressionModel(head_path=bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="cannot read the fusion head"):
        FusionExpressionModel(head_path=bad)


def test_the_default_backend_tracks_the_sample_video_steadily(sample, landmarker):
    from edge import bench

    observations = bench.observe(str(sample("WolfgangLanger_Pexels.mp4")), landmarker)
    model = create_expression_model()
    tracker = ExpressionTracker()
    cap = cv2.VideoCapture(str(sample("WolfgangLanger_Pexels.mp4")))
    published = []
    try:
        for obs in observations:
            ok, bgr = cap.read()
            assert ok
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            raw = model.estimate(rgb, obs.face) if obs.face is not None else None
            out = tracker.update(obs.t_ms / 1000, raw)
            published.append(out.label if out is not None else None)
    finally:
        cap.release()
        model.close()
    seen = [p for p in published if p is not None]
    assert len(seen) >= 400
    flips = label_flips(seen)
    print(f"published labels: {sorted(set(seen))}, {flips} flips over {len(seen)} frames")
    assert flips <= 10  # a talking face is not a new emotion every second


FACES = Path(os.environ.get("ONLOOKER_FACES", Path(__file__).parents[1].parent / "data" / "faces"))
HELD_OUT = [FACES / s / "heldout" for s in ("muxspace", "london", "yale")]


def test_the_default_meets_issue_12s_targets_on_held_out_faces(landmarker):
    """On labelled faces no one tuned on (docs/expression-data.md), the held-out halves."""
    from edge.expression_eval import BASIC, evaluate

    missing = [str(d) for d in HELD_OUT if not d.is_dir()]
    if missing:
        pytest.skip(
            f"labelled faces not found ({', '.join(missing)}): build them beside the checkout "
            "as docs/expression-data.md says, or set ONLOOKER_FACES"
        )
    report = evaluate(HELD_OUT, ["fusion"], landmarker, classes=BASIC)
    s = report["models"]["fusion"]
    true_neutral = report["classes"]["neutral"] / report["n"]
    print(json.dumps({k: s[k] for k in ("accuracy", "balanced_accuracy", "recall")}, indent=1))
    assert s["accuracy"] >= 0.65
    assert s["balanced_accuracy"] >= 0.60
    assert min(s["recall"].values()) >= 0.30, s["recall"]
    assert s["neutral_share"] <= true_neutral + 0.10
