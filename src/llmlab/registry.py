"""Name → implementation registries with clear errors.

Backends, embedders and stores register here by name. An unknown name lists the valid
ones; registering a name twice is an error, never a silent override.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories (classes or callables)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None):
        """Register ``item`` under ``name``; usable as a decorator when ``item`` is omitted."""

        def add(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        if item is None:
            return add
        return add(item)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def lazy(module: str, attr: str) -> Callable[..., object]:
    """A factory that imports ``module.attr`` only when called (keeps heavy imports lazy)."""

    def factory(*args, **kwargs):
        import importlib

        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj(*args, **kwargs)

    factory.__qualname__ = f"lazy({module}.{attr})"
    return factory
