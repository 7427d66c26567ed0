# prefrl: all set-up lives here. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: venv install install-test demo test test-slow lint bench clean sysdeps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Torch first: on machines without CUDA take the local CPU build, never the multi-GB CUDA wheel.
$(VENV)/.torch: $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install -q 'torch>=2.3'; \
	else \
		$(BIN)/pip install -q $(TORCH_CPU); \
	fi
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

venv install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Offscreen MuJoCo rendering (GUI, videos) needs OSMesa on CPU machines; best effort, needs root.
sysdeps:
	@if [ ! -e /usr/lib/x86_64-linux-gnu/libOSMesa.so.8 ] && [ ! -e /usr/lib/aarch64-linux-gnu/libOSMesa.so.8 ] && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null) \
		|| echo "warning: could not install libosmesa6; MuJoCo rendering will be unavailable"; \
	fi

demo: $(VENV)/.installed
	$(BIN)/prefrl demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check prefrl tests
	$(BIN)/mypy prefrl

bench: $(VENV)/.installed
	$(BIN)/prefrl bench reward

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
