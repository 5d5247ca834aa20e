"""`onlooker kiosk install`: a Raspberry Pi (or any Linux box with a desktop) becomes a kiosk.

Writes, under a root directory (default ``/``; ``--root`` for a dry run into a folder):

- ``etc/systemd/system/onlooker-agent.service``: the agent (or, with ``--standalone``, the whole
  demo: embedded broker, dashboard and agent) started at boot and restarted when it exits;
- ``usr/local/bin/onlooker-kiosk-browser``: waits for the viewer page, then opens it in
  Chromium's kiosk mode (Wayland or X11, whichever the session is);
- ``<desktop user's home>/.config/autostart/onlooker-kiosk.desktop``: starts that browser when
  the desktop session starts. On Raspberry Pi OS's labwc (Wayland) session, as under Wayfire
  and X11, the session's autostart runs ``lxsession-xdg-autostart``, which starts every entry
  in ``~/.config/autostart``.

On a Raspberry Pi (``/proc/device-tree/model`` says so) the agent gets ``--profile pi`` and,
when Picamera2 sees a camera module, ``--source picamera``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT = "etc/systemd/system/onlooker-agent.service"
BROWSER_SCRIPT = "usr/local/bin/onlooker-kiosk-browser"
AUTOSTART = ".config/autostart/onlooker-kiosk.desktop"
ENV_FILE = "/etc/onlooker/agent.env"
CACHE = "/var/cache/onlooker"


class KioskError(RuntimeError):
    """A setting that cannot work; printed without a traceback."""


@dataclass(frozen=True)
class Written:
    path: Path
    mode: int
    text: str


def board_model(root: Path) -> str | None:
    """The board's name from the device tree (``Raspberry Pi 5 Model B Rev 1.0``), if any."""
    try:
        return (root / "proc/device-tree/model").read_bytes().rstrip(b"\0\n").decode()
    except (OSError, UnicodeDecodeError):
        return None


def is_raspberry_pi(root: Path) -> bool:
    return (board_model(root) or "").startswith("Raspberry Pi")


