# nlp_service image: the same steps `make` runs (make deps, then make install), dependencies cached first.
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
# For a CPU-only image, pass a CPU wheel index for torch==2.13.0:
#   docker build --build-arg PIP_EXTRA_INDEX_URL=<torch CPU wheel index> -t nlp-service .
ENV PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    VENV=/opt/venv \
    MALLOC_ARENA_MAX=2 \
    NLP_HOST=0.0.0.0 \
    NLP_VAR_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends make curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 nlp

WORKDIR /app
# 1. dependencies (cached while pyproject.toml is unchanged)
COPY pyproject.toml Makefile ./
RUN make deps VENV=$VENV

# 2. the project itself
COPY nlp_service ./nlp_service
COPY training ./training
COPY evaluation ./evaluation
COPY models ./models
COPY README.md ./
RUN make install VENV=$VENV && mkdir -p /data && chown nlp:nlp /data

USER nlp
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1
# Bound to 0.0.0.0 the service refuses to start without API keys unless explicitly allowed
# (create keys with `nlp-service keys create`, or set NLP_ALLOW_UNAUTHENTICATED=true behind a trusted proxy,
# with NLP_TRUSTED_HOSTS naming the Host it forwards).
CMD ["/opt/venv/bin/nlp-service", "serve"]
