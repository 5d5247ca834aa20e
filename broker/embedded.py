"""An MQTT broker that Onlooker starts for itself: one command, no setup, loopback only.

A `mosquitto` binary is preferred when one is installed: it is the broker production runs,
it speaks MQTT 5 and 3.1.1, and it delivers last wills. Without one, amqtt (pure Python,
MQTT 3.1.1 only) runs in-process on its own asyncio loop in a daemon thread, changed where it
differed from Mosquitto in what Onlooker relies on: it drops a client silent for 1.5 x its
keep-alive (so its will goes out), keeps a clean-session-off session and queues QoS 1 for it
while it is away, sends again a QoS 1 message that was never acknowledged, and sends a
retained message once, in answer to a SUBSCRIBE. tests/test_embedded_broker.py runs each of
these against both brokers; MQTT 5 remains Mosquitto's alone.

Either way the broker listens on a loopback address only and keeps nothing on disk, so it is
fit for a kiosk or a classroom laptop, never for a network of kiosks: those need a real
Mosquitto with its own configuration, ACLs and credentials.

It never outlives the process that started it, even one killed with SIGKILL: amqtt lives in
that process, and mosquitto runs under a small keeper process that stops it and deletes its
run folder as soon as the pipe from its parent closes (on every OS), with Linux's parent-death
signal on both as well. So no port stays held and no password file stays behind.

By default it allows anonymous clients. `EmbeddedBroker(agents=[...])` (what `onlooker demo`
runs) makes credentials for this run instead: a random password for each named agent and
for the dashboard, and the production ACL (an agent writes only its own topics and reads
only its own commands; the dashboard reads everything). Mosquitto enforces both, and gives
each client the client id of its username. amqtt cannot be made to enforce the same rules
here (its ACL plugin lets every publish through when no publish rules are set, and this
module does not configure its password plugin), so with amqtt the broker stays anonymous
and open to every local process, and says so in a warning.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import errno
import functools
import ipaddress
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from broker import wire

logger = logging.getLogger(__name__)

KINDS = ("mosquitto", "amqtt")
PREFERENCES = ("auto", *KINDS)
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
MAX_PACKET_BYTES = 65536
"""Far above the wire's own 2 KiB limit, yet a broken client cannot make the broker buffer MBs."""
MAX_INFLIGHT = 100
MAX_QUEUED = 100_000
"""QoS 1 messages in flight to, and queued for, one client (the dashboard): as the production
config, sized in docs/operations.md ("Load"); Mosquitto's default of 1,000 overflowed at 100
kiosks on a busy machine."""

OBSERVER_USER = "onlooker_observer"
"""The read-only user of a secured embedded broker (not a valid agent id: it has an "_")."""

_PORT_ATTEMPTS = 3  # a port picked by probing can be taken by someone else before we bind it
# Debian/Ubuntu put it in sbin, which a normal user's PATH lacks; Homebrew on Apple silicon too.
_MOSQUITTO_FALLBACK_PATHS = (
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
)
_LOG_TAIL_CHARS = 4000
_UNSTICK_AFTER_S = 0.2
_MOSQUITTO_RUNNING = re.compile(r"mosquitto version (\S+ running|1\.\S+ starting)")


_RUNNING: weakref.WeakSet[EmbeddedBroker] = weakref.WeakSet()


@atexit.register
def _stop_forgotten_brokers() -> None:
    # mosquitto runs in its own session (so Ctrl-C reaches us first); never leave it orphaned.
    for broker in list(_RUNNING):
        broker.stop()


