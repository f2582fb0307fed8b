"""Name → implementation registries with clear errors, open to plugins.

Backends, embedders, loaders and stores register here by name. An unknown name lists the
valid ones; registering a name twice is an error naming both registrations, never a
silent override. A registry with an entry-point ``group`` (``llmlab.backends``, …) also
takes the implementations other installed packages declare under that group — looked up
on first use, and each imported only when it is asked for — so a plugin needs no change
to llmlab.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import RegistryError

T = TypeVar("T")
log = logging.getLogger(__name__)


class _EntryPoint:
    """A plugin's registration: imported (and coerced) when first asked for."""

    def __init__(self, ep: Any):
        self.ep = ep
        dist = getattr(ep, "dist", None)
        self.origin = f"entry point {ep.name} = {ep.value}" + (f" (package {dist.name})" if dist is not None else "")


def _origin(obj: object) -> str:
    qual = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    if qual.startswith("lazy("):
        return qual[5:-1]
    return f"{getattr(obj, '__module__', '?')}.{qual}"


class Registry(Generic[T]):
    """A named collection of factories (classes or callables).

    ``group``: an entry-point group whose entries are added on the first lookup.
    ``coerce``: turns a loaded entry-point object into what this registry holds (and
    checks it), e.g. a backend class into its registry entry.
    """

    def __init__(self, kind: str, *, group: str | None = None, coerce: Callable[[Any], T] | None = None):
        self.kind = kind
        self.group = group
        self._coerce = coerce
        self._items: dict[str, Any] = {}
        self._origins: dict[str, str] = {}
        self._plugins_loaded = group is None

    def register(self, name: str, item: T | None = None, *, origin: str | None = None):
        """Register ``item`` under ``name``; usable as a decorator when ``item`` is omitted."""

        def add(obj: T) -> T:
            self._add(name, obj, origin or _origin(obj))
            return obj

        if item is None:
            return add
        return add(item)

    def _add(self, name: str, obj: Any, origin: str) -> None:
        if name in self._items:
            raise RegistryError(f"{self.kind} {name!r} is already registered (by {self._origins[name]}); "
                                f"{origin} registers it again — rename one of them or uninstall one package")
        self._items[name] = obj
        self._origins[name] = origin

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # once, even when a plugin is broken: the error says which
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            self._add(ep.name, _EntryPoint(ep), _EntryPoint(ep).origin)

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            item = self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None
        if isinstance(item, _EntryPoint):
            try:
                obj = item.ep.load()
            except Exception as e:  # noqa: BLE001 - any import error of a third-party package
                raise RegistryError(f"{self.kind} {name!r} from {item.origin} failed to load: "
                                    f"{type(e).__name__}: {e}") from e
            item = self._coerce(obj) if self._coerce is not None else obj
            self._items[name] = item
        return item

    def origin(self, name: str) -> str:
        """Where ``name`` was registered (a module path, or the plugin's entry point)."""
        self.get(name)
        return self._origins[name]

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
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
