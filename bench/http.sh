#!/usr/bin/env bash
# GET /api/health under wrk -t2 -c64: Toolshed's release build (JSON request logs on, written
# to a file) against a bare axum hello-world, in the same run. Prints req/s, p99, peak RSS and
# the time from exec to the first answer. Usage: bench/http.sh [duration_s]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin toolshed --example bare_axum
BIN=target/release/toolshed
BARE=target/release/examples/bare_axum
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

measure() { # name port command...
  local name=$1 port=$2; shift 2
  local out first pid
  out=$(python3 bench/first_answer.py "$port" "$@")
  first=$(sed -n 1p <<<"$out"); pid=$(sed -n 2p <<<"$out")
  wrk -t2 -c64 -d2s "http://127.0.0.1:$port/api/health" >/dev/null   # warm-up
  local report
  report=$(wrk -t2 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$port/api/health")
  local rps p99 rss
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$report")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-28s %10s req/s   p99 %8s   peak RSS %6.1f MB   first answer %6s ms\n' \
    "$name" "$rps" "$p99" "$(echo "$rss / 1024" | bc -l)" "$first"
  echo "$rps" >"$WORK/$name.rps"
}

echo "wrk -t2 -c64 -d${DURATION}s GET /api/health on $(nproc) cores ($(date -u +%F))"
measure bare-axum 18080 "$BARE" 18080
measure toolshed-json-logs 18081 env ENV=production LOG_FORMAT=json \
  sh -c "exec $BIN --port 18081 --data-dir $WORK/data >$WORK/toolshed.log"
echo "toolshed log lines written: $(wc -l <"$WORK/toolshed.log")"
printf 'toolshed / bare throughput: %.2f\n' \
  "$(echo "$(cat "$WORK/toolshed-json-logs.rps") / $(cat "$WORK/bare-axum.rps")" | bc -l)"