# --- dying with the parent -----------------------------------------------------------------
#
# atexit covers a normal exit; a SIGKILL (or a crash, or the OOM killer) runs nothing of ours.
# So mosquitto is started through a keeper: a few lines of Python (standard library only) that
# run mosquitto as their own child and stop it, and delete the run folder (passwords, config),
# when their standard input reaches EOF. The write end of that pipe is held by this process
# only (not inheritable), so the kernel closes it whenever we die, however we die, on every OS.
# On Linux both the keeper and mosquitto also get a parent-death signal (SIGTERM), which holds
# even when a fork of this process inherited the pipe, and when the keeper itself is killed.

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_KEEPER = r"""
import os, shutil, signal, subprocess, sys, threading
folder, command = sys.argv[1], sys.argv[2:]
preexec = None
if sys.platform.startswith("linux"):
    import ctypes
    prctl, keeper = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()
    args = [ctypes.c_int(1), ctypes.c_ulong(signal.SIGTERM)] + [ctypes.c_ulong(0)] * 3
    def preexec():
        prctl(*args)
        if os.getppid() != keeper:
            os._exit(1)
child = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=preexec)
asked = []  # a list, not an Event: the SIGTERM handler must take no lock (a second SIGTERM
def stop(*_):  # can come while the first one's handler runs, on the same thread)
    asked.append(True)
    try:
        child.terminate()
    except OSError:
        pass
signal.signal(signal.SIGTERM, stop)
def watch():
    try:
        sys.stdin.buffer.read()
    except (OSError, ValueError):
        pass
    stop()
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
if asked:
    shutil.rmtree(folder, ignore_errors=True)
sys.exit(code)
"""
"""Runs as `python -I -S -c _KEEPER FOLDER MOSQUITTO ARGS...`; exits with mosquitto's code.

When mosquitto exits by itself (a port already taken) the folder stays: its log says why."""


def die_with_parent() -> Callable[[], None] | None:
    """Linux: a preexec_fn giving the child SIGTERM when its parent dies; elsewhere None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    args = [ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM)]
    args += [ctypes.c_ulong(0)] * 3

    def preexec() -> None:
        prctl(*args)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


_spawn_requests: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
_spawn_requests = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawn(start: Callable[[], Any]) -> Any:
    """Run `start` (a Popen) on one thread that lives as long as this process.

    Linux sends the parent-death signal when the *thread* that forked the child exits, not the
    process: a broker started from a short-lived thread (a test fixture, a worker) would be
    killed with that thread. This thread ends only with the process."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():  # not alive in a fork of this process
            _spawner = threading.Thread(
                target=_serve_spawns, name="onlooker-broker-spawner", daemon=True
            )
            _spawner.start()
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    _spawn_requests.put((start, future))
    return future.result()


def _serve_spawns() -> None:
    while True:
        start, future = _spawn_requests.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(start())
        except BaseException as exc:  # noqa: BLE001 (handed to the caller, who raises it)
            future.set_exception(exc)


class BrokerError(RuntimeError):
    """The embedded broker could not be started; the message says why and what to do."""


def find_mosquitto() -> str | None:
    """Return the path of a runnable `mosquitto` binary (PATH first, then sbin dirs), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _MOSQUITTO_FALLBACK_PATHS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _loopback_host(host: str) -> str:
    """Return `host` as a loopback IP literal, or raise ValueError if it is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"broker host {host!r} must be a loopback IP such as 127.0.0.1") from None
    if not address.is_loopback:
        raise ValueError(
            f"the embedded broker listens on loopback only, not {host!r}; "
            "for kiosks on a network run Mosquitto with its own configuration"
        )
    return str(address)


