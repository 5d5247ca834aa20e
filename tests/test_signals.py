"""Head pose, the main face and the rate limit, on constructed inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.face import FaceObservation
from edge.signals import RateLimit, head_pose, main_face


def rotation(yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx @ rz
    m[:3, 3] = (1.0, -2.0, -40.0)
    return m


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (30, 0, 0), (-25, 10, 0), (5, -15, 20)])
def test_head_pose_recovers_known_angles(yaw, pitch, roll):
    pose = head_pose(rotation(yaw, pitch, roll))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_head_pose_ignores_uniform_scale():
    m = rotation(20, -5, 3)
    m[:3, :3] *= 1.7
    pose = head_pose(m)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((20, -5, 3), abs=1e-6)


def test_the_main_face_is_the_largest():
    small = FaceObservation(np.random.default_rng(0).uniform(0.4, 0.5, (478, 3)), {}, rotation(40))
    big = FaceObservation(np.random.default_rng(1).uniform(0.1, 0.9, (478, 3)), {}, rotation(-10))
    assert main_face([small, big]) is big
    assert main_face([]) is None


def test_a_rate_limit_passes_the_first_call_then_once_a_period_until_reset():
    rate = RateLimit(2.0)
    times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert [t for t in times if rate.ready(t)] == [0.0, 0.5, 1.0]
    rate.reset()
    assert rate.ready(1.25)
    with pytest.raises(ValueError):
        RateLimit(0)


def test_a_stage_may_only_make_messages_of_its_own_scope():
    from edge.stages import STAGES, Stage
    from edge.stages.base import FrameContext, Message

    assert list(STAGES) == ["expression", "attention", "reading"]  # attention before reading
    for cls in STAGES.values():
        assert cls.scope in cls.serves

    with pytest.raises(ValueError, match="not expression messages"):

        class Wrong(Stage):
            name, scope, kinds = "wrong", "expression", ("expression", "page")

            def reset(self) -> None: ...

            def on_frame(self, ctx: FrameContext) -> list[Message]:
                return []
