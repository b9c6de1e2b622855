"""Name -> implementation registries (policies, acquisitions, stopping rules), and dotted paths to user code."""

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