def _free_port(host: str) -> int:
    """Ask the OS for a port that is free on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-_LOG_TAIL_CHARS:].strip()


class EmbeddedBroker:
    """A loopback-only MQTT broker (mosquitto subprocess or in-process amqtt) for one process."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        prefer: str = "auto",
        agents: Sequence[str] | None = None,
        prefix: str = wire.DEFAULT_PREFIX,
    ):
        if prefer not in PREFERENCES:
            raise ValueError(f"prefer={prefer!r}; choose one of {PREFERENCES}")
        if not 0 <= port < 65536:
            raise ValueError(f"broker port {port} is out of range")
        self.host = _loopback_host(host)
        self.port = port
        self.prefer = prefer
        self.kind = ""
        # Per-run credentials (agents=[...]): username -> password, made at start.
        self.agents = None if agents is None else [wire.check_agent_id(a) for a in agents]
        self.prefix = wire.check_prefix(prefix)
        self._passwords: dict[str, str] = {}
        self.observer_env: Path | None = None  # a 0600 file: the read-only user's credentials
        self._requested_port = port
        self._lock = threading.Lock()
        self._tmpdir: Path | None = None
        # mosquitto
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_path: Path | None = None
        # amqtt
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._amqtt: Any = None

    @property
    def url(self) -> str:
        """Broker URL for clients, e.g. ``mqtt://127.0.0.1:18830``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def secured(self) -> bool:
        """True while clients need this run's credentials and the ACL holds (Mosquitto only)."""
        return bool(self._passwords) and self.kind == "mosquitto"

    def credentials(self, name: str) -> tuple[str, str]:
        """(username, password) of an agent named at construction, ``"dashboard"`` (reads all,
        writes only commands) or ``"observer"`` (reads all, writes nothing)."""
        from broker.credentials import DASHBOARD_USER

        user = {"dashboard": DASHBOARD_USER, "observer": OBSERVER_USER}.get(name, name)
        if user not in self._passwords:
            raise KeyError(f"no credentials for {name!r} (secured: {self.secured})")
        return user, self._passwords[user]

    def client_env(self, name: str) -> dict[str, str]:
        """ONLOOKER_MQTT_USERNAME and _PASSWORD for `name`; empty when the broker is open."""
        if not self.secured:
            return {}
        user, password = self.credentials(name)
        return {"ONLOOKER_MQTT_USERNAME": user, "ONLOOKER_MQTT_PASSWORD": password}

    @property
    def running(self) -> bool:
        """True between a successful `start()` and `stop()`."""
        return self._process is not None or self._amqtt is not None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedBroker({self.kind or self.prefer}, {self.url}, {state})"

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Start the broker and return self once it accepts TCP connections."""
        with self._lock:
            if self.running:
                return self
            kind = self._choose_kind()
            if self.agents is not None and kind == "amqtt":
                logger.warning(
                    "the embedded amqtt broker enforces no credentials and no ACL: any local "
                    "process can read every message and publish as any agent; install "
                    "mosquitto for per-run credentials and an ACL"
                )
            began = time.monotonic()
            attempts = _PORT_ATTEMPTS if self._requested_port == 0 else 1
            for attempt in range(1, attempts + 1):
                self.port = self._requested_port or _free_port(self.host)
                try:
                    if kind == "mosquitto":
                        self._start_mosquitto()
                    else:
                        self._start_amqtt()
                    break
                except _PortTaken as exc:
                    self._cleanup()
                    if attempt == attempts:
                        raise BrokerError(
                            f"{kind} could not listen on {self.host}:{self.port}: {exc}; "
                            "pass port=0 or a free port"
                        ) from None
                    logger.info("port %s was taken before %s bound it; retrying", self.port, kind)
                except BaseException:
                    self._cleanup()
                    raise
            self.kind = kind
            _RUNNING.add(self)
            logger.info(
                "embedded %s broker at %s (ready in %.2f s)",
                kind,
                self.url,
                time.monotonic() - began,
            )
            return self

    def stop(self) -> None:
        """Stop the broker and remove its temporary files; safe to call more than once."""
        with self._lock:
            if self.running:
                logger.info("stopping embedded %s broker at %s", self.kind, self.url)
            _RUNNING.discard(self)
            self._cleanup()

    def _choose_kind(self) -> str:
        if self.prefer == "amqtt":
            return "amqtt"
        if find_mosquitto() is not None:
            return "mosquitto"
        if self.prefer == "mosquitto":
            raise BrokerError(
                "no mosquitto binary found on PATH or in /usr/sbin; install it "
                "(`sudo apt-get install mosquitto`, `brew install mosquitto`) "
                'or use EmbeddedBroker(prefer="amqtt")'
            )
        return "amqtt"

    def _cleanup(self) -> None:
        self._stop_mosquitto()
        self._stop_amqtt()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # --- mosquitto ------------------------------------------------------------------------

    def _write_credentials(self, folder: Path) -> list[str]:
        """Passwords and the ACL for this run, in `folder` (mode 0700); config lines."""
        from broker import credentials

        users = [*(self.agents or ()), credentials.DASHBOARD_USER, OBSERVER_USER]
        self._passwords = {user: secrets.token_urlsafe(24) for user in users}
        passwd = folder / "passwd"
        acl = folder / "acl"
        # The observer only reads: for a person who wants to watch the wire themselves.
        observer_acl = f"\n# Reads everything, writes nothing.\nuser {OBSERVER_USER}\n" + (
            f"topic read {self.prefix}/#\n"
        )
        user, password = OBSERVER_USER, self._passwords[OBSERVER_USER]
        self.observer_env = folder / "observer.env"
        for path, text in (
            (passwd, "".join(
                f"{u}:{credentials.hash_password(p)}\n" for u, p in self._passwords.items()
            )),
            (acl, credentials.render_acl(self.prefix) + observer_acl),
            (self.observer_env,
             f"ONLOOKER_MQTT_USERNAME={user}\nONLOOKER_MQTT_PASSWORD={password}\n"),
        ):  # fmt: skip
            # A fresh file in a fresh 0700 folder (O_NOFOLLOW where the OS has it).
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        # As root, mosquitto would drop to the `mosquitto` user and lose these 0600 files: it
        # keeps the privileges of whoever started it instead (that is, of Onlooker).
        as_root = ["user root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        return [
            *as_root,
            "use_username_as_clientid true",  # a listener setting: after the listener line
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {acl}",
        ]

    def _mosquitto_config(self, secured: list[str] | None = None) -> str:
        return "\n".join(
            [
                "# Generated by onlooker broker/embedded.py; deleted when the broker stops.",
                f"listener {self.port} {self.host}",
                *(secured or ["allow_anonymous true"]),
                "persistence false",
                f"max_packet_size {MAX_PACKET_BYTES}",
                # As broker/production/mosquitto.conf, for the dashboard's queue.
                f"max_inflight_messages {MAX_INFLIGHT}",
                f"max_queued_messages {MAX_QUEUED}",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",  # "mosquitto version X running" marks readiness
                "connection_messages false",
                "",
            ]
        )

    def _start_mosquitto(self) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError('mosquitto disappeared; install it or use prefer="amqtt"')
        self._tmpdir = Path(tempfile.mkdtemp(prefix="onlooker-mosquitto-"))  # mode 0700
        secured = self._write_credentials(self._tmpdir) if self.agents is not None else None
        conf = self._tmpdir / "mosquitto.conf"
        conf.write_text(self._mosquitto_config(secured), encoding="utf-8")
        # A file, not a pipe: nobody has to drain it, and it is there to show on failure.
        # It is opened here, so mosquitto dropping root privileges cannot lock it out.
        self._log_path = self._tmpdir / "mosquitto.log"
        self._log_file = open(self._log_path, "wb")  # noqa: SIM115 (closed in _stop_mosquitto)
        command = [sys.executable, "-I", "-S", "-c", _KEEPER, str(self._tmpdir), binary]
        log_file = self._log_file
        try:
            self._process = _spawn(
                lambda: subprocess.Popen(
                    [*command, "-c", str(conf)],
                    stdin=subprocess.PIPE,  # our end closes when we die: the keeper's signal
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C in the terminal goes to us, and we stop it
                    preexec_fn=die_with_parent() if sys.platform.startswith("linux") else None,
                )
            )
        except OSError as exc:
            raise BrokerError(f"could not run {binary}: {exc}") from exc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                log = _tail(self._log_path)
                if "Address already in use" in log or "address already in use" in log:
                    raise _PortTaken(log)
                raise BrokerError(
                    f"mosquitto exited with code {code} before accepting connections "
                    f"on {self.host}:{self.port}. Its log:\n{log or '(empty)'}"
                )
            # A bare TCP probe could be answered by whoever squats the port, so also wait
            # for mosquitto's own word that it is listening (1.x never logs it).
            if _accepts_tcp(self.host, self.port) and _MOSQUITTO_RUNNING.search(
                _tail(self._log_path)
            ):
                return
            time.sleep(0.02)
        log = _tail(self._log_path)
        raise BrokerError(
            f"mosquitto did not accept connections on {self.host}:{self.port} within "
            f"{START_TIMEOUT_S:.0f} s. Its log:\n{log or '(empty)'}"
        )

    def _stop_mosquitto(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # the keeper stops mosquitto and exits (any OS)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("mosquitto did not stop within %s s; killing it", STOP_TIMEOUT_S)
                process.kill()  # on Linux mosquitto follows through its parent-death signal
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # --- amqtt ------------------------------------------------------------------------------

    def _amqtt_config(self) -> dict[str, Any]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            # amqtt's own default is 0.0.0.0:1883; the bind here is what keeps it on loopback.
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{self.port}"}},
            # Only anonymous auth: no $SYS topics every 20 s and no per-packet logging.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

    def _start_amqtt(self) -> None:
        try:
            broker_class = _amqtt_broker_class()
        except ImportError as exc:
            raise BrokerError(
                f"amqtt is not importable ({exc}); `pip install amqtt` or install mosquitto"
            ) from exc
        for name in ("amqtt", "transitions"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)

        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=_run_loop, args=(loop,), name=f"amqtt-broker-{self.port}", daemon=True
        )
        self._thread.start()
        config = self._amqtt_config()

        async def start() -> Any:
            broker = broker_class(config)
            await broker.start()
            return broker

        future = asyncio.run_coroutine_threadsafe(start(), loop)
        try:
            self._amqtt = future.result(timeout=START_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BrokerError(
                f"amqtt did not start on {self.host}:{self.port} within {START_TIMEOUT_S:.0f} s"
            ) from None
        except Exception as exc:
            cause = exc.__cause__ or exc
            if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
                raise _PortTaken(str(cause)) from None
            raise BrokerError(
                f"amqtt could not start on {self.host}:{self.port}: {exc} (cause: {cause!r})"
            ) from exc

    def _stop_amqtt(self) -> None:
        loop, thread, broker = self._loop, self._thread, self._amqtt
        self._loop = self._thread = self._amqtt = None
        if loop is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(_shutdown_amqtt(broker), loop)
            try:
                future.result(timeout=STOP_TIMEOUT_S + 1.0)
            except Exception as exc:  # noqa: BLE001 (stopping must go on; say what happened)
                logger.warning("amqtt did not shut down cleanly: %r", exc)
                future.cancel()
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("amqtt loop thread still alive after %s s", STOP_TIMEOUT_S)
                return  # closing a running loop would raise; the daemon thread dies with us
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class _PortTaken(Exception):
    """The chosen port was in use when the broker tried to bind it."""


# --- amqtt, with the gaps Onlooker relies on closed ----------------------------------------------
#
# Each override is checked by a test that runs against Mosquitto and amqtt alike
# (tests/test_embedded_broker.py). They reach into amqtt's private methods, so the dependency
# is pinned to the minor version they were written for (pyproject.toml).

KEEPALIVE_GRACE = 1.5
"""MQTT 3.1.1 §3.1.2.10: a client silent for 1.5 x its keep-alive is dropped (and its will sent)."""

_subscribing: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "onlooker_amqtt_subscribing", default=False
)


@functools.cache
def _amqtt_broker_class() -> type:
    """amqtt's Broker, changed where it differs from Mosquitto in what Onlooker relies on."""
    from amqtt.broker import Broker

    class OnlookerAmqttBroker(Broker):  # type: ignore[misc]
        async def _initialize_client_session(self, *args: Any, **kwargs: Any) -> Any:
            handler, session = await super()._initialize_client_session(*args, **kwargs)
            if session.keep_alive > 0:
                # amqtt waits keep_alive for a packet, then calls a handler that does nothing:
                # a half-open client kept its session forever and its will was never sent.
                session.keep_alive *= KEEPALIVE_GRACE
                handler.handle_read_timeout = functools.partial(_drop_silent_client, handler)
            handler._handle_qos1_message_flow = functools.partial(
                _qos1_kept_until_acknowledged, handler._handle_qos1_message_flow
            )
            return handler, session

        async def _authenticate(self, session: Any, *args: Any, **kwargs: Any) -> Any:
            authenticated = await super()._authenticate(session, *args, **kwargs)
            # amqtt queues nothing for, and forgets within a second, the session of a client
            # it calls anonymous, and with anonymous access that is every client: clean
            # session off meant nothing. This broker is open on loopback; a session is a session.
            session.is_anonymous = False
            return authenticated

        async def _handle_subscription(self, *args: Any, **kwargs: Any) -> None:
            token = _subscribing.set(True)
            try:
                await super()._handle_subscription(*args, **kwargs)
            finally:
                _subscribing.reset(token)

        async def _publish_retained_messages_for_subscription(self, *args: Any) -> None:
            # amqtt also calls this on every CONNECT, for every filter any client holds: a late
            # subscriber got each matching retained message at connect and again at SUBSCRIBE.
            # Retained messages are sent in answer to a SUBSCRIBE only (MQTT 3.1.1 §3.3.1.3).
            if _subscribing.get():
                await super()._publish_retained_messages_for_subscription(*args)

        async def _publish_session_retained_messages(self, session: Any) -> None:
            # What was queued for a persistent session while it was away, in order; amqtt sent
            # these flagged as retained messages, which they are not.
            handler = self._get_handler(session)
            if handler is None:
                return
            sends = []
            while not session.retained_messages.empty():
                queued = session.retained_messages.get_nowait()
                sends.append(
                    asyncio.ensure_future(
                        handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                    )
                )
            if sends:
                await asyncio.wait(sends)

    return OnlookerAmqttBroker


