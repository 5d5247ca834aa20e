"""The model registry: replaceable stages by name, built in or installed through entry points."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "onlooker.models"
KINDS = ("expression", "face")
DEFAULT_EXPRESSION_MODEL = "fusion"
DEFAULT_FACE_MODEL = "mediapipe"

# A factory is a backend class (or any callable returning a backend) or "module:attribute",
# imported only when the model is listed or created so that a missing heavy dependency makes
# that one backend unavailable instead of breaking the import of this package.
Factory = Callable[..., Any] | str


@dataclass(frozen=True)
class ModelInfo:
    """One registered model as `onlooker models list` shows it."""

    name: str
    kind: str  # "expression" or "face"
    available: bool
    reason: str | None  # why it is unavailable
    outputs: str
    speed: str  # "fast", "medium" or "slow"
    origin: str  # "built-in" or the distribution that installed it


class ModelUnavailableError(RuntimeError):
    """A known model cannot be used here; the message says why."""


@dataclass
class _Entry:
    name: str
    kind: str
    factory: Factory
    origin: str
    outputs: str | None = None
    speed: str | None = None
    loaded: Callable[..., Any] | None = None
    error: str | None = None


_BUILT_IN: dict[str, _Entry] = {}
_ENTRY_CACHE: dict[tuple[str, str], _Entry] = {}  # entry points seen, by (name, value)


def register(
    name: str,
    factory: Factory,
    kind: str = "expression",
    outputs: str | None = None,
    speed: str | None = None,
    origin: str = "built-in",
) -> None:
    """Make a backend creatable by name; a factory may be a callable or "module:attribute".

    `outputs` and `speed` default to the factory's own attributes of those names.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"model name {name!r} must be a non-empty word")
    if name in _BUILT_IN:
        logger.warning("model %s registered again; the new factory replaces the old", name)
    _BUILT_IN[name] = _Entry(name, kind, factory, origin, outputs, speed)


def unregister(name: str) -> None:
    """Forget a registered backend (for tests and for hosts that want a smaller menu)."""
    _BUILT_IN.pop(name, None)


def refresh() -> None:
    """Forget which backends loaded and which failed; the next look-up imports them again."""
    _ENTRY_CACHE.clear()
    for entry in _BUILT_IN.values():
        entry.loaded = entry.error = None


def _load(entry: _Entry) -> Callable[..., Any] | None:
    """Import the factory once; remember the error if that fails."""
    if entry.loaded is None and entry.error is None:
        try:
            if isinstance(entry.factory, str):
                module, _, attribute = entry.factory.partition(":")
                entry.loaded = getattr(importlib.import_module(module), attribute)
            elif hasattr(entry.factory, "load"):  # an importlib.metadata.EntryPoint
                entry.loaded = entry.factory.load()
            else:
                entry.loaded = entry.factory
        except Exception as exc:  # any failure to import a plugin makes it unavailable
            entry.error = f"{type(exc).__name__}: {exc}"
            logger.info("model %s is unavailable: %s", entry.name, entry.error)
    return entry.loaded


def _entry_points() -> dict[str, _Entry]:
    """Backends installed by other distributions under the `onlooker.models` group."""
    found: dict[str, _Entry] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILT_IN or ep.name in found:
            logger.warning("entry point %s (%s) shadows a known model; ignored", ep.name, ep.value)
            continue
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
        entry = _ENTRY_CACHE.get((ep.name, ep.value))
        if entry is None:
            entry = _Entry(ep.name, "expression", ep, origin)
            _ENTRY_CACHE[(ep.name, ep.value)] = entry
        found[ep.name] = entry
    return found


def _entries(load: bool = True) -> dict[str, _Entry]:
    """Built-in and installed backends; with `load`, every factory is imported (once)."""
    entries = {**_BUILT_IN, **_entry_points()}
    if load:
        for entry in entries.values():
            _settle(entry)
    return entries


def _settle(entry: _Entry) -> None:
    """Import an entry's factory and learn its kind from it (entry points say nothing else)."""
    loaded = _load(entry)
    if loaded is not None:
        entry.kind = getattr(loaded, "kind", None) or _kind_of(loaded) or entry.kind


def _kind_of(factory: Callable[..., Any]) -> str | None:
    """The stage a backend class belongs to, from its base class."""
    from ..expression import ExpressionModel
    from ..face import FaceAnalyzer

    if isinstance(factory, type):
        if issubclass(factory, FaceAnalyzer):
            return "face"
        if issubclass(factory, ExpressionModel):
            return "expression"
    return None


def available_models(kind: str | None = None) -> list[ModelInfo]:
    """Every known model, built-in and installed, with whether it can be used here and why not."""
    infos = []
    for entry in sorted(_entries().values(), key=lambda e: (KINDS.index(e.kind), e.name)):
        if kind is not None and entry.kind != kind:
            continue
        loaded = entry.loaded
        infos.append(
            ModelInfo(
                name=entry.name,
                kind=entry.kind,
                available=loaded is not None,
                reason=entry.error,
                outputs=entry.outputs or str(getattr(loaded, "outputs", "") or ""),
                speed=entry.speed or str(getattr(loaded, "speed", "") or "unknown"),
                origin=entry.origin,
            )
        )
    return infos


def model_names(kind: str = "expression") -> list[str]:
    """The names of every known model of one kind, usable or not (for --model choices)."""
    return sorted(e.name for e in _entries().values() if e.kind == kind)


def check_model_name(name: str, kind: str = "expression") -> str:
    """Return the name if a model of that kind is known; otherwise raise ValueError naming them."""
    entry = _entries(load=False).get(name)
    if entry is not None:
        _settle(entry)  # only the named backend is imported
    if entry is None or entry.kind != kind:
        known = ", ".join(model_names(kind))
        raise ValueError(f"unknown {kind} model {name!r}; known {kind} models: {known}")
    return name


def _create(name: str, kind: str, kwargs: dict[str, Any]) -> Any:
    check_model_name(name, kind)
    entry = _entries(load=False)[name]
    if entry.loaded is None:
        raise ModelUnavailableError(
            f"{kind} model {name!r} is installed but unavailable here: {entry.error}"
        )
    model = entry.loaded(**kwargs)
    logger.debug("created %s model %s (%s)", kind, name, entry.origin)
    return model


def create_expression_model(name: str = DEFAULT_EXPRESSION_MODEL, **kwargs: Any) -> Any:
    """A new expression backend by name; ValueError if unknown, ModelUnavailableError if broken."""
    return _create(name, "expression", kwargs)


def create_face_analyzer(name: str = DEFAULT_FACE_MODEL, **kwargs: Any) -> Any:
    """A new face-analysis backend by name (e.g. model_path=... for MediaPipe)."""
    return _create(name, "face", kwargs)


register(
    DEFAULT_FACE_MODEL,
    "edge.face:MediaPipeFaceLandmarker",
    kind="face",
    outputs="478 landmarks, 52 blendshapes, head pose per face",
    speed="medium",
)
register("blendshapes", "edge.models.blendshapes:BlendshapeExpressionModel")
register("fer-cnn", "edge.models.fer_cnn:FerCnnExpressionModel")
register("fusion", "edge.models.fusion:FusionExpressionModel")
register("facex", "edge.models.facex:FacexExpressionModel")
