"""`onlooker doctor`: is this kiosk ready? Each check prints what it found and, when something
is wrong, how to fix it. The exit status is 0 only when nothing failed (warnings allowed).

Checks: Python and architecture, the wheels, the model and assets with their hashes, the
camera (opens, non-black frames, at what fps), the broker (credentials and TLS as the agent
uses them), the ports, the clock against an NTP server (by default the broker's host), CPU
temperature and throttling where the board reports them, disk space, and Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"

DEFAULT_ENV_FILE = "/etc/onlooker/agent.env"
WHEELS = {  # module imported -> distribution that provides it
    "mediapipe": "mediapipe",
    "cv2": "opencv-contrib-python",
    "ai_edge_litert.interpreter": "ai-edge-litert",
    "paho.mqtt.client": "paho-mqtt",
    "flask": "flask",
    "numpy": "numpy",
}
MAX_SKEW_S = 2.0
"""Beyond this the dashboard's timelines and paces shift (it places every signal by the
agent's own `ts`; more than 600 s ahead it refuses the signal as `ts_future`)."""
TEMP_WARN_C, TEMP_FAIL_C = 80.0, 85.0  # Pi 4/5 firmware throttles from 80 °C, hard at 85 °C
MIN_FREE_MB, LOW_FREE_MB = 500, 2000
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)

FIX_NTP = (
    "turn on time sync (`sudo timedatectl set-ntp true`). On an exhibition network without "
    "internet, make the broker's host the clock: `sudo apt install chrony`, add "
    "`allow 10.0.0.0/8` and `local stratum 8` to /etc/chrony/chrony.conf there, and on each "
    "kiosk set `NTP=broker.local` in /etc/systemd/timesyncd.conf"
)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK, INFO, WARN or FAIL
    detail: str
    fix: str = ""


# --- Python, wheels, assets -----------------------------------------------------------------


def check_python(
    version: tuple[int, ...] = tuple(sys.version_info[:3]),
    machine: str = platform.machine(),
    pointer_bits: int = struct.calcsize("P") * 8,
) -> Finding:
    where = f"Python {'.'.join(map(str, version))} on {machine}, {pointer_bits}-bit"
    if pointer_bits != 64 or machine.lower() in ("armv7l", "armv6l", "i386", "i686", "x86"):
        return Finding(
            "python", FAIL, where,
            "mediapipe publishes no 32-bit wheels: install Raspberry Pi OS (64-bit) with "
            "Raspberry Pi Imager (Pi 3, 4, 5, Zero 2 W), or a 64-bit Python on a laptop",
        )  # fmt: skip
    if tuple(version[:2]) < (3, 10):
        return Finding("python", FAIL, where, "Onlooker needs Python 3.10 or newer")
    return Finding("python", OK, where)


_IMPORT_PROBE = r"""
import importlib, json, sys
from importlib import metadata
out = {}
for name, dist in json.loads(sys.argv[1]).items():
    try:
        importlib.import_module(name)
        try:
            out[name] = [True, metadata.version(dist)]
        except metadata.PackageNotFoundError:
            out[name] = [True, "?"]
    except Exception as exc:
        out[name] = [False, f"{type(exc).__name__}: {exc}"]
try:
    metadata.version("opencv-python")
    out["opencv-python"] = [False, "installed beside opencv-contrib-python"]
except metadata.PackageNotFoundError:
    pass
print(json.dumps(out))
"""


