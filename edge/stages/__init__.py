"""The edge's stages: one per signal, each turning a visit's frames into its wire messages.

`STAGES` lists them in the order the agent runs them on a frame (and so the order of their
messages): the attention stage before the reading stage, which reads its sample. Adding a
signal is one module here with a `Stage` subclass, its entry below, and its message types
and scope in the wire contract (`broker/wire.py`).
"""

from __future__ import annotations

from .attention import AttentionStage
from .base import FrameContext, Message, Stage, StageSettings
from .expression import ExpressionStage
from .reading import ReadingStage

__all__ = ["STAGES", "FrameContext", "Message", "Stage", "StageSettings", "create_stages"]

STAGES: dict[str, type[Stage]] = {
    cls.name: cls for cls in (ExpressionStage, AttentionStage, ReadingStage)
}


def create_stages(settings: StageSettings, names: tuple[str, ...] | None = None) -> list[Stage]:
    """The stages `names` (None: all), in run order; an unknown name is a ValueError."""
    unknown = sorted(set(names or ()) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage {unknown}; known stages: {', '.join(STAGES)}")
    return [cls(settings) for name, cls in STAGES.items() if names is None or name in names]
