"""`onlooker kiosk install` into a temporary root: the systemd unit, the browser launcher and
its desktop autostart, with --profile pi chosen from the device tree."""

from __future__ import annotations

import configparser
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from onlooker import kiosk

ROOT = Path(__file__).resolve().parent.parent


def make_root(tmp_path: Path, model: bytes | None) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nada:x:1000:1000:Ada,,,:/home/ada:/bin/bash\n"
    )
    if model is not None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model)
    return root


def install(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onlooker", "kiosk", "install", "--root", str(root),
         "--desktop-user", "ada", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def unit(root: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((root / kiosk.UNIT).read_text())
    return parser


def test_on_a_pi_the_agent_runs_with_the_pi_profile_at_boot(tmp_path):
    root = make_root(tmp_path, b"Raspberry Pi 5 Model B Rev 1.0\x00")
    done = install(root)
    assert done.returncode == 0, done.stderr
    assert "board: Raspberry Pi 5 Model B Rev 1.0; profile pi" in done.stdout
    service = unit(root)
    exec_start = service["Service"]["ExecStart"].split()
    assert exec_start[:2] == ["/opt/onlooker/.venv/bin/onlooker", "agent"]
    assert exec_start[exec_start.index("--profile") + 1] == "pi"
    assert exec_start[exec_start.index("--consent") + 1] == "viewer"
    assert exec_start[exec_start.index("--agent-id") + 1] == "${ONLOOKER_AGENT_ID}"
    assert service["Service"]["User"] == "onlooker" and service["Service"]["Group"] == "video"
    assert service["Service"]["EnvironmentFile"] == "/etc/onlooker/agent.env"
    assert service["Service"]["Environment"] == "ONLOOKER_CACHE=/var/cache/onlooker"
    assert service["Service"]["Restart"] == "always"
    assert service["Install"]["WantedBy"] == "multi-user.target"
    assert "PASSWORD=" not in (root / kiosk.UNIT).read_text()  # secrets stay in the env file
    assert (root / "var/cache/onlooker").is_dir()

    launcher = root / kiosk.BROWSER_SCRIPT
    assert os.access(launcher, os.X_OK)
    assert subprocess.run(["sh", "-n", str(launcher)]).returncode == 0
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read_string((root / "home/ada" / kiosk.AUTOSTART).read_text())
    assert entry["Desktop Entry"]["Exec"] == "/usr/local/bin/onlooker-kiosk-browser"
    assert entry["Desktop Entry"]["Type"] == "Application"


def test_elsewhere_the_default_profile_and_a_standalone_kiosk(tmp_path):
    root = make_root(tmp_path, None)
    done = install(root, "--standalone", "--source", "picamera", "--viewer-port", "8101")
    assert done.returncode == 0, done.stderr
    assert "not a Raspberry Pi; profile default; source picamera" in done.stdout
    exec_start = unit(root)["Service"]["ExecStart"].split()
    assert exec_start[1:3] == ["demo", "--no-browser"]
    assert exec_start[exec_start.index("--source") + 1] == "picamera"
    assert exec_start[exec_start.index("--profile") + 1] == "default"
    assert unit(root)["Service"]["EnvironmentFile"] == "-/etc/onlooker/agent.env"
    assert 'URL="http://127.0.0.1:8101/"' in (root / kiosk.BROWSER_SCRIPT).read_text()


def test_dry_run_writes_nothing(tmp_path):
    root = make_root(tmp_path, b"Raspberry Pi 4 Model B Rev 1.5\x00")
    done = install(root, "--dry-run")
    assert done.returncode == 0 and "would write" in done.stdout and "--profile pi" in done.stdout
    assert not (root / kiosk.UNIT).exists() and not (root / "home").exists()


@pytest.mark.skipif(os.name != "posix", reason="the launcher is a POSIX shell script")
def test_the_launcher_waits_for_the_viewer_page_then_opens_chromium_in_kiosk_mode(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    port = server.server_address[1]
    root = make_root(tmp_path, None)
    done = install(root, "--viewer-port", str(port), "--prefix", str(ROOT))
    assert done.returncode == 0, done.stderr
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "chromium-args"
    fake = bin_dir / "chromium"  # stands in for the browser: records how it was started
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    launcher = subprocess.Popen(["sh", str(root / kiosk.BROWSER_SCRIPT)], env=env)
    try:
        assert launcher.wait(timeout=1.5) is None
    except subprocess.TimeoutExpired:
        pass  # still waiting: the page is not served yet
    assert not record.exists()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert launcher.wait(timeout=15) == 0
    finally:
        server.shutdown()
        server.server_close()
    args = record.read_text().split("\n")
    assert "--kiosk" in args and "--ozone-platform-hint=auto" in args
    assert args[-2] == f"http://127.0.0.1:{port}/"
