import pytest

from llmlab.config import load_settings
from llmlab.errors import ConfigError


def test_env_file_and_overrides(llmlab_home, monkeypatch):
    monkeypatch.delenv("LLMLAB_THREADS", raising=False)  # the environment outranks the file; this test reads the file
    (llmlab_home / "config.toml").write_text('default_model = "from-file"\nthreads = 3\n')
    s = load_settings()
    assert s.default_model == "from-file" and s.threads == 3 and s.home == llmlab_home
    monkeypatch.setenv("LLMLAB_THREADS", "5")
    assert load_settings().threads == 5  # env beats the file
    assert load_settings(threads=7).threads == 7  # explicit (CLI) beats env


def test_invalid_settings_are_a_clear_error(llmlab_home, monkeypatch):
    monkeypatch.setenv("LLMLAB_THREADS", "many")
    with pytest.raises(ConfigError, match="threads"):
        load_settings()


def test_unknown_key_in_config_file_is_rejected(llmlab_home):
    (llmlab_home / "config.toml").write_text('no_such_setting = 1\n')
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings()


def test_api_models_configure_names(llmlab_home):
    from llmlab.models.spec import resolve

    (llmlab_home / "config.toml").write_text(
        '[[api_models]]\nname = "mini"\nmodel = "gpt-4o-mini"\nbase_url = "http://127.0.0.1:9/v1"\n')
    spec = resolve("mini", load_settings())
    assert spec.backend == "openai" and spec.remote_model == "gpt-4o-mini" and spec.base_url.endswith(":9/v1")
