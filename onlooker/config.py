"""One configuration tree for every room: a TOML kiosk file, environment variables and flags.

Precedence, field by field: flag > environment > file > default. Each field is declared once
(`Setting`), with its default and help: the agent's fields come from `edge.agent.AgentConfig`
and its fields' ``help`` metadata, so the CLI, `onlooker config show` and the agent read the
same text. Backend options live in ``[models.<backend>]`` and reach the backend's constructor.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (pyproject.toml installs it only there)
    import tomli as tomllib

logger = logging.getLogger(__name__)

ENV_CONFIG = "ONLOOKER_CONFIG"
DEFAULT_DASHBOARD_PORT = 8000
DEFAULT_VIEWER_PORT = 8001
SECTIONS = ("agent", "dashboard", "broker", "models")
SOURCES = ("default", "file", "env", "flag")
HIDDEN = "(set, hidden)"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the field and where it came from."""


@dataclass(frozen=True)
class Setting:
    """One field of the tree: where it lives in the file, its flag and variable, its help."""

    section: str
    key: str
    kind: type  # str, int, float, bool or tuple (a list of strings)
    default: Any
    help: str
    env: str | None = None
    flag: str | None = None  # its flag wherever it has one, unless `flags` names another
    flags: Mapping[str, str] = field(default_factory=dict)  # command -> flag
    choices: tuple[str, ...] | None = None
    secret: bool = False  # never printed
    env_only: bool = False  # credentials: from the environment only, never a file or argv
    metavar: str | None = None
    arg: str | None = None  # attribute on the parsed arguments (default: the key)

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def dest(self) -> str:
        return self.arg or self.key

    def flag_for(self, command: str) -> str | None:
        return self.flags.get(command, self.flag)


def _agent_settings() -> list[Setting]:
    """The agent's fields: defaults and help from AgentConfig, so they are written once."""
    from broker import wire
    from edge.agent import PROFILES, AgentConfig

    declared = {f.name: f for f in dataclasses.fields(AgentConfig)}

    def from_config(key: str, kind: type, **extra: Any) -> Setting:
        f = declared[key]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        extra.setdefault("env", f"ONLOOKER_{key.upper()}")
        extra.setdefault("flag", "--" + key.removesuffix("_s").replace("_", "-"))
        help_text = extra.pop("help", None) or f.metadata["help"]
        return Setting("agent", key, kind, extra.pop("default", default), help_text, **extra)

    return [
        from_config("agent_id", str, metavar="ID", help=declared["agent_id"].metadata["help"]
                    + " (a-z, 0-9, -)"),
        Setting("agent", "source", str, None,
                "webcam index (0), picamera, a video file, an image or a folder of images "
                "(default: webcam 0 if it opens, else the sample video)",
                env="ONLOOKER_SOURCE", flag="--source"),
        from_config("consent", str, choices=wire.CONSENT_KINDS, default=None,
                    help=declared["consent"].metadata["help"]
                    + " (default: viewer for a camera, recorded-source for a file)"),
        from_config("scopes", tuple, metavar="LIST"),
        from_config("max_rate_hz", float, metavar="HZ"),
        from_config("profile", str, choices=tuple(PROFILES)),
        from_config("expression_model", str, env="ONLOOKER_MODEL", flag="--model",
                    metavar="NAME", arg="model"),
        from_config("heartbeat_s", float, metavar="SECONDS"),
        from_config("leave_after_s", float, metavar="SECONDS"),
        from_config("max_visit_s", float, metavar="SECONDS", arg="max_visit"),
        from_config("consent_wait_s", float, metavar="SECONDS"),
        from_config("retention_s", float, metavar="SECONDS", arg="retention"),
        from_config("duration_s", float, metavar="SECONDS", arg="duration"),
        from_config("screen_width_cm", float, metavar="CM"),
        Setting("agent", "viewer_port", int, DEFAULT_VIEWER_PORT,
                "port of the viewer's consent page on 127.0.0.1",
                env="ONLOOKER_VIEWER_PORT", flag="--viewer-port", metavar="PORT"),
        Setting("agent", "max_faces", int, 2, "faces tracked at most",
                env="ONLOOKER_MAX_FACES", flag="--max-faces", metavar="N"),
        Setting("agent", "fast", bool, False,
                "process a video as fast as possible, not in real time",
                env="ONLOOKER_FAST", flag="--fast"),
        Setting("agent", "loop", bool, True, "start a video again at its end (--no-loop stops)",
                env="ONLOOKER_LOOP", flag="--no-loop"),
    ]  # fmt: skip


def _broker_settings() -> list[Setting]:
    from broker import wire
    from broker.connection import ENV_CA, ENV_PASSWORD, ENV_USERNAME

    credential = "; from the environment only, never a file or the command line"
    return [
        Setting("broker", "url", str, None,
                "the MQTT broker, e.g. mqtt://127.0.0.1:1883 or mqtts://host:8883",
                env="ONLOOKER_BROKER", flag="--broker", metavar="URL", arg="broker"),
        Setting("broker", "topic_prefix", str, wire.DEFAULT_PREFIX,
                "MQTT topic prefix, the same for the agents, the dashboard and the ACL",
                env="ONLOOKER_TOPIC_PREFIX", flag="--topic-prefix", metavar="PREFIX"),
        Setting("broker", "username", str, None, "MQTT user name" + credential,
                env=ENV_USERNAME, env_only=True),
        Setting("broker", "password", str, None, "MQTT password" + credential,
                env=ENV_PASSWORD, env_only=True, secret=True),
        Setting("broker", "ca_file", str, None,
                "CA file that signs the broker's TLS certificate" + credential,
                env=ENV_CA, env_only=True),
    ]  # fmt: skip


def _dashboard_settings() -> list[Setting]:
    from dashboard import DEFAULTS

    return [
        Setting("dashboard", "host", str, DEFAULTS["BIND_HOST"], "address the dashboard binds",
                env="ONLOOKER_DASHBOARD_HOST", flag="--dashboard-host", metavar="ADDRESS",
                flags={"dashboard": "--host"}, arg="dashboard_host"),
        Setting("dashboard", "port", int, DEFAULT_DASHBOARD_PORT, "dashboard port",
                env="ONLOOKER_DASHBOARD_PORT", flag="--dashboard-port",
                flags={"dashboard": "--port"}, metavar="PORT", arg="dashboard_port"),
        Setting("dashboard", "retention_s", float, DEFAULTS["RETENTION_S"],
                "how long the dashboard keeps a finished visit (0 = deleted when it ends)",
                env="ONLOOKER_DASHBOARD_RETENTION_S", flag="--dashboard-retention",
                flags={"dashboard": "--retention"}, metavar="SECONDS",
                arg="dashboard_retention"),
        Setting("dashboard", "crowd_k", int, DEFAULTS["CROWD_K"],
                "crowd figures only when at least this many visits are behind them (≥ 5)",
                env="ONLOOKER_CROWD_K", flag="--crowd-k", metavar="K"),
        Setting("dashboard", "exhibition_hold_s", float, DEFAULTS["EXHIBITION_HOLD_S"],
                "exhibition mode: a finished visit stays on screen this long",
                env="ONLOOKER_EXHIBITION_HOLD_S", flag="--exhibition-hold", metavar="SECONDS"),
        Setting("dashboard", "allowed_hosts", tuple, tuple(DEFAULTS["ALLOWED_HOSTS"]),
                "host names the dashboard answers to besides loopback and its bind address",
                env="ONLOOKER_ALLOWED_HOSTS", metavar="LIST"),
        Setting("dashboard", "admin_token", str, None,
                "token that reset and purge need (always, off loopback); from the environment "
                "only", env="ONLOOKER_ADMIN_TOKEN", env_only=True, secret=True),
    ]  # fmt: skip


