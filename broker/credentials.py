"""Passwords, ACL and environment files for Onlooker on a production Mosquitto.

`onlooker broker credentials --out DIR kiosk-1 kiosk-2 …` writes into DIR:

- ``passwd``: one hashed password per agent and one for the dashboard, in Mosquitto's own
  format (made by ``mosquitto_passwd -U`` where it is installed, else the same PBKDF2-SHA512
  ``$7$`` hash in Python). Users already in the file and not named again are kept.
- ``acl``: from ``broker/production/acl.template``: each agent writes only under its own
  topics and reads only its own commands; the dashboard reads all and writes only commands.
- ``<agent>.env`` and ``dashboard.env``: ``ONLOOKER_MQTT_USERNAME`` and
  ``ONLOOKER_MQTT_PASSWORD`` (``ONLOOKER_AGENT_ID`` for an agent, ``ONLOOKER_BROKER`` with
  ``--broker``) for a systemd
  ``EnvironmentFile=``, so no secret is ever on a command line or in a process list.

Every file is created readable by its owner only (mode 0600).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from broker import wire

logger = logging.getLogger(__name__)

PRODUCTION_DIR = Path(__file__).resolve().parent / "production"
ACL_TEMPLATE = PRODUCTION_DIR / "acl.template"
DASHBOARD_USER = "onlooker_dashboard"
"""Not a valid agent id (it holds an underscore), so no agent can take the dashboard's name."""
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default for the $7$ format
_SALT_BYTES = 12
_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class CredentialsError(ValueError):
    """Bad input for the credentials command; the message says what to change."""


@dataclass(frozen=True)
class Written:
    """What `generate` wrote: paths, the users it (re)created, and how it hashed."""

    passwd: Path
    acl: Path
    env_files: dict[str, Path]
    users: list[str]
    hasher: str  # "mosquitto_passwd" or "python"


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Mosquitto's ``$7$`` password hash: PBKDF2-SHA512, 101 iterations, 12-byte salt."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    """True if `password` matches a ``$7$`` hash (for tests and `--check`)."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        computed = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return secrets.compare_digest(base64.b64encode(computed).decode(), digest)


def find_mosquitto_passwd() -> str | None:
    """The `mosquitto_passwd` binary, or None."""
    return shutil.which("mosquitto_passwd") or next(
        (p for p in ("/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd")
         if os.access(p, os.X_OK)),
        None,
    )  # fmt: skip


