# LLM 실습실 (llmlab) — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmlab-setup
# a portable llama.cpp build (the cached wheel works on any x86-64 CPU), without its extras
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: setup run chat test test-fast bench peers system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[all,gpu,dev]"
	@touch $(STAMP)

## Debian packages some tests need (a user without root can skip this)
SYSTEM_PACKAGES := chromium fonts-noto-cjk
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "system-deps: already installed"; \
	  else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); fi; \
	else echo "system-deps: skipped (needs root and apt-get); browser tests need: $(SYSTEM_PACKAGES)"; fi

## the lab: web UI and OpenAI-compatible API at http://127.0.0.1:8000 on the bundled model
run: setup
	$(BIN)/llmlab serve --model smollm2-135m

## a terminal chat with the bundled model
chat: setup
	$(BIN)/llmlab chat

## every test except those marked `network` (they need the internet, which CI does not have)
test: setup
	$(BIN)/python -m pytest -q -m "not network" $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not network" $(PYTEST_ARGS)

## llama-server and llama-bench, the benches' C++ peers, built once into ~/.cache/llmlab/peers (needs cmake, a C++ compiler)
peers: setup
	nice $(BIN)/python bench/peers.py build

bench: peers
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/rag.py
	$(BIN)/python bench/finetune.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