@functools.cache
def settings() -> tuple[Setting, ...]:
    """Every field of the tree, in the order `onlooker config show` prints them."""
    return (*_agent_settings(), *_broker_settings(), *_dashboard_settings())


def setting(name: str) -> Setting:
    return next(s for s in settings() if s.name == name)


_DEMO_AGENT = ("source", "agent_id", "viewer_port", "max_faces", "profile", "expression_model",
               "fast", "loop", "duration_s", "retention_s")  # fmt: skip
COMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "agent": tuple(f"agent.{k}" for k in (*_DEMO_AGENT, "consent", "scopes", "max_rate_hz",
           "heartbeat_s", "leave_after_s", "max_visit_s", "consent_wait_s", "screen_width_cm"))
    + ("broker.url", "broker.topic_prefix"),
    "demo": tuple(f"agent.{k}" for k in _DEMO_AGENT)
    + ("broker.url", "broker.topic_prefix", "dashboard.port"),
    "dashboard": ("broker.url", "broker.topic_prefix", "dashboard.host", "dashboard.port",
                  "dashboard.retention_s", "dashboard.crowd_k", "dashboard.exhibition_hold_s"),
}  # fmt: skip
"""Which fields each command takes as flags; the rest come from the environment or the file."""
COMMAND_FLAGS["show"] = tuple(dict.fromkeys(n for names in COMMAND_FLAGS.values() for n in names))
COMMAND_SECTIONS = {
    "agent": ("agent", "broker"),
    "demo": ("agent", "broker", "dashboard"),
    "dashboard": ("dashboard", "broker"),
    "show": ("agent", "broker", "dashboard"),
}
"""The sections each command validates beyond their types (the agent's need its backends)."""


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    return str(value)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """`--config` and this command's flags, with help and defaults from the one declaration."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"a TOML kiosk file: [agent], [dashboard], [broker], [models.<backend>] (env "
        f"{ENV_CONFIG}); flags beat the environment, which beats the file",
    )
    for name in COMMAND_FLAGS[command]:
        s = setting(name)
        flag = s.flag_for(command)
        where = f"env {s.env}, " if s.env else ""
        default = "" if s.default is None else f"default {_shown(s.default)}; "
        text = f"{s.help} ({default}{where}[{s.section}] {s.key})".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": s.dest, "default": None, "help": text}
        if s.kind is bool:
            kwargs.update(action="store_const", const=not flag.startswith("--no-"))
        else:
            kwargs.update(metavar=s.metavar, choices=s.choices)
            kwargs["type"] = s.kind if s.kind in (int, float) else str
        parser.add_argument(flag, **kwargs)


# --- resolution -------------------------------------------------------------------------------


@dataclass
class Resolved:
    """The effective value of every field, where each came from, and the backends' options."""

    values: dict[str, Any] = field(repr=False)  # secrets among them: never in a repr or a log
    sources: dict[str, str]  # field name -> default | file | env | flag
    path: Path | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    command: str = "show"

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def origin(self, name: str) -> str:
        """Where a field's value came from, in words: 'file kiosk.toml', 'env ONLOOKER_…'."""
        s, source = setting(name), self.sources[name]
        if source == "file":
            return f"file {self.path}"
        if source == "env":
            return f"env {s.env}"
        if source == "flag":
            return f"flag {s.flag_for(self.command)}"
        return "default"

    def model_options(self, name: str) -> dict[str, Any]:
        return dict(self.models.get(name, {}))


