#!/usr/bin/env bash
# Build splitgate, serve the builtin models on free loopback ports, load it, report, stop it.
#
#   loadtest/run.sh            # Locust (default)
#   loadtest/run.sh k6         # k6
#
# Environment: DURATION (default 30s), CLIENTS (Locust clients, default 50), RATE (k6 requests/s,
# default 2000), CONFIG (default config/splitgate.toml), SPLITGATE_API_KEY.
# Prints requests/s, p50/p95/p99, failures and the per-variant split; exits non-zero when a
# request, the stickiness check or the split check failed. Results: loadtest/results/<tool>-<time>/.
set -euo pipefail
# shellcheck source=loadtest/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tool=${1:-locust}
duration=${DURATION:-30s}
case $tool in locust | k6) ;; *) echo "usage: $0 [locust|k6]" >&2; exit 2 ;; esac
case $duration in
  [1-9]*s | [1-9]*m) ;;
  *) echo "DURATION must look like 30s or 2m, got $duration" >&2; exit 2 ;;
esac

cd "$REPO_ROOT"
log "cargo build --release"
cargo build --release --bin splitgate
binary=$REPO_ROOT/target/release/splitgate
config=${CONFIG:-$REPO_ROOT/config/splitgate.toml}

ensure_venv
outdir=$LOADTEST_DIR/results/$tool-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$outdir"
trap stop_splitgate EXIT
trap 'exit 130' INT TERM
start_splitgate "$binary" "$config" "$outdir"

status=0
if [ "$tool" = locust ]; then
  clients=${CLIENTS:-50}
  log "locust: $clients clients for $duration"
  timeout 900 "$VENV/bin/locust" -f "$LOADTEST_DIR/locustfile.py" --headless --only-summary \
    -u "$clients" -r "$clients" -t "$duration" --stop-timeout 5 --host "$SPLITGATE_URL" \
    --csv "$outdir/locust" 2>&1 | tee "$outdir/report.txt" || status=${PIPESTATUS[0]}
else
  DURATION=$duration SUMMARY_JSON=$outdir/k6-summary.json K6_TIMEOUT=900 \
    "$LOADTEST_DIR/k6/run.sh" "$SPLITGATE_URL" 2>&1 | tee "$outdir/report.txt" || status=${PIPESTATUS[0]}
fi

kill -0 "$SPLITGATE_PID" 2> /dev/null || { log "FAIL: splitgate died during the run"; status=1; }
stop_splitgate
log "results in ${outdir#"$REPO_ROOT"/} (access log, splitgate log, report)"
[ "$status" -eq 0 ] || log "FAIL: $tool exited with $status"
exit "$status"