def home_of(user: str, root: Path) -> tuple[Path, int | None, int | None]:
    """Home folder, uid and gid of `user` from ``<root>/etc/passwd`` (``/home/<user>``)."""
    try:
        for line in (root / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[0] == user:
                return Path(fields[5]), int(fields[2]), int(fields[3])
    except OSError:
        pass
    return Path("/home") / user, None, None


def default_source(root: Path, pi: bool) -> str:
    if pi and root == Path("/"):
        from edge import picamera

        if picamera.available():
            return "picamera"
    return "0"


def agent_unit(args: argparse.Namespace) -> str:
    onlooker = f"{args.prefix}/.venv/bin/onlooker"
    if args.standalone:
        what = "Onlooker on one kiosk: embedded broker, dashboard and agent"
        command = (
            f"{onlooker} demo --no-browser --source {shlex.quote(args.source)} "
            f"--profile {args.profile} --viewer-port {args.viewer_port} "
            f"--dashboard-port {args.dashboard_port}"
        )
        env_lines = f"EnvironmentFile=-{ENV_FILE}"
    else:
        what = "Onlooker edge agent (camera, consent, signals)"
        command = (
            f"{onlooker} agent --agent-id ${{ONLOOKER_AGENT_ID}} "
            f"--source {shlex.quote(args.source)} --consent viewer --profile {args.profile} "
            f"--viewer-port {args.viewer_port}"
        )
        env_lines = (
            "# ONLOOKER_AGENT_ID, ONLOOKER_BROKER, ONLOOKER_MQTT_USERNAME, ONLOOKER_MQTT_PASSWORD\n"
            "# (and ONLOOKER_MQTT_CA): from `onlooker broker credentials`, never on the command "
            "line.\n"
            f"EnvironmentFile={ENV_FILE}"
        )
    return f"""\
# Written by `onlooker kiosk install` (docs/operations.md, "From a fresh Pi to a kiosk").
[Unit]
Description={what}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={args.user}
Group=video
{env_lines}
Environment=ONLOOKER_CACHE={CACHE}
ExecStart={command}
Restart=always
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadOnlyPaths={CACHE}

[Install]
WantedBy=multi-user.target
"""


def browser_script(args: argparse.Namespace) -> str:
    url = f"http://127.0.0.1:{args.viewer_port}/"
    python = f"{args.prefix}/.venv/bin/python"
    return f"""\
#!/bin/sh
# Written by `onlooker kiosk install`: waits until the agent serves the viewer page, then opens
# it full screen. Chromium picks Wayland (labwc, Wayfire) or X11 by itself.
URL="{url}"
PROBE="import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"
i=0
until {python} -c "$PROBE" "$URL" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -ge 300 ] && break    # give up waiting after ~5 minutes and show whatever is there
    sleep 1
done
BROWSER=$(command -v chromium || command -v chromium-browser)
if [ -z "$BROWSER" ]; then
    echo "onlooker-kiosk-browser: no chromium (sudo apt install chromium)" >&2
    exit 1
fi
exec "$BROWSER" --kiosk --ozone-platform-hint=auto --noerrdialogs --disable-infobars \\
    --no-first-run --password-store=basic --disable-session-crashed-bubble \\
    --disable-features=Translate --check-for-update-interval=31536000 \\
    --user-data-dir="$HOME/.cache/onlooker-kiosk-chromium" "$URL"
"""


def autostart_entry() -> str:
    return f"""\
[Desktop Entry]
Type=Application
Name=Onlooker kiosk
Comment=Onlooker's viewer page, full screen (written by onlooker kiosk install)
Exec=/{BROWSER_SCRIPT}
Terminal=false
X-GNOME-Autostart-enabled=true
"""


def plan(args: argparse.Namespace) -> list[Written]:
    root = Path(args.root)
    home, _, _ = home_of(args.desktop_user, root)
    return [
        Written(root / UNIT, 0o644, agent_unit(args)),
        Written(root / BROWSER_SCRIPT, 0o755, browser_script(args)),
        Written(root / home.relative_to("/") / AUTOSTART, 0o644, autostart_entry()),
    ]


def install(args: argparse.Namespace, out=print) -> list[Written]:
    root = Path(args.root)
    pi = is_raspberry_pi(root)
    model = board_model(root)
    if args.profile == "auto":
        args.profile = "pi" if pi else "default"
    if args.source is None:
        args.source = default_source(root, pi)
    if not args.desktop_user:
        raise KioskError("no desktop user: pass --desktop-user NAME (who logs in to the desktop)")
    out(f"board: {model or 'not a Raspberry Pi'}; profile {args.profile}; source {args.source}")
    files = plan(args)
    _, uid, gid = home_of(args.desktop_user, root)
    for item in files:
        if args.dry_run:
            out(f"--- would write {item.path} (mode {item.mode:o})\n{item.text}")
            continue
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_text(item.text)
        item.path.chmod(item.mode)
        owned = item.path.name.endswith(".desktop") and uid is not None and root == Path("/")
        if owned and os.geteuid() == 0:
            for part in (item.path, item.path.parent, item.path.parent.parent):
                os.chown(part, uid, gid)  # the user's own ~/.config stays theirs
        out(f"wrote {item.path}")
    if not args.dry_run:
        (root / CACHE.lstrip("/")).mkdir(parents=True, exist_ok=True)
    env_note = (
        f"  optional: {ENV_FILE} with ONLOOKER_AGENT_ID (the dashboard runs on this kiosk)"
        if args.standalone
        else f"  copy this kiosk's env file from the broker to {ENV_FILE} (root, 0600)"
    )
    out(
        "next:\n"
        f"  sudo useradd --system --groups video {args.user}   (once)\n"
        f"  sudo ONLOOKER_CACHE={CACHE} {args.prefix}/.venv/bin/onlooker models fetch\n"
        f"{env_note}\n"
        "  sudo systemctl daemon-reload && sudo systemctl enable --now onlooker-agent\n"
        f"  sudo ONLOOKER_CACHE={CACHE} {args.prefix}/.venv/bin/onlooker doctor "
        f"--source {args.source}"
        "   (stop the service first: it holds the camera)\n"
        "  turn off screen blanking: sudo raspi-config nonint do_blanking 1; reboot"
    )
    return files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    inst = sub.add_parser(
        "install",
        help="write the agent's systemd unit and the Chromium kiosk autostart",
        description=__doc__.split("\n\n", 1)[1].replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inst.add_argument("--root", default="/", help="write under this folder (default /)")
    inst.add_argument(
        "--profile", choices=("auto", "default", "pi"), default="auto",
        help="auto: pi on a Raspberry Pi (from /proc/device-tree/model), else default",
    )  # fmt: skip
    inst.add_argument(
        "--source",
        help="camera for the agent (default: picamera when a camera module is seen, else 0)",
    )
    inst.add_argument("--prefix", default="/opt/onlooker", help="the checkout with its .venv")
    inst.add_argument("--user", default="onlooker", help="system user of the service")
    inst.add_argument(
        "--desktop-user",
        default=os.environ.get("SUDO_USER") or _login_name(),
        help="who logs in to the desktop, for the browser's autostart (default: the sudo user)",
    )
    inst.add_argument("--viewer-port", type=int, default=8001)
    inst.add_argument("--dashboard-port", type=int, default=8000)
    inst.add_argument(
        "--standalone", action="store_true",
        help="run broker, dashboard and agent on this kiosk (`onlooker demo`), no network broker",
    )  # fmt: skip
    inst.add_argument("--dry-run", action="store_true", help="print the files, write nothing")


def _login_name() -> str | None:
    try:
        import getpass

        name = getpass.getuser()
    except (ImportError, KeyError, OSError):
        return None
    return None if name == "root" else name


def main(args: argparse.Namespace) -> int:
    if sys.platform == "win32" and args.root == "/":
        raise KioskError("kiosk install is for Linux (a Raspberry Pi); use --root to try it")
    install(args)
    return 0
