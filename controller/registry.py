"""Name -> implementation registries (policies, acquisitions, stopping rules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from abduce.controller.errors import UnknownNameError

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
