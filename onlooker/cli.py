"""The `onlooker` command: demo, agent, dashboard, broker and model assets."""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence

from onlooker import config as cfg

# MediaPipe's C++ core logs every graph start to stderr; keep the terminal readable.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger("onlooker")


class CliError(RuntimeError):
    """A problem the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onlooker",
        description="Onlooker shows what a screen with a camera learns about its viewer.",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="broker + dashboard + one agent, in one command",
        description=(
            "Start an embedded broker, the dashboard and one agent on the webcam "
            "(or, without one, on the sample video, looping), and print the URLs."
        ),
    )
    cfg.add_arguments(demo, "demo")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")

    agent = sub.add_parser("agent", help="run the edge agent beside a camera")
    cfg.add_arguments(agent, "agent")
    # The demo's agent: stop when standard input closes (the demo died, however it died).
    agent.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)

    dash = sub.add_parser("dashboard", help="run the dashboard (Flask) against a broker")
    cfg.add_arguments(dash, "dashboard")

    brk = sub.add_parser("broker", help="run the embedded MQTT broker alone")
    brk.add_argument("--port", type=int, default=1883, help="port on 127.0.0.1 (default 1883)")
    brk.add_argument(
        "--prefer",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="auto: mosquitto when installed, else the pure-Python amqtt",
    )

    brk_sub = brk.add_subparsers(dest="broker_command", metavar="{credentials}")
    cred = brk_sub.add_parser(
        "credentials",
        help="passwords, ACL and env files for a production Mosquitto (docs/operations.md)",
    )
    from broker.credentials import add_arguments as add_credentials_arguments

    add_credentials_arguments(cred)

    conf = sub.add_parser(
        "config",
        help="the effective settings and where each came from",
        description="Print the effective settings of the agent, the broker connection and the "
        "dashboard as a kiosk file: each with its help, its value and where it came from "
        "(default, file, env or flag). Secrets are never printed, only whether they are set.",
    )
    conf_sub = conf.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    cfg.add_arguments(
        conf_sub.add_parser("show", help="effective values, with default / file / env / flag"),
        "show",
    )

    models = sub.add_parser("models", help="model files and sample media")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = models_sub.add_parser("fetch", help="download and verify the model and sample media")
    fetch.add_argument("names", nargs="*", help="only these assets (default: all)")
    models_sub.add_parser("path", help="print the cache folder")
    models_sub.add_parser("list", help="the model backends, whether they can run, and why not")

    bench = sub.add_parser(
        "bench",
        help="compare expression backends on the same frames",
        description="Run each --model on the same decoded frames of one source, in one run, "
        "and print fps, ms per frame (p50/p95) and how often the backends agree.",
    )
    from edge.bench import add_arguments

    add_arguments(bench)

    doc = sub.add_parser(
        "doctor",
        help="is this kiosk ready? checks and prints each item with a fix",
        description="Check Python, the wheels, the model files, the camera, the broker, the "
        "ports, the clock, temperature and throttling, disk space and Chromium; each finding "
        "comes with a fix. Exit status 0 only when nothing failed.",
    )
    from onlooker.doctor import add_arguments as add_doctor_arguments

    add_doctor_arguments(doc)

    kiosk = sub.add_parser(
        "kiosk", help="set this machine up as a kiosk: systemd unit and Chromium autostart"
    )
    from onlooker.kiosk import add_arguments as add_kiosk_arguments

    add_kiosk_arguments(kiosk)

    ev = sub.add_parser("eval", help="score backends on labelled data")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    expr = ev_sub.add_parser(
        "expression",
        help="expression backends on labelled stills (DIR/<label>/*.jpg)",
        description="Run each --model on the same labelled stills, through the same landmarker "
        "and crop the agent uses, and print accuracy, balanced accuracy, recall per class, the "
        "confusion matrix, how often the answer is neutral, faces not found and ms per face "
        "(p50, one core). Folders are named by class: happy/happiness/joy, sad/sadness, "
        "angry/anger, surprise/surprised, fear/afraid/scared, disgust/disgusted, "
        "neutral/normal, contempt.",
    )
    expr.add_argument("dirs", nargs="+", metavar="DIR", help="folder(s) of <label>/ folders")
    expr.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="a backend to score; repeat for several (default: every available one)",
    )
    expr.add_argument(
        "--classes",
        metavar="LIST",
        help="only these classes: a comma list, or 'basic' for the seven without contempt",
    )
    expr.add_argument("--json", metavar="FILE", help="also write the figures as JSON here")
    return parser


# --- commands -------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from edge import assets

    if args.models_command == "path":
        print(assets.cache_dir())
        return 0
    if args.models_command == "list":
        from edge.models import available_models

        rows = [("name", "kind", "status", "speed", "outputs", "from")]
        for info in available_models():
            status = "available" if info.available else f"unavailable: {info.reason}"
            rows.append((info.name, info.kind, status, info.speed, info.outputs, info.origin))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        return 0
    try:
        unknown = sorted(set(args.names) - set(assets.ASSETS))
        if unknown:
            raise CliError(f"unknown assets {unknown}; known: {sorted(assets.ASSETS)}")
        assets.fetch(args.names or None, progress=print)
    except assets.AssetError as exc:
        raise CliError(str(exc)) from exc
    print(f"all assets verified in {assets.cache_dir()}")
    return 0


def _default_source() -> tuple[str, str]:
    """A camera module, else webcam 0 when it opens, else the looping sample video; returns
    (spec, consent)."""
    import cv2

    from edge import assets, picamera

    if picamera.available():
        return "picamera", "viewer"
    quiet, previous = cv2.utils.logging.LOG_LEVEL_SILENT, cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(quiet)  # "no camera" is an answer here, not an error
    try:
        cap = cv2.VideoCapture(0)
        opened = cap.isOpened() and cap.read()[0]
        cap.release()
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if opened:
        return "0", "viewer"
    logger.info(
        "no webcam opened (on macOS and Windows the system may be withholding it: allow "
        "camera access for this terminal in the privacy settings): using the recorded sample video"
    )
    return str(assets.asset_path(assets.SAMPLE_VIDEO)), "recorded-source"


def _ensure_models() -> None:
    """Fetch the model files once, so `pip install .` then `onlooker demo` is enough."""
    from edge import assets

    cache = assets.cache_dir()
    missing = [
        name
        for name, asset in assets.ASSETS.items()
        if name.endswith((".task", ".tflite")) and not assets.verify(cache / name, asset.sha256)
    ]
    if missing:
        print(f"first run: fetching {', '.join(missing)} into {cache} (once)", flush=True)
        try:
            assets.fetch(missing, progress=print)
        except assets.AssetError as exc:
            raise CliError(str(exc)) from exc


def _check_camera(spec: str) -> None:
    """Before the demo starts on a camera: the doctor's camera finding, and stop if it failed."""
    from onlooker import doctor

    if not (spec.isdigit() or spec.startswith("picamera")):
        return
    finding = doctor.check_camera(spec)
    if finding.status in (doctor.WARN, doctor.FAIL):
        print(doctor.format_finding(finding), file=sys.stderr, flush=True)
    if finding.status == doctor.FAIL:
        raise CliError(
            f"camera {spec} is not usable (the doctor's finding above); fix it, or run the "
            "demo on a recorded video: onlooker demo --source VIDEO"
        )


