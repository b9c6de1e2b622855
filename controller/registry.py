"""Name -> implementation registries (policies, acquisitions, stopping rules), dotted paths to user code, and
the built-in names themselves.

The registries fill as their modules import (a policy registers itself beside its code, in modules that
import torch). :data:`BUILT_IN` lists the same names with nothing imported, so an edge (the command line, a
sweep's config) checks a name in microseconds, before any run directory exists or torch is imported
(:func:`check_name`); tests/controller/test_cli_names.py holds each list equal to its registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from abduce.controller.errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict of implementations by user-facing name, with a clear error for unknown names.

    Example:
        >>> POLICIES = Registry("policy")
        >>> @POLICIES.register("random")
        ... class Random: ...
        >>> POLICIES["random"]
        <class 'abduce.controller.registry.Random'>
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._items)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)


def import_dotted(kind: str, path: str) -> object:
    """``package.module:name`` (or ``package.module.name``) -> that object: a user's own hypothesis,
    reduction or driver, named where a registered name would go.

    Raises:
        ConfigError: it does not import (the message names ``kind``, ``path`` and why).
    """
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{kind} {path!r} does not import: {exc}") from exc


BUILT_IN: dict[str, tuple[str, ...]] = {
    "hypothesis": (
        "second-order",
        "first-order",
        "linear",
        "sigmoid",
        "constant",
        "curie-weiss",
        "second-order boundary",
        "first-order boundary",
        "sigmoid boundary",
    ),
    "policy": ("discriminate", "epsilon-greedy", "random", "grid", "plain-gp"),
    "acquisition": ("variance", "ucb", "nipv", "discriminate", "model-information"),
    "reduction": ("loop-area", "coercive-field", "remanence", "mean", "max"),
    "simulator": ("transition-1d", "loops", "phase-2d", "spm-image", "sample-series", "two-channel"),
    "truth": (
        "second-order",
        "first-order",
        "sigmoid",
        "linear",
        "constant",
        "curie-weiss",
        "two-transitions",
        "peak",
        "staircase",
        "sloped-transition",
    ),
    "plot format": ("png", "svg"),
}
"""The built-in names of each kind, in the order ``--help`` lists them, without importing their code.

``hypothesis``: ``abduce.hypotheses.library.BUILTIN``; ``policy``: ``decide.policies.POLICIES``;
``acquisition``: ``decide.acquisition.ACQUISITIONS``; ``reduction``: ``intake.reduction.REDUCTIONS``;
``simulator``: ``abduce.simulators.registry.SIMULATORS``; ``truth``: the laws the ``transition-1d``
simulator generates (``abduce.simulators.transition1d.LAWS``); ``plot format``: ``views.plots.FORMATS``.
"""


def is_dotted(name: str) -> bool:
    """Whether ``name`` reads as a dotted path to user code (``package.module:name`` or ``package.module.name``)."""
    return "." in name or ":" in name


def check_name(kind: str, name: str, dotted: bool = False) -> str:
    """``name`` when it is a built-in of ``kind`` (or, with ``dotted``, a dotted path to user code, which only
    an import can check), imports nothing.

    Raises:
        UnknownNameError: neither; its message lists the built-ins and the closest of them.
    """
    known = BUILT_IN[kind]
    if name in known or (dotted and is_dotted(name)):
        return name
    err = UnknownNameError(kind, name, list(known))
    if dotted:
        err.args = (f"{err.args[0]} (or give your own as a 'package.module:name' path)",)
    raise err