async def _qos1_kept_until_acknowledged(flow: Any, message: Any) -> None:
    """amqtt's QoS 1 flow, but a message sent and never acknowledged stays in flight.

    amqtt forgets an outgoing QoS 1 message once its PUBACK wait ends for any reason: the client
    vanishing before it acknowledged (the message was lost) or 5 s without a PUBACK. Kept in the
    session, it is sent again, flagged DUP, when that session reconnects (MQTT 3.1.1 §4.4)."""
    from amqtt.mqtt.constants import QOS_1
    from amqtt.session import OUTGOING

    session = flow.__self__.session
    try:
        await flow(message)
    finally:
        unacknowledged = message.puback_packet is None and message.publish_packet is not None
        if message.direction == OUTGOING and message.qos == QOS_1 and unacknowledged:
            if session is not None and message.packet_id is not None:
                session.inflight_out[message.packet_id] = message


def _drop_silent_client(handler: Any) -> None:
    """Abort a connection whose keep-alive ran out: its reader sees EOF and the will goes out."""
    stream = getattr(handler.writer, "_writer", None)  # the asyncio.StreamWriter inside
    transport = getattr(stream, "transport", None)
    if transport is not None:
        logger.info("amqtt: dropping a client silent beyond its keep-alive")
        transport.abort()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _shutdown_amqtt(broker: Any) -> None:
    """Shut amqtt down, unsticking it if needed, then cancel whatever it left behind."""
    if broker is not None:
        shutdown = asyncio.ensure_future(broker.shutdown())
        deadline = time.monotonic() + STOP_TIMEOUT_S - 2.0
        while not shutdown.done() and time.monotonic() < deadline:
            await asyncio.wait([shutdown], timeout=_UNSTICK_AFTER_S)
            if not shutdown.done():
                _recancel_swallowed_readers()
        if not shutdown.done():
            shutdown.cancel()
            _close_listeners(broker)
        await asyncio.gather(shutdown, return_exceptions=True)
    current = asyncio.current_task()
    for _ in range(3):
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        if not leftovers:
            break
        for task in leftovers:
            task.cancel()
        await asyncio.wait(leftovers, timeout=0.5)


def _recancel_swallowed_readers() -> None:
    """Cancel amqtt's connection readers again when a cancel was lost.

    amqtt reads each packet through `asyncio.wait_for`, which before Python 3.12 drops a
    cancellation that lands as a packet arrives (CPython gh-86296). The reader then runs on and
    `Broker.shutdown()` waits for it forever while that client stays connected.
    """
    for task in asyncio.all_tasks():
        if not getattr(task.get_coro(), "__qualname__", "").endswith("_reader_loop"):
            continue
        cancelling = getattr(task, "cancelling", None)  # Python >= 3.11
        if cancelling is None or cancelling():
            logger.debug("re-cancelling amqtt reader %s", task.get_name())
            task.cancel()


def _close_listeners(broker: Any) -> None:
    """Last resort: close amqtt's listening sockets so the port is free again."""
    for server in getattr(broker, "_servers", {}).values():
        instance = getattr(server, "instance", None)
        if instance is not None:
            instance.close()