def _sigterm_stops(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM or SIGINT (Windows: SIGBREAK), from a thread of its own.

    Not from the handler: a handler runs on the main thread between two bytecodes, so a lock
    it takes may be one that thread already holds. On Linux a SIGKILLed parent's threads die
    one by one and the parent-death signal can come once for each; a second SIGTERM inside the
    first one's `Event.set` deadlocked the agent. `SimpleQueue.put` is reentrant (its docs)."""
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()

    def relay() -> None:
        signals.get()
        stop()

    threading.Thread(target=relay, name="stop-on-signal", daemon=True).start()

    def handler(signum, frame):
        signals.put(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if hasattr(signal, "SIGBREAK"):  # Windows: how the demo asks its agent to stop
        signal.signal(signal.SIGBREAK, handler)


def _spawn(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """A child that `_ask_to_stop` can stop cleanly on every OS (it says `offline` first), and
    that stops by itself when we die, even by SIGKILL: its standard input is a pipe only we
    hold, which the kernel closes with us (`--exit-with-parent`); on Linux it also gets a
    parent-death signal."""
    from broker.embedded import die_with_parent

    if sys.platform == "win32":  # no SIGTERM there: Ctrl-Break to its own process group
        return subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
        )  # fmt: skip
    return subprocess.Popen(command, env=env, stdin=subprocess.PIPE, preexec_fn=die_with_parent())


def _stop_at_eof(stop: Callable[[], None]) -> None:
    """Call `stop` once standard input reaches its end (the parent that holds it is gone)."""
    try:
        sys.stdin.buffer.read()
    except (OSError, ValueError, AttributeError):
        pass
    stop()


def _ask_to_stop(process: subprocess.Popen) -> None:
    if sys.platform == "win32":
        process.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        process.terminate()


def cmd_agent(args: argparse.Namespace) -> int:
    from edge import assets
    from edge.agent import Agent
    from edge.face import MediaPipeFaceLandmarker, ModelError
    from edge.sources import SourceError, open_source
    from edge.viewer import ViewerServer, create_viewer_app

    if not args.broker:
        raise CliError("the agent needs a broker: pass --broker mqtt://host:port")
    spec, consent = (args.source, None) if args.source else _default_source()
    try:
        source = open_source(spec, loop=args.loop, realtime=not args.fast)
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    consent = (
        args.consent or consent or ("viewer" if source.kind == "camera" else "recorded-source")
    )
    try:
        # Every field from the one tree (flag > env > file > default), checked by AgentConfig.
        config = cfg.agent_config(args.settings, consent=consent)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        analyzer = MediaPipeFaceLandmarker(
            assets.asset_path(assets.MODEL, fetch=False), max_faces=args.max_faces
        )
    except (ModelError, assets.AssetError) as exc:
        raise CliError(str(exc)) from exc
    try:  # the backend's options from [models.<name>] reach its constructor
        expression_model = cfg.create_expression_model(args.settings, config.expression_model)
    except cfg.ConfigError as exc:
        analyzer.close()
        source.close()
        raise CliError(str(exc)) from exc
    agent = Agent(config, source, analyzer, expression_model=expression_model)
    try:
        viewer = ViewerServer(create_viewer_app(agent), port=args.viewer_port).start()
    except OSError as exc:
        raise CliError(
            f"viewer port {args.viewer_port} is not free ({exc}); pass --viewer-port"
        ) from exc
    _sigterm_stops(agent.stop)
    if args.exit_with_parent:
        threading.Thread(target=_stop_at_eof, args=(agent.stop,), daemon=True).start()
    logger.info(
        "agent %s: source %s (%s consent), viewer page %s, broker %s",
        config.agent_id,
        spec,
        consent,
        viewer.url,
        config.broker_url,
    )
    try:
        agent.run()
    except SourceError as exc:  # a camera that stops delivering frames
        raise CliError(str(exc)) from exc
    finally:
        viewer.stop()
        analyzer.close()
        source.close()
    logger.info("agent stopped after %d frames, %d visits", agent.frames, agent.visits_started)
    return 0


def _serve_dashboard(
    broker_url: str,
    host: str,
    port: int,
    retention_s: float,
    auth: tuple[str, str] | None = None,
    prefix: str | None = None,
    extra: dict | None = None,
):
    from dashboard import create_app
    from dashboard.server import DashboardServer

    if retention_s < 0:
        raise CliError("--retention must be 0 or more seconds")
    config = {"BROKER_URL": broker_url, "RETENTION_S": retention_s}
    if prefix is not None:  # the demo's agent and dashboard share one prefix
        config["TOPIC_PREFIX"] = prefix
    config.update(extra or {})
    if auth is not None:  # the embedded broker's per-run credentials
        config.update(BROKER_USERNAME=auth[0], BROKER_PASSWORD=auth[1])
    app = create_app(config)
    try:
        return DashboardServer(app, host=host, port=port).start()
    except OSError as exc:
        raise CliError(f"dashboard port {port} is not free ({exc}); pass another port") from exc


def _dashboard_extra(args: argparse.Namespace) -> dict:
    """The dashboard's settings from the tree that create_app takes as configuration keys."""
    return {
        "CROWD_K": args.crowd_k,
        "EXHIBITION_HOLD_S": args.exhibition_hold_s,
        "ALLOWED_HOSTS": args.allowed_hosts,
    }


def cmd_dashboard(args: argparse.Namespace) -> int:
    if not args.broker:
        raise CliError("the dashboard needs a broker: pass --broker mqtt://host:port")
    server = _serve_dashboard(
        args.broker,
        args.dashboard_host,
        args.dashboard_port,
        args.dashboard_retention,
        prefix=args.topic_prefix,
        extra=_dashboard_extra(args),
    )
    print(f"dashboard: {server.url}  (broker {args.broker}; Ctrl-C stops)", flush=True)
    _wait_for_signal()
    server.stop()
    return 0


def _broker_access(broker) -> str:
    return "this run's credentials only" if broker.secured else "open to local processes"


def _start_broker(
    port: int, prefer: str = "auto", agents: list[str] | None = None, prefix: str | None = None
):
    from broker import wire
    from broker.embedded import BrokerError, EmbeddedBroker

    try:
        return EmbeddedBroker(
            port=port, prefer=prefer, agents=agents, prefix=prefix or wire.DEFAULT_PREFIX
        ).start()
    except (BrokerError, OSError) as exc:
        raise CliError(f"could not start the embedded broker: {exc}") from exc


def cmd_broker(args: argparse.Namespace) -> int:
    if getattr(args, "broker_command", None) == "credentials":
        from broker.credentials import CredentialsError, run

        try:
            return run(args)
        except CredentialsError as exc:
            raise CliError(str(exc)) from exc
    broker = _start_broker(args.port, args.prefer)
    print(f"{broker.kind} broker on {broker.url}  (Ctrl-C stops)", flush=True)
    _wait_for_signal()
    broker.stop()
    return 0


def _wait_for_signal(timeout: float | None = None) -> None:
    done = threading.Event()
    _sigterm_stops(done.set)
    done.wait(timeout)


def cmd_demo(args: argparse.Namespace) -> int:
    _ensure_models()
    spec, consent = (args.source, None) if args.source else _default_source()
    _check_camera(spec)
    # The demo's own broker takes only this run's credentials (with Mosquitto): no other local
    # process can read what the agent sends or speak for it.
    broker = (
        None if args.broker else _start_broker(0, agents=[args.agent_id], prefix=args.topic_prefix)
    )
    broker_url = args.broker or broker.url
    dashboard = agent = None
    try:
        auth = broker.credentials("dashboard") if broker is not None and broker.secured else None
        dashboard = _serve_dashboard(
            broker_url,
            "127.0.0.1",
            args.dashboard_port,
            # --retention on the demo is for both; otherwise each room keeps its own setting.
            args.retention if args.settings.sources["agent.retention_s"] == "flag"
            else args.dashboard_retention,
            auth=auth,
            prefix=args.topic_prefix,
            extra=_dashboard_extra(args),
        )  # fmt: skip
        command = [
            sys.executable, "-m", "onlooker", "--log-level", args.log_level, "agent",
            "--source", spec, "--broker", broker_url, "--agent-id", args.agent_id,
            "--topic-prefix", args.topic_prefix, "--viewer-port", str(args.viewer_port),
            "--max-faces", str(args.max_faces),
            "--retention", str(args.retention), "--model", args.model, "--profile", args.profile,
        ]  # fmt: skip
        command += ["--consent", consent] if consent else []
        # The agent reads the same kiosk file: the fields the demo has no flags for reach it.
        command += ["--config", str(args.settings.path)] if args.settings.path else []
        command += ["--fast"] if args.fast else []
        command += [] if args.loop else ["--no-loop"]
        command += ["--exit-with-parent"]
        # Credentials through the environment (readable by this user only), never argv.
        env = {**os.environ, **(broker.client_env(args.agent_id) if broker is not None else {})}
        agent = _spawn(command, env)
        viewer_url = f"http://127.0.0.1:{args.viewer_port}/"
        print(
            f"\nOnlooker demo running\n  dashboard    {dashboard.url}\n"
            f"  exhibition   {dashboard.url}/?mode=exhibition\n"
            f"  teacher      {dashboard.url}/?mode=teacher\n"
            f"  viewer page  {viewer_url}\n  broker       {broker_url}"
            + (f" ({broker.kind}, embedded, {_broker_access(broker)})" if broker else "")
            + (
                f"\n  watch wire   read-only credentials in {broker.observer_env}"
                if broker is not None and broker.secured
                else ""
            )
            + "\n  stop with Ctrl-C"
            + (f" (or after {args.duration:g} s)" if args.duration else "")
            + "\n",
            flush=True,
        )
        has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if not args.no_browser and (has_display or sys.platform in ("darwin", "win32")):
            webbrowser.open(dashboard.url)
            webbrowser.open(viewer_url)
        done = threading.Event()
        _sigterm_stops(done.set)
        deadline = time.monotonic() + args.duration if args.duration else None
        while not done.wait(0.5):
            if agent.poll() is not None:
                if deadline and agent.returncode == 0:  # its own duration_s from the file
                    break
                raise CliError(f"the agent stopped unexpectedly (exit code {agent.returncode})")
            if deadline and time.monotonic() >= deadline:
                break
    finally:
        if agent and agent.poll() is None:
            _ask_to_stop(agent)
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
        if dashboard:
            dashboard.stop()
        if broker:
            broker.stop()
    print("demo stopped", flush=True)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge import bench
    from edge.models import ModelUnavailableError

    try:
        report = bench.run_bench(args.model or ["blendshapes"], args.source, args.frames)
    except (ValueError, ModelUnavailableError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    print(bench.format_report(report))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from onlooker import doctor

    return doctor.main(args)


def cmd_kiosk(args: argparse.Namespace) -> int:
    from onlooker import kiosk

    try:
        return kiosk.main(args)
    except (kiosk.KioskError, OSError) as exc:
        raise CliError(str(exc)) from exc


def cmd_eval(args: argparse.Namespace) -> int:
    from edge import assets, expression_eval
    from edge.face import MediaPipeFaceLandmarker
    from edge.models import ModelUnavailableError, available_models, check_model_name

    try:
        if args.model:
            names = [check_model_name(n) for n in args.model]
        else:
            names = [m.name for m in available_models("expression") if m.available]
        classes = expression_eval.parse_classes(args.classes)
        images = expression_eval.labelled_images(args.dirs, classes)
        print(f"scoring {', '.join(names)} on {len(images)} stills", file=sys.stderr)
        analyzer = MediaPipeFaceLandmarker(assets.asset_path(assets.MODEL))
        try:
            report = expression_eval.evaluate(
                args.dirs,
                names,
                analyzer,
                progress=expression_eval.progress_to_stderr,
                classes=classes,
            )
        finally:
            analyzer.close()
    except (ValueError, ModelUnavailableError, assets.AssetError) as exc:
        raise CliError(str(exc)) from exc
    print(expression_eval.format_report(report))
    if args.json:
        expression_eval.write_json(report, args.json)
        print(f"figures written to {args.json}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print(cfg.format_settings(args.settings), end="")
    return 0


COMMANDS = {
    "config": cmd_config,
    "eval": cmd_eval,
    "doctor": cmd_doctor,
    "kiosk": cmd_kiosk,
    "bench": cmd_bench,
    "demo": cmd_demo,
    "agent": cmd_agent,
    "dashboard": cmd_dashboard,
    "broker": cmd_broker,
    "models": cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `onlooker` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("amqtt", "transitions", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command in cfg.COMMAND_SECTIONS or args.command == "config":
            command = "show" if args.command == "config" else args.command
            try:  # validated once, here: every later step reads the checked values
                cfg.apply(args, cfg.resolve(args, command))
            except cfg.ConfigError as exc:
                raise CliError(str(exc)) from exc
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"onlooker: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
