"""The runtime dependencies resolve to binary wheels on the devices people really have.

For each platform, pip resolves `[project] dependencies` from pyproject.toml against PyPI as if
installing there (`--dry-run --only-binary=:all: --platform … --python-version …`), so a
dependency without a wheel for 64-bit Raspberry Pi OS, Windows or macOS fails this test (and
CI, which runs `make test`). Nothing is installed or downloaded beyond the packages' metadata.
All platforms resolve at once, in parallel: about 25-30 s here, mostly waiting on PyPI.
Skips with a message when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheels

ROOT = Path(__file__).resolve().parent.parent


def _manylinux(arch: str, glibc_minor: int) -> list[str]:
    # pip does not widen an explicit --platform to older glibc versions: list every one
    return ["manylinux2014_" + arch] + [
        f"manylinux_2_{m}_{arch}" for m in range(17, glibc_minor + 1)
    ]


def _macos(arch: str, majors: range) -> list[str]:
    return [f"macosx_{m}_0_{arch}" for m in majors] + [f"macosx_{m}_0_universal2" for m in majors]


# name -> (Python version, platform tags, the wheel each key package must come as)
TARGETS = {
    # Raspberry Pi OS 12 (bookworm): Python 3.11, glibc 2.36
    "pi-os-bookworm-aarch64-py3.11": ("3.11", _manylinux("aarch64", 36), "aarch64"),
    # Raspberry Pi OS 13 (trixie): Python 3.13, glibc 2.41
    "pi-os-trixie-aarch64-py3.13": ("3.13", _manylinux("aarch64", 41), "aarch64"),
    "windows-x86_64-py3.12": ("3.12", ["win_amd64"], "win_amd64"),
    "macos-arm64-py3.12": ("3.12", _macos("arm64", range(11, 16)), "arm64"),
    "macos-x86_64-py3.12": ("3.12", _macos("x86_64", range(10, 16)), "x86_64"),
}
# Known gaps, checked so that the day they close is noticed (the test then XPASSes):
KNOWN_GAPS = {
    "macos-x86_64-py3.12": "Intel Macs: ai-edge-litert publishes no macOS x86_64 wheel, nor does "
    "mediapipe after 0.10.21 (README: use an Apple-silicon Mac, Windows or Linux)",
}
KEY_PACKAGES = ("mediapipe", "opencv-contrib-python", "numpy", "ai-edge-litert")


def runtime_dependencies() -> list[str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["dependencies"]


def _registry_reachable() -> str | None:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10) as response:
            response.read(1)
    except OSError as exc:
        return f"PyPI is unreachable ({exc}): cannot check the wheels for other platforms"
    return None


def _resolve(target: str, tmp: Path, deps: list[str]) -> dict:
    python, platforms, _ = TARGETS[target]
    report = tmp / f"{target}.json"
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
        "--target", str(tmp / target), "--quiet", "--report", str(report),
        *[arg for p in platforms for arg in ("--platform", p)], *deps,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING")]
    if done.returncode != 0:
        return {"ok": False, "error": "\n".join(errors[-6:])}
    installs = json.loads(report.read_text())["install"]
    return {
        "ok": True,
        "wheels": {
            i["metadata"]["name"].lower(): i["download_info"]["url"].rsplit("/", 1)[1]
            for i in installs
        },
    }


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory) -> dict[str, dict]:
    why = _registry_reachable()
    if why:
        pytest.skip(why)
    deps = runtime_dependencies()
    tmp = tmp_path_factory.mktemp("wheels")
    with ThreadPoolExecutor(len(TARGETS)) as pool:
        futures = {t: pool.submit(_resolve, t, tmp, deps) for t in TARGETS}
        return {t: f.result() for t, f in futures.items()}


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(t, marks=pytest.mark.xfail(reason=KNOWN_GAPS[t], strict=False))
        if t in KNOWN_GAPS
        else t
        for t in TARGETS
    ],
)
def test_dependencies_resolve_to_wheels(target, resolutions):
    result = resolutions[target]
    assert result["ok"], f"{target}: no binary wheel for a dependency:\n{result['error']}"
    wheels = result["wheels"]
    arch = TARGETS[target][2]
    for package in KEY_PACKAGES:
        assert package in wheels, f"{target}: {package} missing from {sorted(wheels)}"
        wheel = wheels[package]
        assert wheel.endswith(".whl") and (arch in wheel or "universal2" in wheel), wheel
