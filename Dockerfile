# nlp_service image: multi-stage (build a virtual environment, copy it into a clean runtime stage), CPU torch,
# no dev extras, non-root, models readable, HEALTHCHECK.
#
#   docker build -t nlp-service .                      # python:3.11-slim, torch from the CPU package index
#   cp "$CA_BUNDLE" docker/ca/ca-certificates.crt && cp "$TORCH_WHEEL" docker/wheels/   # your paths
#   docker build --build-arg BASE_IMAGE=nlp-base:bookworm --build-arg TORCH_WHEEL_DIR=docker/wheels \
#       -t nlp-service .                                # local base image, local torch wheel, the host's CA bundle
#
# Build arguments:
#   BASE_IMAGE       any Debian-like image with python3.11 (+ venv) and ca-certificates (default python:3.11-slim;
#                    scripts/stack_base.sh makes one with debootstrap where no registry is reachable)
#   TORCH_WHEEL_DIR  a folder in the build context holding a torch-2.13.0 CPU wheel; empty: TORCH_INDEX_URL
#   TORCH_INDEX_URL  the package index torch comes from (default: PyTorch's CPU index, never a CUDA build)
# docker/ca/ca-certificates.crt, if present (not committed), is the CA bundle pip trusts in the build stage, for
# networks that intercept TLS; it never reaches the runtime stage.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG TORCH_WHEEL_DIR=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY docker/wheels/ /wheels/
COPY docker/ca/ /etc/pip-ca/
# 1. torch (CPU build), then the runtime dependencies read from pyproject.toml (cached while it is unchanged)
COPY pyproject.toml ./
RUN set -eu; if [ -s /etc/pip-ca/ca-certificates.crt ]; then export PIP_CERT=/etc/pip-ca/ca-certificates.crt; fi; \
    if [ -n "$TORCH_WHEEL_DIR" ]; then /opt/venv/bin/pip install /wheels/torch-2.13.0*.whl; \
    else /opt/venv/bin/pip install --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple torch==2.13.0; fi; \
    /opt/venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt; \
    /opt/venv/bin/pip install -r /tmp/requirements.txt; \
    /opt/venv/bin/python -c 'import torch; assert torch.version.cuda is None, "a CUDA build of torch slipped in"'
# 2. the project itself, as a wheel (installed in the runtime stage, so the big venv layer stays cached)
COPY nlp_service ./nlp_service
COPY training ./training
COPY evaluation ./evaluation
COPY README.md ./
RUN set -eu; if [ -s /etc/pip-ca/ca-certificates.crt ]; then export PIP_CERT=/etc/pip-ca/ca-certificates.crt; fi; \
    /opt/venv/bin/pip wheel --no-deps -w /dist .

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PATH=/opt/venv/bin:$PATH \
    NLP_HOST=0.0.0.0 \
    NLP_VAR_DIR=/data \
    NLP_MODELS_DIR=/app/models \
    HF_HUB_OFFLINE=1
RUN useradd --create-home --uid 10001 nlp && mkdir -p /data /app && chown nlp:nlp /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /dist /dist
RUN /opt/venv/bin/pip install --no-deps --no-index --no-cache-dir /dist/*.whl && rm -rf /dist
COPY --chown=root:root models /app/models
RUN chmod -R a+rX /app/models
USER nlp
WORKDIR /app
EXPOSE 8000 9100
# /health answers 200 once the models are loaded (curl-free: the image's own Python)
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('NLP_PORT', '8000')}/health\", timeout=4)"]
# Bound to 0.0.0.0 the service refuses to start without API keys unless explicitly allowed: compose.yaml's
# migrate service makes the first admin key (`nlp-service keys bootstrap`).
CMD ["nlp-service", "serve"]
