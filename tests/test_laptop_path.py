"""The teacher's laptop: `onlooker demo` without make, on any OS, with a clear word when the
camera cannot be used."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from edge import assets

REPO = Path(__file__).resolve().parent.parent

# Calls and modules that exist only on POSIX systems (Linux, macOS): on Windows they raise
# AttributeError or ImportError. The demo may use them only behind a check or a fallback.
POSIX_ONLY = {
    "os": {"fork", "forkpty", "setsid", "setpgid", "killpg", "getuid", "geteuid", "getgid",
           "getegid", "getpgid", "sched_setaffinity", "sched_getaffinity", "getloadavg", "nice",
           "sync", "mkfifo", "chown", "lchown", "statvfs", "uname", "pipe2", "openpty",
           "WNOHANG", "sysconf", "O_NOFOLLOW"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGQUIT",
               "SIGPIPE", "alarm", "setitimer", "pthread_kill", "pthread_sigmask", "sigwait"},
}  # fmt: skip
POSIX_MODULES = {"fcntl", "resource", "pwd", "grp", "termios", "pty", "tty", "posix", "syslog"}
POSIX_KEYWORDS = {"preexec_fn", "pass_fds"}  # Popen raises ValueError with them on Windows
GUARDS = ("hasattr(", "sys.platform", "os.name", "except ImportError", "except AttributeError")

DEMO_IMPORTS = (
    "onlooker.cli", "onlooker.doctor", "broker.embedded", "dashboard", "dashboard.server",
    "edge.agent", "edge.viewer", "edge.face", "edge.sources", "edge.picamera", "edge.assets",
    "edge.models",
)  # fmt: skip


def demo_modules() -> list[Path]:
    """Every file of this repository that `onlooker demo` imports (read from a fresh process)."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {DEMO_IMPORTS!r}: importlib.import_module(name)\n"
        "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    files = {Path(f).resolve() for f in json.loads(done.stdout) if f}
    return sorted(f for f in files if REPO in f.parents and ".venv" not in f.parts)


def unguarded_posix_uses(path: Path) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source)
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Try, ast.If))]

    def guarded(node: ast.AST) -> bool:
        for scope in scopes:
            if scope.lineno <= node.lineno <= scope.end_lineno:
                text = ast.get_source_segment(source, scope) or ""
                if any(guard in text for guard in GUARDS):
                    return True
        return False

    found = []
    for node in ast.walk(tree):
        hit = None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in POSIX_ONLY.get(node.value.id, ()):
                hit = f"{node.value.id}.{node.attr}"
        elif isinstance(node, ast.Import):
            names = {a.name.split(".")[0] for a in node.names} & POSIX_MODULES
            hit = f"import {', '.join(sorted(names))}" if names else None
        elif (
            isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in POSIX_MODULES
        ):
            hit = f"from {node.module} import"
        elif isinstance(node, ast.keyword) and node.arg in POSIX_KEYWORDS:
            hit = f"{node.arg}="
        if hit and not guarded(node):
            where = path.relative_to(REPO).as_posix() if REPO in path.parents else path.name
            found.append(f"{where}:{node.lineno}: {hit}")
    return found


def test_the_demo_path_makes_no_posix_only_call_without_a_fallback():
    modules = demo_modules()
    names = {m.relative_to(REPO).as_posix() for m in modules}
    assert {
        "onlooker/cli.py",
        "broker/embedded.py",
        "edge/agent.py",
        "dashboard/server.py",
    } <= names
    problems = [p for module in modules for p in unguarded_posix_uses(module)]
    assert problems == [], "POSIX-only calls on the demo path:\n" + "\n".join(problems)


def test_the_scan_finds_an_unguarded_call(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import os, signal\n"
        "def stop(pid):\n    os.kill(pid, signal.SIGKILL)\n"
        "def fine():\n    if hasattr(os, 'getloadavg'):\n        return os.getloadavg()\n"
    )
    assert unguarded_posix_uses(bad) == ["probe.py:3: signal.SIGKILL"]


def test_demo_on_a_camera_that_does_not_open_prints_the_doctors_finding():
    done = subprocess.run(
        [sys.executable, "-m", "onlooker", "demo", "--source", "9", "--no-browser",
         "--duration", "5", "--dashboard-port", str(free_port()),
         "--viewer-port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FAIL  camera       9: camera 9 did not open" in done.stderr
    assert "Privacy & Security > Camera" in done.stderr and "fix: check the cable" in done.stderr
    assert "run the demo on a recorded video: onlooker demo --source VIDEO" in done.stderr
    assert "Onlooker demo running" not in done.stdout  # nothing was started


@pytest.mark.integration
def test_demo_fetches_missing_model_files_itself(tmp_path, sample):
    """`pip install .` then `onlooker demo`: no `make models` first. Here the missing file is
    the one made on this machine (facex's float32 rewrite), so no network is needed."""
    for name in assets.ASSETS:
        sample(name)
    real, cache = assets.cache_dir(), tmp_path / "cache"
    cache.mkdir()
    missing = "facex_model_float32.tflite"
    for name in assets.ASSETS:
        if name != missing:
            (cache / name).symlink_to(real / name)
    done = subprocess.run(
        [sys.executable, "-m", "onlooker", "demo", "--source",
         str(real / "single_face.mp4"), "--duration", "4", "--no-browser",
         "--dashboard-port", str(free_port()), "--viewer-port", str(free_port())],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "ONLOOKER_CACHE": str(cache)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"first run: fetching {missing} into {cache}" in done.stdout
    assert assets.verify(cache / missing, assets.ASSETS[missing].sha256)
    assert "demo stopped" in done.stdout