def check_wheels(python: str = sys.executable, env: Mapping[str, str] | None = None) -> Finding:
    """Import each runtime wheel in a fresh interpreter (what the agent will do at start)."""
    try:
        done = subprocess.run(
            [python, "-c", _IMPORT_PROBE, json.dumps(WHEELS)],
            capture_output=True, text=True, timeout=120, env=None if env is None else dict(env),
        )  # fmt: skip
        results = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return Finding("wheels", FAIL, f"could not run {python}: {exc}", "reinstall: pip install .")
    broken = {name: why for name, (ok, why) in results.items() if not ok}
    if "opencv-python" in broken:
        return Finding(
            "wheels", FAIL, "opencv-python is installed beside opencv-contrib-python",
            "two builds of cv2 break each other: `pip uninstall -y opencv-python` then "
            "`pip install --force-reinstall opencv-contrib-python`",
        )  # fmt: skip
    if broken:
        names = sorted(broken)
        dists = " ".join(sorted({WHEELS[n] for n in names}))
        return Finding(
            "wheels", FAIL, "; ".join(f"{n}: {broken[n]}" for n in names),
            f"`pip install --force-reinstall {dists}` in this environment (or `pip install .` "
            "in the checkout); on a Pi use 64-bit Raspberry Pi OS",
        )  # fmt: skip
    versions = ", ".join(f"{WHEELS[n]} {v}" for n, (_, v) in results.items())
    return Finding("wheels", OK, versions)


def check_assets() -> Finding:
    """Every model file must be in the cache with its pinned hash; sample media may be absent."""
    from edge import assets

    cache = assets.cache_dir()
    missing, corrupt, samples_missing, good = [], [], [], 0
    for asset in assets.ASSETS.values():
        path = cache / asset.name
        is_model = asset.name.endswith((".task", ".tflite"))
        if not path.is_file():
            (missing if is_model else samples_missing).append(asset.name)
        elif not assets.verify(path, asset.sha256):
            corrupt.append(asset.name)
        else:
            good += 1
    if corrupt:
        return Finding(
            "assets", FAIL,
            f"wrong sha256 in {cache}: {', '.join(corrupt)}",
            "delete them and fetch again: "
            + " ; ".join(f"rm {cache / n}" for n in corrupt)
            + f" ; onlooker models fetch {' '.join(corrupt)}",
        )  # fmt: skip
    if missing:
        return Finding(
            "assets", FAIL, f"missing from {cache}: {', '.join(missing)}",
            f"`onlooker models fetch` (needs the internet once; ONLOOKER_CACHE={cache} "
            "for the agent's service)",
        )  # fmt: skip
    model = assets.ASSETS[assets.MODEL]
    detail = f"{good} files verified in {cache} ({assets.MODEL} sha256 {model.sha256[:12]}…)"
    if samples_missing:
        return Finding(
            "assets", INFO, detail + f"; sample media not fetched ({len(samples_missing)})"
        )
    return Finding("assets", OK, detail)


# --- the camera -----------------------------------------------------------------------------


def default_camera() -> str | None:
    """The camera a kiosk would use: a camera module, else webcam 0; None when neither opens."""
    from edge import picamera

    if picamera.available():
        return "picamera"
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        cap = cv2.VideoCapture(0)
        opened = cap.isOpened()
        cap.release()
    finally:
        cv2.utils.logging.setLogLevel(previous)
    return "0" if opened else None


