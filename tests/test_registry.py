import pytest

from llmlab.errors import RegistryError
from llmlab.registry import Registry, lazy


def test_unknown_name_lists_valid_names():
    r = Registry("thing")
    r.register("a", 1)
    r.register("b", 2)
    with pytest.raises(RegistryError) as e:
        r.get("c")
    assert "'c'" in str(e.value) and "a, b" in str(e.value)


def test_duplicate_registration_is_an_error():
    r = Registry("thing")
    r.register("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        r.register("a", 2)


def test_decorator_and_lazy_dotted_attribute():
    r = Registry("thing")

    @r.register("f")
    def f():
        return 42

    assert r.get("f")() == 42
    make = lazy("llmlab.types", "GenerationParams.from_kwargs")
    assert make(top_k=3).top_k == 3


def test_backend_registry_names():
    from llmlab.models.base import BACKENDS

    assert {"llamacpp", "transformers", "openai", "fake"} <= set(BACKENDS.names())
