#!/usr/bin/env bash
# End-to-end smoke test of the container stack (compose.yaml); not part of `make test`.
#
#   [NLP_TORCH_WHEEL=path/to/torch-2.13.0+cpu.whl] scripts/stack_smoke.sh [--no-build] [--keep]
#
# Builds the image (with the local base image, torch wheel and CA bundle where no registry is reachable), brings
# the stack up (PostgreSQL, migrate + first admin key, API replicas A and B, worker, a webhook receiver), then:
# ingests demo data with an incident through replica A, runs a detection back-scan job, finds an incident comment
# by vector search through replica B, sees the incident's alert, receives its signed webhook in the receiver
# container, kills the worker (SIGKILL) while that delivery is in flight and sees the restarted worker complete
# it, and tears everything down (volumes included). Prints each step with its time; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1 KEEP=0
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--no-build] [--keep]" >&2; exit 2 ;;
  esac
done

T0=$(date +%s)
step() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { step "FAIL: $*"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-nlpsmoke}
export NLP_IMAGE=${NLP_IMAGE:-nlp-service:smoke}
export NLP_PORT_A=${NLP_PORT_A:-18001} NLP_PORT_B=${NLP_PORT_B:-18002} NLP_PORT_RECEIVER=${NLP_PORT_RECEIVER:-18089}
COMPOSE=(docker-compose -f compose.yaml -f docker/compose.smoke.yaml)
command -v docker-compose >/dev/null || COMPOSE=(docker compose -f compose.yaml -f docker/compose.smoke.yaml)
A=http://127.0.0.1:$NLP_PORT_A B=http://127.0.0.1:$NLP_PORT_B RX=http://127.0.0.1:$NLP_PORT_RECEIVER

# -- 1. images -------------------------------------------------------------------------------------------------
if docker pull -q python:3.11-slim >/dev/null 2>&1 && docker pull -q postgres:15 >/dev/null 2>&1; then
  BASE=python:3.11-slim; export NLP_POSTGRES_IMAGE=postgres:15; TORCH_ARGS=()
else
  step "no image registry reachable: local base images (scripts/stack_base.sh)"
  scripts/stack_base.sh >/dev/null
  BASE=nlp-base:bookworm; export NLP_POSTGRES_IMAGE=nlp-postgres:15
  # NLP_TORCH_WHEEL: a local torch-2.13.0 CPU wheel (else the CPU package index); the CA bundle pip trusts is
  # NLP_PIP_CA_BUNDLE, else PIP_CERT or pip's `cert` setting, else Python's default one (networks that intercept TLS)
  wheel=${NLP_TORCH_WHEEL:-}
  if [[ -n "$wheel" ]]; then cp -u "$wheel" docker/wheels/; TORCH_ARGS=(--build-arg TORCH_WHEEL_DIR=docker/wheels); else TORCH_ARGS=(); fi
  ca=${NLP_PIP_CA_BUNDLE:-${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null | grep -v "^ERROR" || true)}}
  [[ -n "$ca" ]] || ca=$(python3 -c 'import ssl; print(ssl.get_default_verify_paths().cafile or "")')
  if [[ -n "$ca" && -s "$ca" ]]; then cp -u "$ca" docker/ca/ca-certificates.crt; fi
fi
if [[ $BUILD == 1 ]]; then
  step "building $NLP_IMAGE on $BASE"
  b0=$(date +%s)
  docker build -q --build-arg BASE_IMAGE="$BASE" "${TORCH_ARGS[@]}" -t "$NLP_IMAGE" . >/dev/null
  step "built in $(( $(date +%s) - b0 )) s; image size $(docker image inspect "$NLP_IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
fi

# -- 2. the stack ----------------------------------------------------------------------------------------------
export NLP_SECRET_KEYS=$(docker run --rm "$NLP_IMAGE" python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
export NLP_BOOTSTRAP_ADMIN_KEY=$(docker run --rm "$NLP_IMAGE" python3 -c 'import secrets; print(f"nlp_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}")')
export NLP_WEBHOOK_ALLOW_PRIVATE=true NLP_WEBHOOK_TIMEOUT_S=5 NLP_WEBHOOK_LEASE_S=12 NLP_DETECTION_INTERVAL_S=5
KEY=$NLP_BOOTSTRAP_ADMIN_KEY
AUTH=(-H "Authorization: Bearer $KEY")
teardown() {
  if [[ $KEEP == 1 ]]; then step "kept running (--keep): ${COMPOSE[*]} down -v"; return; fi
  "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  step "torn down"
}
trap teardown EXIT
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
step "compose up: postgres, migrate, api-a, api-b, worker, receiver"
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || { "${COMPOSE[@]}" logs --tail 50; fail "compose up"; }
for url in $A $B; do
  for _ in $(seq 240); do curl -fsS "$url/health" >/dev/null 2>&1 && break; sleep 1; done
  curl -fsS "$url/health" >/dev/null || { "${COMPOSE[@]}" logs --tail 40; fail "$url not healthy"; }
done
step "replicas healthy; migrate said: $("${COMPOSE[@]}" logs --no-color migrate 2>&1 | grep -o 'keys bootstrap: .*' | head -1)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/v1/alerts")
[[ $code == 401 ]] || fail "anonymous request answered $code, expected 401 (keys on from the start)"
step "anonymous /v1/alerts -> 401 (no open mode)"

# -- 3. a webhook subscription, its secret handed to the receiver ------------------------------------------------
sub=$(curl -fsS "${AUTH[@]}" -H 'content-type: application/json' "$A/v1/webhooks" \
  -d '{"url": "http://receiver:8080/hook", "event_types": ["alert.created"]}')
