"""One configuration tree: kiosk file, environment and flags; config show; backend options."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_models import example_installed  # noqa: F401  (the pip-installed example backend)

from edge import models
from edge.agent import AgentConfig
from onlooker import cli
from onlooker import config as cfg
from onlooker.config import tomllib  # tomli before Python 3.11

ROOT = Path(__file__).resolve().parents[1]


def kiosk_file(tmp_path: Path, text: str, name: str = "kiosk.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def resolved(argv: list[str], environ: dict[str, str] | None = None) -> cfg.Resolved:
    args = cli.build_parser().parse_args(argv)
    command = "show" if args.command == "config" else args.command
    return cfg.resolve(args, command, environ={} if environ is None else environ)


@pytest.fixture
def fresh_registry():
    models.refresh()
    yield
    models.refresh()


# --- precedence -------------------------------------------------------------------------------


def test_flag_beats_environment_beats_file_beats_default(tmp_path):
    path = kiosk_file(
        tmp_path,
        """
        [agent]
        agent_id = "from-file"
        profile = "pi"
        max_visit_s = 300
        [broker]
        url = "mqtt://10.0.0.5:1883"
        """,
    )
    env = {"ONLOOKER_AGENT_ID": "from-env", "ONLOOKER_PROFILE": "default"}
    got = resolved(["agent", "--config", str(path), "--agent-id", "from-flag"], env)
    assert got["agent.agent_id"] == "from-flag" and got.sources["agent.agent_id"] == "flag"
    assert got["agent.profile"] == "default" and got.sources["agent.profile"] == "env"
    assert got["agent.max_visit_s"] == 300.0 and got.sources["agent.max_visit_s"] == "file"
    assert got["broker.url"] == "mqtt://10.0.0.5:1883" and got.sources["broker.url"] == "file"
    assert got["agent.retention_s"] == 600.0 and got.sources["agent.retention_s"] == "default"
    config = cfg.agent_config(got)
    assert (config.agent_id, config.profile, config.max_visit_s) == ("from-flag", "default", 300)
    assert config.broker_url == "mqtt://10.0.0.5:1883"


def test_the_file_can_come_from_the_environment_and_flags_of_each_command(tmp_path):
    path = kiosk_file(
        tmp_path,
        """
        [dashboard]
        port = 8100
        retention_s = 60
        allowed_hosts = ["kiosk.local"]
        """,
    )
    got = resolved(["dashboard", "--retention", "30"], {"ONLOOKER_CONFIG": str(path)})
    assert got.path == path
    assert (got["dashboard.port"], got.sources["dashboard.port"]) == (8100, "file")
    assert (got["dashboard.retention_s"], got.sources["dashboard.retention_s"]) == (30.0, "flag")
    assert got["dashboard.allowed_hosts"] == ("kiosk.local",)
    assert got["agent.retention_s"] == 600.0  # each room keeps its own field


def test_defaults_and_help_come_from_agent_config():
    fields = {f.name: f for f in dataclasses.fields(AgentConfig)}
    for s in cfg.settings():
        if s.section == "agent" and s.key in fields and s.key != "consent":
            assert s.default == fields[s.key].default, s.key
            assert s.help.startswith(fields[s.key].metadata["help"]), s.key
    text = cli.build_parser()._subparsers._group_actions[0].choices["agent"].format_help()
    assert fields["max_visit_s"].metadata["help"] in " ".join(text.split())
    assert "default 900.0" in text and "ONLOOKER_MAX_VISIT_S" in text


def test_tomli_is_a_dependency_only_before_python_3_11():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tomli = [d for d in project["dependencies"] if d.startswith("tomli")]
    assert tomli and all("python_version < '3.11'" in d.replace('"', "'") for d in tomli)


# --- errors name the field and the file -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[agent]\nagnet_id = 'x'\n", r"kiosk.toml: unknown key 'agnet_id' in \[agent\]"),
        ("[agents]\nagent_id = 'x'\n", r"kiosk.toml: unknown section \[agents\]"),
        ("[agent]\nmax_visit_s = 'long'\n", r"kiosk.toml: \[agent\] max_visit_s must be a number"),
        ("[agent]\nmax_faces = 1.5\n", r"kiosk.toml: \[agent\] max_faces must be a whole number"),
        ("[agent]\nfast = 'yes please'\n", r"kiosk.toml: \[agent\] fast must be true or false"),
        ("[dashboard]\nport = '80'\n", r"kiosk.toml: \[dashboard\] port must be a whole number"),
        (
            "[agent]\nprofile = 'tiny'\n",
            r"kiosk.toml: \[agent\] profile must be one of default, pi",
        ),
        ("[broker]\npassword = 'x'\n", r"\[broker\] password cannot be set in a file"),
        ("[models]\nthreads = 1\n", r"models.threads must be a \[models.threads\] table"),
        ("[agent\n", r"kiosk.toml is not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field_and_the_file(tmp_path, text, message):
    path = kiosk_file(tmp_path, text)
    with pytest.raises(cfg.ConfigError, match=message):
        resolved(["agent", "--config", str(path)])


def test_agent_config_checks_are_reused_and_say_where_the_value_came_from(tmp_path, capsys):
    path = kiosk_file(tmp_path, "[agent]\nagent_id = 'Kiosk 7'\nmax_rate_hz = 9\n")
    assert cli.main(["agent", "--config", str(path), "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "agent id 'Kiosk 7'" in err and f"agent.agent_id from file {path}" in err
    assert "Traceback" not in err
    with pytest.raises(cfg.ConfigError, match="max_rate_hz must be in.*from file"):
        resolved(["agent", "--config", str(path), "--agent-id", "kiosk-7"])
    with pytest.raises(cfg.ConfigError, match=r"env ONLOOKER_MAX_FACES \(agent.max_faces\)"):
        resolved(["agent"], {"ONLOOKER_MAX_FACES": "two"})
    with pytest.raises(cfg.ConfigError, match="config file .*nope.toml does not exist"):
        resolved(["agent", "--config", str(tmp_path / "nope.toml")])


def test_crowd_figures_need_at_least_five_visits_whatever_the_file_says(tmp_path):
    path = kiosk_file(tmp_path, "[dashboard]\ncrowd_k = 2\n")
    with pytest.raises(cfg.ConfigError, match="crowd_k must be 5 or more.*from file"):
        resolved(["dashboard", "--config", str(path)])


def test_options_for_an_unknown_backend_are_refused(tmp_path):
    path = kiosk_file(tmp_path, "[models.fussion]\nthreads = 1\n")
    with pytest.raises(cfg.ConfigError, match=r"kiosk.toml: \[models.fussion\].*unknown"):
        resolved(["agent", "--config", str(path)])


# --- onlooker config show ---------------------------------------------------------------------


def test_config_show_prints_each_value_and_where_it_came_from(tmp_path, capsys, monkeypatch):
    path = kiosk_file(
        tmp_path,
        """
        [agent]
        profile = "pi"
        [models.fusion]
        cnn_interval_s = 1.0
        threads = 1
        """,
    )
    monkeypatch.setenv("ONLOOKER_BROKER", "mqtt://10.0.0.5:1883")
    monkeypatch.setenv("ONLOOKER_MQTT_USERNAME", "kiosk-7")
    argv = ["config", "show", "--config", str(path), "--agent-id", "kiosk-7"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'agent_id = "kiosk-7"  # flag --agent-id' in lines
    assert f'profile = "pi"  # file {path}' in lines
    assert 'url = "mqtt://10.0.0.5:1883"  # env ONLOOKER_BROKER' in lines
    assert "max_visit_s = 900.0  # default" in lines
    assert '# username = "kiosk-7"  # env ONLOOKER_MQTT_USERNAME' in lines
    assert f"cnn_interval_s = 1.0  # file {path}" in lines
    assert any(line.startswith("[models.fusion]") for line in lines)
    assert f"# {AgentConfig.__dataclass_fields__['max_visit_s'].metadata['help']}" in lines
    # What it prints is a kiosk file again (without the comments' sources it is the same tree).
    tomllib.loads("\n".join(lines))


def test_config_show_never_prints_a_secret(capsys, monkeypatch):
    monkeypatch.setenv("ONLOOKER_MQTT_USERNAME", "kiosk-7")
    monkeypatch.setenv("ONLOOKER_MQTT_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("ONLOOKER_ADMIN_TOKEN", "admin-token-very-secret")
    assert cli.main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "admin-token-very-secret" not in out
    assert "# password = (set, hidden)  # env ONLOOKER_MQTT_PASSWORD" in out
    assert "# admin_token = (set, hidden)  # env ONLOOKER_ADMIN_TOKEN" in out
    assert "hunter2" not in repr(cfg.resolve(environ=dict(os.environ)))


# --- per-backend options ----------------------------------------------------------------------


def test_backend_options_reach_the_backend_constructor(tmp_path, fresh_registry):
    received = {}

    def factory(**kwargs):
        received.update(kwargs)
        return models.create_expression_model("blendshapes")

    models.register("recording", factory)
    try:
        path = kiosk_file(
            tmp_path,
            """
            [agent]
            expression_model = "recording"
            [models.recording]
            threads = 1
            cnn_interval_s = 1.0
            [models.fusion]
            threads = 4
            """,
        )
        got = resolved(["agent", "--config", str(path)])
        cfg.create_expression_model(got, got["agent.expression_model"])
        assert received == {"threads": 1, "cnn_interval_s": 1.0}  # only its own section
    finally:
        models.unregister("recording")


def test_an_option_the_backend_does_not_take_names_the_section_and_file(tmp_path):
    path = kiosk_file(tmp_path, "[models.blendshapes]\ngain = 2.0\n")
    got = resolved(["agent", "--config", str(path), "--model", "blendshapes"])
    with pytest.raises(cfg.ConfigError, match=r"kiosk.toml \[models.blendshapes\] \(gain\)"):
        cfg.create_expression_model(got, "blendshapes")


def test_the_example_backend_takes_its_gain_from_the_kiosk_file(
    example_installed,  # noqa: F811
    monkeypatch,
    tmp_path,
    fresh_registry,
):
    monkeypatch.syspath_prepend(str(example_installed))
    path = kiosk_file(
        tmp_path,
        """
        [agent]
        expression_model = "example-mouth"
        [models.example-mouth]
        gain = 3.0
        """,
    )
    got = resolved(["agent", "--config", str(path)])
    model = cfg.create_expression_model(got, got["agent.expression_model"])
    assert type(model).__module__ == "onlooker_example_backend" and model.gain == 3.0


def test_a_real_agent_hands_the_file_s_option_to_the_example_backend(
    example_installed,  # noqa: F811
    model_path,
    sample,
    tmp_path,
):
    # A gain the backend refuses: the real agent process stops with the backend's own words,
    # so the option went from the file through the CLI to the backend's constructor.
    path = kiosk_file(
        tmp_path,
        """
        [agent]
        expression_model = "example-mouth"
        [models.example-mouth]
        gain = -1.0
        """,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(example_installed), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "onlooker", "agent", "--config", str(path),
         "--broker", "mqtt://127.0.0.1:1", "--source", str(sample("single_face.jpg"))],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{path} [models.example-mouth] (gain)" in done.stderr
    assert "gain must be > 0" in done.stderr and "Traceback" not in done.stderr


# --- the demo hands its file to the agent it starts ---------------------------------------------


class FakeProcess:
    returncode = None

    def poll(self):
        return None

    def terminate(self):
        self.returncode = 0

    def wait(self, timeout=None):
        return 0


def test_the_demo_passes_its_kiosk_file_to_the_agent(tmp_path, monkeypatch, capsys):
    path = kiosk_file(
        tmp_path,
        """
        [agent]
        agent_id = "kiosk-7"
        max_visit_s = 120
        screen_width_cm = 52
        [dashboard]
        retention_s = 30
        [models.fusion]
        cnn_interval_s = 1.0
        """,
    )
    spawned, dashboards = [], []

    class FakeDashboard:
        url = "http://127.0.0.1:1"

        def stop(self):
            pass

    def serve(*args, **kwargs):
        dashboards.append((args, kwargs))
        return FakeDashboard()

    monkeypatch.setattr(cli, "_ensure_models", lambda: None)
    monkeypatch.setattr(cli, "_sigterm_stops", lambda stop: None)
    monkeypatch.setattr(cli, "_serve_dashboard", serve)
    monkeypatch.setattr(cli, "_spawn", lambda command, env=None: spawned.append(command) or (
        FakeProcess()))  # fmt: skip
    argv = ["demo", "--config", str(path), "--broker", "mqtt://127.0.0.1:1", "--no-browser",
            "--source", "video.mp4", "--duration", "0.1"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    (command,) = spawned
    assert command[command.index("--config") + 1] == str(path)
    assert command[command.index("--agent-id") + 1] == "kiosk-7"
    assert dashboards[0][0][3] == 30.0  # the dashboard's own retention from the file
    # The agent started this way sees the file's fields the demo has no flags for.
    child = resolved(command[command.index("agent") :])
    assert child["agent.max_visit_s"] == 120.0 and child.sources["agent.max_visit_s"] == "file"
    assert child["agent.screen_width_cm"] == 52.0
    assert child.model_options("fusion") == {"cnn_interval_s": 1.0}