def _hash_all(passwords: dict[str, str], use_tool: bool) -> tuple[dict[str, str], str]:
    """username -> hashed line value, via ``mosquitto_passwd -U`` (stdin-free, argv-free)."""
    tool = find_mosquitto_passwd() if use_tool else None
    if tool is None:
        return {user: hash_password(pw) for user, pw in passwords.items()}, "python"
    # -U hashes a plain-text file in place: the passwords travel in a 0600 file, never argv.
    with tempfile.TemporaryDirectory(prefix="onlooker-passwd-") as tmp:
        plain = Path(tmp) / "plain"
        _write_private(plain, "".join(f"{u}:{p}\n" for u, p in passwords.items()))
        result = subprocess.run(
            [tool, "-U", str(plain)], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise CredentialsError(f"mosquitto_passwd -U failed: {result.stderr.strip()}")
        hashed = _read_passwd(plain)
    if set(hashed) != set(passwords):
        raise CredentialsError("mosquitto_passwd -U did not hash every user")
    return hashed, "mosquitto_passwd"


def _read_passwd(path: Path) -> dict[str, str]:
    users: dict[str, str] = {}
    if path.is_symlink():
        raise CredentialsError(f"{path} is a symbolic link; refusing to follow it")
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#") and ":" in line:
                user, hashed = line.split(":", 1)
                users[user] = hashed
    return users


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by the owner only, atomically.

    Never through a symlink: a link planted at `path` is refused, and the temporary file is a
    fresh one with a random name (``mkstemp``: ``O_EXCL``, mode 0600), so the secrets cannot
    be steered elsewhere.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise CredentialsError(f"{path} is a symbolic link; refusing to write secrets through it")
    if path.exists() and not path.is_file():
        raise CredentialsError(f"{path} exists and is not a regular file")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp made it 0600
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render_acl(prefix: str = wire.DEFAULT_PREFIX, dashboard_user: str = DASHBOARD_USER) -> str:
    """The ACL file for one topic prefix and dashboard username."""
    wire.check_prefix(prefix)
    _check_dashboard_user(dashboard_user)
    template = ACL_TEMPLATE.read_text(encoding="utf-8")
    return template.replace("{prefix}", prefix).replace("{dashboard}", dashboard_user)


def _check_dashboard_user(name: str) -> None:
    if not name or not set(name) <= _USERNAME_CHARS:
        raise CredentialsError(f"dashboard username {name!r}: use letters, digits, _ - . only")
    if wire.AGENT_ID.match(name):
        raise CredentialsError(
            f"dashboard username {name!r} is a valid agent id, so an agent could use it; "
            f"add an underscore (default {DASHBOARD_USER!r})"
        )


def generate(
    out_dir: Path,
    agents: Sequence[str],
    prefix: str = wire.DEFAULT_PREFIX,
    dashboard_user: str = DASHBOARD_USER,
    broker_url: str | None = None,
    dashboard: bool = True,
    use_mosquitto_passwd: bool = True,
) -> Written:
    """Create or update the password file, the ACL and one env file per user in `out_dir`."""
    for agent in agents:
        try:
            wire.check_agent_id(agent)
        except wire.WireError as exc:
            raise CredentialsError(str(exc)) from None
    if len(set(agents)) != len(agents):
        raise CredentialsError("an agent id is named twice")
    if not agents and not dashboard:
        raise CredentialsError("name at least one agent, or leave out --no-dashboard")
    acl = render_acl(prefix, dashboard_user)
    if broker_url is not None:
        _check_url(broker_url)
    users = list(agents) + ([dashboard_user] if dashboard else [])
    passwords = {user: secrets.token_urlsafe(24) for user in users}
    hashed, hasher = _hash_all(passwords, use_mosquitto_passwd)

    out_dir = Path(out_dir)
    targets = ["passwd", "acl"] + [
        f"{'dashboard' if user == dashboard_user else user}.env" for user in users
    ]
    for target in targets:  # all checked before anything is written
        if (out_dir / target).is_symlink():
            raise CredentialsError(
                f"{out_dir / target} is a symbolic link; refusing to write secrets through it"
            )
    passwd_path = out_dir / "passwd"
    existing = _read_passwd(passwd_path)
    existing.update(hashed)  # named users get a new password, the others are kept
    _write_private(passwd_path, "".join(f"{u}:{h}\n" for u, h in sorted(existing.items())))
    acl_path = out_dir / "acl"
    _write_private(acl_path, acl)
    env_files = {}
    for user in users:
        name = "dashboard" if user == dashboard_user else user
        lines = [
            f"# Onlooker MQTT credentials for {name}; keep private (mode 0600).",
            f"ONLOOKER_MQTT_USERNAME={user}",
            f"ONLOOKER_MQTT_PASSWORD={passwords[user]}",
        ]
        if user != dashboard_user:
            lines.append(f"ONLOOKER_AGENT_ID={user}")  # not a secret: for the systemd unit
        if broker_url is not None:
            lines.append(f"ONLOOKER_BROKER={broker_url}")
        env_files[name] = out_dir / f"{name}.env"
        _write_private(env_files[name], "\n".join(lines) + "\n")
    return Written(passwd_path, acl_path, env_files, users, hasher)


def _check_url(url: str) -> None:
    try:
        wire.broker_address(url)
    except ValueError as exc:
        raise CredentialsError(str(exc)) from None


# --- the command ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `onlooker broker credentials`."""
    parser.add_argument("agents", nargs="*", metavar="AGENT", help="agent ids to (re)create")
    parser.add_argument("--out", required=True, type=Path, help="folder for passwd, acl, *.env")
    parser.add_argument("--prefix", default=wire.DEFAULT_PREFIX, help="topic prefix of the ACL")
    parser.add_argument(
        "--dashboard-user", default=DASHBOARD_USER, help=f"default {DASHBOARD_USER}"
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="keep the dashboard's password as it is"
    )
    parser.add_argument(
        "--broker", dest="env_broker", metavar="URL",
        help="also write ONLOOKER_BROKER=URL into each env file (mqtt:// or mqtts://)",
    )  # fmt: skip
    parser.add_argument(
        "--python-hash", action="store_true", help="hash in Python even if mosquitto_passwd exists"
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; raises `CredentialsError` on bad input."""
    written = generate(
        args.out,
        args.agents,
        prefix=args.prefix,
        dashboard_user=args.dashboard_user,
        broker_url=args.env_broker,
        dashboard=not args.no_dashboard,
        use_mosquitto_passwd=not args.python_hash,
    )
    print(f"passwords for {', '.join(written.users)} ({written.hasher}) in {written.passwd}")
    print(f"ACL in {written.acl}")
    for name, path in written.env_files.items():
        print(f"{name}: {path}")
    print("install: docs/operations.md (passwd and acl into /etc/mosquitto/onlooker/)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m broker.credentials`` — the same as ``onlooker broker credentials``."""
    parser = argparse.ArgumentParser(prog="onlooker broker credentials", description=__doc__)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except CredentialsError as exc:
        parser.exit(2, f"onlooker broker credentials: error: {exc}\n")


if __name__ == "__main__":
    raise SystemExit(main())
