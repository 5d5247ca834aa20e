"""The model registry, entry-point backends, the fer-cnn backend and the benchmark."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

from conftest import IN_CI, require
from edge import bench, models
from edge.expression import EMOTIONS, ExpressionModel
from edge.face import MediaPipeFaceLandmarker
from edge.models.blendshapes import BlendshapeExpressionModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "onlooker-example-backend"
FIVE = {
    "0-f1-su-ph.jpg": "surprise",
    "0-f15-hao-ph.jpg": "joy",
    "15-f13-anc-ph.jpg": "anger",
    "45-m7-di-ph.jpg": "disgust",
    "single_face.jpg": "joy",
}


@pytest.fixture(autouse=True)
def fresh_registry():
    """Every test sees the entry points installed at that moment."""
    models.refresh()
    yield
    models.refresh()


@pytest.fixture(scope="module")
def posed(model_path, sample):
    landmarker = MediaPipeFaceLandmarker(model_path)
    out = {}
    for name in FIVE:
        rgb = cv2.cvtColor(cv2.imread(str(sample(name))), cv2.COLOR_BGR2RGB)
        out[name] = (rgb, landmarker.analyze(rgb, 0, still=True)[0])
    landmarker.close()
    return out


def fake_distribution(root: Path, name: str, entry_points: dict[str, str], modules=None) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info with entry points."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [f"{key} = {value}" for key, value in entry_points.items()]
    (info / "entry_points.txt").write_text("[onlooker.models]\n" + "\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


# --- the registry ---------------------------------------------------------------------------


def test_built_in_models_are_listed_with_what_they_output():
    infos = {m.name: m for m in models.available_models()}
    assert infos["blendshapes"].kind == "expression" and infos["blendshapes"].available
    assert infos["blendshapes"].speed == "fast" and "emotions" in infos["blendshapes"].outputs
    assert infos["mediapipe"].kind == "face" and infos["mediapipe"].speed == "medium"
    assert infos["fer-cnn"].kind == "expression"
    assert [m.name for m in models.available_models("face")] == ["mediapipe"]
    assert models.DEFAULT_EXPRESSION_MODEL == "fusion"
    assert infos["fusion"].kind == "expression" and infos["fusion"].available


def test_an_unknown_name_is_a_value_error_naming_the_known_ones():
    known = r"unknown expression model 'nope'.*blendshapes, facex, fer-cnn"
    with pytest.raises(ValueError, match=known):
        models.create_expression_model("nope")
    with pytest.raises(ValueError, match="known face models: mediapipe"):
        models.create_face_analyzer("blendshapes")
    with pytest.raises(ValueError, match="unknown model kind"):
        models.register("x", BlendshapeExpressionModel, kind="voice")


def test_create_by_name_gives_working_backends(posed):
    model = models.create_expression_model("blendshapes")
    assert isinstance(model, ExpressionModel)
    assert model.estimate(*posed["0-f15-hao-ph.jpg"]).label == "joy"


def test_a_registered_factory_is_created_with_its_arguments():
    models.register("strict-blendshapes", lambda **kw: BlendshapeExpressionModel(**kw))
    try:
        model = models.create_expression_model("strict-blendshapes", call_at=0.4)
        assert model.call_at == 0.4
    finally:
        models.unregister("strict-blendshapes")
    with pytest.raises(ValueError):
        models.create_expression_model("strict-blendshapes")


def test_a_broken_entry_point_is_listed_unavailable_with_the_reason(tmp_path, monkeypatch):
    fake_distribution(
        tmp_path,
        "broken-backends",
        {
            "missing-module": "onlooker_no_such_module:Model",
            "heavy-import": "heavy_backend:Model",
        },
        {"heavy_backend": "import onlooker_no_such_heavy_library\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    infos = {m.name: m for m in models.available_models()}
    missing, heavy = infos["missing-module"], infos["heavy-import"]
    assert not missing.available and "onlooker_no_such_module" in missing.reason
    assert not heavy.available and "onlooker_no_such_heavy_library" in heavy.reason
    assert missing.origin == "broken-backends 0.1"
    assert infos["blendshapes"].available  # one broken plugin breaks nothing else
    with pytest.raises(models.ModelUnavailableError, match="onlooker_no_such_heavy_library"):
        models.create_expression_model("heavy-import")


def test_fer_cnn_is_unavailable_not_a_crash_without_ai_edge_litert(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.delitem(sys.modules, "edge.models.fer_cnn", raising=False)
    models.refresh()
    info = {m.name: m for m in models.available_models()}["fer-cnn"]
    assert not info.available and "ai_edge_litert" in info.reason
    with pytest.raises(models.ModelUnavailableError, match="ai_edge_litert"):
        models.create_expression_model("fer-cnn")


# --- the example backend, pip-installed ----------------------------------------------------


@pytest.fixture(scope="session")
def example_installed(tmp_path_factory) -> Path:
    """examples/onlooker-example-backend installed by pip into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds.
    source = tmp_path_factory.mktemp("example") / EXAMPLE.name
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(EXAMPLE, source, ignore=ignore)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    if can_build_here():
        cmd.append("--no-build-isolation")  # no network needed
    done = subprocess.run([*cmd, str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def can_build_here() -> bool:
    """Whether this environment's setuptools can build a wheel without fetching anything."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    # setuptools carries bdist_wheel itself from 70.1; before that it needs `wheel`.
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_the_example_backend_is_found_and_created_by_name(example_installed, monkeypatch, posed):
    monkeypatch.syspath_prepend(str(example_installed))
    info = {m.name: m for m in models.available_models()}["example-mouth"]
    assert info.available and info.kind == "expression" and info.speed == "fast"
    assert info.origin == "onlooker-example-backend 0.1.0"
    model = models.create_expression_model("example-mouth")
    happy = model.estimate(*posed["0-f15-hao-ph.jpg"])
    assert happy.label == "joy" and happy.reasons[0].action_unit == "AU12 lip corner puller"
    assert set(happy.scores) == set(EMOTIONS)
    surprised = model.estimate(*posed["0-f1-su-ph.jpg"])
    assert surprised.label == "surprise"


def test_the_example_backend_works_in_a_fresh_interpreter(example_installed):
    code = (
        "from edge.models import create_expression_model, available_models\n"
        "m = create_expression_model('example-mouth')\n"
        "print(type(m).__module__, [i.name for i in available_models() if i.available])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(example_installed), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "onlooker_example_backend" in done.stdout and "example-mouth" in done.stdout


# --- fer-cnn -----------------------------------------------------------------------------


def need_litert() -> None:
    require(
        importlib.util.find_spec("ai_edge_litert") is not None,
        "ai-edge-litert is not installed (pip install ai-edge-litert); fer-cnn cannot run",
    )


def test_both_backends_on_the_five_posed_faces(posed):
    need_litert()
    fer = models.create_expression_model("fer-cnn")
    facs = models.create_expression_model("blendshapes")
    fusion = models.create_expression_model("fusion", cnn_interval_s=0)
    facex = models.create_expression_model("facex")
    rows = [
        "| image | posed | fusion (default) | facex | blendshapes "
        "| fer-cnn (landmarker crop) | fer-cnn (cascade) |"
    ]
    got = {}
    for name, posed_as in FIVE.items():
        rgb, face = posed[name]
        cells = []
        pairs = ((fusion, face), (facex, face), (facs, face), (fer, face), (fer, None))
        for model, f in pairs:
            e = model.estimate(rgb, f)
            cells.append("no face found" if e is None else f"{e.label} {e.score:.2f}")
            if e is not None:
                assert set(e.scores) == set(EMOTIONS) and e.reasons
                assert sum(e.scores.values()) == pytest.approx(1.0)
                # Only the blendshapes read contempt (FER2013 and facex have no such class).
                assert model is facs or e.scores["contempt"] == 0.0
            got[name, model.name, f is None] = e.label if e else None
        rows.append(f"| {name} | {posed_as} | " + " | ".join(cells) + " |")
    print("\n" + "\n".join(rows))
    for name in ("0-f15-hao-ph.jpg", "single_face.jpg"):
        assert got[name, "fer-cnn", False] == got[name, "fer-cnn", True] == "joy"
    assert got["0-f1-su-ph.jpg", "fer-cnn", False] == "surprise"
    for model in ("fusion", "facex"):
        assert got["0-f15-hao-ph.jpg", model, False] == got["single_face.jpg", model, False]
        assert got["single_face.jpg", model, False] == "joy"
        assert got["0-f1-su-ph.jpg", model, False] == "surprise"
    for model in (fer, fusion, facex):
        model.close()


def test_fer_cnn_reasons_are_facs_signs_or_its_own_outputs(posed):
    need_litert()
    fer = models.create_expression_model("fer-cnn")
    rgb, face = posed["0-f15-hao-ph.jpg"]
    with_face = fer.estimate(rgb, face)
    assert with_face.reasons[0].blendshape == "mouthSmile"
    alone = fer.estimate(rgb, None)
    assert alone.reasons[0].blendshape == "fer:happy" and alone.reasons[0].value > 0.9
    assert fer.estimate(None, face) is None


def test_fer_cnn_in_ci_is_really_there():
    if IN_CI:
        assert importlib.util.find_spec("ai_edge_litert") is not None
        assert {m.name: m for m in models.available_models()}["fer-cnn"].available


# --- the benchmark -----------------------------------------------------------------------


def test_bench_compares_backends_on_the_same_frames(sample):
    need_litert()
    report = bench.run_bench(
        ["blendshapes", "fer-cnn"], str(sample("WolfgangLanger_Pexels.mp4")), max_frames=60
    )
    assert report.frames == 60 and report.faces == 60
    a, b = report.backends
    assert len(a.ms) == len(b.ms) == 60 and len(a.raw) == len(b.raw) == 60
    assert 0.0 <= report.agreement(a, b) <= 1.0
    assert report.fps(a) > 0 and a.p50 <= a.p95
    text = bench.format_report(report)
    print("\n" + text)
    assert "blendshapes" in text and "fer-cnn" in text and "agreement" in text
    with pytest.raises(ValueError, match="known expression models"):
        bench.run_bench(["no-such-model"], str(sample("WolfgangLanger_Pexels.mp4")), 1)


# --- the documentation ---------------------------------------------------------------------


def test_the_weight_table_in_the_docs_matches_the_code():
    from edge.models.blendshapes import ACTION_UNITS, EMOTION_WEIGHTS

    doc = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    rows = set()
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`"):
            rows.add((cells[0], cells[1].strip("`"), cells[2], float(cells[3].replace("−", "-"))))
    code = {
        (emotion, w.feature, ACTION_UNITS[w.feature], round(w.weight, 2))
        for emotion, row in EMOTION_WEIGHTS.items()
        for w in row
    }
    assert rows == code


# --- swapping the backend of a running agent ----------------------------------------------


@pytest.mark.parametrize("backend", ["fer-cnn", "example-mouth"])
def test_the_agent_runs_the_backend_chosen_on_the_command_line(
    backend, example_installed, mosquitto, wiretap_factory, sample, tmp_path
):
    from conftest import start_agent

    tap = wiretap_factory(mosquitto.url)
    env_path = os.pathsep.join([str(example_installed), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], saved = env_path, os.environ.get("PYTHONPATH")
    try:
        agent = start_agent(
            mosquitto.url, sample("single_face.mp4"), tmp_path / "agent.log", "--fast",
            "--no-loop", "--model", backend,
        )  # fmt: skip
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    assert agent.wait(60) == 0, (tmp_path / "agent.log").read_text()[-2000:]
    assert tap.wait_for(lambda: tap.of_type("heartbeat") and tap.of_type("expression"), 5)
    assert {m["model"] for m in tap.of_type("heartbeat")} == {
        f"mediapipe-face-landmarker+{backend}"
    }
    assert all(m["reason_units"] for m in tap.of_type("expression"))