def _convert(s: Setting, value: Any, where: str, from_text: bool = True) -> Any:
    """A value from the file (TOML types) or the environment (text) as the field's kind."""
    text = isinstance(value, str) and from_text  # in a file, "80" is a string, not a port
    try:
        if s.kind is bool:
            if text and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if text and value.strip().lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, bool):
                return value
            raise TypeError("true or false")
        if s.kind is tuple:
            if text:
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise TypeError("a list of strings")
        if s.kind in (int, float):
            if isinstance(value, bool) or not (text or isinstance(value, (int, float))):
                raise TypeError("a number" if s.kind is float else "a whole number")
            if s.kind is int and isinstance(value, float):
                raise TypeError("a whole number")
            return s.kind(value)
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    except (TypeError, ValueError) as exc:
        wanted = str(exc) if isinstance(exc, TypeError) else f"a {s.kind.__name__} value"
        if s.kind in (int, float) and isinstance(exc, ValueError):
            wanted = "a number" if s.kind is float else "a whole number"
        raise ConfigError(f"{where} must be {wanted}, not {value!r}") from None


def load_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Read and check a kiosk file: {field name: value} and {backend: options}."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    known = {s.name: s for s in settings()}
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{section}]; known sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table, not a value")
        if section == "models":
            for backend, options in table.items():
                if not isinstance(options, dict):
                    raise ConfigError(
                        f"{path}: models.{backend} must be a [models.{backend}] table of the "
                        "backend's options, e.g. [models.fusion] threads = 1"
                    )
                models[backend] = dict(options)
            continue
        for key, value in table.items():
            s = known.get(f"{section}.{key}")
            if s is None:
                names = ", ".join(x.key for x in settings() if x.section == section)
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]; known: {names}")
            if s.env_only:
                raise ConfigError(
                    f"{path}: [{section}] {key} cannot be set in a file: it comes from the "
                    f"environment ({s.env}) only, never a file or the command line"
                )
            values[s.name] = _convert(s, value, f"{path}: [{section}] {key}", from_text=False)
    return values, models


