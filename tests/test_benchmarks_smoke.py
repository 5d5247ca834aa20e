"""benchmarks/edge.py runs from one command and reports sane figures (60 frames, no peer)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from broker.embedded import find_mosquitto
from conftest import require

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_edge_benchmark_reports_every_row(tmp_path: Path, model_path: Path, sample) -> None:
    require(find_mosquitto() is not None, "mosquitto is not installed (apt-get install mosquitto)")
    sample("WolfgangLanger_Pexels.mp4")  # fetched and verified before the clock starts
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.edge", "--frames", "60", "--rounds", "1",
         "--no-peer", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=55,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert "machine:" in text and "targets:" in text
    for name in ("(a) Face Landmarker alone", "(b) Onlooker whole pipeline"):
        assert name in text

    report = json.loads(out.read_text())
    assert report["video"]["frames"] == 60
    assert report["machine"]["cpus"] >= 1
    rows = {(row["key"], row["cores"]): row for row in report["rows"]}
    for key in [("landmarker:default", "all"), ("pipeline:default", "all"),
                ("landmarker:default", "1"), ("pipeline:default", "1")]:  # fmt: skip
        row = rows[key]
        assert row["frames"] == 60
        assert row["fps"] > 0 and math.isfinite(row["fps"])
        assert 0 < row["ms_p50"] <= row["ms_p95"]
        assert row["cpu_ms_per_frame"] > 0
        assert 50 < row["peak_rss_mb"] < 2000
    for cores in ("all", "1"):
        pipeline = rows[("pipeline:default", cores)]
        assert 0 < pipeline["ratio"] < 2
        assert pipeline["publisher"]["refused"] == 0
        assert pipeline["messages"].get("visit", 0) >= 1  # the consent gate let the visit open
    pi = rows[("pipeline:pi", "1")]
    assert "fps" in pi or "skipped" in pi  # a profile the agent lacks is a row with a reason
    assert not any("failed" in row for row in report["rows"])
    assert "peer" not in {row["key"] for row in report["rows"]}

    # the one line a Pi owner pastes back: the machine and every row's fps, nothing to edit
    pasted = [line for line in text.splitlines() if line.startswith("onlooker-bench 1; ")]
    assert len(pasted) == 1, text
    fields = dict(field.split("=", 1) for field in pasted[0].split("; ")[1:])
    assert fields["arch"] == platform.machine() and fields["cpus"] == str(os.cpu_count())
    assert fields["video"] == "WolfgangLanger_Pexels.mp4:60x640x360"
    landmarker = rows[("landmarker:default", "1")]
    assert fields["landmarker:default/1core"] == (
        f"{landmarker['fps']:.1f}fps,p95={landmarker['ms_p95']:.1f}ms"
    )
    assert fields["pipeline:default/all"].endswith("ms")
