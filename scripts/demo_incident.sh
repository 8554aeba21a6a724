#!/usr/bin/env bash
# The incident acceptance on the real models: generate the demo with its incident, serve it on a fresh SQLite
# database, load it, back-scan the range as a job, print the alerts and incidents.
#   scripts/demo_incident.sh AT [demo generate options]
#   scripts/demo_incident.sh 2024-03-29T00:00:00Z                       # CLI defaults: 28 days, 5,060
#   scripts/demo_incident.sh 2024-03-18T00:00:00Z --n 2500 --days 14 --start 2024-03-04   # the smoke's data
set -euo pipefail
cd "$(dirname "$0")/.."
AT=${1:?"the end of the generated range, e.g. 2024-03-29T00:00:00Z"}; shift
PORT=${PORT:-8765}
D=$(mktemp -d)
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$D"' EXIT
.venv/bin/nlp-service demo generate --incident --out "$D/demo.jsonl" "$@"
export NLP_DATABASE_URL="sqlite:///$D/db.sqlite" NLP_DATA_DIR="$D/data" NLP_DETECTION_INTERVAL_S=100000
.venv/bin/nlp-service serve --port "$PORT" > "$D/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 1; done
.venv/bin/nlp-service demo load --url "http://localhost:$PORT" "$D/demo.jsonl" 2>/dev/null | tail -1
AT="$AT" PORT="$PORT" .venv/bin/python - <<'PY'
import os
import time

import httpx

c = httpx.Client(base_url=f"http://localhost:{os.environ['PORT']}", timeout=600)
job = c.post("/v1/detect", json={"at": os.environ["AT"], "lookback_s": 40 * 86400}).json()
while job["status"] not in ("succeeded", "failed", "cancelled"):
    time.sleep(2)
    job = c.get(f"/v1/detect/jobs/{job['id']}").json()
print("detection job", job["status"])
alerts = c.get("/v1/alerts", params={"limit": 100}).json()
print(f"{alerts['total']} alerts")
for a in alerts["alerts"]:
    joint = " (joint test)" if "joint" in (a.get("explanation") or {}) else ""
    where = f"{a['segment']}={a['segment_value']}"
    print(f"  {a['severity']:8} {a['kind']} {a['topic_id']} {where} {a['window_start']} -> {a['incident_id']}{joint}")
incidents = c.get("/v1/incidents").json()
print(f"{incidents['total']} incidents")
for i in incidents["incidents"]:
    print("  ", i["id"], i["summary"]["text"])
PY
