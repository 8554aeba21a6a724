#!/usr/bin/env bash
# Local base images for the container stack where no image registry is reachable (this project's machines):
#   nlp-base:bookworm      Debian bookworm (debootstrap, minbase) with python3.11, venv, ca-certificates
#   nlp-postgres:15        the same base with Debian's PostgreSQL 15 (trust auth on the stack's private network)
# With a registry, skip this: the Dockerfile defaults to python:3.11-slim and compose.yaml can use postgres:15.
#   scripts/stack_base.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
force=${1:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ "$force" == --force ]] || ! docker image inspect nlp-base:bookworm >/dev/null 2>&1; then
  root=$(mktemp -d /var/tmp/nlp-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "stack_base: debootstrap bookworm into $root (a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' - nlp-base:bookworm >/dev/null
fi
if [[ "$force" == --force ]] || ! docker image inspect nlp-postgres:15 >/dev/null 2>&1; then
  docker build -q -t nlp-postgres:15 -f docker/postgres.Dockerfile docker >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^nlp-(base|postgres)'
