#!/usr/bin/env bash
# One gateway load run (issue 17) against the platform `fupin up` runs, with the county loaded
# (`fupin demo --fresh --cadres 2000 --households 2000 --no-cadre-accounts`):
#   bench/gateway_load.sh <label> [tags] [seconds]
# tags: empty for the whole mix, or `commands`, `score`, `reads` (bench/locustfile.py).
# Writes bench/results/locust_<label>_{stats,failures,stats_history}.csv, the load average every
# 10 s (<label>.load.txt) and, for runs with commands, append -> applied (applied_<label>.json).
set -euo pipefail
cd "$(dirname "$0")/.."
label=$1; tags=${2:-}; seconds=${3:-90}
out=bench/results
since=$(date -u '+%Y-%m-%d %H:%M:%S+00')
(for _ in $(seq 1 $((seconds / 10 + 1))); do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 10; done) \
  > "$out/locust_$label.load.txt" &
loadavg=$!
.venv/bin/locust -f bench/locustfile.py --headless -u 16 -r 16 -t "${seconds}s" --host http://127.0.0.1:8000 \
  ${tags:+--tags $tags} --csv "$out/locust_$label" --only-summary > "$out/locust_$label.stdout.txt" 2>&1 || true
kill "$loadavg" 2>/dev/null || true
until=$(date -u '+%Y-%m-%d %H:%M:%S+00')
if [ "$tags" != "score" ] && [ "$tags" != "reads" ]; then
  sleep 5  # let the assessment finish what the load left in flight
  .venv/bin/python bench/applied_latency.py --since "$since" --until "$until" --json "$out/applied_$label.json" | tail -3
fi
.venv/bin/python - "$out/locust_${label}_stats.csv" <<'EOF'
import csv, sys
for row in csv.DictReader(open(sys.argv[1])):
    if row["Name"].startswith("setup"):
        continue
    print(f'{row["Name"]:<34} {float(row["Requests/s"]):8.1f}/s  p50 {row["50%"]:>5}  p95 {row["95%"]:>5}  fail {row["Failure Count"]}')
EOF
