"""The shape of a stage: what turns a visit's frames into one kind of signal."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from broker import wire

from ..face import FaceObservation
from ..sources import Frame

if TYPE_CHECKING:
    from ..attention import AttentionSample
    from ..expression import ExpressionModel
    from ..reader import ItemLayout


@dataclass(frozen=True)
class Message:
    """One signal for the wire, without its visit (the agent adds the visit's pseudonym)."""

    kind: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class StageSettings:
    """What the agent hands every stage when it builds them."""

    max_rate_hz: float  # signal messages per second, at most
    screen_width_cm: float
    expression_model: ExpressionModel


@dataclass
class FrameContext:
    """One analysed frame of a running visit, as the stages see it (it dies with the frame)."""

    frame: Frame
    faces: list[FaceObservation]
    t_s: float  # stream time
    now: float  # time.monotonic() when the frame was handled: the clock of the rate limits
    prepared: dict[str, Any] = field(default_factory=dict)  # stage name -> what prepare() gave
    sample: AttentionSample | None = None  # set by the attention stage for the stages after it


class Stage(ABC):
    """One signal: its state for the visit, its reset, its rate limit, its wire messages.

    The agent calls a stage only while a visit runs whose consent includes one of `serves`,
    and hands its messages to the publisher only when the visit consented to `scope`. Every
    call but `prepare` is made under the agent's lock; `prepare` runs outside it, so a slow
    model never holds up the viewer page's consent requests.
    """

    name: ClassVar[str]  # the registry key
    scope: ClassVar[str]  # the consent scope of every message it makes (one of wire.SCOPES)
    kinds: ClassVar[tuple[str, ...]]  # the message types it makes, all of that scope
    serves: ClassVar[frozenset[str]] = frozenset()  # scopes it runs for (default: its own)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return
        if cls.scope not in wire.SCOPES:
            raise ValueError(f"stage {cls.name!r}: scope must be one of {wire.SCOPES}")
        wrong = [k for k in cls.kinds if wire.SCOPE_OF.get(k) != cls.scope]
        if wrong:
            raise ValueError(
                f"stage {cls.name!r}: {wrong} are not {cls.scope} messages on the wire"
            )
        cls.serves = frozenset(cls.serves) | {cls.scope}

    def runs_for(self, scopes: tuple[str, ...]) -> bool:
        """True when a visit consenting to `scopes` needs this stage computed."""
        return bool(self.serves.intersection(scopes))

    @abstractmethod
    def reset(self) -> None:
        """A visit starts or ends: forget everything about the person, calibrations too."""

    def prepare(self, ctx: FrameContext) -> Any:
        """The heavy part of a frame (a model call), outside the agent's lock; pure."""
        return None

    @abstractmethod
    def on_frame(self, ctx: FrameContext) -> list[Message]:
        """Take one frame of the visit; the messages due now (rate-limited by the stage)."""

    def on_item(self, item: str | None, layout: ItemLayout | None, t_s: float) -> list[Message]:
        """Another item is on screen (None: nothing); the messages about the one that left."""
        return []

    def end_visit(self, t_s: float) -> list[Message]:
        """The visit ends (not withdrawn nor forgotten): the messages that conclude it."""
        return []