def resolve(
    args: argparse.Namespace | None = None,
    command: str = "show",
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Every field's effective value (flag > environment > file > default), validated once."""
    env = os.environ if environ is None else environ
    config_path = getattr(args, "config", None) or env.get(ENV_CONFIG) or None
    file_values, models = load_file(config_path) if config_path else ({}, {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in settings():
        flagged = (
            getattr(args, s.dest, None)
            if args is not None and s.name in COMMAND_FLAGS.get(command, ())
            else None
        )
        if flagged is not None:
            value, source = flagged, "flag"
            if s.kind is tuple and isinstance(value, str):
                value = _convert(s, value, f"flag {s.flag_for(command)} ({s.name})")
        elif s.env and env.get(s.env):
            value, source = _convert(s, env[s.env], f"env {s.env} ({s.name})"), "env"
        elif s.name in file_values:
            value, source = file_values[s.name], "file"
        else:
            value, source = s.default, "default"
        if s.choices and value is not None and value not in s.choices:
            where = {
                "flag": f"flag {s.flag_for(command)} ({s.name})",
                "env": f"env {s.env} ({s.name})",
            }.get(source, f"{config_path}: [{s.section}] {s.key}")
            raise ConfigError(f"{where} must be one of {', '.join(s.choices)}, not {value!r}")
        values[s.name], sources[s.name] = value, source
    resolved = Resolved(
        values, sources, Path(config_path) if config_path else None, models, command
    )
    _validate(resolved, COMMAND_SECTIONS.get(command, ()))
    return resolved


def _blame(resolved: Resolved, message: str, section: str) -> str:
    """The message, with where each field it names came from."""
    named = [
        s.name
        for s in settings()
        if s.section == section
        and (s.key in message or s.key.replace("_", " ") in message)
        and resolved.sources[s.name] != "default"
    ]
    if not named and resolved.path is not None:
        return f"{message} (settings from {resolved.path})"
    return message + "".join(f"; {n} from {resolved.origin(n)}" for n in named)


def _validate(resolved: Resolved, sections: Sequence[str]) -> None:
    v = resolved.values
    for name, s in ((s.name, s) for s in settings() if s.section in sections):
        if s.kind in (int, float) and v[name] is not None and v[name] < 0:
            raise ConfigError(
                _blame(resolved, f"{s.key} must be 0 or more, not {v[name]}", s.section)
            )
        if s.key.endswith("port") and v[name] is not None and v[name] > 65535:
            raise ConfigError(_blame(resolved, f"{s.key} {v[name]} is not a port", s.section))
    if "dashboard" in sections and v["dashboard.crowd_k"] < 5:  # docs/privacy.md: k ≥ 5
        message = f"crowd_k must be 5 or more, not {v['dashboard.crowd_k']}"
        raise ConfigError(_blame(resolved, message, "dashboard"))
    if "agent" in sections:
        try:
            agent_config(resolved)
        except ValueError as exc:
            raise ConfigError(_blame(resolved, str(exc), "agent")) from None
        if v["broker.url"] is not None:
            try:
                from broker import wire

                wire.broker_address(v["broker.url"])
            except ValueError as exc:
                raise ConfigError(_blame(resolved, str(exc), "broker")) from None
    if "models" in sections or "agent" in sections:
        from edge.models import check_model_name

        for backend in resolved.models:
            try:
                check_model_name(backend)
            except ValueError as exc:
                raise ConfigError(f"{resolved.path}: [models.{backend}]: {exc}") from None


def agent_config(resolved: Resolved, consent: str | None = None):
    """The AgentConfig of these settings; its own checks raise ValueError naming the field."""
    from edge.agent import AgentConfig

    v = resolved.values
    known = {f.name for f in dataclasses.fields(AgentConfig)}
    fields = {s.key: v[s.name] for s in settings() if s.section == "agent" and s.key in known}
    fields["consent"] = consent or v["agent.consent"] or "viewer"
    fields["topic_prefix"] = v["broker.topic_prefix"]
    if v["broker.url"] is not None:
        fields["broker_url"] = v["broker.url"]
    return AgentConfig(**fields)


def create_expression_model(resolved: Resolved, name: str):
    """The named expression backend, built with the options of its [models.<name>] section."""
    from edge import models

    options = resolved.model_options(name)
    if options:
        logger.info("expression backend %s with %s from %s", name, options, resolved.path)
    try:
        return models.create_expression_model(name, **options)
    except (TypeError, ValueError) as exc:
        if not options:
            raise
        where = f"{resolved.path} [models.{name}]"
        raise ConfigError(
            f"{where} ({', '.join(options)}): the {name} backend says: {exc}"
        ) from None


def apply(args: argparse.Namespace, resolved: Resolved) -> None:
    """Write every effective value onto the parsed arguments, where the commands read them."""
    for s in settings():
        if not s.env_only:
            setattr(args, s.dest, resolved[s.name])
    args.settings = resolved


# --- onlooker config show ---------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_settings(resolved: Resolved) -> str:
    """The effective settings as a kiosk file, each with its help and where it came from.

    Secrets (the MQTT password, the admin token) are never printed, only whether they are set.
    """
    lines: list[str] = []
    for section in ("agent", "broker", "dashboard"):
        lines.append(f"[{section}]")
        for s in (s for s in settings() if s.section == section):
            value = resolved[s.name]
            lines.append(f"# {s.help}")
            origin = resolved.origin(s.name)
            if value is None:
                lines.append(f"# {s.key} = (not set)  # {origin}")
            elif s.secret:
                lines.append(f"# {s.key} = {HIDDEN}  # {origin}")
            elif s.env_only:
                lines.append(f"# {s.key} = {_toml_value(value)}  # {origin}")
            else:
                lines.append(f"{s.key} = {_toml_value(value)}  # {origin}")
        lines.append("")
    for backend, options in resolved.models.items():
        lines.append(f"[models.{backend}]  # options for this backend's constructor")
        lines += [f"{k} = {_toml_value(v)}  # file {resolved.path}" for k, v in options.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