def check_camera(spec: str | None, seconds: float = 3.0, min_fps: float = 10.0) -> Finding:
    """Open the source, read it for `seconds`, and judge: frames at all, non-black, fps."""
    from edge.sources import BLACK_FRAMES_HINT, SourceError, is_black, open_source

    if spec is None:
        spec = default_camera()
        if spec is None:
            return Finding(
                "camera", FAIL, "no camera module and no webcam 0 found",
                "connect the camera (module: ribbon cable, `rpicam-hello --list-cameras`; "
                "USB: another port), or pass --source with the camera to check",
            )  # fmt: skip
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # the finding says it
    try:
        source = open_source(spec, loop=True, realtime=True)
    except SourceError as exc:
        return Finding("camera", FAIL, f"{spec}: {exc}", _camera_fix(spec))
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if source.kind == "video":
        seconds = min(seconds, 1.5)  # a file needs no warm-up
    times, lit, frames = [], 0, 0
    first_lit: int | None = None
    try:
        deadline = time.monotonic() + seconds
        for frame in source.frames():
            frames += 1
            times.append(frame.captured)
            if not is_black(frame.image):
                lit += 1
                first_lit = frames if first_lit is None else first_lit
            if time.monotonic() >= deadline:
                break
    except SourceError as exc:
        return Finding("camera", FAIL, f"{spec}: {exc}", _camera_fix(spec))
    finally:
        source.close()
    what = f"{spec} ({source.kind})"
    if frames == 0:
        return Finding("camera", FAIL, f"{what} gave no frame", _camera_fix(spec))
    fps = (
        (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0
    )
    size = f"{frame.image.shape[1]}x{frame.image.shape[0]}"
    if lit == 0:
        return Finding(
            "camera", FAIL, f"{what}: all {frames} frames black ({size}, {fps:.0f} fps)",
            BLACK_FRAMES_HINT,
        )  # fmt: skip
    detail = f"{what}: {frames} frames in {seconds:g} s, {size}, {fps:.1f} fps"
    if first_lit and first_lit > 1:
        detail += f"; the first {first_lit - 1} were black (warm-up)"
    if fps < min_fps:
        return Finding(
            "camera", WARN, detail + f" (below {min_fps:g} fps)",
            "light the visitor's face, use a USB 3 port, or --profile pi on a Raspberry Pi",
        )  # fmt: skip
    return Finding("camera", OK, detail)


def _camera_fix(spec: str) -> str:
    if spec.startswith("picamera"):
        return (
            "`rpicam-hello --list-cameras` must list it; stop anything else using it "
            "(`sudo systemctl stop onlooker-agent`); install python3-picamera2 and create the "
            "venv with --system-site-packages (docs/operations.md)"
        )
    if spec.isdigit():
        return (
            "check the cable and that no other program (the agent's service, a video call) has "
            "the camera; allow camera access for this terminal in the OS privacy settings"
        )
    return "pass --source with a readable video (H.264 MP4) or a camera (0, picamera)"


# --- broker, clock, ports -------------------------------------------------------------------


def check_broker(url: str | None, env: Mapping[str, str], timeout: float = 5.0) -> Finding:
    """Connect as the agent does: credentials and TLS trust anchor from the environment."""
    if not url:
        return Finding(
            "broker", INFO,
            "none configured: `onlooker demo` starts its own; a kiosk needs ONLOOKER_BROKER "
            f"(in {DEFAULT_ENV_FILE})",
        )  # fmt: skip
    import paho.mqtt.client as mqtt

    from broker import wire
    from edge.publisher import MqttAuth

    try:
        address = wire.broker_address(url)
        auth = MqttAuth.from_env(env)
        auth.check(address)
    except ValueError as exc:
        return Finding("broker", FAIL, str(exc), f"correct it in {DEFAULT_ENV_FILE}")
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"onlooker-doctor-{os.getpid()}",
    )
    if auth.username is not None:
        client.username_pw_set(auth.username, auth.password)
    if address.tls:
        client.tls_set(ca_certs=auth.ca_file)
    answered = threading.Event()
    result: dict[str, object] = {}

    def on_connect(c, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        answered.set()

    client.on_connect = on_connect
    who = f"{url} as {auth.username or 'anonymous'}" + (" over TLS" if address.tls else "")
    start = time.monotonic()
    try:
        client.connect(address.host, address.port, keepalive=10)
        client.loop_start()
    except OSError as exc:  # refused, unreachable, DNS, TLS handshake (ssl.SSLError)
        if "CERTIFICATE" in str(exc).upper() or exc.__class__.__module__ == "ssl":
            fix = (
                "TLS failed: ONLOOKER_MQTT_CA must be the broker's CA certificate and the URL's "
                "host name the one in the broker's certificate (docs/operations.md, TLS)"
            )
        else:
            fix = (
                f"is Mosquitto running on {address.host}? (`systemctl status mosquitto` there); "
                f"check the host name, port {address.port} and the firewall"
            )
        return Finding("broker", FAIL, f"{who}: {exc}", fix)
    try:
        if not answered.wait(timeout):
            return Finding(
                "broker", FAIL, f"{who}: no answer in {timeout:g} s",
                f"something on {address.host}:{address.port} accepts TCP but does not speak MQTT"
                + ("" if address.tls else " (a TLS port needs mqtts://)"),
            )  # fmt: skip
        rc = result["rc"]
        if rc.is_failure:
            return Finding(
                "broker", FAIL, f"{who}: refused ({rc})",
                "the username or password is wrong: copy this kiosk's env file from the broker "
                f"(/etc/mosquitto/onlooker/<agent>.env) to {DEFAULT_ENV_FILE}",
            )  # fmt: skip
        return Finding(
            "broker", OK, f"{who}: connected in {(time.monotonic() - start) * 1000:.0f} ms"
        )
    finally:
        client.loop_stop()
        client.disconnect()


def sntp_offset(host: str, port: int = 123, timeout: float = 2.0) -> tuple[float, float]:
    """(offset, round trip) in seconds from one SNTP exchange (RFC 4330); offset > 0 means
    the server's clock is ahead of ours."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        t1 = time.time()
        request = bytearray(48)
        request[0] = 0x23  # leap 0, version 4, mode 3 (client)
        sec, frac = _to_ntp(t1)
        struct.pack_into("!II", request, 40, sec, frac)  # transmit timestamp
        sock.sendto(bytes(request), sockaddr)
        data, _ = sock.recvfrom(512)
        t4 = time.time()
    if len(data) < 48 or data[0] & 0x07 != 4:
        raise OSError("not an NTP server reply")
    if struct.unpack_from("!II", data, 24) != (sec, frac):
        raise OSError("the reply does not answer our request")
    t2 = _from_ntp(*struct.unpack_from("!II", data, 32))
    t3 = _from_ntp(*struct.unpack_from("!II", data, 40))
    return ((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2)


def _to_ntp(t: float) -> tuple[int, int]:
    sec = int(t) + NTP_EPOCH
    return sec & 0xFFFFFFFF, int((t - int(t)) * 2**32) & 0xFFFFFFFF


def _from_ntp(sec: int, frac: int) -> float:
    return sec - NTP_EPOCH + frac / 2**32


def check_clock(ntp: str | None, max_skew_s: float = MAX_SKEW_S) -> Finding:
    """MQTT carries no clock of the broker's, so the reference is an NTP server: the broker's
    host by default (where an exhibition network should keep its time), or --ntp."""
    synced = _os_time_sync()
    note = "" if synced is None else f"; the OS says it is {'' if synced else 'not '}synchronised"
    if not ntp:
        status = WARN if synced is False else INFO
        return Finding("clock", status, "no NTP server to compare with" + note, FIX_NTP)
    host, _, port = ntp.rpartition(":") if re.fullmatch(r".+:\d+", ntp) else (ntp, "", "123")
    try:
        offset, delay = sntp_offset(host.strip("[]"), int(port))
    except (OSError, ValueError) as exc:
        return Finding(
            "clock", WARN if synced is not True else INFO,
            f"no NTP answer from {ntp} ({exc}), skew unknown" + note, FIX_NTP,
        )  # fmt: skip
    detail = f"{offset * 1000:+.0f} ms against {ntp} (round trip {delay * 1000:.0f} ms)" + note
    if abs(offset) > max_skew_s:
        return Finding("clock", FAIL, detail + f", more than {max_skew_s:g} s", FIX_NTP)
    return Finding("clock", OK, detail)


def _os_time_sync() -> bool | None:
    if not shutil.which("timedatectl"):
        return None
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"yes": True, "no": False}.get(out)


def check_ports(ports: Mapping[str, int]) -> Finding:
    taken = []
    for what, port in ports.items():
        with socket.socket() as sock:
            if os.name == "posix":  # as the servers do; on Windows it would mean "share"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"{what} {port}")
    listed = ", ".join(f"{w} {p}" for w, p in ports.items())
    if taken:
        finder = {"win32": "netstat -ano | findstr :PORT", "darwin": "lsof -nP -iTCP:PORT"}.get(
            sys.platform, "sudo ss -ltnp 'sport = :PORT'"
        )
        port = taken[0].rsplit(" ", 1)[1]
        return Finding(
            "ports", FAIL, f"in use on 127.0.0.1: {', '.join(taken)}",
            f"find the program with `{finder.replace('PORT', port)}` and stop it (if it is "
            "Onlooker's own service: `sudo systemctl stop onlooker-agent`), or pass another "
            "--viewer-port / --dashboard-port",
        )  # fmt: skip
    return Finding("ports", OK, f"free on 127.0.0.1: {listed}")


# --- the board ------------------------------------------------------------------------------

_THROTTLE_BITS = {
    0: "under-voltage",
    1: "ARM frequency capped",
    2: "throttled",
    3: "soft temperature limit",
}


def check_temperature(root: Path = Path("/")) -> Finding:
    temps = []
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        try:
            millic = int((zone / "temp").read_text().strip())
            kind = (zone / "type").read_text().strip() if (zone / "type").exists() else zone.name
        except (OSError, ValueError):
            continue
        temps.append((millic / 1000.0, kind))
    if not temps:
        return Finding("temperature", INFO, "not reported by this machine")
    hottest, kind = max(temps)
    detail = f"{hottest:.1f} °C ({kind})"
    fix = "add a heatsink or the active cooler, give the case air, keep it out of the sun"
    if hottest >= TEMP_FAIL_C:
        return Finding("temperature", FAIL, detail, fix)
    if hottest >= TEMP_WARN_C:
        return Finding("temperature", WARN, detail + " (the firmware throttles from 80 °C)", fix)
    return Finding("temperature", OK, detail)


def check_throttling(vcgencmd: str | None = None) -> Finding:
    """`vcgencmd get_throttled` on a Raspberry Pi: bits 0–3 now, bits 16–19 since boot."""
    vcgencmd = vcgencmd or shutil.which("vcgencmd")
    if not vcgencmd:
        return Finding("throttling", INFO, "no vcgencmd (not a Raspberry Pi)")
    try:
        out = subprocess.run(
            [vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5
        ).stdout
        value = int(re.search(r"throttled=(0x[0-9a-fA-F]+)", out).group(1), 16)
    except (OSError, subprocess.SubprocessError, AttributeError, ValueError) as exc:
        return Finding("throttling", WARN, f"vcgencmd get_throttled did not answer ({exc})")
    now = [why for bit, why in _THROTTLE_BITS.items() if value >> bit & 1]
    before = [why for bit, why in _THROTTLE_BITS.items() if value >> (bit + 16) & 1]
    power = (
        "use the official power supply (Pi 5: 27 W USB-C, 5.1 V 5 A; Pi 4: 15 W, 5.1 V 3 A) "
        "and a short cable"
    )
    cool = "add a heatsink or the active cooler"
    fix = " ; ".join(
        f for f, hit in ((power, "under-voltage" in now + before), (cool, True)) if hit
    )
    if now:
        return Finding("throttling", FAIL, f"0x{value:x}: now {', '.join(now)}", fix)
    if before:
        return Finding("throttling", WARN, f"0x{value:x}: since boot {', '.join(before)}", fix)
    return Finding("throttling", OK, f"0x{value:x}: never throttled since boot")


def check_disk(path: Path, min_free_mb: float = MIN_FREE_MB) -> Finding:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free / 1e6
    detail = f"{free_mb / 1000:.1f} GB free on {probe}"
    fix = "free space: `sudo apt clean`, `sudo journalctl --vacuum-size=100M`, old videos"
    if free_mb < min_free_mb:
        return Finding("disk", FAIL, detail + f" (needs {min_free_mb / 1000:g} GB)", fix)
    if free_mb < max(LOW_FREE_MB, 2 * min_free_mb):
        return Finding("disk", WARN, detail, fix)
    return Finding("disk", OK, detail)


def find_chromium(path: str | None = None) -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    candidates = {
        "darwin": ["/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                   "/Applications/Chromium.app/Contents/MacOS/Chromium"],
        "win32": [os.path.expandvars(r"%ProgramFiles%\Google\Chrome\Application\chrome.exe"),
                  os.path.expandvars(r"%ProgramFiles(x86)%\Microsoft\Edge\Application\msedge.exe")],
    }.get(sys.platform, [])  # fmt: skip
    return next((c for c in candidates if os.path.isfile(c)), None)


def check_chromium(path: str | None = None) -> Finding:
    found = find_chromium(path)
    if found:
        return Finding("chromium", OK, f"{found} (for the kiosk page)")
    if sys.platform.startswith("linux"):
        return Finding(
            "chromium", FAIL, "no Chromium for the kiosk page",
            "`sudo apt install chromium` (Raspberry Pi OS bookworm: chromium-browser)",
        )  # fmt: skip
    return Finding("chromium", WARN, "no Chrome or Chromium: the demo opens the default browser")


# --- running them ---------------------------------------------------------------------------


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def run_checks(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> list[Finding]:
    from edge import assets

    env = dict(os.environ if env is None else env)
    findings: list[Finding] = []

    def report(finding: Finding) -> None:
        findings.append(finding)
        if getattr(args, "progress", False):
            print(format_finding(finding), flush=True)

    env_file = args.env_file
    if env_file is None and os.path.isfile(DEFAULT_ENV_FILE):
        env_file = DEFAULT_ENV_FILE
    if env_file:
        try:
            env = {**env, **read_env_file(env_file)}
            report(Finding("settings", OK, f"read {env_file}"))
        except OSError as exc:
            report(
                Finding("settings", FAIL, f"cannot read {env_file} ({exc.strerror})",
                        "run the doctor with sudo, or as the user of the agent's service")
            )  # fmt: skip
    broker = args.broker or env.get("ONLOOKER_BROKER")
    ntp = args.ntp or env.get("ONLOOKER_NTP")
    if ntp is None and broker:
        from broker import wire

        try:
            ntp = wire.broker_address(broker).host
        except ValueError:
            ntp = None
    ports = {"viewer": args.viewer_port}
    if args.dashboard_port:
        ports["dashboard"] = args.dashboard_port
    checks: list[Callable[[], Finding]] = [
        check_python,
        check_wheels,
        check_assets,
        lambda: check_camera(args.source, seconds=args.camera_seconds),
        lambda: check_broker(broker, env),
        lambda: check_ports(ports),
        lambda: check_clock(ntp),
        check_temperature,
        check_throttling,
        lambda: check_disk(assets.cache_dir(), args.min_free_mb),
        check_chromium,
    ]
    for check in checks:
        report(check())
    return findings


def format_finding(finding: Finding) -> str:
    line = f"  {finding.status:<5} {finding.check:<12} {finding.detail}"
    if finding.fix and finding.status in (WARN, FAIL):
        line += f"\n  {'':<5} {'':<12} fix: {finding.fix}"
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        help="the camera to check: 0 (webcam), picamera, or a video standing in for it "
        "(default: the camera module, else webcam 0)",
    )
    parser.add_argument(
        "--broker", default=None, metavar="URL",
        help="the broker to reach (default: ONLOOKER_BROKER, from --env-file too)",
    )  # fmt: skip
    parser.add_argument(
        "--env-file", metavar="FILE",
        help=f"the agent's settings (default {DEFAULT_ENV_FILE} when it exists)",
    )  # fmt: skip
    parser.add_argument("--viewer-port", type=int, default=8001)
    parser.add_argument("--dashboard-port", type=int, help="also check this port")
    parser.add_argument(
        "--ntp", metavar="HOST[:PORT]",
        help="NTP server to measure the clock against (default: the broker's host; "
        "env ONLOOKER_NTP)",
    )  # fmt: skip
    parser.add_argument("--camera-seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    parser.add_argument("--min-free-mb", type=float, default=MIN_FREE_MB, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    print("onlooker doctor: is this kiosk ready?", flush=True)
    args.progress = True
    findings = run_checks(args)
    failed = [f.check for f in findings if f.status == FAIL]
    if failed:
        print(f"NOT READY: {', '.join(failed)} failed (fixes above)", flush=True)
        return 1
    print("READY", flush=True)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:  # python -m onlooker.doctor
    parser = argparse.ArgumentParser(prog="onlooker doctor")
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli())
