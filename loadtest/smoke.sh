#!/usr/bin/env bash
# CI smoke: a short Locust run against an already-built splitgate on the shipped default config.
#
#   loadtest/smoke.sh target/release/splitgate
#
# Starts BINARY on free 127.0.0.1 ports, runs Locust headless for SMOKE_DURATION (default 15s,
# at most 20s), and exits non-zero on any failed request, a stickiness violation, or a per-variant
# split outside tolerance. Stops splitgate on every exit path.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH/TO/splitgate   (an executable, already built)" >&2
  exit 2
fi
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=loadtest/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${SMOKE_DURATION:-15s}
case $duration in
  [1-9]s | 1[0-9]s | 20s) ;;
  *) echo "SMOKE_DURATION must be 1s..20s, got $duration" >&2; exit 2 ;;
esac

outdir=$(mktemp -d)
trap 'stop_splitgate; rm -rf "$outdir"' EXIT
trap 'exit 130' INT TERM

ensure_venv
"$binary" check --config "$REPO_ROOT/config/splitgate.toml" >&2
start_splitgate "$binary" "$REPO_ROOT/config/splitgate.toml" "$outdir"

log "locust: 20 clients for $duration against $SPLITGATE_URL"
status=0
timeout 60 "$VENV/bin/locust" -f "$LOADTEST_DIR/locustfile.py" --headless --only-summary \
  -u 20 -r 20 -t "$duration" --stop-timeout 5 --host "$SPLITGATE_URL" || status=$?

if ! kill -0 "$SPLITGATE_PID" 2> /dev/null; then
  log "FAIL: splitgate died during the run; its stderr:"
  tail -n 40 "$outdir/splitgate.log" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  log "FAIL: locust exited with $status (failed requests or split/stickiness check); splitgate stderr:"
  tail -n 20 "$outdir/splitgate.log" >&2
  exit 1
fi
log "smoke passed"
