# One way to set up, for people, CI and the Dockerfile alike.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
DEPS_STAMP := $(VENV)/.deps-installed
STAMP := $(VENV)/.installed

.PHONY: install deps run test test-fast fuzz lint fmt bench eval clean

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

# Dependencies only (no project source needed): the Dockerfile's cached layer.
$(DEPS_STAMP): pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(PIP) install -r $(VENV)/requirements.txt
	touch $@

deps: $(DEPS_STAMP)

$(STAMP): $(DEPS_STAMP) pyproject.toml
	$(PIP) install --no-deps -e .
	touch $@

install: $(STAMP)

run: install
	$(VENV)/bin/nlp-service serve

test: install
	$(PY) -m pytest -q -m "not fuzz"

test-fast: install
	$(PY) -m pytest -q -m "not slow and not fuzz"

# Schemathesis over every endpoint's OpenAPI schema: FUZZ_EXAMPLES positive + negative cases per endpoint.
FUZZ_EXAMPLES ?= 1000
fuzz: install
	NLP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -s -m fuzz tests/fuzz

# ruff, then mypy over nlp_service, training and evaluation (settings in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
