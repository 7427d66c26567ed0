# prefrl: all set-up lives here. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0
# No MUJOCO_GL here: simulating needs no GL library; the GUI's renderer picks one (OSMesa
# without a display, MUJOCO_GL=egl on a GPU) when it draws the first MuJoCo frame.

.PHONY: venv install install-test demo test test-slow lint bench bench-gui bench-smoke clean sysdeps

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

# System packages: OSMesa for offscreen MuJoCo rendering (GUI videos) on machines without a
# GPU, Debian's Chromium for the browser tests. Installed with apt when not installed (needs
# root); the state is dpkg's own ("install ok installed"; a removed package whose config files
# remain is not installed). Without them those tests skip with a reason, and fail under CI=true.
SYS_PKGS := libosmesa6 chromium
sysdeps:
	@missing=""; for p in $(SYS_PKGS); do \
		[ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] \
			|| missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing$$missing (apt)"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
			|| echo "warning: could not install$$missing; rendering/browser tests will skip"; \
		else echo "warning:$$missing missing and not root; rendering/browser tests will skip"; fi; \
	fi

# The demo installs nothing outside .venv (no system package: it does not render).
demo: $(VENV)/.installed
	$(BIN)/prefrl demo

test: $(VENV)/.installed-test sysdeps
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed-test sysdeps
	$(BIN)/python -m pytest -q -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check prefrl tests
	$(BIN)/mypy prefrl

bench: $(VENV)/.installed
	$(BIN)/prefrl bench reward

bench-gui: $(VENV)/.installed sysdeps
	$(BIN)/prefrl bench gui

bench-smoke: $(VENV)/.installed
	$(BIN)/prefrl bench run smoke --plot

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