SUB_ID=$(echo "$sub" | json 'd["id"]'); SECRET=$(echo "$sub" | json 'd["secret"]')
curl -fsS "$RX/_config" -d "{\"secret\": \"$SECRET\", \"hold_first_s\": 40}" >/dev/null
step "subscription $SUB_ID -> http://receiver:8080/hook (the receiver holds its first delivery 40 s)"

# -- 4. demo data with an incident, ingested through replica A ------------------------------------------------
"${COMPOSE[@]}" exec -T api-a sh -c "nlp-service demo generate --n 2500 --days 14 --start 2024-03-04 --incident \
  --incident-day 2024-03-15 --out /tmp/demo.jsonl && NLP_API_KEY=$KEY nlp-service demo load /tmp/demo.jsonl \
  --url http://127.0.0.1:8000 --concurrency 2" 2>&1 | grep -v '^loading' | tail -2
n=$(curl -fsS "${AUTH[@]}" "$B/v1/comments?limit=1" | json 'len(d["comments"])')
[[ $n -ge 1 ]] || fail "replica B sees no comments"
step "ingested through A; B's search index: $(curl -fsS "${AUTH[@]}" "$B/v1/search/index")"

# -- 5. vector search through replica B finds an incident comment ---------------------------------------------
found=""
for _ in $(seq 120); do
  found=$(curl -fsS "${AUTH[@]}" -H 'content-type: application/json' "$B/v1/search" \
    -d '{"query": "I was charged sales tax on the full price, not the sale price", "k": 5, "mode": "vector"}' \
    | json '" | ".join(r["text"][:70] for r in d["results"][:2])' || true)
  [[ "$found" == *[Tt]ax* ]] && break; sleep 1
done
[[ "$found" == *[Tt]ax* ]] || fail "vector search through B did not find the incident's comments: $found"
step "vector search via B: $found"

# -- 6. detection back-scan (a job, run by the worker) -> the incident's alert -----------------------------------
job=$(curl -fsS "${AUTH[@]}" -H 'content-type: application/json' "$B/v1/detect" \
  -d '{"at": "2024-03-18T00:00:00Z", "lookback_s": 1209600}')
JOB_ID=$(echo "$job" | json 'd.get("job_id") or d.get("id")')
for _ in $(seq 300); do
  status=$(curl -fsS "${AUTH[@]}" "$B/v1/detect/jobs/$JOB_ID" | json 'd["status"]')
  [[ $status == succeeded || $status == failed ]] && break; sleep 1
done
[[ $status == succeeded ]] || fail "detection job $JOB_ID: $status"
alerts=$(curl -fsS "${AUTH[@]}" "$B/v1/alerts?limit=50")
summary=$(echo "$alerts" | json '"; ".join("%s %s %s=%s (%s)" % (a["topic_id"], a["kind"], a["segment"], a["segment_value"], a["severity"]) for a in d["alerts"])')
echo "$summary" | grep -q "eu-west" || echo "$alerts" | grep -q "eu-west" || fail "no alert names eu-west: $summary"
step "detection job $JOB_ID succeeded; alerts: $summary"
if curl -fsS "${AUTH[@]}" "$B/v1/incidents" >/tmp/incidents.json 2>/dev/null; then
  step "incidents: $(json '"; ".join(i.get("headline", i["id"]) for i in (d.get("incidents") or d.get("items") or []))' </tmp/incidents.json)"
fi

# -- 7. the signed webhook, with the worker killed mid-delivery --------------------------------------------------
for _ in $(seq 120); do
  got=$(curl -fsS "$RX/_received" | json 'len(d)'); [[ $got -ge 1 ]] && break; sleep 0.5
done
[[ $got -ge 1 ]] || fail "the receiver got no delivery"
first_id=$(curl -fsS "$RX/_received" | json 'd[0]["webhook_id"]')
step "receiver holds delivery $first_id; kill -9 the worker"
"${COMPOSE[@]}" kill -s SIGKILL worker >/dev/null 2>&1
"${COMPOSE[@]}" up -d worker >/dev/null 2>&1
step "worker restarted; waiting for the lease (12 s) to expire and the delivery to be sent again"
done_ok=""
for _ in $(seq 120); do
  done_ok=$(curl -fsS "$RX/_received" | json "sum(1 for r in d if r['webhook_id'] == '$first_id' and r['answered'] and r['verified'])")
  [[ $done_ok -ge 1 ]] && break; sleep 1
done
[[ $done_ok -ge 1 ]] || fail "delivery $first_id not completed after the restart"
deliveries=$(curl -fsS "${AUTH[@]}" "$A/v1/webhooks/$SUB_ID/deliveries")
step "receiver: $(curl -fsS "$RX/_received" | json '", ".join("%s %s verified=%s answered=%s" % (r["webhook_id"][:18], r["type"], r["verified"], r["answered"]) for r in d)')"
step "deliveries (API): $(echo "$deliveries" | json '", ".join("%s after %s attempts" % (x["status"], x["attempts"]) for x in d["items"])')"
echo "$deliveries" | json 'all(x["status"] == "delivered" for x in d["items"])' | grep -q True \
  || fail "not every delivery is delivered: $deliveries"
metrics=$("${COMPOSE[@]}" exec -T worker python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())" \
  | grep -E '^nlp_(webhook_deliveries|webhook_delivery_attempts_total|jobs)\{' | tr '\n' ' ')
step "worker metrics: $metrics"
step "PASS"
