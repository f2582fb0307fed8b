"""API keys, safe binding and CORS: the server's security defaults."""
from __future__ import annotations

import hmac
import logging

import pytest
from click.testing import CliRunner

from llmlab.errors import ConfigError
from llmlab.server.settings import ServerSettings, hash_key, load_server_settings

KEY = "sk-lab-0123456789"


def test_defaults_are_safe():
    s = ServerSettings()
    assert s.host == "127.0.0.1" and s.port == 8000 and s.cors_origins == [] and not s.auth_required
    assert s.pii_policy["openai"] == "mask" and s.pii_policy["llamacpp"] == "warn"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.0.10", "::", "example.org"])
def test_non_loopback_bind_without_keys_refuses(host):
    with pytest.raises(ConfigError, match="refusing to listen"):
        load_server_settings(host=host)
    assert load_server_settings(host=host, api_keys=[KEY]).auth_required


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_keys(host):
    assert load_server_settings(host=host).host == host


def test_cli_refuses_to_start_on_a_public_address_without_keys():
    from llmlab.cli.main import cli

    r = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 1 and "refusing to listen on 0.0.0.0" in r.output


def test_keys_are_hashed_at_once(tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# team keys\n{KEY}\n{hash_key('sk-second-key-1')}  # stored as a hash\n")
    s = load_server_settings(api_keys=["sk-third-key-1"], api_keys_file=str(keys_file))
    dumped = s.model_dump_json()
    assert KEY not in dumped and "sk-third-key-1" not in dumped and s.api_keys == []
    assert len(s.keys) == 3 and len(s.api_key_hashes) == 1  # the file's keys stay with the file (re-read)
    assert s.match_key(KEY) and s.match_key("sk-second-key-1") and s.match_key("sk-third-key-1")
    assert s.match_key("sk-wrong") is None and s.match_key(None) is None
    assert "api_keys" in s.public_dict() and s.public_dict()["api_keys"] == 3


def test_keys_compare_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    s = load_server_settings(api_keys=[KEY, "sk-other-key-9"])
    s.match_key(KEY)
    assert len(calls) == 2  # every stored hash is compared, even after a match


def test_short_or_empty_key_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 8"):
        load_server_settings(api_keys=["short"])
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no key"):
        load_server_settings(api_keys_file=str(empty))


def test_wildcard_cors_is_refused():
    with pytest.raises(ConfigError, match="never a wildcard"):
        load_server_settings(cors_origins=["*"])


def test_401_without_or_with_a_wrong_key(client_for, caplog):
    caplog.set_level(logging.DEBUG)
    c = client_for(api_keys=[KEY])
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"]["type"] == "authentication_error"
    assert c.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-wrong-key"}).status_code == 401
    assert c.get("/lab/logs", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert c.get("/lab/jobs", headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/health").status_code == 200  # readiness stays open
    assert KEY not in caplog.text and "sk-wrong-key" not in caplog.text


def test_cors_only_for_named_origins(client_for):
    closed = client_for()
    r = closed.options("/v1/models", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    opened = client_for(cors_origins=["https://lab.example"])
    ok = opened.get("/v1/models", headers={"Origin": "https://lab.example"})
    assert ok.headers["access-control-allow-origin"] == "https://lab.example"
    bad = opened.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers
