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


def _entry_points(monkeypatch, *eps):
    import importlib.metadata as md

    monkeypatch.setattr(md, "entry_points", lambda group=None: [e for e in eps if e.group == group])


def test_entry_points_are_listed_on_first_lookup_and_imported_when_asked_for(monkeypatch):
    from importlib.metadata import EntryPoint

    _entry_points(monkeypatch, EntryPoint("gp", "llmlab.types:GenerationParams", "llmlab.things"),
                  EntryPoint("other", "llmlab.types:Message", "llmlab.elsewhere"))
    r = Registry("thing", group="llmlab.things")
    r.register("a", 1)
    assert r.names() == ["a", "gp"] and "other" not in r
    from llmlab.types import GenerationParams

    assert r.get("gp") is GenerationParams
    assert "entry point gp = llmlab.types:GenerationParams" in r.origin("gp")


def test_a_broken_plugin_fails_only_when_used_and_names_itself(monkeypatch):
    from importlib.metadata import EntryPoint

    _entry_points(monkeypatch, EntryPoint("bad", "no_such_module_xyz:Thing", "llmlab.things"))
    r = Registry("thing", group="llmlab.things")
    r.register("a", 1)
    assert r.get("a") == 1  # the broken plugin does not break the others
    with pytest.raises(RegistryError, match="'bad' from entry point bad = no_such_module_xyz:Thing failed to load"):
        r.get("bad")


def test_a_backend_plugin_must_declare_capabilities(monkeypatch):
    from importlib.metadata import EntryPoint

    from llmlab.models.base import backend_entry
    from llmlab.models.capabilities import Capabilities

    with pytest.raises(RegistryError, match="capabilities"):
        backend_entry(type("NoCaps", (), {"load": classmethod(lambda cls, *a, **k: None)}))
    ok = backend_entry(type("Caps", (), {"load": classmethod(lambda cls, *a, **k: "loaded"),
                                          "capabilities": Capabilities(logprobs=True), "OPTIONS": {"x"}}))
    assert ok.capabilities.names() == ["logprobs"] and ok.options == {"x"} and ok(None, None) == "loaded"
    _entry_points(monkeypatch, EntryPoint("odd", "llmlab.types:Message", "llmlab.backends"))
    r = Registry("backend", group="llmlab.backends", coerce=backend_entry)
    with pytest.raises(RegistryError, match="capabilities"):
        r.get("odd")
