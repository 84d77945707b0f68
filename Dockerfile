# syntax=docker/dockerfile:1
#
# BrandPulse daemon image. Not built on the machines this project is developed on
# (no Docker there); see docs/deployment.md for what was and was not verified.
#
#   docker build -t brandpulse .
#   docker build -t brandpulse --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
#
# The second form is the one to use on x86_64: PyPI's Linux x86_64 torch wheel pulls
# the CUDA libraries (several GB) that a CPU-only container never uses.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: dependencies into a venv, then the default sentiment model
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv \
 && pip install --upgrade pip wheel setuptools

# torch first and on its own, from the index the builder chose: once installed, the
# project's `torch>=2.2` is satisfied and pip does not fetch another build from PyPI.
# PyPI stays an extra index because the CPU index does not carry every dependency.
RUN pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple torch

WORKDIR /app

# Dependencies only, read from pyproject.toml, so this layer is rebuilt when the
# dependency list changes and not on every source edit. The `model` extra is kept in
# the image: the default model is built from those packages and scored with them.
COPY pyproject.toml ./
RUN python - <<'EOF' > /tmp/requirements.txt
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["model"]))
EOF
RUN pip install -r /tmp/requirements.txt

# The application. Listed one by one so nothing from the build context (tests,
# benchmarks, local state) ends up in the image by accident.
COPY scheduler.py scrapy.cfg config.yaml ./
COPY brandpulse/ brandpulse/
COPY alerts/ alerts/
COPY crawlers/ crawlers/
COPY daemon/ daemon/
COPY kibana/ kibana/
COPY nlp/ nlp/
COPY sandbox/ sandbox/
COPY store/ store/
COPY reports/ reports/

# The offline default model lands in /app/.cache/models/default, where `nlp.model:
# default` looks for it, with its checked ONNX export (onnx/), which the daemon scores
# with on CPU without importing torch; built here so the container never downloads at
# start-up.
RUN python -m nlp.build_default

# ---------------------------------------------------------------------------
# runtime: slim Python, the venv, the app and the built model; no compilers
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# A font with Chinese characters for the reports' charts and PDF (5 MB installed;
# matplotlib's bundled DejaVu has none, so Chinese text would be empty boxes):
# docs/reports.md. The only system package the runtime needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*

# A writable home: libraries cache there at run time (tldextract's suffix list,
# Hugging Face downloads when nlp.model names a checkpoint), while /app stays read-only.
RUN groupadd --system --gid 10001 brandpulse \
 && useradd --system --uid 10001 --gid brandpulse --create-home --home-dir /home/brandpulse \
      --shell /usr/sbin/nologin brandpulse

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=root:root /app /app

# var/state (crawl cursors) and var/spool (mentions waiting for Elasticsearch) are
# the only places the daemon writes; they are created here, owned by the runtime
# user, so that named volumes mounted on them start with the right owner.
RUN mkdir -p /app/var/state /app/var/spool /etc/brandpulse \
 && chown -R brandpulse:brandpulse /app/var

WORKDIR /app
USER brandpulse

# /healthz and /metrics. The daemon binds 127.0.0.1 by default, which is enough for
# the health check below; set daemon.http_host: 0.0.0.0 to let Prometheus scrape it.
EXPOSE 9464

# No curl in python:3.11-slim; urlopen raises on the 503 an unhealthy daemon answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["python", "scheduler.py"]
CMD ["run", "--config", "/etc/brandpulse/config.yaml"]
