#!/usr/bin/env bash
# GET /api/health under wrk -t2 -c64: Toolshed's release build (JSON request logs on, written
# to a file) against a bare axum hello-world, in the same run. The two take turns for several
# rounds, because a shared machine drifts by several percent within a minute; each round
# prints req/s, p99, peak RSS and the time from exec to the first answer, and the summary
# gives the median ratio.
#
# Toolshed runs as it would be exposed: ENV=production with an API token, which wrk sends
# (bare axum ignores it). BENCH_PATH (default /api/health, a probe that needs no token)
# picks another path: /api/no-such-route goes through the token check and counts as an
# unmatched route in the metrics (bare axum answers it 404 too).
#
# Usage: bench/http.sh [duration_s] [rounds]
# A/B of other builds: VARIANTS="name=/path/to/toolshed other=/path/to/toolshed" adds each
# to every round (after Toolshed itself), and the summary gives each one's median ratio to
# bare axum and to this build, round by round. Build a variant from a copy of the tree
# (`git worktree add`) with its own CARGO_TARGET_DIR, and pass its target/release/toolshed.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${2:-3}"
VARIANTS="${VARIANTS:-}"
BENCH_PATH="${BENCH_PATH:-/api/health}"
TOKEN=bench-token-0123456789abcdef
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin toolshed --example bare_axum
TARGET="${CARGO_TARGET_DIR:-target}"
BIN=$TARGET/release/toolshed
BARE=$TARGET/release/examples/bare_axum
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

measure() { # name port command...
  local name=$1 port=$2; shift 2
  local out first pid
  out=$(python3 bench/first_answer.py "$port" "$@")
  first=$(sed -n 1p <<<"$out"); pid=$(sed -n 2p <<<"$out")
  local url="http://127.0.0.1:$port$BENCH_PATH" auth="authorization: Bearer $TOKEN"
  wrk -t2 -c64 -d2s -H "$auth" "$url" >/dev/null   # warm-up
  local report
  report=$(wrk -t2 -c64 -d"${DURATION}s" --latency -H "$auth" "$url")
  local rps p99 rss
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$report")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  # The server is first_answer.py's child, not ours: wait for it to flush its log and exit.
  for _ in $(seq 300); do
    grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" || break
    sleep 0.05
  done
  printf '  %-20s %10s req/s   p99 %8s   peak RSS %6.1f MB   first answer %6s ms\n' \
    "$name" "$rps" "$p99" "$(echo "$rss / 1024" | bc -l)" "$first"
  LAST_RPS=$rps
}

toolshed() { # name binary
  rm -rf "$WORK/data" "$WORK/toolshed.log"
  measure "$1" 18081 env ENV=production LOG_FORMAT=json TOOLSHED_API_TOKENS=$TOKEN \
    sh -c "exec $2 --port 18081 --data-dir $WORK/data >$WORK/toolshed.log"
}

median() { # file
  sort -n "$1" | awk '{r[NR] = $1} END {print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2}'
}

echo "wrk -t2 -c64 -d${DURATION}s GET $BENCH_PATH on $(nproc) cores ($(date -u +%F)), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  measure bare-axum 18080 "$BARE" 18080
  bare=$LAST_RPS
  toolshed toolshed-json-logs "$BIN"
  ours=$LAST_RPS
  printf '  toolshed / bare throughput: %.3f   (toolshed log lines written: %s)\n' \
    "$(echo "$ours / $bare" | bc -l)" "$(wc -l <"$WORK/toolshed.log")"
  echo "$ours / $bare" | bc -l >>"$WORK/ratios"
  for variant in $VARIANTS; do
    name=${variant%%=*}
    toolshed "$name" "${variant#*=}"
    echo "$LAST_RPS / $bare" | bc -l >>"$WORK/ratios-$name-bare"
    echo "$LAST_RPS / $ours" | bc -l >>"$WORK/ratios-$name-ours"
    printf '  %s / toolshed throughput: %.3f\n' "$name" "$(echo "$LAST_RPS / $ours" | bc -l)"
  done
done
printf 'median toolshed / bare throughput over %s rounds: %.3f\n' "$ROUNDS" "$(median "$WORK/ratios")"
for variant in $VARIANTS; do
  name=${variant%%=*}
  printf 'median %s / bare: %.3f   %s / toolshed: %.3f\n' "$name" \
    "$(median "$WORK/ratios-$name-bare")" "$name" "$(median "$WORK/ratios-$name-ours")"
done
